"""Other systems' access to the operations feed: API keys for the integration API, and webhooks."""
