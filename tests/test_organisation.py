"""Running SecureShare for an organisation, over HTTP and the command line: registration modes and invitations, the
`flask users` commands, and what disabling an account does to its sessions, tokens and secrets."""

from datetime import timedelta

import pytest

import registration
from app import create_app, db
from schema import AuditEvent, Invitation, OutboxMessage, Secret, User
from tests.helpers import PASSWORD, AuthActions, create_secret, load_secret, make_config, post_form, unlock
from tests.test_api import bearer, issue_token

START = "SecureShare will not start: "


@pytest.fixture
def org_app(tmp_path, clock):
    """Build an app with these settings (a fresh database each)."""
    made = []

    def build(**settings):
        application = create_app(make_config(tmp_path / str(len(made)), clock, **settings))
        with application.app_context():
            db.create_all()
        made.append(application)
        return application

    yield build
    for application in made:
        with application.app_context():
            db.engine.dispose()


def invite(app, email=None, lifetime=timedelta(days=7), by="root") -> str:
    """Make an invitation from the account `by` (an administrator "root" made here if missing); return its token."""
    with app.app_context():
        inviter = db.session.scalar(db.select(User).where(User.username == by))
        inviter = inviter or User(username="root", email="root@example.org", password_hash="x", is_admin=True)
        db.session.add(inviter)
        db.session.flush()
        _invitation, token = registration.invite(db.session, inviter, email, lifetime, app.clock())
        db.session.commit()
        return token


def sign_up(client, path="/register", username="carol", email="carol@example.org", token_page=None):
    form = {"username": username, "email": email, "password": PASSWORD, "confirm": PASSWORD}
    return post_form(client, path, form, token_page=token_page)


def accounts_named(app, username: str) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(User.id)).where(User.username == username))


# --- registration modes ----------------------------------------------------------------------------------------------------


def test_open_is_the_default_and_anyone_signs_up(org_app):
    app = org_app()
    assert sign_up(app.test_client()).status_code == 302


def test_closed_sign_up_says_why_and_makes_no_account(org_app):
    app = org_app(REGISTRATION="closed")
    client = app.test_client()
    page = client.get("/register")
    assert page.status_code == 200 and "Sign-up is closed on this SecureShare" in page.text
    assert 'name="password"' not in page.text
    assert client.post("/register", data={"username": "carol"}).status_code in {400, 403}
    assert accounts_named(app, "carol") == 0
    assert "Sign-up is closed" in app.test_client().get(f"/invite/{invite(app)}").text  # invitations don't open it


@pytest.mark.parametrize(("mode", "offered"), [("closed", False), ("invite", False), ("open", True)])
def test_pages_offer_sign_up_only_where_anyone_may_try(org_app, mode, offered):
    app = org_app(REGISTRATION=mode)
    for path in ("/", "/login"):
        assert ('href="/register"' in app.test_client().get(path).text) is offered, path


def test_invite_mode_needs_an_invitation_and_each_works_once(org_app):
    app = org_app(REGISTRATION="invite")
    page = app.test_client().get("/register")
    assert "by invitation only" in page.text and 'name="password"' not in page.text
    token = invite(app)
    assert sign_up(app.test_client(), f"/invite/{token}").status_code == 302
    second = app.test_client()
    assert second.get(f"/invite/{token}").status_code == 410
    refused = sign_up(second, f"/invite/{token}", username="dave", email="dave@example.org", token_page="/login")
    assert refused.status_code == 410 and "was used already" in refused.text
    assert accounts_named(app, "dave") == 0
    with app.app_context():
        invitation = db.session.scalars(db.select(Invitation)).one()
        assert invitation.used_by_id == db.session.scalar(db.select(User.id).where(User.username == "carol"))
        assert db.session.scalar(db.select(AuditEvent.action)) == "invitation.used"


def test_an_invitation_used_by_two_browsers_at_once_makes_one_account(org_app):
    app = org_app(REGISTRATION="invite")
    token = invite(app)
    first, second = app.test_client(), app.test_client()
    csrf = [post_form.__globals__["csrf_token"](client, f"/invite/{token}") for client in (first, second)]
    form = {"password": PASSWORD, "confirm": PASSWORD}
    answers = [
        client.post(f"/invite/{token}", data={"csrf_token": tok, "username": name, "email": f"{name}@example.org", **form})
        for client, tok, name in zip((first, second), csrf, ("carol", "dave"), strict=True)
    ]
    assert [answer.status_code for answer in answers] == [302, 410]
    assert accounts_named(app, "dave") == 0


def test_an_expired_invitation_says_so(org_app, clock):
    app = org_app(REGISTRATION="invite")
    token = invite(app, lifetime=timedelta(days=1))
    clock.advance(days=1)
    page = app.test_client().get(f"/invite/{token}")
    assert page.status_code == 410 and "has expired" in page.text


