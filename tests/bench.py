"""Benchmarks (`make bench`): key derivation cost, unlock throughput, memory under a burst, page render time.

Not a test: it prints figures for people to compare across changes. Runs with the production cost settings.
"""

import os

os.environ["APP_CONFIG"] = "testing"

import resource
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app, db
from config import Config
from tests.helpers import AuthActions, FrozenClock, create_secret, csrf_token, make_config, unlock

PRODUCTION_COSTS = {
    "KDF_MEMORY_KIB": Config.KDF_MEMORY_KIB,
    "KDF_ITERATIONS": Config.KDF_ITERATIONS,
    "KDF_MAX_CONCURRENT": Config.KDF_MAX_CONCURRENT,
    "PASSWORD_HASH_MEMORY_KIB": Config.PASSWORD_HASH_MEMORY_KIB,
    "PASSWORD_HASH_TIME_COST": Config.PASSWORD_HASH_TIME_COST,
    "PASSWORD_HASH_PARALLELISM": Config.PASSWORD_HASH_PARALLELISM,
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(action, repeat: int) -> float:
    """Median wall time of `action` in milliseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def build_app(tmp: Path):
    app = create_app(make_config(tmp, FrozenClock(datetime.now(UTC)), LOG_FILE=None, **PRODUCTION_COSTS))
    with app.app_context():
        db.create_all()
    return app


def burst(app, unique_id: str, clients: int) -> float:
    """Send `clients` wrong-password unlocks at once; return the seconds the burst took."""
    browsers = [app.test_client() for _ in range(clients)]
    tokens = [csrf_token(browser, "/") for browser in browsers]
    barrier = threading.Barrier(clients)

    def guess(index: int) -> None:
        barrier.wait()
        browsers[index].post(f"/view/{unique_id}", data={"csrf_token": tokens[index], "password": "wrong-guess"})

    threads = [threading.Thread(target=guess, args=(index,)) for index in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="secureshare-bench-"))
    app = build_app(tmp)
    owner = app.test_client()
    AuthActions(owner).register()
    print(
        f"settings: KDF {Config.KDF_MEMORY_KIB // 1024} MiB x {Config.KDF_ITERATIONS} passes, "
        f"{Config.KDF_MAX_CONCURRENT} at once; account hash {Config.PASSWORD_HASH_MEMORY_KIB // 1024} MiB x "
        f"{Config.PASSWORD_HASH_TIME_COST}"
    )
    rss_start = peak_rss_mib()

    create_ms = timed(lambda: create_secret(owner), 10)
    unique_id = create_secret(owner)
    reader = app.test_client()
    unlock_ms = timed(lambda: unlock(reader, unique_id), 10)
    app.config["SECRET_MAX_FAILED_ATTEMPTS"] = 10_000
    wrong_ms = timed(lambda: unlock(reader, unique_id, "wrong-guess"), 10)
    login_ms = timed(lambda: AuthActions(app.test_client()).login(), 5)
    for _ in range(20):
        create_secret(owner)
    dashboard_ms = timed(lambda: owner.get("/dashboard"), 20)
    view_form_ms = timed(lambda: reader.get(f"/view/{unique_id}"), 50)

    rss_before_burst = peak_rss_mib()
    seconds = burst(app, unique_id, 40)
    rss_after_burst = peak_rss_mib()
    # The same burst with the cap lifted, to show what the cap saves (peak RSS only ever grows, so this runs last).
    app.extensions["secureshare"]["kdf_slots"] = threading.BoundedSemaphore(40)
    uncapped_seconds = burst(app, unique_id, 40)
    rss_uncapped = peak_rss_mib()

    rows = [
        ("create a secret (one KDF run)", f"{create_ms:.0f} ms"),
        ("unlock, right password", f"{unlock_ms:.0f} ms"),
        ("unlock, wrong password", f"{wrong_ms:.0f} ms"),
        ("sign in (Argon2id verify)", f"{login_ms:.0f} ms"),
        ("dashboard with 20+ secrets", f"{dashboard_ms:.1f} ms"),
        ("recipient's password form (GET)", f"{view_form_ms:.1f} ms"),
        ("burst of 40 parallel unlocks", f"{seconds:.2f} s ({40 / seconds:.1f} unlocks/s)"),
        ("peak RSS at start / before / after burst", f"{rss_start:.0f} / {rss_before_burst:.0f} / {rss_after_burst:.0f} MiB"),
        ("same burst, no cap on derivations", f"{uncapped_seconds:.2f} s, peak RSS {rss_uncapped:.0f} MiB"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
