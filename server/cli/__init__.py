"""The `gatehouse` command: one module per command group; `main` assembles them."""
