"""Operations: the live feed, alarms, doors' live state, and what other systems consume (API keys, webhooks)."""
