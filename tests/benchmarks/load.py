"""Load from a separate process: wrk when it is installed, else a small Python generator; both report the same figures."""

import http.client
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

WRK_DONE = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format('BENCH {"requests": %d, "seconds": %f, "p50": %f, "p95": %f, "p99": %f, '
    .. '"errors": %d, "bad_status": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
"""


@dataclass(frozen=True)
class Load:
    """One request, repeated: what wrk sends on every connection."""

    path: str
    method: str = "GET"
    body: bytes = b""
    headers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Stats:
    rps: float
    p50: float  # milliseconds
    p95: float
    p99: float
    requests: int
    failures: int  # socket errors, timeouts and answers other than 2xx/3xx


def run(base_url: str, load: Load, seconds: float, connections: int) -> Stats:
    """Put `load` on the server for `seconds` over `connections` connections."""
    if shutil.which("wrk"):
        return _run_wrk(base_url, load, seconds, connections)
    return _run_python(base_url, load, seconds, connections)


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal for the ASCII the bench sends


def _run_wrk(base_url: str, load: Load, seconds: float, connections: int) -> Stats:
    lines = [f"wrk.method = {_lua_string(load.method)}", f"wrk.body = {_lua_string(load.body.decode())}"]
    lines += [f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}" for name, value in load.headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n" + WRK_DONE)
    try:
        command = ["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                   "--timeout", "30s", "-s", script.name, base_url.rstrip("/") + load.path]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    finally:
        Path(script.name).unlink()
    figures = json.loads(next(line[6:] for line in output.splitlines() if line.startswith("BENCH ")))
    return Stats(
        rps=figures["requests"] / figures["seconds"],
        p50=figures["p50"],
        p95=figures["p95"],
        p99=figures["p99"],
        requests=figures["requests"],
        failures=figures["errors"] + figures["bad_status"],
    )


def _run_python(base_url: str, load: Load, seconds: float, connections: int) -> Stats:
    """Threads, one per connection, each sending the request again as soon as the answer is in."""
    parts = urlsplit(base_url)
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                connection.request(load.method, load.path, body=load.body or None, headers=load.headers)
                response = connection.getresponse()
                response.read()
                connection.close()
                ok = response.status < 400
            except OSError:
                ok = False
            with lock:
                latencies.append((time.perf_counter() - start) * 1000)
                failures[0] += not ok

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return summarize(latencies, elapsed, failures[0])


def summarize(latencies_ms: list[float], elapsed: float, failures: int = 0) -> Stats:
    """Return the figures of a list of latencies taken over `elapsed` seconds."""
    if len(latencies_ms) < 2:
        value = latencies_ms[0] if latencies_ms else 0.0
        return Stats(len(latencies_ms) / elapsed if elapsed else 0.0, value, value, value, len(latencies_ms), failures)
    cuts = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return Stats(len(latencies_ms) / elapsed, cuts[49], cuts[94], cuts[98], len(latencies_ms), failures)
