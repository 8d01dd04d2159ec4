"""Secrets: create, share, unlock, edit, delete, and the owner's pages."""

import re

import pytest

from app import db
from schema import AccessEvent, Secret
from tests.helpers import (
    SECRET_CONTENT,
    SECRET_PASSWORD,
    create_secret,
    load_secret,
    post_form,
    secret_form,
    unlock,
)


def test_create_lands_on_the_share_page(logged_in_client):
    unique_id = create_secret(logged_in_client, title="Office Wi-Fi")
    assert len(unique_id) >= 22
    page = logged_in_client.get(f"/secrets/{unique_id}")
    assert page.status_code == 200
    assert f"http://localhost/view/{unique_id}" in page.text
    assert f"/secrets/{unique_id}/qr.png" in page.text
    assert f"/secrets/{unique_id}/qr.svg" in page.text
    assert f"/secrets/{unique_id}/card" in page.text
    assert "Send the password another way" in page.text
    assert "Your secret is ready to share." in page.text
    assert SECRET_CONTENT not in page.text and SECRET_PASSWORD not in page.text


def test_create_form_inputs_are_not_remembered_by_the_browser(logged_in_client):
    page = logged_in_client.get("/create").text
    assert re.search(r'<textarea[^>]*autocomplete="off"[^>]*name="content"', page)
    assert re.search(r'autocomplete="new-password"[^>]*name="password"', page)
    assert 'spellcheck="false"' in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "", "Give it a title"),
        ("title", "t" * 101, "at most 100"),
        ("content", "", "Write the secret"),
        ("content", "x" * (64 * 1024 + 1), "Keep it under 64 KB."),
        ("password", "short", "Use 8 to 128 characters."),
        ("password", "p" * 129, "Use 8 to 128 characters."),
        ("blur_level", "21", "Choose 0 to 20."),
        ("blur_level", "-1", "Choose 0 to 20."),
        ("blur_level", "lots", "Choose 0 to 20."),
        ("max_views", "0", "Choose 1 to 100"),
        ("max_views", "101", "Choose 1 to 100"),
        ("max_views", "many", "Choose 1 to 100"),
        ("expiration", "forever", "Not a valid choice"),
    ],
)
def test_create_rejects_bad_input_next_to_the_field(app, logged_in_client, field, value, message):
    response = post_form(logged_in_client, "/create", secret_form(**{field: value}))
    assert response.status_code == 400
    assert message in response.text.replace("&#39;", "'")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Secret.id))) == 0


def test_create_keeps_what_was_typed_except_passwords(logged_in_client):
    response = post_form(
        logged_in_client,
        "/create",
        {
            "title": "Keep me",
            "content": "keep this too",
            "password": SECRET_PASSWORD,
            "confirm": "different-one",
            "expiration": "1h",
            "custom_unit": "hours",
            "blur_level": "7",
        },
    )
    assert response.status_code == 400
    assert 'value="Keep me"' in response.text
    assert "keep this too" in response.text
    assert SECRET_PASSWORD not in response.text


@pytest.mark.parametrize(
    ("amount", "unit", "ok"),
    [
        ("4", "minutes", False),
        ("5", "minutes", True),
        ("30", "days", True),
        ("31", "days", False),
        ("721", "hours", False),
        ("0", "hours", False),
        ("-3", "days", False),
        ("99999999999999", "days", False),
    ],
)
def test_custom_expiry_bounds(logged_in_client, amount, unit, ok):
    data = {
        "title": "t",
        "content": "c",
        "password": SECRET_PASSWORD,
        "confirm": SECRET_PASSWORD,
        "expiration": "custom",
        "custom_amount": amount,
        "custom_unit": unit,
        "blur_level": "10",
    }
    response = post_form(logged_in_client, "/create", data)
    assert response.status_code == (302 if ok else 400)
    if not ok:
        assert "Choose between 5 min and 30 days." in response.text


def test_custom_expiry_sets_expires_at(app, logged_in_client, clock):
    unique_id = create_secret(logged_in_client, expiration="custom", custom_amount="90", custom_unit="minutes")
    secret = load_secret(app, unique_id)
    assert (secret.expires_at - clock()).total_seconds() == 90 * 60


def test_get_and_head_show_only_the_form_and_change_nothing(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client, title="Payroll admin", max_views="1")
    for _ in range(3):
        page = recipient.get(f"/view/{unique_id}")
        assert page.status_code == 200
        assert recipient.head(f"/view/{unique_id}").status_code == 200
    assert "Payroll admin" not in page.text
    assert "of 1" not in page.text
    assert 'name="password"' in page.text
    secret = load_secret(app, unique_id)
    assert (secret.view_count, secret.failed_attempts, secret.status) == (0, 0, "active")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(AccessEvent.id))) == 0


