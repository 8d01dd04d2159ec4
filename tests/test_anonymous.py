"""Sharing without an account (ANONYMOUS_SHARING=on): the same form signed out, a share link, its QR code and a private
manage link (stored as a digest) that shows the state and deletes; smaller and shorter secrets, few per network; the
recipient's side unchanged. Off by default."""

import re

import pytest
from sqlalchemy import select

from app import db
from schema import Secret, token_digest
from tests.helpers import SECRET_CONTENT, csrf_token, load_secret, secret_form, unlock

ANONYMOUS = {"ANONYMOUS_SHARING": "on"}


@pytest.fixture
def config_overrides(request):
    return getattr(request, "param", ANONYMOUS)


def share(client, **fields):
    """Share as a visitor; a success lands on the private manage page, which shows both links."""
    token = csrf_token(client, "/create")
    return client.post("/create", data={"csrf_token": token, **secret_form(**fields)}, follow_redirects=True)


def links(page) -> tuple[str, str]:
    share_link = re.search(r'id="share-link"[^>]*>([^<]+)</textarea>', page.text).group(1)
    manage_link = re.search(r'id="manage-link" value="([^"]+)"', page.text).group(1)
    return share_link.removeprefix("http://localhost"), manage_link.removeprefix("http://localhost")


@pytest.mark.parametrize("config_overrides", [{}], indirect=True)
def test_off_by_default_the_form_asks_to_sign_in(client):
    assert client.get("/create").headers["Location"].startswith("/login")


def test_a_visitor_shares_and_the_recipient_opens_it_as_always(app, client, recipient):
    form = client.get("/create")
    assert form.status_code == 200 and "You are not signed in" in form.text and "notify_opened" not in form.text
    page = share(client, max_views="2")
    assert page.status_code == 200
    view_path, manage_path = links(page)
    assert 'src="data:image/svg+xml' in page.text  # the QR code, drawn into the page
    share_id, manage_token = view_path.rsplit("/", 1)[1], manage_path.rsplit("/", 1)[1]
    with app.app_context():
        stored = db.session.scalars(select(Secret)).one()
        assert stored.owner_id is None and stored.manage_digest == token_digest(manage_token)
    assert manage_token not in repr(load_secret(app, share_id).__dict__)
    opened = unlock(recipient, share_id)
    assert opened.status_code == 200 and SECRET_CONTENT in opened.text
    state = client.get(manage_path)
    assert "Active" in state.text and "<dd>1 of 2</dd>" in state.text
    assert client.get("/dashboard").status_code == 302  # no dashboard


def test_a_reload_after_sharing_neither_shares_again_nor_loses_the_links(app, client):
    token = csrf_token(client, "/create")
    created = client.post("/create", data={"csrf_token": token, **secret_form()})
    assert created.status_code == 303 and created.headers["Location"].startswith("/manage/")
    first, again = (client.get(created.headers["Location"]) for _ in range(2))  # the browser's reload is a GET
    assert links(first) == links(again)
    with app.app_context():
        assert db.session.scalar(select(db.func.count(Secret.id))) == 1


def test_the_manage_link_deletes_and_nothing_else_does(app, client, recipient):
    view_path, manage_path = links(share(client))
    share_id = view_path.rsplit("/", 1)[1]
    assert client.get("/manage/" + "A" * 43).status_code == 404
    assert recipient.post(manage_path + "/delete").status_code == 400  # no form token: nothing happens
    token = csrf_token(client, manage_path)
    assert client.post(manage_path + "/delete", data={"csrf_token": token}).status_code == 302
    ended = client.get(manage_path).text
    assert "Deleted" in ended and 'id="share-link"' not in ended and "data:image/svg+xml" not in ended
    assert recipient.get(view_path).status_code == 410
    assert load_secret(app, share_id).ciphertext is None


def test_deleting_twice_with_the_manage_link_is_no_error(client):
    # The second press (a double click, a resubmitted form) removes the ended record: it was a 500 after its commit.
    _view_path, manage_path = links(share(client))
    token = csrf_token(client, manage_path)
    assert client.post(manage_path + "/delete", data={"csrf_token": token}).status_code == 302
    again = client.post(manage_path + "/delete", data={"csrf_token": token})
    assert again.status_code == 302
    assert client.get(manage_path).status_code == 404  # the record is gone too


def test_smaller_and_shorter_than_an_accounts_secrets(client):
    too_long = share(client, expiration="7d")
    assert too_long.status_code == 400 and "at most 1 day" in too_long.text
    too_big = share(client, content="x" * (8 * 1024 + 1))
    assert too_big.status_code == 400 and "Keep it under 8 KB" in too_big.text
    assert share(client, expiration="custom", custom_amount="25", custom_unit="hours").status_code == 400
    assert share(client, expiration="24h").status_code == 200


@pytest.mark.parametrize("config_overrides", [{**ANONYMOUS, "RATELIMIT_ENABLED": True}], indirect=True)
def test_a_network_shares_only_a_few_secrets_an_hour(client, clock):
    assert [share(client).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_an_expired_anonymous_secret_says_so(client, clock):
    _view, manage_path = links(share(client, expiration="1h"))
    clock.advance(hours=1)
    assert 'id="secret-state">Expired<' in client.get(manage_path).text


def test_the_purge_tells_nobody_about_an_anonymous_secret(app, client, clock):
    share(client, expiration="1h")
    clock.advance(hours=1, seconds=1)
    assert "Expired 1" in app.test_cli_runner().invoke(args=["purge"]).output
