"""The SecureShare WSGI app gunicorn serves in the bench (`tests.benchmarks.serve:application`)."""

import os

os.environ["APP_CONFIG"] = "testing"  # before `import app`: its module-level app must not touch instance/ or logs/

from app import create_app
from tests.benchmarks.settings import config_from_environment

application = create_app(config_from_environment())
