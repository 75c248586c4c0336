"""`python -m server.cli`: the `gatehouse` command."""

from server.cli.main import main

main()