def test_a_bound_invitation_takes_only_its_address(org_app):
    app = org_app(REGISTRATION="invite")
    token = invite(app, email="carol@example.org")
    refused = sign_up(app.test_client(), f"/invite/{token}", email="mallory@example.org")
    assert refused.status_code == 400 and "This invitation is for another email address" in refused.text
    assert sign_up(app.test_client(), f"/invite/{token}", email="Carol@Example.org").status_code == 302


def test_domains_mode_takes_allowed_addresses_and_says_which(org_app):
    app = org_app(REGISTRATION="domains", ALLOWED_EMAIL_DOMAINS="example.org,.corp.example.com", EMAIL_VERIFICATION="required")
    refused = sign_up(app.test_client(), email="carol@example.net")
    assert refused.status_code == 400
    assert "Only addresses at example.org or corp.example.com or any of its subdomains can sign up here" in refused.text
    german = app.test_client()
    german.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de"
    refused = sign_up(german, email="carol@example.net")
    assert "Adressen unter example.org oder corp.example.com oder eine ihrer Subdomains registrieren" in refused.text
    assert accounts_named(app, "carol") == 0
    assert sign_up(app.test_client(), email="carol@team.corp.example.com").status_code == 302
    assert sign_up(app.test_client(), username="dave", email="dave@example.org").status_code == 302
    token = invite(app)  # an invitation lets in an address from anywhere
    assert sign_up(app.test_client(), f"/invite/{token}", username="erin", email="erin@example.net").status_code == 302


@pytest.mark.parametrize(
    ("settings", "advice"),
    [
        ({"REGISTRATION": "sometimes"}, "REGISTRATION must be one of open, domains, invite, closed, not 'sometimes'."),
        ({"REGISTRATION": "domains"}, "REGISTRATION=domains needs ALLOWED_EMAIL_DOMAINS"),
        ({"REGISTRATION": "domains", "ALLOWED_EMAIL_DOMAINS": "example"}, "must list domain names like example.org"),
        ({"REGISTRATION": "domains", "ALLOWED_EMAIL_DOMAINS": "example.org"}, "needs EMAIL_VERIFICATION=required"),
        ({"USERS_MAY_INVITE": "maybe"}, "USERS_MAY_INVITE must be true or false"),
        ({"AUDIT_RETENTION_DAYS": 0}, "AUDIT_RETENTION_DAYS must be a number of days"),
    ],
)
def test_registration_settings_are_checked_at_start(tmp_path, clock, settings, advice):
    with pytest.raises(SystemExit) as refusal:
        create_app(make_config(tmp_path, clock, **settings))
    assert str(refusal.value).startswith(START) and advice in str(refusal.value)


# --- the command line ----------------------------------------------------------------------------------------------------


def run(app, *args, input_text=None):
    return app.test_cli_runner().invoke(args=["users", *args], input=input_text)


def test_users_create_promote_demote_and_list(app):
    made = run(app, "create", "root", "root@example.org", "--admin", input_text=f"{PASSWORD}\n{PASSWORD}\n")
    assert made.exit_code == 0 and "Made the administrator root" in made.output
    assert "Password" in made.output and PASSWORD not in made.output
    assert run(app, "create", "ROOT", "x@example.org", "--password", PASSWORD).exit_code == 1  # taken
    weak = run(app, "create", "bob", "bob@example.org", "--password", "password1234")
    assert weak.exit_code == 1 and "Password:" in weak.output
    assert run(app, "create", "bob", "bob@example.org", "--password", PASSWORD).exit_code == 0
    assert "bob is an administrator now" in run(app, "promote", "bob@example.org").output
    assert "bob is an administrator no more" in run(app, "demote", "bob").output
    assert "No account is called 'nobody'" in run(app, "promote", "nobody").output
    listed = run(app, "list").output.splitlines()
    assert listed[1].split("\t")[:4] == ["2", "bob", "bob@example.org", "no"]
    assert listed[2].split("\t")[:4] == ["1", "root", "root@example.org", "yes"]
    with app.app_context():
        actions = db.session.scalars(db.select(AuditEvent.action).order_by(AuditEvent.id)).all()
        assert actions == ["user.created", "user.created", "user.promoted", "user.demoted"]
        assert set(db.session.scalars(db.select(AuditEvent.actor))) == {"cli"}


