"""Races on the real servers: 50 people unlock at the same moment through nginx, spread over gunicorn's 4 worker
processes, each with its own cookie and CSRF token; only PostgreSQL's guarded updates stand between them and the
limits. The unlock rate limits are raised on this server (production.RACE_UNLOCK_LIMIT) so requests reach the guard.
"""

import threading
import uuid

import pytest
from sqlalchemy import create_engine, select

from schema import Secret, SecretStatus, share_id_digest
from tests.browser.production import Answer, HttpsVisitor
from tests.helpers import PASSWORD, SECRET_CONTENT, SECRET_PASSWORD, secret_form

PARALLEL = 50
DESTROYED = "the secret has been destroyed for safety"


@pytest.fixture(scope="module")
def owner(production_site) -> HttpsVisitor:
    """One account for every race here (registration is limited to 5 an hour per address, on Redis)."""
    visitor = HttpsVisitor(production_site)
    visitor.get("/register")
    name = f"racer{uuid.uuid4().hex[:8]}"
    fields = {"username": name, "email": f"{name}@example.org", "password": PASSWORD, "confirm": PASSWORD}
    assert visitor.post("/register", fields).status == 302
    return visitor


def create(owner: HttpsVisitor, **fields) -> str:
    owner.get("/create")
    answer = owner.post("/create", secret_form(**fields))
    assert answer.status == 302, answer.body
    return answer.location.rsplit("/", 1)[1]


def race(site, unique_id: str, password: str) -> list[Answer]:
    """Send PARALLEL unlock POSTs at the same moment, each from its own visitor; return the answers."""
    visitors = [HttpsVisitor(site) for _ in range(PARALLEL)]
    for visitor in visitors:
        assert visitor.get(f"/view/{unique_id}").status == 200  # its own session cookie and token
    barrier = threading.Barrier(PARALLEL)
    answers: list[Answer | None] = [None] * PARALLEL

    def unlock(index: int) -> None:
        barrier.wait(timeout=60)
        answers[index] = visitors[index].post(f"/view/{unique_id}", {"password": password})

    threads = [threading.Thread(target=unlock, args=(index,)) for index in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert None not in answers, "an unlock never came back"
    return answers


def stored(site, unique_id: str):
    """The secret's row as PostgreSQL holds it now."""
    columns = Secret.__table__.c
    query = select(
        columns.status, columns.view_count, columns.failed_attempts, columns.ciphertext, columns.salt, columns.nonce
    ).where(columns.id_digest == share_id_digest(unique_id))
    engine = create_engine(site.database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(query).one()
    finally:
        engine.dispose()


@pytest.mark.parametrize("max_views", [1, 5])
def test_fifty_parallel_unlocks_reveal_exactly_max_views(production_site, owner, max_views):
    unique_id = create(owner, max_views=str(max_views))
    answers = race(production_site, unique_id, SECRET_PASSWORD)
    reveals = [answer for answer in answers if answer.status == 200 and SECRET_CONTENT in answer.body]
    assert len(reveals) == max_views
    assert {answer.status for answer in answers} <= {200, 410, 429}
    row = stored(production_site, unique_id)
    assert (row.status, row.view_count) == (SecretStatus.USED_UP, max_views)
    assert row.failed_attempts <= 5  # right passwords that lost the last view keep their try today (issue 9)
    assert (row.ciphertext, row.salt, row.nonce) == (None, None, None)


def test_fifty_parallel_wrong_guesses_destroy_the_secret_after_at_most_five(production_site, owner):
    unique_id = create(owner)
    answers = race(production_site, unique_id, "not-the-password")
    assert all(SECRET_CONTENT not in answer.body for answer in answers)
    assert {answer.status for answer in answers} <= {403, 410, 429}
    wrong_password_answers = [a for a in answers if a.status == 403 or (a.status == 410 and DESTROYED in a.body)]
    assert 1 <= len(wrong_password_answers) <= 5
    row = stored(production_site, unique_id)
    assert (row.status, row.failed_attempts, row.view_count) == (SecretStatus.DESTROYED, 5, 0)
    assert (row.ciphertext, row.salt, row.nonce) == (None, None, None)
