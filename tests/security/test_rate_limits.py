"""Brute force: sign-in, registration, creation, unlocking and the API hit their limits, in memory and in Redis."""

import uuid

import pytest

from app import create_app, db
from tests.helpers import create_secret, csrf_token, make_config, post_form, service_url
from tests.test_api import NEW_SECRET, issue_token


@pytest.fixture
def config_overrides():
    return {"RATELIMIT_ENABLED": True}


def hammer(client, path: str, data: dict, times: int, token_page: str = "/login", **kwargs) -> list[int]:
    token = csrf_token(client, token_page)
    return [client.post(path, data={"csrf_token": token, **data}, **kwargs).status_code for _ in range(times)]


def test_sign_in_is_limited_per_address(client):
    statuses = hammer(client, "/login", {"login": "someone", "password": "guess"}, 11)
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429


def test_sign_in_is_limited_per_account_across_addresses(app):
    statuses = []
    for number in range(11):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"203.0.113.{number}"
        statuses += hammer(client, "/login", {"login": "Alice", "password": f"guess-{number}"}, 1)
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429


def test_429_page_says_when_to_come_back(client):
    hammer(client, "/login", {"login": "someone", "password": "guess"}, 10)
    response = client.post("/login", data={"csrf_token": csrf_token(client), "login": "someone", "password": "x"})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many tries" in response.text
    assert response.mimetype == "text/html"


def test_api_429_is_json_with_retry_after(app):
    app.config["RATELIMIT_API"] = "3 per minute"
    client = app.test_client()
    statuses = [client.get("/api/auth/check").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    response = client.get("/api/auth/check")
    assert response.json["error"]["code"] == 429
    assert int(response.headers["Retry-After"]) > 0


def test_registration_is_limited_per_address(client):
    statuses = [
        post_form(client, "/register", {"username": f"user{n}", "email": "bad", "password": "x", "confirm": "x"}).status_code
        for n in range(6)
    ]
    assert statuses == [400] * 5 + [429]


def test_creation_is_limited_per_user(app, logged_in_client):
    app.config["RATELIMIT_CREATE"] = "2 per hour"
    create_secret(logged_in_client)
    create_secret(logged_in_client)
    assert post_form(logged_in_client, "/create", {"title": "x"}).status_code == 429


def test_unlock_is_limited_per_secret_across_addresses(app, logged_in_client):
    app.config["RATELIMIT_UNLOCK_SECRET"] = "3 per minute"
    app.config["SECRET_MAX_FAILED_ATTEMPTS"] = 100
    unique_id = create_secret(logged_in_client)
    statuses = []
    for number in range(4):
        guesser = app.test_client()
        guesser.environ_base["REMOTE_ADDR"] = f"198.51.100.{number}"
        statuses += hammer(guesser, f"/view/{unique_id}", {"password": "wrong-guess"}, 1, token_page=f"/view/{unique_id}")
    assert statuses == [403, 403, 403, 429]


def test_unlock_is_limited_per_address_across_secrets(app, logged_in_client):
    app.config["RATELIMIT_UNLOCK_IP"] = "3 per minute"
    ids = [create_secret(logged_in_client) for _ in range(4)]
    guesser = app.test_client()
    paths = [f"/view/{unique_id}" for unique_id in ids]
    statuses = [hammer(guesser, path, {"password": "wrong-guess"}, 1, token_page=path)[0] for path in paths]
    assert statuses == [403, 403, 403, 429]


def test_api_is_limited_per_token(app, logged_in_client):
    app.config["RATELIMIT_API"] = "2 per minute"
    token = issue_token(logged_in_client)
    scripts = [app.test_client() for _ in range(3)]
    for number, script in enumerate(scripts):
        script.environ_base["REMOTE_ADDR"] = f"192.0.2.{number}"
    headers = {"Authorization": f"Bearer {token}"}
    assert [script.get("/api/secrets", headers=headers).status_code for script in scripts] == [200, 200, 429]


def test_forged_forwarded_for_does_not_dodge_the_limit(client):
    statuses = []
    for number in range(11):
        client.environ_base["HTTP_X_FORWARDED_FOR"] = f"10.0.0.{number}"
        statuses += hammer(client, "/login", {"login": f"someone{number}", "password": "guess"}, 1)
    assert statuses[10] == 429


def test_behind_one_proxy_only_the_hop_it_saw_counts(tmp_path, clock):
    app = create_app(make_config(tmp_path, clock, RATELIMIT_ENABLED=True, PROXY_COUNT=1))
    with app.app_context():
        db.create_all()
    client = app.test_client()
    statuses = []
    for number in range(11):
        # The attacker writes the first entry; the proxy appends the address it really saw.
        client.environ_base["HTTP_X_FORWARDED_FOR"] = f"10.0.0.{number}, 203.0.113.9"
        statuses += hammer(client, "/login", {"login": f"someone{number}", "password": "guess"}, 1)
    assert statuses[10] == 429
    other = app.test_client()
    other.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.10"
    assert hammer(other, "/login", {"login": "fresh", "password": "guess"}, 1) == [400]


@pytest.mark.redis
def test_limit_holds_against_the_real_redis(tmp_path, clock):
    """Counts live in Redis, so every gunicorn worker sees the same budget."""
    from redis import Redis

    url = service_url("REDIS_URL", "Redis")
    address = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"  # fresh per run: Redis outlives tests
    workers = [create_app(make_config(tmp_path, clock, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=url)) for _ in range(2)]
    with workers[0].app_context():
        db.create_all()
    statuses = []
    for attempt in range(11):
        client = workers[attempt % 2].test_client()
        client.environ_base["REMOTE_ADDR"] = address
        statuses += hammer(client, "/login", {"login": f"someone-{uuid.uuid4().hex}", "password": "guess"}, 1)
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    keys = Redis.from_url(url).keys(f"*/{address}/web.login/10/1/minute")
    assert len(keys) == 1
    assert int(Redis.from_url(url).get(keys[0])) >= 10


def test_page_and_api_share_one_creation_budget(app, logged_in_client):
    app.config["RATELIMIT_CREATE"] = "2 per hour"
    create_secret(logged_in_client)
    token = issue_token(logged_in_client)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/secrets", json=NEW_SECRET, headers=headers).status_code == 201
    assert client.post("/api/secrets", json=NEW_SECRET, headers=headers).status_code == 429
    assert post_form(logged_in_client, "/create", {"title": "x"}).status_code == 429


class LimiterClock:
    """Stands in for the `time` module inside the limiter's memory storage: the limiter's clock, injected."""

    def __init__(self):
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


def test_repeated_breaches_back_off_for_longer_but_never_forever(client, monkeypatch):
    import limits.storage.memory

    limiter_clock = LimiterClock()
    monkeypatch.setattr(limits.storage.memory, "time", limiter_clock)
    token = csrf_token(client)

    def tries_allowed_this_minute() -> int:
        statuses = [
            client.post("/login", data={"csrf_token": token, "login": f"x{n}", "password": "guess"}).status_code
            for n in range(11)
        ]
        limiter_clock.now += 61
        return statuses.count(400)

    allowed = [tries_allowed_this_minute() for _ in range(5)]
    assert allowed[:3] == [10, 10, 10]  # three breaches of 10 a minute...
    assert allowed[3:] == [0, 0]  # ...and the address is held off for the rest of the hour
    limiter_clock.now += 3600
    assert tries_allowed_this_minute() == 10  # never a permanent lock-out
