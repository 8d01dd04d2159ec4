"""The core rules again on PostgreSQL (DATABASE_URL=postgresql+psycopg://…): the tests imported below are
collected here a second time, with this module's `app` on the server named by POSTGRES_URL."""

from datetime import timedelta

import pytest

from app import create_app, db
from tests.helpers import PASSWORD, AuthActions, create_secret, load_secret, make_config, post_form, service_url, unlock
from tests.test_accounts import (  # noqa: F401 - run again here
    test_addresses_python_and_postgresql_fold_differently_never_answer_500,
    test_duplicate_username_or_email_in_any_case,
)
from tests.test_concurrency import (  # noqa: F401 - run again here
    test_twenty_parallel_unlocks_of_a_one_view_secret_reveal_once,
    test_twenty_parallel_wrong_guesses_never_pass_the_attempt_limit,
)
from tests.test_lifecycle import (  # noqa: F401 - run again here
    test_burn_after_reading,
    test_expiry_on_both_sides_of_the_second,
    test_five_wrong_passwords_destroy,
    test_purge_deletes_old_records_with_their_events,
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


@pytest.fixture
def new_york_app(tmp_path, clock):
    """PostgreSQL whose sessions speak New York time: stored and shown times must still be UTC."""
    options = {"hide_parameters": True, "connect_args": {"options": "-c timezone=America/New_York"}}
    url = service_url("POSTGRES_URL", "PostgreSQL")
    application = create_app(make_config(tmp_path, clock, SQLALCHEMY_DATABASE_URI=url, SQLALCHEMY_ENGINE_OPTIONS=options))
    with application.app_context():
        db.drop_all()
        db.create_all()
        assert db.session.execute(db.text("SHOW timezone")).scalar() == "America/New_York"
    yield application
    with application.app_context():
        db.drop_all()
        db.engine.dispose()


def test_times_are_utc_whatever_the_session_time_zone(new_york_app, clock):
    owner = new_york_app.test_client()
    AuthActions(owner).register()
    unique_id = create_secret(owner, expiration="1h")
    secret = load_secret(new_york_app, unique_id)
    assert secret.expires_at.utcoffset() == timedelta(0)
    assert secret.expires_at == clock() + timedelta(hours=1)
    assert "Nov 28, 2026, 1:00\u202fPM UTC" in owner.get(f"/secrets/{unique_id}").text
    assert owner.get(f"/api/secrets/{unique_id}").json["secret"]["expires_at"] == "2026-11-28T13:00:00+00:00"
    recipient = new_york_app.test_client()
    clock.advance(minutes=59, seconds=59)
    assert unlock(recipient, unique_id).status_code == 200
    clock.advance(seconds=1)
    assert unlock(recipient, unique_id).status_code == 410
    result = new_york_app.test_cli_runner().invoke(args=["purge"])
    assert "Expired 1" in result.output


@pytest.mark.parametrize("path", ["/account/sessions/2147483648/end", "/account/tokens/9223372036854775808/revoke"])
def test_an_id_beyond_the_database_s_integers_is_a_404(app, path):
    """Fault: an id past PostgreSQL's integer reached the query, and its out-of-range error was a 500."""
    client = app.test_client()
    AuthActions(client).register()
    assert client.get(path).status_code == 404


# NFKC turns U+FDFA into 18 characters: a 76-character address (email_validator accepts it) has a 1,164-character
# canonical key, over the email_key column's 320.
LONG_KEY_EMAIL = "\ufdfa" * 64 + "@example.org"


def test_an_address_whose_canonical_key_overflows_its_column_is_no_500_at_sign_up(client):
    assert AuthActions(client).register(username="bob", email=LONG_KEY_EMAIL).status_code == 400


def test_an_address_whose_canonical_key_overflows_its_column_is_no_500_on_email_change(logged_in_client):
    fields = {"email-email": LONG_KEY_EMAIL, "email-current_password": PASSWORD}
    assert post_form(logged_in_client, "/account/email", fields, token_page="/account").status_code == 400
