"""The production path, as operators run it: gunicorn (4 workers, production settings) on PostgreSQL with rate
limits on Redis, behind nginx terminating TLS with the repository's own deploy/nginx.conf. Everything listens on
127.0.0.1, on free ports, with its files in a temporary folder."""

import base64
import datetime
import http.client
import http.cookiejar
import ipaddress
import os
import re
import secrets
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine, text

from schema import Base
from tests.helpers import CSRF_TOKEN_RE, MAIL_SENDER, free_port
from tests.smtp_server import MailCatcher, smtp_server

REPO = Path(__file__).resolve().parents[2]
NGINX_EXAMPLE = REPO / "deploy" / "nginx.conf"
NGINX = Path("/usr/sbin/nginx")
WORKERS = 4
START_TIMEOUT = 60
# The 5-try limit lives in the database; the per-secret unlock limit (10 a minute) would answer most of 50
# parallel unlocks with 429 before they reach it, so the race tests could not show the guard holds.
RACE_UNLOCK_LIMIT = "1000 per minute"
NGINX_MAIN = """daemon off;
{user}worker_processes 2;
pid {run}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 512; }}
http {{
    gzip on;  # as Debian's own nginx.conf has it: the site must turn it off where answers hold secrets
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {site};
}}
"""


class WatchedProcess:
    """A server process whose output is read by a thread (so its pipe never fills) until a line says it is up."""

    def __init__(self, command: list, ready_marker: str, **popen):
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._marker = ready_marker
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip())
            if self._marker in line:
                self._ready.set()
        self._ready.set()  # it exited: stop waiting

    def wait_until_up(self) -> None:
        if not self._ready.wait(START_TIMEOUT) or self.process.poll() is not None:
            raise RuntimeError("server did not start:\n" + "\n".join(self.lines[-30:]))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        self.process.stderr.close()


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """Write a throwaway self-signed certificate for localhost and 127.0.0.1, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def render_nginx_example(values: dict[str, str]) -> str:
    """Fill the shipped example's {{PLACEHOLDERS}}; every one must be filled, as an operator must."""
    rendered = NGINX_EXAMPLE.read_text()
    for name, value in values.items():
        rendered = rendered.replace("{{" + name + "}}", value)
    left = re.findall(r"\{\{[A-Z_]+\}\}", rendered)
    assert not left, f"deploy/nginx.conf has placeholders the test does not fill: {left}"
    return rendered


def reset_database(url: str) -> None:
    """Drop this run's tables (and any migration record), so `init-db` prepares an empty database as in a deploy."""
    engine = create_engine(url)
    with engine.begin() as connection:
        Base.metadata.drop_all(connection)
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


@dataclass
class ProductionSite:
    url: str  # https, through nginx
    http_url: str  # nginx's plain-http server, which only redirects
    certificate: Path
    database_url: str
    redis_url: str
    ratelimit_prefix: str
    access_log: Path
    mailbox: MailCatcher  # what the workers sent through the SMTP server on loopback

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate))


def start_production_site(run: Path, database_url: str, redis_url: str):
    """Start an SMTP server (a relay on this host), gunicorn and nginx; return the site and a function that stops them."""
    mailbox, smtp_port = MailCatcher(), free_port()
    mail_server = smtp_server(smtp_port, mailbox)
    mail_server.__enter__()
    try:
        site, stop_web = _start_web_servers(run, database_url, redis_url, smtp_port, mailbox)
    except BaseException:
        mail_server.__exit__(None, None, None)
        raise

    def stop() -> None:
        stop_web()
        mail_server.__exit__(None, None, None)

    return site, stop


