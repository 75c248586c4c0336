"""Console: one person's page, as a package: the page itself, credentials, face, and the phone app."""
