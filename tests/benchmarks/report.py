"""The bench's table: figures with their ratio to the bare page or snappass, and each target met or missed."""

import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
BASELINE_PROFILE = Path(__file__).with_name("profile_before.txt")
PAGE_ROWS = [
    ("landing", "Landing page `GET /`"),
    ("view", "Recipient's page `GET /view/<id>`"),
    ("view_de", "Recipient's page in German (`Accept-Language: de-DE…`)"),
    ("unlock", "Unlock `POST /view/<id>` (right password)"),
    ("api_unlock", "API unlock `POST /api/secrets/<id>/unlock`"),
    ("create", "Create `POST /create`"),
    ("dashboard_small", "Dashboard, 20 secrets"),
    ("dashboard_large", "Dashboard, 100,000 secrets"),
    ("sign_in", "Sign-in `POST /login` (one at a time)"),
]


def _requests(figures: dict, name: str) -> str:
    if f"{name}.rps" not in figures:
        return "not measured"
    failures = figures[f"{name}.failures"]
    warning = f" · {failures:.0f} failed" if failures else ""
    return (
        f"{figures[f'{name}.rps']:.0f} req/s · p50 {figures[f'{name}.p50']:.1f} ms · p95 {figures[f'{name}.p95']:.1f} ms"
        f" · p99 {figures[f'{name}.p99']:.1f} ms{warning}"
    )


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def _targets(figures: dict, bare: dict, snappass: dict, sqlite: bool) -> list[tuple[str, str, str]]:
    """Return (target, measured, met/missed) for issue 12's targets that this run measured."""
    rows = []
    if "view.rps" in figures and "page.rps" in bare and "page.rps" in snappass:
        ratio_bare = figures["view.rps"] / bare["page.rps"]
        ratio_peer = figures["view.rps"] / snappass["page.rps"]
        rows.append(("`GET /view/<id>` ≥ 0.6 x bare page", f"{ratio_bare:.2f} x", _verdict(ratio_bare >= 0.6)))
        rows.append(("`GET /view/<id>` ≥ snappass preview", f"{ratio_peer:.2f} x", _verdict(ratio_peer >= 1)))
    if "view_de.rps" in figures and "page.rps" in bare:
        ratio_de = figures["view_de.rps"] / bare["page.rps"]
        rows.append(("`GET /view/<id>` in German ≥ 0.55 x bare page (issue 20)", f"{ratio_de:.2f} x", _verdict(ratio_de >= 0.55)))
    if "unlock.p50" in figures and "kdf" in figures:
        limit = figures["kdf"] + 10
        rows.append(("unlock p50 ≤ key derivation + 10 ms", f"{figures['unlock.p50']:.0f} ms vs {limit:.0f} ms",
                     _verdict(figures["unlock.p50"] <= limit)))  # fmt: skip
    if "dashboard_large.p95" in figures and "dashboard_small.p95" in figures:
        ratio = figures["dashboard_large.p95"] / figures["dashboard_small.p95"]
        rows.append(("dashboard p95, 100,000 ≤ 1.5 x 20 secrets", f"{ratio:.2f} x", _verdict(ratio <= 1.5)))
    if sqlite:
        rows.append(("purge of 100,000 ≤ 3 s (SQLite)", f"{figures['purge']:.2f} s", _verdict(figures["purge"] <= 3)))
    megabytes = figures["rss"] * 1.048576
    rows.append(("peak worker RSS ≤ 120 MB at 4 concurrent unlocks", f"{megabytes:.0f} MB", _verdict(megabytes <= 120)))
    return rows


def _compared(name: str, first: dict, bare: dict, snappass: dict) -> str:
    """Return a figure's ratio to the bare page, snappass or the key derivation; empty when either side is missing."""
    try:
        if name == "landing":
            return f"{first['landing.rps'] / bare['page.rps']:.2f} x bare page"
        if name == "view":
            view = first["view.rps"]
            return f"{view / bare['page.rps']:.2f} x bare page, {view / snappass['page.rps']:.2f} x snappass"
        if name == "view_de":
            german = first["view_de.rps"]
            return f"{german / bare['page.rps']:.2f} x bare page, {german / first['view.rps']:.2f} x English"
        if name in {"unlock", "api_unlock"}:
            return f"p50 = key derivation {first[f'{name}.p50'] - first['kdf']:+.0f} ms"
        if name == "dashboard_large":
            return f"p95 {first['dashboard_large.p95'] / first['dashboard_small.p95']:.2f} x the 20-secret dashboard"
    except KeyError:
        pass
    return ""