def test_wrong_then_right_password(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client, title="Router", blur_level="12", max_views="3")
    wrong = unlock(recipient, unique_id, "not-the-password")
    assert wrong.status_code == 403
    assert "That password isn't right. 4 tries left" in wrong.text.replace("&#39;", "'")
    assert SECRET_CONTENT not in wrong.text
    right = unlock(recipient, unique_id)
    assert right.status_code == 200
    assert "Router" not in wrong.text  # the title shows only once the password is right, as the create form says
    assert "titled <strong>Router</strong>" in right.text
    assert SECRET_CONTENT in right.text
    assert 'data-blur="12"' in right.text
    assert "Views: 1 of 3" in right.text
    secret = load_secret(app, unique_id)
    assert (secret.view_count, secret.failed_attempts) == (1, 1)
    with app.app_context():
        outcomes = db.session.scalars(db.select(AccessEvent.outcome).order_by(AccessEvent.id)).all()
        ip_prefixes = db.session.scalars(db.select(AccessEvent.ip_prefix)).all()
    assert outcomes == ["wrong_password", "unlocked"]
    assert ip_prefixes == ["127.0.0.0/24", "127.0.0.0/24"]


def test_unknown_and_malformed_ids_are_404(recipient):
    assert recipient.get("/view/" + "A" * 22).status_code == 404
    assert recipient.get("/view/short").status_code == 404
    assert recipient.get("/view/has%20space%20in%20it%20aaaaaaaa").status_code == 404


def test_edit_settings_without_touching_the_content(app, logged_in_client, clock):
    unique_id = create_secret(logged_in_client)
    before = load_secret(app, unique_id)
    response = post_form(
        logged_in_client,
        f"/secrets/{unique_id}/edit",
        {"title": "Renamed", "blur_level": "3", "expiration": "7d", "custom_unit": "hours", "max_views": "4"},
    )
    assert response.status_code == 302
    after = load_secret(app, unique_id)
    assert (after.blur_level, after.max_views) == (3, 4)
    assert (after.expires_at - clock()).days == 7
    assert (after.ciphertext, after.salt, after.nonce) == (before.ciphertext, before.salt, before.nonce)
    assert "Renamed" in logged_in_client.get(f"/secrets/{unique_id}").text


