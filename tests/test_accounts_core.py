"""accounts.py on its own: no app, no request; a real database (SQLite, and PostgreSQL where it runs), a frozen clock."""

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import accounts
from schema import Base, User
from tests.helpers import own_postgres_schema

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PASSWORD = "violet-harbor-trumpet-42"


def test_importing_accounts_loads_no_flask():
    code = "import sys, accounts; print(sorted(m for m in sys.modules if m.split('.')[0].startswith('flask')))"
    repo = Path(__file__).parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "postgresql":  # a schema of its own: mutants run side by side
        with own_postgres_schema("accounts") as (engine, _schema):
            yield engine
        return
    engine = create_engine(f"sqlite:///{tmp_path / 'accounts.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        yield session


@pytest.fixture(scope="module")
def passwords():
    return accounts.Passwords(memory_kib=19456, time_cost=2, parallelism=1)


def test_a_parallel_sign_up_that_wins_the_race_makes_the_other_taken_not_an_error(engine, passwords):
    """Fault: the check before the insert and the unique index disagreed, and the IntegrityError was a 500. Two
    requests that both passed the check are the same case: the second is told which field is taken."""
    with Session(engine) as first, Session(engine) as second:
        assert accounts.taken_fields(first, "iris", "iris@example.org") == ()
        assert accounts.taken_fields(second, "IRIS", "Iris@Example.org") == ()  # both checks pass...
        assert isinstance(accounts.register(first, passwords, "iris", "iris@example.org", PASSWORD), User)
        lost = accounts.register(second, passwords, "IRIS", "Iris@Example.org", PASSWORD)  # ...the index decides
    assert lost == accounts.Taken(("username", "email"))
    with Session(engine) as session:
        assert session.scalars(select(User.username)).all() == ["iris"]


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("iris1@example.org", "\u0130ris1@example.org", False),  # lower() folds İ differently in Python and PostgreSQL
        ("finn@example.org", "\ufb01nn@example.org", True),  # the ﬁ ligature is "fi" once normalised
        ("finn@example.org", "\uff26INN@example.org", True),  # a fullwidth F
        ("STRASSE@example.org", "stra\u00dfe@example.org", True),  # casefold, not lower: ß is ss
    ],
)
def test_email_uniqueness_compares_one_canonical_spelling(session, passwords, first, second, same):
    accounts.register(session, passwords, "first", first, PASSWORD)
    assert (accounts.taken_fields(session, email=second) == ("email",)) is same
    outcome = accounts.register(session, passwords, "second", second, PASSWORD)
    assert (outcome == accounts.Taken(("email",))) is same
    assert accounts.find_user_for_login(session, second).username == ("first" if same else "second")


def test_an_email_change_to_an_address_taken_meanwhile_changes_nothing(engine, passwords):
    with Session(engine) as session:
        accounts.register(session, passwords, "alice", "alice@example.org", PASSWORD)
        accounts.register(session, passwords, "bob", "bob@example.org", PASSWORD)
    with Session(engine) as session:
        bob = session.scalars(select(User).filter_by(username="bob")).one()
        assert accounts.change_email(session, bob, "ALICE@example.org") is False
        session.refresh(bob)
        assert (bob.email, bob.email_key) == ("bob@example.org", "bob@example.org")
        assert accounts.change_email(session, bob, "Robert@Example.org") is True
    with Session(engine) as session:
        assert accounts.find_user_for_login(session, "robert@example.org").username == "bob"
