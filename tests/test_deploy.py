"""The deployment pieces run for real on this host: gunicorn with gunicorn.conf.py, and the container's
deploy/entrypoint.sh against PostgreSQL, as the container would run it (no container engine here)."""

import base64
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from schema import new_unique_id
from tests.helpers import free_port, log_spellings, service_url
from tests.test_migrations import _drop_everything

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BOOT_LIMIT_SECONDS = 60



def _keys() -> dict:
    return {"SECRET_KEY": secrets.token_hex(32), "ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode()}


def _get(port: int, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    """GET `path` without following redirects."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@contextmanager
def _serving(command: list, env: dict):
    """Run `command` until gunicorn has booted a worker; yield the output lines so far; stop it with SIGTERM.

    A timer kills a process that has not booted within the limit, so the test ends either way.
    """
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(BOOT_LIMIT_SECONDS, process.kill)
    watchdog.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Booting worker" in line:
                break
        else:
            pytest.fail("the server exited before serving:\n" + "".join(lines))
        watchdog.cancel()
        yield lines
    finally:
        watchdog.cancel()
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=BOOT_LIMIT_SECONDS)
        lines.append(rest)
        lines.append(f"exit code {process.returncode}\n")


def test_access_log_has_the_request_line_but_no_share_id(tmp_path):
    access_log = tmp_path / "access.log"
    port = free_port()
    env = {
        **os.environ,
        **_keys(),
        "SECURESHARE_TEST_DIR": str(tmp_path),
        "SECURESHARE_TEST_HOST": f"127.0.0.1:{port}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
    }
    command = [BIN / "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", access_log, "tests.browser.serve:application"]
    share_id, other_id = new_unique_id(), new_unique_id()
    spellings = log_spellings(share_id)
    with _serving(command, env) as output:
        responses = [_get(port, sent, {"Referer": f"http://127.0.0.1:{port}/view/{other_id}"}) for sent, _ in spellings]
        # Requests gunicorn refuses itself: its warning quotes the first one, its access log has the second.
        for refused in (f"GET /view/{share_id}\r\n\r\n", f"GET /view/{share_id} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
                raw.sendall(refused.encode())
                assert raw.recv(100).startswith(b"HTTP/1.1 400")

    log = access_log.read_text()
    assert "Invalid HTTP request line: 'GET /view/[id]'" in "".join(output)
    assert responses[0].getheader("Server") == "gunicorn"  # no version, as before the config file
    for leaked in (share_id, other_id, spellings[8][0].removeprefix("/view/")):
        assert leaked not in log and leaked not in "".join(output)
    for (_sent, shown), response in zip(spellings, responses, strict=True):
        assert f'"GET {shown} HTTP/1.1" {response.status} ' in log, log
    assert '"GET /view/[id] HTTP/1.1" 400 ' in log


@pytest.fixture
def postgres():
    """An engine on the PostgreSQL database named by POSTGRES_URL, emptied before and after the test."""
    engine = sa.create_engine(service_url("POSTGRES_URL", "PostgreSQL"))
    _drop_everything(engine)
    yield engine
    _drop_everything(engine)
    engine.dispose()


def _url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _entrypoint_env(database_url: str, port: int) -> dict:
    """The environment the container gives the entrypoint, with a free loopback port instead of 0.0.0.0:8000."""
    return {
        **os.environ,
        **_keys(),
        "APP_CONFIG": "production",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": database_url,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def test_entrypoint_migrates_then_serves_and_stops_gracefully(postgres):
    port = free_port()
    with _serving(["deploy/entrypoint.sh"], _entrypoint_env(_url(postgres), port)) as output:
        tables = set(sa.inspect(postgres).get_table_names())
        assert {"user", "secret", "access_event", "user_session", "api_token", "alembic_version"} <= tables
        assert _get(port, "/healthz").status == 200

    text = "".join(output)
    assert text.index("Database ready.") < text.index("Booting worker")
    assert text.rstrip().endswith("exit code 0"), text  # SIGTERM: gunicorn finished its requests and left


def test_entrypoint_exits_non_zero_without_starting_gunicorn_when_migrations_fail():
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    result = subprocess.run(
        ["deploy/entrypoint.sh"],
        cwd=REPO,
        env=_entrypoint_env(unreachable, free_port()),
        capture_output=True,
        text=True,
        timeout=BOOT_LIMIT_SECONDS,
    )
    assert result.returncode != 0
    assert "Error: The database could not be migrated: " in result.stderr  # one line from init-db, no traceback
    assert "Traceback" not in result.stderr
    assert "database migrations failed, not starting gunicorn" in result.stderr
    assert "gunicorn" not in result.stdout and "Listening at" not in result.stderr


def test_container_healthcheck_passes_against_the_entrypoint(postgres):
    port = free_port()
    env = _entrypoint_env(_url(postgres), port)
    with _serving(["deploy/entrypoint.sh"], env):
        assert _get(port, "/readyz").status == 200  # the worker has loaded the app and reaches the database
        check = subprocess.run([BIN / "python", "deploy/healthcheck.py"], cwd=REPO, env=env, timeout=30, check=False)
    assert check.returncode == 0


def _dockerfile_copy_sources() -> list[str]:
    """The repository paths the Dockerfile copies into the image."""
    sources = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources += line.split()[1:-1]
    return sources


def _runs_in_the_image(path: str) -> bool:
    """Tell whether a tracked file is part of the running app (cli.py is the client, run elsewhere)."""
    if path.startswith("static/qrcodes/"):
        return False
    top_level_module = path.endswith(".py") and "/" not in path and path != "cli.py"
    deploy_script = path.startswith("deploy/") and path.endswith((".sh", ".py"))  # not the nginx example
    app_files = path.startswith(("templates/", "static/", "migrations/")) or path == "requirements.txt"
    return top_level_module or deploy_script or app_files


def test_the_image_gets_every_file_it_runs_and_no_qr_codes():
    patterns = _dockerfile_copy_sources()
    assert all(any(REPO.glob(pattern)) for pattern in patterns), patterns
    sources = [path.relative_to(REPO).as_posix() for pattern in patterns for path in REPO.glob(pattern)]
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    copied = lambda path: any(path == source or path.startswith(f"{source.rstrip('/')}/") for source in sources)  # noqa: E731
    assert [path for path in tracked if _runs_in_the_image(path) and not copied(path)] == []
    assert not any(source.startswith("static/qrcodes") or source in {"static", "."} for source in sources)


def test_compose_takes_keys_from_the_environment_and_waits_for_healthy_services():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    app_env = services["app"]["environment"]
    for name in ("SECRET_KEY", "ENCRYPTION_KEYS", "PUBLIC_BASE_URL"):
        assert app_env[name] == f"${{{name}:?set {name}}}"
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    assert "@db:5432/" in app_env["DATABASE_URL"] and "${POSTGRES_PASSWORD" in app_env["DATABASE_URL"]
    assert app_env["RATELIMIT_STORAGE_URI"].startswith("redis://redis:")
    assert services["app"]["depends_on"] == {name: {"condition": "service_healthy"} for name in ("db", "redis")}
    assert all("healthcheck" in services[name] for name in ("db", "redis"))  # the app's is the image's HEALTHCHECK
    mounted = {volume.split(":")[0] for service in services.values() for volume in service.get("volumes", [])}
    assert mounted == set(compose["volumes"])


def test_compose_runs_the_purge_every_minute_beside_the_app():
    """Fault: the container setup had no purge, so expired content waited for its owner to open the dashboard."""
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    maintenance, app_env = services["maintenance"], services["app"]["environment"]
    assert maintenance["entrypoint"] == ["/app/deploy/maintain.sh"]
    assert maintenance["environment"] == {name: value for name, value in app_env.items() if "GUNICORN" not in name
                                          and name != "WEB_CONCURRENCY"}  # fmt: skip
    assert maintenance["depends_on"] == {"app": {"condition": "service_healthy"}}


def test_maintain_script_purges_every_interval_and_stops_at_once(tmp_path):
    env = {
        **os.environ,
        **_keys(),
        "APP_CONFIG": "production",
        "PUBLIC_BASE_URL": "https://secrets.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'maintained.db'}",
        "MAINTAIN_EVERY_SECONDS": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    subprocess.run([BIN / "flask", "--app", "app", "init-db"], cwd=REPO, env=env, check=True, capture_output=True)
    process = subprocess.Popen(["deploy/maintain.sh"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    runs = [process.stdout.readline() for _ in range(4)][::2]  # two purges a second apart, each with a delivery
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) != 0  # ended by the signal, not after another minute
    process.stdout.close()
    assert all(line.startswith("Expired 0, purged 0.") for line in runs), runs


def _systemd_environment(text: str) -> dict:
    """Read an EnvironmentFile as systemd does for plain lines: a comment only at a line's start, a value in quotes
    unquoted, any other value kept as written (an inline `# …` too, which a shell would drop)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
            value = value[1:-1]
        values[key] = value
    return values


def test_the_documented_email_settings_read_alike_by_systemd_and_the_shell(tmp_path):
    """docs/deploy.md's mail lines go into /etc/secureshare/env: systemd reads it, and step 3's shell sources it."""
    block = (REPO / "docs" / "deploy.md").read_text().split("## Email", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    env_file = tmp_path / "env"
    env_file.write_text(block)
    expected = _systemd_environment(block)
    dump = f'set -a && . "{env_file}" && set +a && for k in {" ".join(expected)}; do printf "%s=%s\\0" "$k" "${{!k}}"; done'
    shell = subprocess.run(["bash", "-c", dump], capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert shell.returncode == 0, shell.stderr
    assert dict(item.split("=", 1) for item in shell.stdout.split("\0") if item) == expected
