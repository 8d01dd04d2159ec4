"""Who may sign up: the registration mode, the allowed email domains and invitations. Imports no Flask.

REGISTRATION is one of four modes: `open` (anyone), `domains` (an address at one of ALLOWED_EMAIL_DOMAINS, or an
invitation), `invite` (an invitation only) and `closed` (nobody: operators make accounts with `flask users create`).
An invitation is a random link token of which only the SHA-256 is kept; it works once, expires, and may be bound to
one address.
"""

import enum
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from babel import Locale
from babel.lists import format_list
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from schema import Invitation, User, canonical, new_token, token_digest

INVITATION_LIFETIMES = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


class RegistrationMode(enum.StrEnum):
    OPEN = "open"
    DOMAINS = "domains"
    INVITE = "invite"
    CLOSED = "closed"


class DomainListError(ValueError):
    """ALLOWED_EMAIL_DOMAINS holds something that is not a domain name."""


@dataclass(frozen=True)
class AllowedDomains:
    """Exact domains (`example.org` admits only `x@example.org`) and parent domains (written `.example.org` or
    `*.example.org`: admits `x@team.example.org` and, deliberately, `x@example.org` itself)."""

    exact: frozenset[str]
    parents: frozenset[str]

    @classmethod
    def parse(cls, written: str) -> "AllowedDomains":
        """Read a comma-separated list; :raise DomainListError: for anything that is not a domain name."""
        exact, parents = set(), set()
        for item in (part.strip() for part in written.split(",")):
            if not item:
                continue
            bare = item.removeprefix("*.") if item.startswith("*.") else item.removeprefix(".")
            if not _is_domain(bare):
                raise DomainListError(f"ALLOWED_EMAIL_DOMAINS must list domain names like example.org, not {item!r}.")
            (parents if bare != item else exact).add(canonical(bare))
        return cls(frozenset(exact), frozenset(parents))

    def __bool__(self) -> bool:
        return bool(self.exact or self.parents)

    def admit(self, email: str) -> bool:
        """Tell whether the domain of `email` is allowed. Compared after NFKC and in lower case, and only when that
        is ASCII, as the listed domains are: not in the canonical spelling, whose case-folding makes `straße.example`
        (mail to it goes to xn--strae-oqa.example, another domain) `strasse.example`."""
        domain = unicodedata.normalize("NFKC", email.rpartition("@")[2]).lower()
        if not domain.isascii():
            return False
        if domain in self.exact or domain in self.parents:
            return True
        return any(domain.endswith("." + parent) for parent in self.parents)

    def described(self, with_subdomains: str = "%(domain)s or any of its subdomains", locale: Locale | str = "en") -> str:
        """Say which addresses are admitted: "example.org or corp.example or any of its subdomains" (a page passes
        `with_subdomains` and the `locale` of its own language)."""
        words = sorted(self.exact) + [with_subdomains % {"domain": parent} for parent in sorted(self.parents)]
        return format_list(words, style="or", locale=locale) if words else ""


def _is_domain(name: str) -> bool:
    labels = name.split(".")
    return len(labels) >= 2 and all(
        0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii() and not label.startswith("-")
        for label in labels
    )


@dataclass(frozen=True)
class RegistrationPolicy:
    mode: RegistrationMode
    domains: AllowedDomains
    users_may_invite: bool

    @property
    def anyone_may_try(self) -> bool:
        """Tell whether the sign-up page takes people without an invitation (so the pages may offer it)."""
        return self.mode in (RegistrationMode.OPEN, RegistrationMode.DOMAINS)


# --- why a sign-up is refused ---------------------------------------------------------------------------------------


class Refusal(enum.StrEnum):
    CLOSED = "closed"  # nobody signs up here
    INVITATION_NEEDED = "invitation_needed"
    INVITATION_DEAD = "invitation_dead"  # unknown, used or expired
    OTHER_ADDRESS = "other_address"  # the invitation is bound to another address
    DOMAIN = "domain"  # the address is not at an allowed domain


def page_refusal(policy: RegistrationPolicy, invitation: Invitation | None, token_given: bool, now: datetime) -> Refusal | None:
    """Say why the sign-up page cannot be used at all (before any address is typed), or None when it can."""
    if policy.mode == RegistrationMode.CLOSED:
        return Refusal.CLOSED
    if token_given and (invitation is None or not invitation.is_open(now)):
        return Refusal.INVITATION_DEAD
    if policy.mode == RegistrationMode.INVITE and invitation is None:
        return Refusal.INVITATION_NEEDED
    return None


def address_refusal(policy: RegistrationPolicy, invitation: Invitation | None, email: str) -> Refusal | None:
    """Say why `email` may not sign up on this page (the page itself being usable), or None when it may."""
    if invitation is not None:
        bound = invitation.email_key
        return Refusal.OTHER_ADDRESS if bound is not None and bound != canonical(email) else None
    if policy.mode == RegistrationMode.DOMAINS and not policy.domains.admit(email):
        return Refusal.DOMAIN
    return None


# --- invitations ----------------------------------------------------------------------------------------------------


def may_invite(policy: RegistrationPolicy, user: User) -> bool:
    """Administrators may always make invitations (while sign-up is not closed); users when USERS_MAY_INVITE is on,
    and under `domains` only once their address is confirmed: an unconfirmed address at an allowed domain proves
    nothing, and an invitation skips the domain rule."""
    if policy.mode == RegistrationMode.CLOSED:
        return False
    if user.is_admin:
        return True
    return policy.users_may_invite and (policy.mode != RegistrationMode.DOMAINS or user.email_verified)


def invite(session: Session, inviter: User, email: str | None, lifetime: timedelta, now: datetime) -> tuple[Invitation, str]:
    """Add an invitation to `session` (the caller commits it, with its audit record) and return it with its token,
    which is shown once and never stored."""
    token = new_token()
    invitation = Invitation(
        token_hash=token_digest(token),
        created_by_id=inviter.id,
        email_key=canonical(email) if email else None,
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(invitation)
    return invitation, token


def find_invitation(session: Session, token: str) -> Invitation | None:
    """Return the invitation a token names (used, expired or not), or None."""
    return session.execute(select(Invitation).filter_by(token_hash=token_digest(token))).scalar_one_or_none()


def use_invitation(session: Session, invitation: Invitation, user: User, now: datetime) -> bool:
    """Spend the invitation on `user` with one guarded UPDATE (not committed: the caller commits it with the new
    account); False when it was used meanwhile or has expired, and then the caller must roll back."""
    session.flush()  # the new account's id
    open_now = (Invitation.id == invitation.id, Invitation.used_at.is_(None), Invitation.expires_at > now)
    spent = session.execute(
        update(Invitation).where(*open_now).values(used_at=now, used_by_id=user.id).execution_options(synchronize_session=False)
    )
    return spent.rowcount == 1


def invitations_of(session: Session, inviter: User | None, limit: int = 50) -> list[Invitation]:
    """Return the newest invitations: all (inviter None, for administrators) or one person's."""
    query = select(Invitation).order_by(Invitation.id.desc()).limit(limit)
    if inviter is not None:
        query = query.where(Invitation.created_by_id == inviter.id)
    return list(session.execute(query).scalars())


def withdraw(session: Session, invitation: Invitation, now: datetime) -> bool:
    """End an unused invitation now (it expires at once); False when it was used or had ended already."""
    open_now = (Invitation.id == invitation.id, Invitation.used_at.is_(None), Invitation.expires_at > now)
    ended = session.execute(
        update(Invitation).where(*open_now).values(expires_at=now).execution_options(synchronize_session=False)
    )
    return ended.rowcount == 1
