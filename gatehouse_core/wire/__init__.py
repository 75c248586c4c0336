"""The wire contract between the server and door terminals: topics and message schemas."""
