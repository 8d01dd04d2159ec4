"""The WSGI app the browser tests serve with gunicorn: testing settings, with the files a test run owns.

gunicorn imports `application` from here; SECURESHARE_TEST_DIR (set by the fixture) holds the database, log and
the keys of the run; SECURESHARE_TEST_HOST the host and port it answers to.
"""

import os
from pathlib import Path

os.environ["APP_CONFIG"] = "testing"

from app import create_app, db
from config import TestingConfig

RUN_DIR = Path(os.environ["SECURESHARE_TEST_DIR"])


class BrowserTestConfig(TestingConfig):
    SQLALCHEMY_DATABASE_URI = f"sqlite:///{RUN_DIR / 'secureshare.db'}"
    LOG_FILE = RUN_DIR / "app.log"
    SECRET_KEY = os.environ["SECRET_KEY"]
    ENCRYPTION_KEYS = os.environ["ENCRYPTION_KEYS"]
    TRUSTED_HOSTS = [os.environ["SECURESHARE_TEST_HOST"]]
    EMAIL_VERIFICATION = "optional"  # the pages show an address waiting to be confirmed


application = create_app(BrowserTestConfig)
with application.app_context():
    db.create_all()
