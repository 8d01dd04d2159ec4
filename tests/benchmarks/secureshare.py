"""SecureShare as a bench target: accounts and secrets made through the real routes, the rest seeded in bulk."""

import base64
import json
import os
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from app import create_app, db
from schema import utcnow
from tests.benchmarks import load, seed
from tests.benchmarks.client import Browser
from tests.benchmarks.servers import Gunicorn, free_port, rss_mib
from tests.benchmarks.settings import bench_config

GERMAN_PHONE = "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7"

SECRET_PASSWORD = "open-sesame-for-the-bench-42"
FORM = "application/x-www-form-urlencoded"
DASHBOARD_SMALL = 20
DASHBOARD_LARGE = 100_000
PURGE_COUNT = 100_000
RETENTION_PAST = timedelta(days=400)  # older than any retention setting, so every seeded ended row is due


@dataclass
class Accounts:
    small: Browser  # signed in, 20 secrets
    large: Browser  # signed in, 100,000 secrets
    recipient_token: str
    recipient_cookie: str
    create_body: bytes
    share_id: str


class SecureShare:
    """One SecureShare deployment: its database, keys, in-process app (for seeding and purge) and gunicorn."""

    def __init__(self, label: str, run_dir: Path, database_url: str):
        self.label = label
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        keys = "k1:" + base64.b64encode(os.urandom(32)).decode()
        self.env = {
            "BENCH_RUN_DIR": str(run_dir),
            "BENCH_APP_DATABASE_URL": database_url,
            "BENCH_BASE_URL": "http://127.0.0.1",
            "BENCH_SECRET_KEY": secrets.token_hex(32),
            "BENCH_ENCRYPTION_KEYS": keys,
            "APP_CONFIG": "testing",
        }
        self.app = create_app(bench_config(run_dir, database_url, "http://127.0.0.1", self.env["BENCH_SECRET_KEY"], keys))
        with self.app.app_context():
            if db.engine.dialect.name != "sqlite":
                db.drop_all()  # BENCH_DATABASE_URL names a database kept for the bench alone
            db.create_all()
        self.server: Gunicorn | None = None
        self.accounts: Accounts | None = None
        self.password = seed.random_password()
        self.bytes_per_1000 = 0.0
        self.api_unlock_path = self._api_unlock_rule()

    def start(self) -> None:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        port = free_port()  # the app answers to its own host and port only
        env = {**self.env, "BENCH_BASE_URL": f"http://127.0.0.1:{port}"}
        self.server = Gunicorn(gunicorn, "tests.benchmarks.serve:application", env, self.run_dir / "gunicorn.log", port=port)

    def stop(self) -> None:
        if self.server:
            self.server.stop()
            self.server = None

    # --- set-up, once per run ---------------------------------------------------------------------------------

    def _register(self, username: str) -> Browser:
        browser = Browser(self.server.url)
        fields = {"username": username, "email": f"{username}@example.org", "password": self.password, "confirm": self.password}
        status, _, _, _ = browser.post_form("/register", fields)
        if status != 302:
            raise SystemExit(f"bench: registering {username} answered {status}")
        return browser

    def make_accounts(self) -> None:
        """Make the accounts and the shared secret through the routes (the server must be running)."""
        small = self._register("benchsmall")
        fields = {
            "title": "Office Wi-Fi", "content": "wifi: CANARY-bench-" + secrets.token_hex(8), "password": SECRET_PASSWORD,
            "confirm": SECRET_PASSWORD, "expiration": "7d", "custom_unit": "hours", "blur_level": "10", "max_views": "",
        }  # fmt: skip
        status, headers, _, _ = small.post_form("/create", fields)
        if status != 302:
            raise SystemExit(f"bench: creating a secret answered {status}")
        share_id = headers["Location"].rsplit("/", 1)[1]
        large = self._register("benchlarge")
        self._register("benchsignin")
        self._register("benchpurge")
        recipient = Browser(self.server.url)
        token = recipient.token(f"/view/{share_id}")
        self.accounts = Accounts(small, large, token, recipient.cookie_header(), small.form_body("/create", fields), share_id)

    def seed_dashboards(self) -> None:
        """Give the dashboards 20 and 100,000 secrets, and size the rows on the way."""
        share_id = self.accounts.share_id
        with self.app.app_context():
            template = seed.content_template(share_id)
            now = utcnow()
            seed.seed(seed.owner_id("benchsmall"), DASHBOARD_SMALL - 1, template, now, ended=False, age=timedelta(0))
            before = seed.database_bytes()
            large_id = seed.owner_id("benchlarge")
            seed.seed(large_id, DASHBOARD_LARGE // 10, template, now, ended=False, age=timedelta(0))
            seed.seed(large_id, DASHBOARD_LARGE - DASHBOARD_LARGE // 10, template, now, ended=True, age=timedelta(hours=1))
            self.bytes_per_1000 = (seed.database_bytes() - before) / (DASHBOARD_LARGE / 1000)

    def _api_unlock_rule(self) -> str | None:
        """Return the API unlock path pattern when the app has one (issue 11), else None."""
        for rule in self.app.url_map.iter_rules():
            if rule.rule.startswith("/api/") and rule.rule.endswith("/unlock") and "POST" in rule.methods:
                return rule.rule
        return None

    # --- loads ------------------------------------------------------------------------------------------------

    def loads(self) -> dict[str, tuple[load.Load, int]]:
        """Return each measured request with its number of connections: 16 for pages; for the unlocks 1, so their
        latency is service time to hold against the key derivation alone; 2 (one per worker) for create."""
        accounts = self.accounts
        view = f"/view/{accounts.share_id}"
        unlock_body = f"csrf_token={accounts.recipient_token}&password={SECRET_PASSWORD}".encode()
        recipient_headers = {"Content-Type": FORM, **({"Cookie": accounts.recipient_cookie} if accounts.recipient_cookie else {})}
        small, large = {"Cookie": accounts.small.cookie_header()}, {"Cookie": accounts.large.cookie_header()}
        found = {
            "landing": (load.Load("/"), 16),
            "view": (load.Load(view), 16),
            # A German phone's header: the locale chosen from Accept-Language and the page in the German catalogue.
            "view_de": (load.Load(view, headers={"Accept-Language": GERMAN_PHONE}), 16),
            "unlock": (load.Load(view, "POST", unlock_body, recipient_headers), 1),
            "create": (load.Load("/create", "POST", accounts.create_body, {"Content-Type": FORM, **small}), 2),
            "dashboard_small": (load.Load("/dashboard", headers=small), 16),
            "dashboard_large": (load.Load("/dashboard", headers=large), 16),
        }
        if rule := self.api_unlock_path:
            path = rule[: rule.index("<")] + accounts.share_id + rule[rule.index(">") + 1 :]
            body = json.dumps({"password": SECRET_PASSWORD}).encode()
            found["api_unlock"] = (load.Load(path, "POST", body, {"Content-Type": "application/json"}), 1)
        return found

    def api_unlock_probe(self) -> str | None:
        """Return why the API unlock cannot be measured, or None when one call succeeds."""
        if not self.api_unlock_path:
            return "no API unlock endpoint in this version (issue 11)"
        api_load, _ = self.loads()["api_unlock"]
        status, _, _, _ = Browser(self.server.url).request("POST", api_load.path, api_load.body, api_load.headers)
        return None if status == 200 else f"the endpoint answered {status} to a right password"

    def peak_worker_rss(self, seconds: float) -> float:
        """Peak resident memory of the busiest worker (MiB) after 4 concurrent unlocks on fresh workers."""
        unlock, _ = self.loads()["unlock"]
        load.run(self.server.url, unlock, seconds, 4)
        return max(rss_mib(pid, "VmHWM") for pid in self.server.worker_pids())

    def sign_in(self, times: int) -> load.Stats:
        """Sign in `times` times, one after another, each on a fresh browser; time the POST alone."""
        latencies = []
        started = time.perf_counter()
        for _ in range(times):
            browser = Browser(self.server.url)
            body = browser.form_body("/login", {"login": "benchsignin", "password": self.password})
            status, _, _, seconds = browser.request("POST", "/login", body, {"Content-Type": FORM})
            if status != 302:
                raise SystemExit(f"bench: signing in answered {status}")
            latencies.append(seconds * 1000)
        return load.summarize(latencies, time.perf_counter() - started)

    # --- in process -------------------------------------------------------------------------------------------

    def key_derivation_ms(self, times: int = 5) -> float:
        """Median time of one Argon2id derivation with the settings new secrets get (the unlock's floor)."""
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        settings = self.app.config
        samples = []
        for _ in range(times):
            kdf = Argon2id(salt=os.urandom(16), length=32, iterations=settings["KDF_ITERATIONS"], lanes=settings["KDF_LANES"],
                           memory_cost=settings["KDF_MEMORY_KIB"], secret=os.urandom(32))  # fmt: skip
            start = time.perf_counter()
            kdf.derive(SECRET_PASSWORD.encode())
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    def purge_seconds(self) -> tuple[float, int]:
        """Seed 100,000 ended secrets past retention, then time `flask purge`; return (seconds, rows left of them)."""
        with self.app.app_context():
            owner = seed.owner_id("benchpurge")
            template = seed.content_template(self.accounts.share_id)
            seed.seed(owner, PURGE_COUNT, template, utcnow(), ended=True, age=RETENTION_PAST, events_every=4,
                      real_labels=False)
            db.session.remove()
        runner = self.app.test_cli_runner()
        start = time.perf_counter()
        result = runner.invoke(args=["purge"])
        seconds = time.perf_counter() - start
        if result.exit_code != 0:
            raise SystemExit(f"bench: flask purge failed: {result.output}")
        with self.app.app_context():
            left = db.session.execute(db.select(db.func.count()).select_from(seed.Secret).filter_by(owner_id=owner)).scalar_one()
            db.session.execute(db.delete(seed.Secret).filter_by(owner_id=owner))  # a purge that missed rows must not pile up
            db.session.commit()
        return seconds, left
