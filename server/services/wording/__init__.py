"""Service refusals (DomainError) in words, by their stable code: one table per audience.

`operators` holds the sentences the console shows staff, translated through the console's catalogue;
`residents` holds the phone app's sentences, written to the resident. The modules import nothing of each other,
so the phone-app API does not need Flask-Babel.
"""
