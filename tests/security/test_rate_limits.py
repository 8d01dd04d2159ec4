"""Brute force: sign-in, registration, creation, unlocking and the API hit their limits, in memory and in Redis."""

import re
import uuid

import pytest

from app import create_app, db
from tests.helpers import (
    OTHER_PASSWORD,
    PASSWORD,
    AuthActions,
    create_secret,
    csrf_token,
    load_secret,
    make_config,
    post_form,
    recipient_form_token,
    service_url,
    unlock,
)
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
    keys = Redis.from_url(url).keys(f"*/{address}/guess-network/10/1/minute")
    assert len(keys) == 1
    assert int(Redis.from_url(url).get(keys[0])) >= 10


def test_the_limit_store_holds_no_digest_anyone_could_recompute(tmp_path, clock):
    """Fault: keys held sha256(login), so whoever read Redis could confirm a guessed username or email."""
    import hashlib
    import hmac

    from redis import Redis

    url = service_url("REDIS_URL", "Redis")
    app = create_app(make_config(tmp_path, clock, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=url))
    with app.app_context():
        db.create_all()
    login = f"carol-{uuid.uuid4().hex}@example.org"  # Redis outlives test runs
    hammer(app.test_client(), "/login", {"login": login.upper(), "password": "guess"}, 1)
    plain = hashlib.sha256(login.encode()).hexdigest()[:32]
    keyed = hmac.new(app.secret_key.encode(), login.encode(), hashlib.sha256).hexdigest()[:32]
    redis = Redis.from_url(url)
    assert redis.keys(f"*{keyed}*")
    assert not redis.keys(f"*{plain}*")


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
    assert allowed[:3] == [10, 10, 10]  # three minutes of 10 spend the hour's 30...
    assert allowed[3:] == [0, 0]  # ...and the address is held off for the rest of the hour
    limiter_clock.now += 3600
    assert tries_allowed_this_minute() == 10  # never a permanent lock-out
    for _hour in range(3):  # 100 a day: the day's budget is spent in the fourth hour...
        limiter_clock.now += 3600
        [tries_allowed_this_minute() for _ in range(3)]
    limiter_clock.now += 3600
    assert tries_allowed_this_minute() == 0  # ...and the address waits for the rest of the day
    limiter_clock.now += 24 * 3600
    assert tries_allowed_this_minute() == 10


def guess_from(app, address: str, login: str = "alice", times: int = 1) -> list[int]:
    """Wrong passwords for `login` from a fresh browser (no device cookie) at `address`."""
    guesser = app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = address
    return hammer(guesser, "/login", {"login": login, "password": "a-wrong-guess"}, times)


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/account/password", {"current_password": "guess", "password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD}),
        ("/account/delete", {"delete-current_password": "guess"}),
        ("/account/tokens", {"name": "x", "lifetime": "30d", "current_password": "guess"}),
    ],
)
def test_current_password_checks_are_throttled(logged_in_client, path, fields):
    """Fault: checking the current password had no limit: unlimited guesses, each a 64 MiB hash."""
    statuses = hammer(logged_in_client, path, fields, 11, token_page="/account")
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429


def test_guessers_cannot_lock_the_owner_out(app, client, auth):
    """Fault: guesses from a handful of addresses locked the owner's username out of sign-in for an hour."""
    auth.register()  # this browser now holds a device cookie for alice
    auth.logout()
    statuses = [guess_from(app, f"203.0.113.{number}")[0] for number in range(11)]
    assert statuses[10] == 429  # unknown devices are held off...
    stranger = AuthActions(app.test_client())
    assert stranger.login().status_code == 429  # ...even with the right password
    assert auth.login().status_code == 302  # the owner's own browser has a budget of its own


def test_many_breaches_on_the_account_never_lock_out_the_trusted_device(app, client, auth):
    """Fault: after 3 breaches of the account limit (13 wrong passwords from 13 networks), a meta limit checked
    before the trusted-device exemption refused the owner's own browser for an hour."""
    auth.register()
    auth.logout()
    statuses = [guess_from(app, f"203.0.113.{number}")[0] for number in range(13)]
    assert statuses[10:] == [429] * 3
    assert auth.login().status_code == 302


