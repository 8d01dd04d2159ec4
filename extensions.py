"""The Flask extensions SecureShare shares between its rooms, created unbound; create_app binds them."""

import flask_migrate
from flask_login import LoginManager
from flask_mailman import Mail
from flask_sqlalchemy import SQLAlchemy

from config import BASE_DIR
from schema import Base

db = SQLAlchemy(metadata=Base.metadata)
login_manager = LoginManager()
mail = Mail()
# Batch mode: SQLite alters a table by copying it, so later revisions can change columns on either database.
migrate = flask_migrate.Migrate(directory=str(BASE_DIR / "migrations"), render_as_batch=True)