def _figure_table(medians: dict, labels: list[str]) -> list[str]:
    bare, snappass = medians["bare"], medians["snappass"]
    lines = ["| Figure | " + " | ".join(labels) + " | Compared with |", "|---" * (len(labels) + 2) + "|"]
    for name, title in PAGE_ROWS:
        cells = [_requests(medians[label], name) for label in labels]
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {_compared(name, medians[labels[0]], bare, snappass)} |")
    singles = [
        ("Key derivation alone (Argon2id, the shipped cost)", lambda f: f"{f['kdf']:.0f} ms"),
        ("Purge of 100,000 ended secrets (`flask purge`)", lambda f: f"{f['purge']:.2f} s"),
        ("Peak RSS per worker, 4 concurrent unlocks", lambda f: f"{f['rss']:.0f} MiB"),
        ("Database bytes per 1,000 secrets (rows + indexes)", lambda f: f"{f['bytes_per_1000'] / 1024:.0f} KiB"),
    ]
    for title, show in singles:
        lines.append(f"| {title} | " + " | ".join(show(medians[label]) for label in labels) + " | |")
    blank = " | ".join("—" for _ in labels)
    lines.append(f"| Bare Flask page (one row, Jinja) | {blank} | {_requests(bare, 'page')} |")
    lines.append(f"| snappass 1.6.2 preview `GET /<key>` | {blank} | {_requests(snappass, 'page')} |")
    return lines


def _command_version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not installed"


def _machine() -> list[str]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory_gib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:")) / 1024 / 1024
    commit = _command_version(["git", "rev-parse", "--short", "HEAD"])
    return [
        f"- When: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}",
        f"- CPU: {os.cpu_count()} cores ({platform.processor() or platform.machine()}); memory {memory_gib:.1f} GiB",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, PostgreSQL: {_postgres_version()}",
        f"- Load: {_command_version(['wrk', '--version']) if _has('wrk') else 'Python load generator (wrk not installed)'}",
    ]


def _has(program: str) -> bool:
    from shutil import which

    return which(program) is not None


def _postgres_version() -> str:
    if url := os.environ.get("BENCH_DATABASE_URL"):
        from sqlalchemy import create_engine, text

        with create_engine(url).connect() as connection:
            return connection.execute(text("SHOW server_version")).scalar_one()
    return _command_version(["psql", "--version"]) + " (client; not benchmarked: BENCH_DATABASE_URL unset)"


def render(medians: dict, labels: list[str], notes: list[str], profile: str, rounds: int, seconds: float) -> str:
    lines = ["# SecureShare benchmark", "", "Written by `make bench` (tests/benchmarks/). Each figure is the median of "
             f"{rounds} rounds; in each round SecureShare, the bare page and snappass take turns (A B C), "
             f"{seconds:g} s of load each.", ""]  # fmt: skip
    lines += ["## Machine", "", *_machine(), ""]
    lines += ["## Figures", "", *_figure_table(medians, labels), ""]
    lines += ["## Targets (issue 12): met or missed, never pass/fail", ""]
    for label in labels:
        lines += [f"{label}:", "", "| Target | Measured | |", "|---|---|---|"]
        rows = _targets(medians[label], medians["bare"], medians["snappass"], "SQLite" in label)
        lines += [f"| {target} | {measured} | {verdict} |" for target, measured, verdict in rows]
        lines.append("")
    if notes:
        lines += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    lines += [
        "## How it was measured", "",
        "- gunicorn, 2 sync workers, for every target; SecureShare with the shipped key-derivation and password-hash "
        "costs, HSTS on, rate limits on but set far above the load; SQLite in a temporary folder.",
        "- wrk from a separate process on 127.0.0.1: 16 connections for pages; 1 for the unlocks, so their p50 is "
        "service time, not queueing; 2 (one per worker) for create; "
        "peak RSS is the busiest fresh worker's VmHWM after 4 concurrent unlocks.",
        "- Sign-in runs one at a time, each on a fresh browser. Purge, key derivation and database size are measured "
        "in process; 100,000 rows are seeded with bulk inserts of real sealed rows.", "",
    ]  # fmt: skip
    lines += ["## Profile of `GET /view/<id>` (pyinstrument, 500 requests in process, % of total)", ""]
    if BASELINE_PROFILE.exists():
        lines += ["Before the speedups of issue 12:", "", "```", BASELINE_PROFILE.read_text().rstrip(), "```", ""]
    lines += ["This run:", "", "```", profile, "```", ""]
    return "\n".join(lines)


def write(text: str) -> None:
    RESULTS.write_text(text)
