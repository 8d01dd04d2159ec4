"""Browser fixtures: the app under gunicorn on 127.0.0.1, and Debian's Chromium driven by Playwright."""

import os
from pathlib import Path

import pytest

from tests.browser.production import NGINX, start_production_site
from tests.helpers import service_url, serving_the_test_app

CHROMIUM = Path("/usr/bin/chromium")
# Keep Chromium quiet and on loopback (see shared/BROWSER.md).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Reported by a page script the tests add (through the DevTools protocol, so the CSP does not apply to it).
CSP_REPORTER = (
    "document.addEventListener('securitypolicyviolation', "
    "e => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("SECURESHARE_REQUIRE_SERVICES"):
        pytest.fail("/usr/bin/chromium is required here (apt-get install -y chromium)")
    pytest.skip("no /usr/bin/chromium on this machine")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """Serve the app with gunicorn on 127.0.0.1 for the whole browser session; yield its base URL."""
    _require_chromium()
    with serving_the_test_app(tmp_path_factory.mktemp("live")) as url:
        yield url


@pytest.fixture(scope="package")
def production_site(tmp_path_factory):
    """The production path (see production.py), started once for the production suites of this package."""
    database_url = service_url("POSTGRES_URL", "PostgreSQL")
    redis_url = service_url("REDIS_URL", "Redis")
    if not NGINX.exists():
        if os.environ.get("SECURESHARE_REQUIRE_SERVICES"):
            pytest.fail("/usr/sbin/nginx is required here (apt-get install -y nginx)")
        pytest.skip("no /usr/sbin/nginx on this machine")
    site, stop = start_production_site(tmp_path_factory.mktemp("production"), database_url, redis_url)
    yield site
    stop()


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


class ConsoleWatch:
    """Collects console errors, page errors and CSP violations of every page in a context.

    Chromium also logs a document answered with a 4xx (a wrong password is a 403, a gone secret a 410): those
    statuses are the app's answer, asserted by the tests, so only a failing subresource counts.
    """

    def __init__(self):
        self.problems: list[str] = []

    def attach(self, page) -> None:
        page.on("console", lambda message: self._on_console(page, message))
        page.on("pageerror", lambda error: self.problems.append(str(error)))

    def _on_console(self, page, message) -> None:
        if message.type != "error":
            return
        is_document_status = message.text.startswith("Failed to load resource") and message.location.get("url") == page.url
        if not is_document_status:
            self.problems.append(f"{message.text} ({message.location.get('url')})")


@pytest.fixture
def console():
    watch = ConsoleWatch()
    yield watch
    assert watch.problems == [], watch.problems


class ContextMaker:
    """Makes browser contexts (desktop by default) on one site, whose pages are watched for console errors and CSP
    violations; closes them all at the end."""

    def __init__(self, browser, base_url: str, console: ConsoleWatch, timeout_ms: int | None = None, **defaults):
        self.browser, self.base_url, self.console, self.defaults = browser, base_url, console, defaults
        self.timeout_ms = timeout_ms
        self.contexts = []

    def __call__(self, viewport=DESKTOP, **options):
        context = self.browser.new_context(base_url=self.base_url, viewport=viewport, **self.defaults, **options)
        if self.timeout_ms:
            context.set_default_timeout(self.timeout_ms)
        context.add_init_script(CSP_REPORTER)
        context.on("page", self.console.attach)
        self.contexts.append(context)
        return context

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def new_context(browser, live_server, console):
    maker = ContextMaker(browser, live_server, console)
    yield maker
    maker.close()


@pytest.fixture
def page(new_context):
    return new_context().new_page()


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot for reviewers (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
