"""Webhooks: an owner's HTTPS endpoints, their signing secrets, and the one way a call leaves the server. Imports no
Flask.

An endpoint's address is checked when it is saved and again each time a call connects: the name is resolved once,
each address vetted (loopback, private, link-local, reserved, multicast and unspecified addresses are refused, IPv4
hidden in IPv6 included, unless the operator allows private ones), and the connection goes to that very address with
the name sent in SNI and Host and checked against the certificate. A DNS answer that changes between the check and
the connection (rebinding) therefore cannot reach inside. No redirect is followed. The address and the signing secret
are sealed with the server key: a webhook address often holds a key of its own.
"""

import hashlib
import hmac
import http.client
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from outbox import NotDelivered, tls_context
from schema import WebhookEndpoint
from vault import KeyRing, guarded_update

SECRET_PREFIX = "whsec_"  # noqa: S105 - a visible prefix, so a leaked signing secret is recognisable
SIGNATURE_HEADER = "X-SecureShare-Signature"
EVENT_HEADER = "X-SecureShare-Event"
DELIVERY_HEADER = "X-SecureShare-Delivery"
MAX_URL_LENGTH = 2000
OUTCOME_LENGTH = 120


@dataclass(frozen=True)
class CallPolicy:
    """How calls are made, from the settings: private addresses allowed?, extra CA certificates, the timeout."""

    allow_private: bool = False
    ca_file: str | None = None
    timeout: float = 10


# --- addresses -------------------------------------------------------------------------------------------------------------


def address_allowed(address: str, allow_private: bool) -> bool:
    """Tell whether a call may connect to this IP address (IPv4 hidden in IPv6 is judged as the IPv4 it holds)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (%eth0) says nothing about the address
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip.sixtofour):
        ip = ip.ipv4_mapped or ip.sixtofour
    if ip.is_multicast or ip.is_unspecified:
        return False
    if allow_private:
        return True
    inside = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
    return ip.is_global and not inside


def N_(text: str) -> str:
    """Mark `text` for the catalogues (pybabel finds N_) without translating it: the page that shows it does."""
    return text


PUBLIC_ONLY = N_("SecureShare only calls addresses on the public internet.")


def url_problem(url: str, allow_private: bool) -> str | None:
    """Say what is wrong with an endpoint address, in English words for its owner (the page translates them); None
    when it may be saved."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        return N_("That port isn't a number from 1 to 65535.")
    if parts.scheme != "https" or not parts.hostname:
        return N_("Use an https:// address.")
    if parts.username is not None or parts.password is not None or parts.fragment:
        return N_("Leave out user names, passwords and # parts: your endpoint checks the signature instead.")
    host = parts.hostname
    if not allow_private and (host == "localhost" or host.endswith((".localhost", ".local", ".internal"))):
        return PUBLIC_ONLY
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: vetted each time a call connects
    return None if address_allowed(str(literal), allow_private) else PUBLIC_ONLY


