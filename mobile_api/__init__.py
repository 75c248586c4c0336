"""JSON API for the residents' phone app; its own app factory, deployable apart from the console."""