def test_a_disabled_account_loses_its_sessions_tokens_and_secrets_until_enabled(app, logged_in_client, recipient):
    token = issue_token(logged_in_client)
    share_id = create_secret(logged_in_client, max_views="1")
    assert "Disabled alice" in run(app, "disable", "alice").output
    assert logged_in_client.get("/dashboard").status_code == 302  # signed out
    assert logged_in_client.get("/api/auth/check", headers=bearer(token)).status_code == 401
    assert recipient.get(f"/view/{share_id}").status_code == 410
    assert unlock(recipient, share_id).status_code == 410
    opened = recipient.post(f"/api/secrets/{share_id}/unlock", json={"password": "open-sesame-42"})
    assert opened.status_code == 410 and opened.json["error"]["reason"] == "gone"
    secret = load_secret(app, share_id)
    assert (secret.status, secret.view_count, secret.failed_attempts) == ("active", 0, 0)
    signing_in = AuthActions(app.test_client()).login()
    assert signing_in.status_code == 400 and "This account is disabled" in signing_in.text
    assert "This account is disabled" not in AuthActions(app.test_client()).login(password="wrong-password-1").text
    assert "Enabled alice" in run(app, "enable", "alice").output
    assert AuthActions(app.test_client()).login().status_code == 302
    assert unlock(recipient, share_id).status_code == 200


def test_users_delete_erases_their_secrets(app, logged_in_client, recipient):
    share_id = create_secret(logged_in_client)
    assert run(app, "delete", "alice").exit_code == 1  # asks first
    assert "Deleted alice and erased its 1 secrets" in run(app, "delete", "alice", "--yes").output
    assert recipient.get(f"/view/{share_id}").status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Secret.id))) == 0


def test_reset_two_factor_tells_the_user_by_email(app, client, auth):
    auth.register()
    with app.app_context():
        user = db.session.get(User, 1)
        user.two_factor_since, user.totp_key_sealed, user.totp_key_id = app.clock(), b"x", "k1"
        db.session.commit()
    assert "Turned off two-factor sign-in for alice" in run(app, "reset-two-factor", "alice").output
    assert "has no two-factor" in run(app, "reset-two-factor", "alice").output
    with app.app_context():
        assert db.session.scalars(db.select(OutboxMessage.kind)).all() == ["two_factor_reset"]
        assert not db.session.get(User, 1).two_factor_on


# --- invitation pages ------------------------------------------------------------------------------------------------------


def make_admin(app, username="alice") -> None:
    with app.app_context():
        db.session.execute(db.update(User).where(User.username == username).values(is_admin=True))
        db.session.commit()


def test_only_those_allowed_see_the_invitations_page(org_app):
    app = org_app(REGISTRATION="invite")
    client = app.test_client()
    token = invite(app)
    assert sign_up(client, f"/invite/{token}", username="alice", email="alice@example.org").status_code == 302
    assert client.get("/account/invitations").status_code == 404
    assert "Manage invitations" not in client.get("/account").text
    assert post_form(client, "/account/invitations", {"current_password": PASSWORD}, token_page="/account").status_code == 404


def test_an_invitation_made_on_the_page_is_shown_once_and_signs_someone_up(org_app):
    app = org_app(REGISTRATION="invite", USERS_MAY_INVITE="true")
    client = app.test_client()
    assert sign_up(client, f"/invite/{invite(app)}", username="alice", email="alice@example.org").status_code == 302
    refused = post_form(client, "/account/invitations", {"lifetime": "7d", "current_password": "wrong"}, token_page="/account")
    assert refused.status_code == 400 and "t your current password." in refused.text
    made = post_form(
        client, "/account/invitations", {"lifetime": "1d", "email": "", "current_password": PASSWORD}, token_page="/account"
    )
    assert made.status_code == 200
    link = made.text.split('id="invitation-link" value="')[1].split('"')[0]
    path = link.removeprefix("http://localhost")
    assert path.startswith("/invite/")
    assert path.split("/")[-1] not in client.get("/account/invitations").text  # shown once
    assert sign_up(app.test_client(), path, username="bob", email="bob@example.org").status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(AuditEvent.action).order_by(AuditEvent.id)).all() == [
            "invitation.used", "invitation.created", "invitation.used",
        ]  # fmt: skip


def test_a_withdrawn_invitation_stops_working_and_only_its_maker_may_withdraw_it(org_app):
    app = org_app(REGISTRATION="invite", USERS_MAY_INVITE="true")
    alice, bob = app.test_client(), app.test_client()
    sign_up(alice, f"/invite/{invite(app)}", username="alice", email="alice@example.org")
    sign_up(bob, f"/invite/{invite(app)}", username="bob", email="bob@example.org")
    token = invite(app, by="alice")
    with app.app_context():
        invitation_id = db.session.scalar(db.select(Invitation.id).order_by(Invitation.id.desc()))
    path = f"/account/invitations/{invitation_id}/withdraw"
    assert post_form(bob, path, {}, token_page="/account").status_code == 404
    assert app.test_client().get(f"/invite/{token}").status_code == 200
    assert post_form(alice, path, {}, token_page="/account").status_code == 302
    assert app.test_client().get(f"/invite/{token}").status_code == 410