def _vetted_address(host: str, port: int, allow_private: bool) -> str:
    """Resolve `host` once and return the first address a call may connect to.

    :raise NotDelivered: when the name does not resolve, or resolves only to refused addresses.
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise NotDelivered(f"{host} does not resolve") from None
    for *_rest, sockaddr in found:
        if address_allowed(sockaddr[0], allow_private):
            return sockaddr[0]
    raise NotDelivered(f"{host} resolves only to addresses SecureShare does not call", retry=False)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the address that was vetted, with the name in SNI, in Host and in the certificate check."""

    def __init__(self, host: str, port: int, address: str, **kwargs):
        super().__init__(host, port, **kwargs)
        self._vetted_address = address

    def connect(self) -> None:
        plain = socket.create_connection((self._vetted_address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(plain, server_hostname=self.host)


def post(policy: CallPolicy, url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST `body` to `url` through a vetted address; return on a 2xx answer.

    :raise NotDelivered: on any other answer (redirects included: none is followed), or when it cannot connect.
    """
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 443
    address = _vetted_address(host, port, policy.allow_private)
    connection = _PinnedHTTPSConnection(host, port, address, context=tls_context(policy.ca_file), timeout=policy.timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers={**headers, "Content-Type": "application/json"})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        raise NotDelivered(f"could not call {host}: {type(error).__name__}") from None
    finally:
        connection.close()
    if not 200 <= status < 300:
        raise NotDelivered(f"{host} answered {status}")


# --- signing ---------------------------------------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature header's value: `t=<unix time>,v1=<HMAC-SHA256 of "<t>." + body, hex>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


# --- endpoints -------------------------------------------------------------------------------------------------------------


def _owner_binding(user_id: int) -> str:
    return f"user:{user_id}"


def _sealed_columns(keys: KeyRing, user_id: int, url: str, secret: str) -> dict:
    binding = _owner_binding(user_id)
    return {
        "key_id": keys.newest_id,
        "url_sealed": keys.seal_label(keys.newest_id, "webhook-url", binding, url),
        "secret_sealed": keys.seal_label(keys.newest_id, "webhook-secret", binding, secret),
    }


def add_endpoint(session: Session, keys: KeyRing, user_id: int, url: str, now: datetime) -> tuple[WebhookEndpoint, str]:
    """Store an endpoint with a fresh signing secret; return both (the secret is shown once)."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(
        user_id=user_id, host=urlsplit(url).hostname, created_at=now, **_sealed_columns(keys, user_id, url, secret)
    )
    session.add(endpoint)
    session.commit()
    return endpoint, secret


def opened(keys: KeyRing, endpoint: WebhookEndpoint) -> tuple[str, str] | None:
    """Return (address, signing secret), or None when the key that seals them was removed."""
    binding = _owner_binding(endpoint.user_id)
    url = keys.open_label(endpoint.key_id, "webhook-url", binding, endpoint.url_sealed)
    secret = keys.open_label(endpoint.key_id, "webhook-secret", binding, endpoint.secret_sealed)
    return (url, secret) if url is not None and secret is not None else None


def endpoints_of(session: Session, user_id: int) -> list[WebhookEndpoint]:
    rows = select(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id).order_by(WebhookEndpoint.id)
    return list(session.execute(rows).scalars())


def endpoint_of(session: Session, user_id: int, endpoint_id: int) -> WebhookEndpoint | None:
    """Return one endpoint of the user, or None when it is not theirs (or was removed)."""
    return session.execute(select(WebhookEndpoint).filter_by(id=endpoint_id, user_id=user_id)).scalar_one_or_none()


def remove_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint; its calls still waiting in the outbox go with it."""
    session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id).execution_options(synchronize_session=False))
    session.commit()


def record_outcome(session: Session, endpoint_id: int, outcome: str, now: datetime) -> None:
    """Note the last call's outcome on the endpoint, for its owner's list."""
    guarded_update(
        session, WebhookEndpoint, (WebhookEndpoint.id == endpoint_id,), last_attempt_at=now, last_outcome=outcome[:OUTCOME_LENGTH]
    )


def endpoints_by_key_id(session: Session) -> dict[str, int]:
    """Return how many endpoints each server key seals."""
    return dict(session.execute(select(WebhookEndpoint.key_id, func.count()).group_by(WebhookEndpoint.key_id)).all())


def rewrap_endpoints(session: Session, keys: KeyRing) -> tuple[int, int]:
    """Re-seal every endpoint under the newest server key; return (moved, left under a removed key)."""
    moved = stuck = 0
    stale = select(WebhookEndpoint).where(WebhookEndpoint.key_id != keys.newest_id)
    for endpoint in session.execute(stale).scalars().all():
        if (found := opened(keys, endpoint)) is None:
            stuck += 1
            continue
        same = (WebhookEndpoint.id == endpoint.id, WebhookEndpoint.key_id == endpoint.key_id)
        moved += guarded_update(session, WebhookEndpoint, same, **_sealed_columns(keys, endpoint.user_id, *found))
    return moved, stuck
