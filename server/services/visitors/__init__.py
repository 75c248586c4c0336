"""Visitors: passes a resident or the desk issues, with a code and a signed QR."""
