"""Instance policies set by the operator: two-factor for everyone, the longest expiry, the default and largest number
of views, and active secrets per account; enforced on the page and the API alike, and shown to administrators."""

import re
from datetime import timedelta

import pytest

import accounts
from app import create_app, db
from schema import User
from tests.helpers import AuthActions, create_secret, make_config, post_form, secret_form
from tests.test_api import bearer, issue_token

START = "SecureShare will not start: "
API_SECRET = {"title": "Deploy key", "content": "hunter2", "password": "open-sesame-42", "expires_in": 3600, "blur_level": 10}


@pytest.fixture
def config_overrides(request):
    return getattr(request, "param", {})


def test_a_new_secret_starts_with_one_view_on_the_page_and_the_api(app, logged_in_client):
    field = re.search(r'<input[^>]*name="max_views"[^>]*>', logged_in_client.get("/create").text).group()
    assert 'value="1"' in field
    token = issue_token(logged_in_client)
    made = logged_in_client.post("/api/secrets", json=API_SECRET, headers=bearer(token))
    assert made.status_code == 201 and made.json["secret"]["max_views"] == 1
    unlimited = logged_in_client.post("/api/secrets", json={**API_SECRET, "max_views": None}, headers=bearer(token))
    assert unlimited.json["secret"]["max_views"] is None  # asked for, and allowed without SECRET_MAX_VIEWS


@pytest.mark.parametrize("config_overrides", [{"SECRET_MAX_VIEWS": 3, "SECRET_DEFAULT_VIEWS": 2}], indirect=True)
def test_the_largest_number_of_views_is_enforced_on_the_page_and_the_api(app, logged_in_client):
    form = logged_in_client.get("/create").text
    assert "allows at most 3 views" in form and 'max="3"' in form and "Unlimited" not in form  # said before it refuses
    for views, status in (("4", 400), ("", 400), ("3", 302)):
        answer = post_form(logged_in_client, "/create", secret_form(max_views=views))
        assert answer.status_code == status, views
    assert "allows at most 3 views" in post_form(logged_in_client, "/create", secret_form(max_views="")).text
    token = issue_token(logged_in_client)
    refused = logged_in_client.post("/api/secrets", json={**API_SECRET, "max_views": None}, headers=bearer(token))
    assert refused.status_code == 400 and "max_views" in refused.json["error"]["fields"]
    made = logged_in_client.post("/api/secrets", json=API_SECRET, headers=bearer(token))
    assert made.json["secret"]["max_views"] == 2


@pytest.mark.parametrize("config_overrides", [{"SECRET_MAX_EXPIRY": timedelta(days=1)}], indirect=True)
def test_the_longest_expiry_refuses_a_longer_preset(app, logged_in_client):
    refused = post_form(logged_in_client, "/create", secret_form(expiration="7d"))
    assert refused.status_code == 400 and "at most 1 day" in refused.text
    assert post_form(logged_in_client, "/create", secret_form(expiration="24h")).status_code == 302


@pytest.mark.parametrize("config_overrides", [{"ACTIVE_SECRETS_PER_USER": 2}], indirect=True)
def test_active_secrets_per_account_on_the_page_and_the_api(app, logged_in_client, clock):
    create_secret(logged_in_client, max_views="1")
    share_id = create_secret(logged_in_client)
    refused = post_form(logged_in_client, "/create", secret_form())
    assert refused.status_code == 400 and "You have 2 active secrets" in refused.text
    token = issue_token(logged_in_client)
    api_refused = logged_in_client.post("/api/secrets", json=API_SECRET, headers=bearer(token))
    assert api_refused.status_code == 403 and api_refused.json["error"]["reason"] == "too_many_secrets"
    post_form(logged_in_client, f"/secrets/{share_id}/delete", {})
    assert post_form(logged_in_client, "/create", secret_form()).status_code == 302


def turn_on_two_factor(app, username="alice") -> None:
    with app.app_context():
        db.session.execute(db.update(User).where(User.username == username).values(two_factor_since=app.clock()))
        db.session.commit()


def api_token_of(app, username="alice") -> str:
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.username == username))
        return accounts.issue_api_token(db.session, user, "script", None, app.clock())


@pytest.mark.parametrize("config_overrides", [{"REQUIRE_TWO_FACTOR": "true"}], indirect=True)
def test_required_two_factor_leads_to_its_set_up_and_the_api_refuses(app, logged_in_client, recipient):
    token = api_token_of(app)
    for path in ("/dashboard", "/create", "/account", "/account/tokens"):
        led = logged_in_client.get(path)
        assert (led.status_code, led.headers.get("Location")) == (302, "/account/two-factor"), path
    assert "requires two-factor sign-in" in logged_in_client.get("/account/two-factor").text
    refused = recipient.post("/api/secrets", json=API_SECRET, headers=bearer(token))
    assert refused.status_code == 403 and refused.json["error"]["reason"] == "two_factor_required"
    turn_on_two_factor(app)
    assert logged_in_client.get("/dashboard").status_code == 200
    assert recipient.post("/api/secrets", json=API_SECRET, headers=bearer(token)).status_code == 201


@pytest.mark.parametrize(
    ("settings", "advice"),
    [
        ({"SECRET_MAX_VIEWS": 101}, "SECRET_MAX_VIEWS must be 1 to 100"),
        ({"SECRET_MAX_VIEWS": 3, "SECRET_DEFAULT_VIEWS": 4}, "SECRET_DEFAULT_VIEWS must be 1 to 3."),
        ({"SECRET_MAX_VIEWS": 3, "SECRET_DEFAULT_VIEWS": 0}, "SECRET_DEFAULT_VIEWS must be 1 to 3."),
        ({"ACTIVE_SECRETS_PER_USER": -1}, "ACTIVE_SECRETS_PER_USER must be"),
        ({"REQUIRE_TWO_FACTOR": "sometimes"}, "REQUIRE_TWO_FACTOR must be true or false"),
    ],
)
def test_policy_settings_are_checked_at_start(tmp_path, clock, settings, advice):
    with pytest.raises(SystemExit) as refusal:
        create_app(make_config(tmp_path, clock, **settings))
    assert str(refusal.value).startswith(START) and advice in str(refusal.value)


@pytest.mark.parametrize(
    "config_overrides", [{"REQUIRE_TWO_FACTOR": "true", "ACTIVE_SECRETS_PER_USER": 7, "SECRET_MAX_VIEWS": 5}], indirect=True
)
def test_the_policies_are_shown_to_administrators(app, client):
    AuthActions(client).register(username="root", email="root@example.org")
    app.test_cli_runner().invoke(args=["users", "promote", "root"])
    assert client.get("/admin/").headers["Location"] == "/account/two-factor"  # administrators are led there too
    turn_on_two_factor(app, "root")
    policies = client.get("/admin/").text.split('id="policies"')[1].split("</dl>")[0]
    for words in ("Required for everyone", "<dd>7</dd>", "<dd>5</dd>", "<dd>1</dd>", "30 days", "Anyone may sign up"):
        assert words in policies
