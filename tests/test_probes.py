"""/healthz and /readyz: what a load balancer asks each app host; they tell nothing else, set no cookie, never 500."""

import pytest

from app import create_app, db
from tests.helpers import free_port, make_config

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


@pytest.mark.parametrize("config_overrides", [{"RATELIMIT_ENABLED": True, "RATELIMIT_DEFAULT": "2 per minute"}])
def test_probes_are_exempt_from_rate_limits(client):
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
