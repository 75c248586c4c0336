"""Operating a server: broker files, terminal provisioning files, the demo broker, the schema check, the demo."""
