"""Face entry: separate consent, enrollment from a photo, sealed templates, and the enrolled-face count."""