def _start_web_servers(run: Path, database_url: str, redis_url: str, smtp_port: int, mailbox: MailCatcher):
    gunicorn_port, https_port, http_port = free_port(), free_port(), free_port()
    public_url = f"https://localhost:{https_port}"
    ratelimit_prefix = f"test-{secrets.token_hex(4)}"  # Redis outlives test runs
    env = {
        **os.environ,
        "APP_CONFIG": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "DATABASE_URL": database_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": ratelimit_prefix,
        "RATELIMIT_UNLOCK_IP": RACE_UNLOCK_LIMIT,
        "RATELIMIT_UNLOCK_SECRET": RACE_UNLOCK_LIMIT,
        "PROXY_COUNT": "1",
        "PUBLIC_BASE_URL": public_url,
        "TRUSTED_HOSTS": "",
        "KDF_MEMORY_KIB": "19456",  # the floor: production code, a cheaper cost so 50 parallel unlocks stay quick
        "FLASK_DEBUG": "",
        # A relay on this host, as a small server may have one: plain SMTP to loopback is allowed in production.
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "MAIL_DEFAULT_SENDER": MAIL_SENDER,
        # Optional, so the other suites' accounts create secrets without reading their mail; the reset walk confirms.
        "EMAIL_VERIFICATION": "optional",
    }
    bin_dir = Path(sys.executable).parent
    reset_database(database_url)
    subprocess.run([bin_dir / "flask", "--app", "app", "init-db"], cwd=REPO, env=env, check=True, capture_output=True)
    certificate, key = make_certificate(run)
    access_log = run / "secureshare-access.log"
    site_conf = run / "secureshare.conf"
    site_conf.write_text(
        render_nginx_example(
            {
                "SERVER_NAME": "localhost",
                "PUBLIC_ORIGIN": public_url,
                "HTTPS_LISTEN": f"127.0.0.1:{https_port}",
                "HTTP_LISTEN": f"127.0.0.1:{http_port}",
                "TLS_CERTIFICATE": str(certificate),
                "TLS_CERTIFICATE_KEY": str(key),
                "UPSTREAM": f"127.0.0.1:{gunicorn_port}",
                "LOG_DIR": str(run),
            }
        )
    )
    main = run / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach this run's folder, which is 0700
    main.write_text(NGINX_MAIN.format(user=user, run=run, site=site_conf))
    gunicorn = [bin_dir / "gunicorn", "--bind", f"127.0.0.1:{gunicorn_port}", "--workers", str(WORKERS), "--threads", "4"]
    app_server = WatchedProcess(
        [*gunicorn, "--graceful-timeout", "5", "app:create_app()"],
        "Booting worker",
        cwd=REPO,
        env=env,
    )
    proxy = WatchedProcess([NGINX, "-c", main, "-p", run], "start worker processes")
    try:
        app_server.wait_until_up()
        proxy.wait_until_up()
    except RuntimeError:
        proxy.stop()
        app_server.stop()
        raise

    def stop() -> None:
        proxy.stop()
        app_server.stop()

    site = ProductionSite(
        public_url, f"http://localhost:{http_port}", certificate, database_url, redis_url, ratelimit_prefix, access_log, mailbox
    )
    if not (_app_is_ready(gunicorn_port, f"localhost:{https_port}") and HttpsVisitor(site).get("/readyz").status == 200):
        stop()
        raise RuntimeError("the site is not ready:\n" + "\n".join(app_server.lines[-30:]))
    return site, stop


def _app_is_ready(port: int, host: str) -> bool:
    """Ask gunicorn itself first: "Booting worker" comes before a worker has imported the app, which on a busy
    machine takes longer than nginx waits for an answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=START_TIMEOUT * 2)
    try:
        connection.request("GET", "/readyz", headers={"Host": host, "X-Forwarded-Proto": "https"})
        return connection.getresponse().status == 200
    finally:
        connection.close()


class Answer(NamedTuple):
    status: int
    body: str
    location: str | None


class HttpsVisitor:
    """A browser without a browser: its own cookies, the CSRF token from a real page, over https through nginx."""

    def __init__(self, site: ProductionSite):
        self.site = site
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=site.ssl_context()),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            _NoRedirect(),
        )
        self.token = None

    def get(self, path: str) -> Answer:
        answer = self._send(path)
        if match := CSRF_TOKEN_RE.search(answer.body):  # the session's token, or the recipient form's own
            self.token = match.group(1) or match.group(2)
        return answer

    def post(self, path: str, fields: dict) -> Answer:
        return self._send(path, urllib.parse.urlencode({"csrf_token": self.token, **fields}).encode())

    def _send(self, path: str, data: bytes | None = None) -> Answer:
        request = urllib.request.Request(self.site.url + path, data=data)  # noqa: S310 - https on loopback only
        try:
            with self.opener.open(request, timeout=120) as response:
                return Answer(response.status, response.read().decode(), response.headers.get("Location"))
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode(), error.headers.get("Location"))


class RawAnswer(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def send_raw(site: ProductionSite, method: str, path: str, headers: dict[str, str] | None = None) -> RawAnswer:
    """Send one request over https to nginx with exactly these headers and no body (whatever Content-Length says);
    return the answer as it came, undecoded, every header kept."""
    address = urllib.parse.urlsplit(site.url)
    connection = http.client.HTTPSConnection(address.hostname, address.port, context=site.ssl_context(), timeout=120)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return RawAnswer(response.status, response.headers, response.read())
    finally:
        connection.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand redirects back as answers: a test asserts the 302 and its Location."""

    def redirect_request(self, *args, **kwargs):
        return None
