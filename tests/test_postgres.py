"""The core rules again on PostgreSQL (DATABASE_URL=postgresql+psycopg://…): the tests imported below are
collected here a second time, with this module's `app` on the server named by POSTGRES_URL."""

import pytest

from app import create_app, db
from tests.helpers import make_config, service_url
from tests.test_accounts import test_duplicate_username_or_email_in_any_case  # noqa: F401 - run again here
from tests.test_concurrency import (  # noqa: F401 - run again here
    test_twenty_parallel_unlocks_of_a_one_view_secret_reveal_once,
    test_twenty_parallel_wrong_guesses_never_pass_the_attempt_limit,
)
from tests.test_lifecycle import (  # noqa: F401 - run again here
    test_burn_after_reading,
    test_expiry_on_both_sides_of_the_second,
    test_five_wrong_passwords_destroy,
    test_purge_deletes_old_records_with_their_events_and_qr_files,
)
from tests.test_secrets import test_wrong_then_right_password  # noqa: F401 - run again here


@pytest.fixture
def app(tmp_path, clock):
    application = create_app(make_config(tmp_path, clock, SQLALCHEMY_DATABASE_URI=service_url("POSTGRES_URL", "PostgreSQL")))
    with application.app_context():
        db.drop_all()
        db.create_all()
    yield application
    with application.app_context():
        db.drop_all()
        db.engine.dispose()


def test_runs_on_postgresql(app):
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
