"""The SecureShare WSGI app gunicorn serves in the bench (`tests.benchmarks.serve:application`)."""

import os

os.environ["APP_CONFIG"] = "testing"  # any app built without its own settings uses the testing config

from app import create_app
from tests.benchmarks.settings import config_from_environment

application = create_app(config_from_environment())
