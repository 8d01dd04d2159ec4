"""Shared fixtures: a fresh app and database per test, a frozen clock, and an account signed in through the real routes."""

import os

# Any app a test builds without its own settings (a subprocess, a CLI run) uses the testing config.
os.environ["APP_CONFIG"] = "testing"

from datetime import UTC, datetime

import pytest

from app import create_app, db
from tests import services
from tests.helpers import MAIL_SENDER, AuthActions, FrozenClock, free_port, make_config
from tests.smtp_server import MailCatcher, smtp_server

# Before any test asks for them: PostgreSQL and Redis on their default ports count as set (tests/services.py).
SERVICES = [services.find(variable) for variable in services.DEFAULTS]


@pytest.fixture
def clock():
    return FrozenClock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))


@pytest.fixture
def config_overrides():
    """Override this in a module to change settings for its tests."""
    return {}


@pytest.fixture
def app(tmp_path, clock, config_overrides):
    application = create_app(make_config(tmp_path, clock, **config_overrides))
    with application.app_context():
        db.create_all()
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def logged_in_client(client, auth):
    assert auth.register().status_code == 302
    return client


@pytest.fixture
def log_text(app):
    """Return a function that reads everything the app has logged so far."""

    def read() -> str:
        for handler in app.logger.handlers:
            handler.flush()
        return app.config["LOG_FILE"].read_text(encoding="utf-8")

    return read


@pytest.fixture
def recipient(app):
    """A second, anonymous browser: the person the secret is for."""
    return app.test_client()


# --- email: a real SMTP server (aiosmtpd) for a module's tests; a module points the app at it with
# `config_overrides` returning `mail_settings` ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp_port():
    """A plain SMTP server (as a relay on this host would be) for the module's tests; yield its port."""
    port = free_port()
    with smtp_server(port, MailCatcher()) as controller:
        yield port, controller.handler


@pytest.fixture
def mailbox(smtp_port) -> MailCatcher:
    catcher = smtp_port[1]
    catcher.received.clear()
    catcher.refuse = False
    return catcher


@pytest.fixture
def mail_settings(smtp_port) -> dict:
    server = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_port[0], "MAIL_DEFAULT_SENDER": MAIL_SENDER}
    return {**server, "EMAIL_VERIFICATION": "optional"}


# --- the end of a run: which services it used, and which suites skipped and why ----------------------------------------


def pytest_terminal_summary(terminalreporter):
    terminalreporter.section("services and skipped suites")
    for finding in SERVICES:
        terminalreporter.write_line(f"{finding.service}: {finding.how}")
    lines = services.skipped_suites(terminalreporter.stats.get("skipped", []))
    for line in lines or ["No test skipped."]:
        terminalreporter.write_line(line)
