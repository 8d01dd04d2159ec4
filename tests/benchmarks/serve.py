"""The SecureShare WSGI app gunicorn serves in the bench (`tests.benchmarks.serve:application`)."""

from tests.benchmarks.settings import config_from_environment

from app import create_app

application = create_app(config_from_environment())
