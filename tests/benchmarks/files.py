"""`make bench`, attached files: a worker's peak memory for a 25 MiB upload and download, and the core's throughput.

Alone: `python -m tests.benchmarks files` (writes the figures to tests/benchmarks/FILES.md and prints them).

Memory: each measurement on fresh gunicorn workers, their resident memory sampled every few milliseconds while one
request runs; the figure is the busiest worker's peak over its own idle size. A create derives a key (Argon2id,
KDF_MEMORY_KIB) whether or not it carries files, so the upload is set against the same create without a file.
Throughput: the Flask-free core alone, 25 MiB sealed into a SQLite file (encrypt + insert) and opened back
(select + decrypt), in 64 KiB chunks.
"""

import base64
import io
import os
import secrets
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

import attachments
import vault
from schema import Base, User, utcnow
from tests.benchmarks.client import Browser
from tests.benchmarks.secureshare import SECRET_PASSWORD, SecureShare
from tests.benchmarks.servers import rss_mib

FILE_BYTES = 25 * 1024 * 1024
PIECE = 64 * 1024  # what Werkzeug's parser hands a stream at a time, about
GOAL_MIB = 32
GOAL_MB_PER_S = 50
RESULTS = Path(__file__).with_name("FILES.md")


def _settled(pids: list[int], seconds: float = 20) -> None:
    """Wait until the workers' resident memory stops moving: a fresh worker shrinks for a while after its start."""
    deadline = time.monotonic() + seconds
    before = [rss_mib(pid) for pid in pids]
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = [rss_mib(pid) for pid in pids]
        if all(abs(a - b) < 0.5 for a, b in zip(before, now, strict=True)):
            return
        before = now


class PeakSampler:
    """Sample the workers' resident memory in a thread until stopped; keep each one's highest."""

    def __init__(self, pids: list[int]):
        _settled(pids)
        self.idle = {pid: rss_mib(pid) for pid in pids}
        self.peak = dict(self.idle)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in self.peak:
                self.peak[pid] = max(self.peak[pid], rss_mib(pid))
            time.sleep(0.002)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def growth(self) -> float:
        """The busiest worker's peak over its idle size, in MiB."""
        return max(self.peak[pid] - self.idle[pid] for pid in self.peak)


def _create_form(browser: Browser, with_file: bool) -> tuple[bytes, str]:
    fields = MultiDict({
        "csrf_token": browser.token("/create"), "title": "Bench file", "content": "" if with_file else "no file",
        "password": SECRET_PASSWORD, "confirm": SECRET_PASSWORD, "expiration": "24h", "custom_unit": "hours",
        "blur_level": "10", "max_views": "",
    })  # fmt: skip
    if with_file:
        fields.add("files", FileStorage(io.BytesIO(os.urandom(FILE_BYTES)), "bench.bin"))
    boundary, body = encode_multipart(fields)
    return body, f"multipart/form-data; boundary={boundary}"


def _create(target: SecureShare, browser: Browser, with_file: bool) -> tuple[str, float]:
    """Create a secret through the page, measuring the workers; return its share id and the growth."""
    body, content_type = _create_form(browser, with_file)
    with PeakSampler(target.server.worker_pids()) as sampler:
        status, headers, _, _ = browser.request("POST", "/create", body, {"Content-Type": content_type})
    if status != 302:
        raise SystemExit(f"bench: a create with {'a file' if with_file else 'no file'} answered {status}")
    return headers["Location"].rsplit("/", 1)[1], sampler.growth()


