"""The door terminal: local store, decision engine, drivers and the MQTT link to the server."""
