"""Processes the bench starts on 127.0.0.1 free ports: gunicorn (2 sync workers) and redis-server, stopped by their ids."""

import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKERS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: a server stopped at start; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: nothing answered on port {port}; see {log}")


class Gunicorn:
    """`app_spec` under gunicorn with the settings every target shares: 2 sync workers, no access log."""

    def __init__(self, gunicorn: Path, app_spec: str, env: dict, log: Path, cwd: Path = REPO, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        # No config file (not even the project's gunicorn.conf.py): every target runs with exactly these settings.
        command = [str(gunicorn), "--config", "/dev/null", "--bind", f"127.0.0.1:{self.port}", "--workers", str(WORKERS),
                   "--worker-class", "sync", "--threads", "1", "--timeout", "120", app_spec]  # fmt: skip
        with log.open("ab") as output:
            self.process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=output, stderr=output)
        _wait_for_port(self.port, self.process, log)
        deadline = time.monotonic() + 60
        while len(self.worker_pids()) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(WORKERS * 4):
            self.settle()  # both workers booted and warm: the first requests pay for imports otherwise

    def settle(self) -> None:
        """Return once the server has answered everything sent before (load generators leave requests in flight)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        connection.request("GET", "/")
        connection.getresponse().read()
        connection.close()

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Redis:
    """A throw-away redis-server for snappass: loopback, a free port, no persistence."""

    def __init__(self, log: Path):
        self.port = free_port()
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with log.open("ab") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=output)
        _wait_for_port(self.port, self.process, log)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Return a process's resident memory (VmRSS) or its peak (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0