def _download_link(target: SecureShare, share_id: str) -> str:
    recipient = Browser(target.server.url)
    token = recipient.token(f"/view/{share_id}")
    fields = f"csrf_token={token}&password={SECRET_PASSWORD}".encode()
    status, _, text, _ = recipient.request(
        "POST", f"/view/{share_id}", fields, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    start = text.find(f"/view/{share_id}/files/")
    if status != 200 or start < 0:
        raise SystemExit(f"bench: unlocking the file's secret answered {status}")
    return text[start : text.index('"', start)]


def worker_memory(run_dir: Path) -> dict[str, float]:
    """Each measurement on fresh workers: the create without and with a file, then the download."""
    target = SecureShare("files", run_dir, f"sqlite:///{run_dir / 'secureshare.db'}")
    figures = {}
    target.start()
    try:
        browser = target._register("benchfiles")
        _settled(target.server.worker_pids())
        figures["idle_rss"] = max(rss_mib(pid) for pid in target.server.worker_pids())
    finally:
        target.stop()
    for with_file in (False, True):
        target.start()
        try:
            browser.port = target.server.port
            share_id, growth = _create(target, browser, with_file)
            figures["upload_growth" if with_file else "create_growth"] = growth
        finally:
            target.stop()
    target.start()
    try:
        browser.port = target.server.port
        link = _download_link(target, share_id)
    finally:
        target.stop()
    target.start()
    try:
        downloader = Browser(target.server.url)
        with PeakSampler(target.server.worker_pids()) as sampler:
            status, _, _, _ = downloader.request("GET", link)
        if status != 200:
            raise SystemExit(f"bench: the download answered {status}")
        figures["download_growth"] = sampler.growth()
    finally:
        target.stop()
    return figures


def throughput(run_dir: Path) -> dict[str, float]:
    """Seal 25 MiB into a SQLite file and open it back with the core alone; MB/s each way."""
    engine = create_engine(f"sqlite:///{run_dir / 'throughput.db'}")
    Base.metadata.create_all(engine)
    keys = vault.KeyRing.parse("k1:" + _b64key(), vault.KdfCost(19456, 2, 1))
    piece = os.urandom(PIECE)
    with Session(engine) as session:
        session.add(User(id=1, username="bench", email="bench@example.org", password_hash="x"))
        session.commit()
        start = time.perf_counter()
        upload = attachments.Upload(session, FILE_BYTES, 1)
        sink = upload.open_file("bench.bin", "application/octet-stream")
        for _ in range(FILE_BYTES // PIECE):
            sink.write(piece)
        attached = upload.finish()
        sealed_seconds = time.perf_counter() - start
        created = vault.create(
            session, keys, 1, "bench", "", "a-bench-password-42", timedelta(hours=1), None, 0, utcnow(), attached=attached
        )
        files_key = attached.files_key
        start = time.perf_counter()
        [file] = attachments.list_files(session, created.share_id, files_key)
        opened = sum(len(chunk) for chunk in attachments.open_chunks(session, created.share_id, files_key, file))
        opened_seconds = time.perf_counter() - start
    engine.dispose()
    assert opened == FILE_BYTES
    return {"seal_mb_s": FILE_BYTES / 1e6 / sealed_seconds, "open_mb_s": FILE_BYTES / 1e6 / opened_seconds}


def _b64key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def render(figures: dict[str, float]) -> str:
    upload_over_create = figures["upload_growth"] - figures["create_growth"]
    download = figures["download_growth"]
    rows = [
        ("idle worker (resident)", f"{figures['idle_rss']:.1f} MiB", ""),
        ("a create with no file: peak over idle", f"{figures['create_growth']:.1f} MiB", "the key derivation"),
        ("a create with a 25 MiB file: peak over idle", f"{figures['upload_growth']:.1f} MiB", ""),
        ("the file's share (with file - without)", f"{upload_over_create:.1f} MiB", _verdict(upload_over_create <= GOAL_MIB)),
        ("a 25 MiB download: peak over idle", f"{download:.1f} MiB", _verdict(download <= GOAL_MIB)),
        ("seal (encrypt + insert, SQLite)", f"{figures['seal_mb_s']:.0f} MB/s", _verdict(figures["seal_mb_s"] >= GOAL_MB_PER_S)),
        ("open (select + decrypt, SQLite)", f"{figures['open_mb_s']:.0f} MB/s", _verdict(figures["open_mb_s"] >= GOAL_MB_PER_S)),
    ]  # fmt: skip
    lines = [
        "# Attached files: memory and throughput",
        "",
        f"Written by `python -m tests.benchmarks files` (also run by `make bench`). Goals: within {GOAL_MIB} MiB of an "
        f"idle worker, at least {GOAL_MB_PER_S} MB/s each way.",
        "",
        "| measure | figure | against the goal |",
        "|---|---|---|",
        *(f"| {name} | {figure} | {verdict} |" for name, figure, verdict in rows),
        "",
    ]
    return "\n".join(lines)


def _verdict(met: bool) -> str:
    return "met" if met else "missed"


def main() -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="secureshare-bench-files-"))
    figures = worker_memory(run_dir) | throughput(run_dir)
    text = render(figures)
    RESULTS.write_text(text)
    print(text)
    print(f"bench files: run folder {run_dir}")

