"""Server keys: a bad ENCRYPTION_KEYS refuses to start; rotation, `flask keys status|rewrap`, and retirement."""

import base64
import os
from datetime import timedelta

import pytest

from app import create_app, db
from schema import User
from tests.helpers import AuthActions, create_secret, load_secret, make_config, post_form, unlock


def new_key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def test_a_duplicate_key_id_refuses_to_start(tmp_path, clock):
    keys = f"{new_key('k1')},{new_key('k1')}"
    with pytest.raises(SystemExit, match="twice"):
        create_app(make_config(tmp_path, clock, ENCRYPTION_KEYS=keys))


def restarted(app, tmp_path, clock, keys: str):
    """The same database and sessions, served by an app with other ENCRYPTION_KEYS."""
    return create_app(make_config(tmp_path, clock, SECRET_KEY=app.secret_key, ENCRYPTION_KEYS=keys))


def test_a_removed_key_shows_as_unavailable_and_spends_nothing(app, logged_in_client, tmp_path, clock):
    unique_id = create_secret(logged_in_client, title="Old label")
    retired = restarted(app, tmp_path, clock, new_key("k2"))
    owner = retired.test_client()
    AuthActions(owner).login()
    dashboard = owner.get("/dashboard")
    assert dashboard.status_code == 200
    assert "Unavailable: its server key was removed" in dashboard.text
    detail = owner.get(f"/secrets/{unique_id}")
    assert detail.status_code == 200
    assert "Unavailable: its server key was removed" in detail.text
    assert "Old label" not in dashboard.text + detail.text  # its label key is gone too
    listing = owner.get("/api/secrets")
    assert listing.status_code == 200
    assert listing.json["secrets"][0]["unavailable"] == "Unavailable: its server key was removed"
    assert owner.get(f"/api/secrets/{unique_id}").status_code == 200
    recipient = retired.test_client()
    assert recipient.get(f"/view/{unique_id}").status_code == 410
    assert unlock(recipient, unique_id).status_code == 410
    assert load_secret(retired, unique_id).failed_attempts == 0


def test_after_a_rewrap_the_owner_still_sees_the_title_of_a_secret_whose_content_key_was_removed(
    app, logged_in_client, tmp_path, clock
):
    """Fault: the owner's pages showed only "Unavailable" in place of the title, so the owner could not tell which
    secret to send again, though `keys rewrap` had moved the title to the new key."""
    unique_id = create_secret(logged_in_client, title="Payroll VPN")
    old_keys = app.config["ENCRYPTION_KEYS"]
    rotated = restarted(app, tmp_path, clock, f"{new_key('k2')},{old_keys}")
    assert "Re-sealed the labels of 1 records" in rotated.test_cli_runner().invoke(args=["keys", "rewrap"]).output
    retired = restarted(app, tmp_path, clock, rotated.config["ENCRYPTION_KEYS"].split(",")[0])
    owner = retired.test_client()
    AuthActions(owner).login()
    for page in (owner.get("/dashboard"), owner.get(f"/secrets/{unique_id}")):
        assert "Payroll VPN" in page.text
        assert "Unavailable: its server key was removed" in page.text
    listed = owner.get("/api/secrets").json["secrets"][0]
    assert (listed["title"], listed["unavailable"]) == ("Payroll VPN", "Unavailable: its server key was removed")


def test_keys_status_and_rewrap(app, logged_in_client, recipient, tmp_path, clock):
    live_id = create_secret(logged_in_client)
    ended_id = create_secret(logged_in_client, max_views="1")
    unlock(recipient, ended_id)
    old_id = app.keys.newest_id
    rotated = restarted(app, tmp_path, clock, f"{new_key('k2')},{app.config['ENCRYPTION_KEYS']}")
    runner = rotated.test_cli_runner()
    status = runner.invoke(args=["keys", "status"]).output
    assert "k2 (newest): 0 live secrets; labels of 0 records" in status
    assert f"{old_id} (configured): 1 live secrets, the last ends 2026-11-29 12:00 UTC; labels of 2 records" in status
    assert "Re-sealed the labels of 2 records under k2; 0 need a removed key." in runner.invoke(args=["keys", "rewrap"]).output
    with rotated.app_context():
        assert {load_secret(rotated, sid).label_key_id for sid in (live_id, ended_id)} == {"k2"}
    # The content moves at its next right unlock; then the old key protects nothing and can go.
    assert unlock(rotated.test_client(), live_id).status_code == 200
    assert f"{old_id} (configured): 0 live secrets; labels of 0 records" in runner.invoke(args=["keys", "status"]).output
    new_only = restarted(app, tmp_path, clock, rotated.config["ENCRYPTION_KEYS"].split(",")[0])
    assert unlock(new_only.test_client(), live_id).status_code == 200


def test_an_edit_never_moves_expiry_past_the_longest_lifetime(app, logged_in_client, clock):
    unique_id = create_secret(logged_in_client, expiration="custom", custom_amount="30", custom_unit="days")
    clock.advance(days=25)
    owner = app.test_client()
    AuthActions(owner).login()
    data = {"title": "t", "blur_level": "10", "expiration": "7d", "custom_unit": "hours"}
    response = post_form(owner, f"/secrets/{unique_id}/edit", data)
    assert response.status_code == 400
    assert "at most 30 days from its creation" in response.text
    assert load_secret(app, unique_id).expires_at == clock() + timedelta(days=5)


def test_keys_status_counts_two_factor_keys_and_rewrap_moves_them(app, logged_in_client, tmp_path, clock):
    import accounts

    with app.app_context():
        user = db.session.execute(db.select(User)).scalar_one()
        assert accounts.turn_on_two_factor(db.session, app.keys, user, "JBSWY3DPEHPK3PXP", 1, clock())
    old_id = app.keys.newest_id
    rotated = restarted(app, tmp_path, clock, f"{new_key('k2')},{app.config['ENCRYPTION_KEYS']}")
    runner = rotated.test_cli_runner()
    assert f"{old_id} (configured): 0 live secrets; labels of 0 records; two-factor keys of 1 accounts" in runner.invoke(
        args=["keys", "status"]
    ).output
    new_only = restarted(app, tmp_path, clock, rotated.config["ENCRYPTION_KEYS"].split(",")[0])
    removed = new_only.test_cli_runner().invoke(args=["keys", "status"]).output
    assert f"{old_id} (NOT configured): 0 live secrets; labels of 0 records; two-factor keys of 1 accounts" in removed
    assert "Re-sealed 1 two-factor keys under k2; 0 need a removed key." in runner.invoke(args=["keys", "rewrap"]).output
    assert "k2 (newest): 0 live secrets; labels of 0 records; two-factor keys of 1 accounts" in runner.invoke(
        args=["keys", "status"]
    ).output
