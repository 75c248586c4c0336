"""Business rules. Services take a session, enforce invariants and raise DomainError subclasses."""