def test_many_breaches_on_the_account_never_block_re_authentication_on_the_trusted_device(app, logged_in_client):
    statuses = [guess_from(app, f"203.0.113.{number}")[0] for number in range(13)]
    assert statuses[10:] == [429] * 3
    fields = {"email-email": "new@example.org", "email-current_password": PASSWORD}
    assert post_form(logged_in_client, "/account/email", fields, token_page="/account").status_code == 302


def test_many_breaches_on_a_network_never_lock_out_a_trusted_device_there(app, client, auth):
    """Fault: the same for a network: a guesser's breaches there refused the trusted devices on it too."""
    client.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    auth.register()
    auth.logout()
    statuses = [guess_from(app, "203.0.113.7", login=f"someone{number}")[0] for number in range(13)]
    assert statuses[10:] == [429] * 3
    assert auth.login().status_code == 302


def test_a_forged_device_cookie_is_an_unknown_device(app, client, auth):
    auth.register()
    for number in range(10):
        guess_from(app, f"203.0.113.{number}")
    forger = AuthActions(app.test_client())
    forger.client.set_cookie("device", client.get_cookie("device").value + "x")
    assert forger.login().status_code == 429


def test_a_trusted_device_is_still_limited(client, auth):
    auth.register()
    auth.logout()
    statuses = [auth.login(password=f"wrong-{number}").status_code for number in range(11)]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429


def test_the_throttle_never_links_a_username_to_its_email(app, auth):
    """Fault: after 11 wrong passwords for a username from one address, one wrong try for its email from another
    address answered 429 while an unrelated email answered 400, so a stranger could tell the two are one account.
    Sign-in budgets follow the spelling typed; each spelling is limited on its own."""
    auth.register()
    assert guess_from(app, "203.0.113.1", login="alice", times=11)[10] == 429

    def one_wrong_try(address: str, login: str):
        guesser = app.test_client()
        guesser.environ_base["REMOTE_ADDR"] = address
        answer = post_form(guesser, "/login", {"login": login, "password": "a-wrong-guess"})
        return answer.status_code, re.search(r'id="password-error"[^>]*>(.*?)<', answer.text, re.S).group(1).strip()

    own_email = one_wrong_try("198.51.100.1", "Alice@Example.org")
    unrelated = one_wrong_try("198.51.100.2", "nobody@example.org")
    assert own_email == unrelated
    assert own_email[0] == 400
    assert guess_from(app, "198.51.100.3", login="ALICE@example.org", times=10)[-1] == 429  # its own budget, folded


def test_ipv6_addresses_count_per_64(app):
    statuses = [guess_from(app, f"2001:db8:1:2::{number:x}", login=f"someone{number}")[0] for number in range(11)]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    assert guess_from(app, "2001:db8:1:3::1", login="someone-else") == [400]  # the next /64 is someone else


def test_the_code_step_is_throttled(app, client, auth, clock):
    from tests.test_two_factor import turn_on

    auth.register()
    turn_on(client, clock)
    auth.logout()
    auth.login()
    statuses = hammer(client, "/login/code", {"code": "not-a-code"}, 11)
    # One budget for every password and code check of this trusted browser; turning two-factor on forgot every
    # device and trusted this one afresh, so only the password spent one of its 10.
    assert statuses == [400] * 9 + [429] * 2


