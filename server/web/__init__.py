"""What the server's two web apps (console and phone-app API) share at the HTTP layer."""
