"""Flask extensions, created once here and attached to an app in create_app via init_app."""

from __future__ import annotations

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from server.models import db

migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()

__all__ = ["csrf", "db", "login_manager", "migrate"]
