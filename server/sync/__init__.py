"""The worker's side of terminal sync: turning journal entries into signed messages for each terminal."""
