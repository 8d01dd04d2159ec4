"""`make bench`: SecureShare, a bare Flask page and snappass, loaded in turn A B C A B C; medians to RESULTS.md.

BENCH_ROUNDS (3) and BENCH_SECONDS (5 per load) shorten a smoke run; BENCH_DATABASE_URL adds SecureShare on
PostgreSQL (its tables are dropped and made anew: give the bench a database of its own).
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.benchmarks import files, load, report
from tests.benchmarks.peers import BarePage, Snappass
from tests.benchmarks.profile_view import profile_view
from tests.benchmarks.secureshare import SecureShare

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
PAGE_CONNECTIONS = 16


def _record(figures: dict, name: str, stats: load.Stats, notes: list[str]) -> None:
    if not stats.requests:
        notes.append(f"{name}: no request completed within a round's load; raise BENCH_SECONDS.")
        return
    for field in ("rps", "p50", "p95", "p99"):
        figures.setdefault(f"{name}.{field}", []).append(getattr(stats, field))
    figures.setdefault(f"{name}.failures", []).append(stats.failures)


def _round_secureshare(target: SecureShare, figures: dict, notes: list[str]) -> None:
    target.start()
    try:
        figures.setdefault("rss", []).append(target.peak_worker_rss(SECONDS))  # first: the workers are fresh
        target.server.settle()
        for name, (request, connections) in target.loads().items():
            if name == "api_unlock" and (why := target.api_unlock_probe()):
                notes.append(f"API unlock skipped: {why}.")
                continue
            _record(figures, name, load.run(target.server.url, request, SECONDS, connections), notes)
            target.server.settle()
        _record(figures, "sign_in", target.sign_in(max(4, int(SECONDS * 2))), notes)
    finally:
        target.stop()
    seconds, left = target.purge_seconds()
    figures.setdefault("purge", []).append(seconds)
    if left:
        notes.append(f"{target.label}: flask purge left {left} of the seeded ended secrets.")
    figures.setdefault("kdf", []).append(target.key_derivation_ms())


def _round_peer(peer, figures: dict, notes: list[str]) -> None:
    peer.start()
    try:
        _record(figures, "page", load.run(peer.server.url, peer.page(), SECONDS, PAGE_CONNECTIONS), notes)
    finally:
        peer.stop()


def _medians(figures: dict) -> dict:
    return {name: statistics.median(values) for name, values in figures.items()}


def main() -> None:
    started = time.monotonic()
    run_dir = Path(tempfile.mkdtemp(prefix="secureshare-bench-"))
    targets = [SecureShare("SecureShare (SQLite)", run_dir / "sqlite", f"sqlite:///{run_dir / 'sqlite' / 'secureshare.db'}")]
    if url := os.environ.get("BENCH_DATABASE_URL"):
        targets.append(SecureShare("SecureShare (PostgreSQL)", run_dir / "postgres", url))
    peers = {"bare": BarePage(run_dir), "snappass": Snappass(run_dir)}
    for target in targets:
        target.start()
        try:
            target.make_accounts()
        finally:
            target.stop()
        target.seed_dashboards()
    print(f"bench: set up in {time.monotonic() - started:.0f} s; {ROUNDS} rounds of {SECONDS:g} s loads", flush=True)

    figures = {target.label: {} for target in targets} | {name: {} for name in peers}
    notes: list[str] = []
    for number in range(1, ROUNDS + 1):
        for target in targets:
            _round_secureshare(target, figures[target.label], notes)
        for name, peer in peers.items():
            _round_peer(peer, figures[name], notes)
        print(f"bench: round {number} done at {time.monotonic() - started:.0f} s", flush=True)

    medians = {label: _medians(values) for label, values in figures.items()}
    for target in targets:
        medians[target.label]["bytes_per_1000"] = target.bytes_per_1000
    profile = profile_view(targets[0])
    text = report.render(medians, [target.label for target in targets], sorted(set(notes)), profile, ROUNDS, SECONDS)
    report.write(text)
    print(text)
    files.main()
    print(f"bench: done in {time.monotonic() - started:.0f} s; run folder {run_dir}")
