"""Accounts: console users, residents' phone-app accounts and sessions, sign-in codes and the sign-in throttle."""
