"""/healthz and /readyz: what a load balancer asks each app host; they tell nothing else, set no cookie, never 500."""

import pytest

from app import create_app, db
from ratelimits import limiter
from tests.helpers import PASSWORD, database_snapshot, free_port, make_config, post_form

PROBES = ["/healthz", "/readyz"]


@pytest.mark.parametrize("path", PROBES)
def test_probe_answers_ok_and_nothing_more(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.json == {"status": "ok"}  # exactly this: no version, host name or setting
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("path", PROBES)
def test_probe_sets_no_cookie_for_a_signed_in_browser(logged_in_client, path):
    response = logged_in_client.get(path)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


@pytest.fixture
def forget_the_default_limit():
    """Flask-Limiter keeps the first default limit it is given for every later app: take it away afterwards."""
    yield
    limiter.limit_manager.set_default_limits([])


@pytest.mark.parametrize("config_overrides", [{"RATELIMIT_ENABLED": True, "RATELIMIT_DEFAULT": "2 per minute"}])
def test_probes_are_exempt_from_rate_limits(client, forget_the_default_limit):
    assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]  # the default limit is on
    for path in PROBES:
        assert {client.get(path).status_code for _ in range(5)} == {200}


UNREACHABLE = {
    "sqlite-in-a-missing-folder": lambda tmp_path: f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}",
    "postgresql-nobody-listens": lambda _tmp_path: f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/secureshare",
}


@pytest.fixture(params=list(UNREACHABLE))
def app_without_database(request, tmp_path, clock):
    return create_app(make_config(tmp_path, clock, SQLALCHEMY_DATABASE_URI=UNREACHABLE[request.param](tmp_path)))


def test_readyz_is_503_when_the_database_is_unreachable(app_without_database):
    client = app_without_database.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable"}
    assert client.get("/healthz").status_code == 200  # the process itself is alive: no restart needed


def test_readyz_recovers_when_the_database_comes_back(tmp_path, clock):
    database = tmp_path / "later" / "secureshare.db"
    app = create_app(make_config(tmp_path, clock, SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}"))
    client = app.test_client()
    assert client.get("/readyz").status_code == 503
    database.parent.mkdir()
    with app.app_context():
        db.create_all()
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_rate_limit_store_is_unreachable(tmp_path, clock):
    """Fault: /readyz said ok while Redis, the rate-limit store, was down, and every limited POST answered 500."""
    app = create_app(make_config(tmp_path, clock, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}"))
    with app.app_context():
        db.create_all()
    client = app.test_client()
    response = client.get("/readyz")
    assert (response.status_code, response.json) == (503, {"status": "unavailable"})
    assert client.get("/healthz").status_code == 200


def test_a_limited_request_with_the_rate_limit_store_down_is_a_clear_503(tmp_path, clock):
    app = create_app(make_config(tmp_path, clock, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}"))
    with app.app_context():
        db.create_all()
    before = database_snapshot(app)
    page = post_form(app.test_client(), "/register", {"username": "dana", "email": "dana@example.org",
                                                      "password": PASSWORD, "confirm": PASSWORD})  # fmt: skip
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "30"
    assert "Nothing was changed; try again in a minute." in page.text
    api = app.test_client().get("/api/secrets")
    assert (api.status_code, api.json["error"]["reason"]) == (503, "unavailable")
    assert database_snapshot(app) == before