def test_api_limit_ignores_a_varied_authorization_header(app, logged_in_client):
    """Fault: a cookie caller who added a random `Authorization: Basic …` got a fresh API budget every time."""
    app.config["RATELIMIT_API"] = "3 per minute"
    statuses = [
        logged_in_client.get("/api/secrets", headers={"Authorization": f"Basic {uuid.uuid4().hex}"}).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_api_limit_ignores_padding_around_the_token(app, logged_in_client):
    """Fault: a token caller who padded the token with spaces got a fresh API budget every time."""
    token = issue_token(logged_in_client)
    app.config["RATELIMIT_API"] = "3 per minute"
    script = app.test_client()
    statuses = [script.get("/api/secrets", headers={"Authorization": f"Bearer {token}{' ' * n}"}).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize("change", ["password", "sign out everywhere"])
def test_a_password_change_or_signing_out_everywhere_ends_every_other_device_s_trust(app, client, auth, change):
    """Fault: a device's trust survived a password change: a stolen laptop kept its own sign-in budget, free of the
    one unknown devices share."""
    auth.register()
    stolen = AuthActions(app.test_client())
    assert stolen.login().status_code == 302  # trusted from now on
    if change == "password":
        fields = {"current_password": PASSWORD, "password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD}
        assert post_form(client, "/account/password", fields, token_page="/account").status_code == 302
    else:
        fields = {"everywhere-current_password": PASSWORD}
        assert post_form(client, "/account/sessions", fields, token_page="/account").status_code == 302
    new_password = OTHER_PASSWORD if change == "password" else PASSWORD
    statuses = [guess_from(app, f"203.0.113.{number}")[0] for number in range(9)]
    assert statuses[-1] == 400  # with the stolen laptop's first sign-in, the budget unknown devices share is spent
    assert stolen.login(password=new_password).status_code == 429  # an unknown device again
    auth.logout()
    assert auth.login(password=new_password).status_code == 302  # the browser that made the change keeps its trust


def test_bodies_that_are_no_guess_leave_the_recipient_able_to_unlock(app, logged_in_client):
    """Fault: a body with no password (empty, or a number) spent the secret's shared unlock budget, so anyone with the
    link could keep its recipient out, and nothing showed it."""
    app.config["RATELIMIT_UNLOCK_SECRET"] = "3 per minute"
    unique_id = create_secret(logged_in_client)
    stranger = app.test_client()
    stranger.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    bodies = [{}, {"password": 5}, {"pass": "x"}, {}]
    assert [stranger.post(f"/api/secrets/{unique_id}/unlock", json=body).status_code for body in bodies] == [400, 400, 422, 400]
    assert stranger.post(f"/view/{unique_id}", data={"csrf_token": recipient_form_token(app, unique_id)}).status_code == 400
    recipient = app.test_client()
    recipient.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert load_secret(app, unique_id).failed_attempts == 0
    assert unlock(recipient, unique_id, "wrong-guess-1").status_code == 403  # real tries do count...
    assert unlock(recipient, unique_id, "wrong-guess-2").status_code == 403
    assert unlock(recipient, unique_id).status_code == 200
    assert unlock(recipient, unique_id).status_code == 429  # ...three a minute


def test_email_changes_are_few_an_hour_per_account_whatever_the_device(app, logged_in_client):
    """An email change says whether an address has an account (after the password): no more answers than sign-up.
    (Its password checks count in the guess budget too, but this one runs out first.)"""
    fields = {"email-email": "taken@example.org", "email-current_password": PASSWORD}
    statuses = [post_form(logged_in_client, "/account/email", fields, token_page="/account").status_code for _ in range(6)]
    assert statuses[5] == 429 and 429 not in statuses[:5]
    AuthActions(app.test_client()).login()  # a fresh device (a fresh nonce) gets no fresh budget
    fresh = app.test_client()
    AuthActions(fresh).login()
    assert post_form(fresh, "/account/email", fields, token_page="/account").status_code == 429


def test_reset_requests_are_limited_per_spelling_and_per_network(app):
    """Five an hour for one spelling from anywhere, and for one network whatever it asks for; the answer is the same
    page whether or not the account exists, a 429 after the budget."""
    statuses = []
    for number in range(6):
        asker = app.test_client()
        asker.environ_base["REMOTE_ADDR"] = f"203.0.113.{number}"
        statuses.append(post_form(asker, "/password/reset", {"login": "Dana@Example.org"}).status_code)
    assert statuses[:5] == [200] * 5 and statuses[5] == 429
    neighbour = app.test_client()
    neighbour.environ_base["REMOTE_ADDR"] = "198.51.100.4"
    statuses = [post_form(neighbour, "/password/reset", {"login": f"someone{n}@example.org"}).status_code for n in range(6)]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429


def test_every_page_limit_is_for_its_post_so_page_reads_go_unchecked(app):
    """ratelimits._is_page_read skips the limiter for a page's GET; that is only right while no page limits a GET."""
    from ratelimits import limiter

    manager = limiter.limit_manager
    with app.app_context():  # the limits' rates are read from the settings
        limits = [(name, limit) for name in manager._decorated_limits for limit in manager.decorated_limits(name)]
    assert len(limits) >= 10  # sign-in, sign-up, reset, create, unlock... (found, so the check means something)
    assert all(limit.methods == ("post",) for _, limit in limits), [(name, limit.methods) for name, limit in limits]
