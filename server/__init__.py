"""The Gatehouse server: models, services, console, CLI and the worker."""
