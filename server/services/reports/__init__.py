"""Read-only views for the console: the dashboard, the access events log and the audit log."""
