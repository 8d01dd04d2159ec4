"""A tiny HTTP client for the bench's set-up steps: keeps cookies, never follows redirects, finds CSRF tokens."""

import http.client
import re
import time
from urllib.parse import urlencode, urlsplit

TOKEN_RE = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"|<meta name="csrf-token" content="([^"]+)"')


class Browser:
    """One visitor: its cookies, and form posts that carry the token of the page they came from."""

    def __init__(self, base_url: str):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """Send one request; return (status, headers, text, seconds)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        all_headers = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = self.cookie_header()
        start = time.perf_counter()
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        seconds = time.perf_counter() - start
        connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value and "max-age=0" not in header.lower() and "expires=thu, 01 jan 1970" not in header.lower():
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response.status, response.headers, text, seconds

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def token(self, path: str) -> str:
        """Return the CSRF token of the first form (or meta tag) on `path`."""
        status, _, text, _ = self.request("GET", path)
        match = TOKEN_RE.search(text)
        if status != 200 or not match:
            raise SystemExit(f"bench: no CSRF token on {path} (status {status})")
        return match.group(1) or match.group(2)

    def form_body(self, path: str, fields: dict, token_page: str | None = None) -> bytes:
        return urlencode({"csrf_token": self.token(token_page or path), **fields}).encode()

    def post_form(self, path: str, fields: dict, token_page: str | None = None):
        body = self.form_body(path, fields, token_page)
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
