"""Migrations and models agree: `flask db upgrade` builds exactly what schema.py describes, on SQLite and on
PostgreSQL, and `flask init-db` adopts a database that the old init-db made (tables, no alembic_version)."""

import warnings
from contextlib import contextmanager

import alembic.command
import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from app import create_app, db
from commands import FIRST_REVISION
from tests.helpers import make_config, service_url

# SQLAlchemy and Alembic warn so for every functional index on SQLite, which they cannot reflect: revisions before
# 0004 had lower() indexes on `user`.
SQLITE_BLIND_SPOT = "(autogenerate skipping metadata-specified|Skipped unsupported reflection of) expression-based index"
OLD_USER_ROW = {
    "username": "Early_Bird",
    "email": "early@example.org",
    "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    "session_token": "t" * 43,
    "created_at": "2026-01-02 03:04:05+00:00",
}


@contextmanager
def _sqlite_blind_spot():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SQLITE_BLIND_SPOT)
        yield


def _drop_everything(engine: sa.Engine) -> None:
    """Drop every table the database has, alembic_version included, whatever schema made them."""
    tables = sa.MetaData()
    with _sqlite_blind_spot():
        tables.reflect(engine)
    tables.drop_all(engine)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_app(request, tmp_path, clock):
    """The app on an empty database of each kind."""
    on_postgresql = request.param == "postgresql"
    url = service_url("POSTGRES_URL", "PostgreSQL") if on_postgresql else f"sqlite:///{tmp_path / 'migrated.db'}"
    application = create_app(make_config(tmp_path, clock, SQLALCHEMY_DATABASE_URI=url))
    with application.app_context():
        _drop_everything(db.engine)
    yield application
    with application.app_context():
        _drop_everything(db.engine)
        db.engine.dispose()


def _run(app, *args: str) -> str:
    """Run a `flask --app app ...` command on `app`; return its output, failing the test if it fails."""
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _differences(app) -> list:
    """What `flask db migrate` would write: the differences autogenerate finds between database and models."""
    with app.app_context(), db.engine.connect() as connection, _sqlite_blind_spot():
        context = MigrationContext.configure(connection, opts=dict(app.extensions["migrate"].configure_args))
        return compare_metadata(context, db.metadata)


def _revision(app) -> str | None:
    with app.app_context(), db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _head(app) -> str:
    with app.app_context():
        return ScriptDirectory(app.extensions["migrate"].directory).get_current_head()


def _assert_schema_is_the_models(app) -> None:
    assert _revision(app) == _head(app)
    assert _differences(app) == []


def test_db_upgrade_builds_what_the_models_describe(empty_app):
    _run(empty_app, "db", "upgrade")
    _assert_schema_is_the_models(empty_app)


def test_the_check_sees_a_schema_that_differs_from_the_models(empty_app):
    _run(empty_app, "db", "upgrade")
    with empty_app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX ix_secret_owner_id_id"))
        connection.execute(sa.text("DROP INDEX ix_secret_status_expires_at"))
    assert len(_differences(empty_app)) == 2


def test_downgrade_then_upgrade_again(empty_app):
    # One step back and forth: on SQLite a batch step that rebuilds a table drops its functional indexes.
    _run(empty_app, "db", "upgrade")
    _run(empty_app, "db", "downgrade")
    _run(empty_app, "db", "upgrade")
    _assert_schema_is_the_models(empty_app)

    _run(empty_app, "db", "downgrade", "base")
    with empty_app.app_context():
        assert sa.inspect(db.engine).get_table_names() == ["alembic_version"]
    _run(empty_app, "db", "upgrade")
    _assert_schema_is_the_models(empty_app)


def test_init_db_prepares_an_empty_database_and_is_safe_to_run_again(empty_app):
    first = _run(empty_app, "init-db")
    second = _run(empty_app, "init-db")
    assert "Database ready." in first and "Database ready." in second
    assert "before migrations" not in first + second
    _assert_schema_is_the_models(empty_app)


def test_init_db_adopts_a_database_made_before_migrations_and_keeps_its_rows(empty_app):
    # What the old init-db left: the first revision's tables, a user, and no alembic_version.
    with empty_app.app_context():
        flask_migrate.upgrade(revision=FIRST_REVISION)
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE alembic_version"))
            connection.execute(
                sa.text(
                    'INSERT INTO "user" (username, email, password_hash, session_token, created_at) '
                    "VALUES (:username, :email, :password_hash, :session_token, :created_at)"
                ),
                OLD_USER_ROW,
            )

    output = _run(empty_app, "init-db")

    assert f"recorded them as revision {FIRST_REVISION}, data kept" in output
    _assert_schema_is_the_models(empty_app)
    with empty_app.app_context(), db.engine.connect() as connection:
        rows = connection.execute(sa.text('SELECT username, email, username_key, email_key FROM "user"')).all()
    assert rows == [("Early_Bird", "early@example.org", "early_bird", "early@example.org")]


def test_upgrade_refuses_two_accounts_that_are_one_once_normalised(empty_app):
    """lower() let "ﬁnn@" (a ligature) and "finn@" be two accounts; NFKC makes them one, so 0004 stops and says which."""
    with empty_app.app_context():
        flask_migrate.upgrade(revision="0003")
        with db.engine.begin() as connection:
            for number, email in enumerate(("finn@example.org", "\ufb01nn@example.org")):
                row = {**OLD_USER_ROW, "username": f"finn{number}", "email": email}
                connection.execute(
                    sa.text('INSERT INTO "user" (username, email, password_hash, created_at) '
                            "VALUES (:username, :email, :password_hash, :created_at)"),
                    row,
                )  # fmt: skip
    with empty_app.app_context(), pytest.raises(RuntimeError, match="accounts 1 and 2 have the same email once normalised"):
        alembic.command.upgrade(empty_app.extensions["migrate"].migrate.get_config(), "head")  # flask db upgrade, unwrapped
    assert _revision(empty_app) == "0003"
