"""A site's privacy duties: notice and assessment, erasure receipts and alarms, retention, subject access."""
