"""Code shared by the Gatehouse server and door terminals: wire contract, key handling, hashing, config."""

__version__ = "0.1.0"
