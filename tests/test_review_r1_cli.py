"""Security review r1: cli.py against a server whose JSON nests too deep for Python's parser (xfail strict until
fixed: see tests/security/test_review_r1.py)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.test_cli import home, run_cli  # noqa: F401 - the fixture is used by name

DEEP_JSON = b"[" * 100_000


class DeepJsonHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(DEEP_JSON)))
        self.end_headers()
        self.wfile.write(DEEP_JSON)

    def log_message(self, *args) -> None:
        """Keep the test's output quiet."""


@pytest.fixture
def deep_json_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), DeepJsonHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.mark.xfail(strict=True, reason="r1-6: json.loads raises RecursionError, which cli.call does not catch")
def test_deeply_nested_json_is_a_refusal_not_a_traceback(deep_json_server, home):  # noqa: F811 - the fixture
    result = run_cli("open", f"{deep_json_server}/view/{'A' * 22}", stdin="pw\n", home=home)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