def test_edit_keep_expiry_leaves_it(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    before = load_secret(app, unique_id).expires_at
    response = post_form(
        logged_in_client,
        f"/secrets/{unique_id}/edit",
        {"title": "t", "blur_level": "10", "expiration": "keep", "custom_unit": "hours"},
    )
    assert response.status_code == 302
    assert load_secret(app, unique_id).expires_at == before


def test_replacing_content_needs_the_current_password_and_reencrypts(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    before = load_secret(app, unique_id)
    base = {"title": "t", "blur_level": "10", "expiration": "keep", "custom_unit": "hours", "content": "new secret text"}
    missing = post_form(logged_in_client, f"/secrets/{unique_id}/edit", base)
    assert missing.status_code == 400
    assert "Enter the current password" in missing.text
    wrong = post_form(logged_in_client, f"/secrets/{unique_id}/edit", {**base, "current_password": "nope-nope-nope"})
    assert wrong.status_code == 400
    assert load_secret(app, unique_id).ciphertext == before.ciphertext
    ok = post_form(logged_in_client, f"/secrets/{unique_id}/edit", {**base, "current_password": SECRET_PASSWORD})
    assert ok.status_code == 302
    after = load_secret(app, unique_id)
    assert after.salt != before.salt and after.nonce != before.nonce
    assert "new secret text" in unlock(recipient, unique_id).text


def test_replacing_the_password(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    response = post_form(
        logged_in_client,
        f"/secrets/{unique_id}/edit",
        {
            "title": "t",
            "blur_level": "10",
            "expiration": "keep",
            "custom_unit": "hours",
            "current_password": SECRET_PASSWORD,
            "password": "brand-new-pass",
            "confirm": "brand-new-pass",
        },
    )
    assert response.status_code == 302
    assert unlock(recipient, unique_id).status_code == 403
    assert SECRET_CONTENT in unlock(recipient, unique_id, "brand-new-pass").text


def test_edit_cannot_set_max_views_below_views_taken(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client, max_views="5")
    unlock(recipient, unique_id)
    unlock(recipient, unique_id)
    response = post_form(
        logged_in_client,
        f"/secrets/{unique_id}/edit",
        {"title": "t", "blur_level": "10", "expiration": "keep", "custom_unit": "hours", "max_views": "2"},
    )
    assert response.status_code == 400
    assert "It has been viewed 2 times" in response.text
    assert load_secret(app, unique_id).max_views == 5


def test_delete_asks_then_erases(app, logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    confirm_page = logged_in_client.get(f"/secrets/{unique_id}/delete")
    assert confirm_page.status_code == 200
    assert "can't be undone" in confirm_page.text and "stop working at once" in confirm_page.text
    assert "already ended" not in confirm_page.text
    assert load_secret(app, unique_id).status == "active"
    response = post_form(logged_in_client, f"/secrets/{unique_id}/delete", {})
    assert response.status_code == 302
    secret = load_secret(app, unique_id)
    assert secret.status == "deleted"
    assert (secret.ciphertext, secret.salt, secret.nonce) == (None, None, None)
    assert recipient.get(f"/view/{unique_id}").status_code == 410
    assert logged_in_client.get(f"/secrets/{unique_id}/qr.svg").status_code == 410


def test_delete_without_csrf_changes_nothing(app, logged_in_client):
    unique_id = create_secret(logged_in_client)
    assert logged_in_client.post(f"/secrets/{unique_id}/delete").status_code == 400
    assert load_secret(app, unique_id).status == "active"


def test_card_has_the_qr_but_never_the_content(logged_in_client):
    unique_id = create_secret(logged_in_client, title="Front door")
    card = logged_in_client.get(f"/secrets/{unique_id}/card")
    assert card.status_code == 200
    assert "Front door" not in card.text  # as the create form says: only the recipient sees it, once unlocked
    assert 'name="title" value="1" class="checkbox">' in card.text
    assert "<h1 class=\"print-title\">Front door</h1>" in logged_in_client.get(f"/secrets/{unique_id}/card?title=1").text
    assert f"/secrets/{unique_id}/qr.png" in card.text
    assert "The password is not on this card." in card.text
    assert SECRET_CONTENT not in card.text and SECRET_PASSWORD not in card.text


def test_secret_pages_are_never_cached_nor_referred(logged_in_client, recipient):
    unique_id = create_secret(logged_in_client)
    responses = [
        logged_in_client.get("/dashboard"),
        logged_in_client.get(f"/secrets/{unique_id}"),
        logged_in_client.get(f"/secrets/{unique_id}/qr.png"),
        recipient.get(f"/view/{unique_id}"),
        unlock(recipient, unique_id),
    ]
    for response in responses:
        response.close()
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "same-origin"  # share links never leave the site


def test_dashboard_empty_state_teaches(logged_in_client):
    page = logged_in_client.get("/dashboard").text
    assert "Nothing shared yet" in page
    assert 'href="/create"' in page


def test_dashboard_lists_totals_filters_and_pages(app, logged_in_client, recipient, clock):
    ids = []
    for number in range(22):
        clock.advance(seconds=1)
        ids.append(create_secret(logged_in_client, title=f"Secret number {number:02d}", max_views="1"))
    unlock(recipient, ids[0])
    first = logged_in_client.get("/dashboard").text
    assert "Secret number 21" in first and "Secret number 02" in first
    assert "Secret number 01" not in first
    assert "Page 1 of 2" in first
    assert re.search(r"Active <span class=\"count\">21</span>", first)
    assert re.search(r"Used up <span class=\"count\">1</span>", first)
    second = logged_in_client.get("/dashboard?page=2").text
    assert "Secret number 01" in second and "Secret number 00" in second
    used_up = logged_in_client.get("/dashboard?status=used_up").text
    assert "Secret number 00" in used_up and "Secret number 05" not in used_up
    assert "1 of 1" in used_up


def test_logs_name_secrets_by_internal_id_only(app, logged_in_client, recipient, log_text):
    unique_id = create_secret(logged_in_client)
    unlock(recipient, unique_id, "wrong-password-x")
    unlock(recipient, unique_id)
    text = log_text()
    assert "secret 1 created by alice" in text
    assert "secret 1: wrong password" in text
    assert "secret 1 unlocked" in text
    for leaked in (unique_id, SECRET_CONTENT, SECRET_PASSWORD, "wrong-password-x", "Office Wi-Fi"):
        assert leaked not in text
