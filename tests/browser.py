"""Browser test helpers: Debian's Chromium under Playwright, the web app served by waitress, failure screenshots.

tests/test_web_browser.py loads this module as a pytest plugin (`pytest_plugins`), so its
fixtures and its report hook apply there. Playwright's own browser downloads are never
used: the tests drive /usr/bin/chromium from the Debian package `chromium`, which
scripts/install-test-deps.sh installs.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Flags that turn off Chromium's sandbox (the tests run as root), GPU, QUIC, first-run set-up and its own
# background traffic (sync, component updates), so that the tests talk only to their servers on 127.0.0.1.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT_DIR = Path(__file__).resolve().parents[1] / "var" / "test-screenshots"
# Milliseconds Playwright waits for a page or an element before failing the test.
TIMEOUT_MS = 10_000

CONSOLE_ERRORS = pytest.StashKey[list]()


def require_chromium() -> str:
    """Return the Chromium path, or skip the test when Chromium is missing (fail in CI, which must have it)."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    message = (f"Chromium not found at {CHROMIUM}; scripts/install-test-deps.sh installs the Debian "
               "package chromium")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session; each test gets its own context (cookies, downloads)."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, request):
    """A page in a fresh browser context; console errors (such as CSP violations) are collected."""
    context = browser.new_context(accept_downloads=True, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(TIMEOUT_MS)
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    request.node.stash[CONSOLE_ERRORS] = errors
    try:
        yield new_page
    finally:
        context.close()


@pytest.fixture
def console_errors(page, request) -> list[str]:
    """The console errors and uncaught exceptions of `page` so far."""
    return request.node.stash[CONSOLE_ERRORS]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Save a full-page screenshot when a test that uses `page` fails, and name the file in the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when not in ("setup", "call") or not report.failed:
        return
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if page is None or page.is_closed():
        return
    from playwright.sync_api import Error as PlaywrightError

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / (re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid) + ".png")
    try:
        page.screenshot(path=str(path), full_page=True)
    except PlaywrightError as error:
        report.sections.append(("screenshot", f"no screenshot saved: {error}"))
    else:
        report.sections.append(("screenshot", f"full-page screenshot of {page.url} saved to {path}"))


class LiveServer:
    """The web app served by waitress on 127.0.0.1 and a free port, in a thread of the test process."""

    def __init__(self, app, threads: int = 4) -> None:
        import waitress

        self._server = waitress.create_server(app, host="127.0.0.1", port=0, threads=threads, ident="ccas-bot-test")
        self.url = f"http://127.0.0.1:{self._server.effective_port}"
        self._thread = threading.Thread(target=self._server.run, name="waitress", daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        """Close the listening socket and every open connection, then wait for the server thread."""
        waitress_log = logging.getLogger("waitress")
        level = waitress_log.level
        # Closing sockets under the running loop makes waitress log errors that mean nothing here.
        waitress_log.setLevel(logging.CRITICAL)
        try:
            while self._server._map:
                for dispatcher in list(self._server._map.values()):
                    dispatcher.handle_close()
            self._server.task_dispatcher.shutdown()
            self._thread.join(timeout=5)
        finally:
            waitress_log.setLevel(level)


def sign_in(page, base_url: str, username: str, password: str) -> None:
    """Sign in through the sign-in form, as a person would."""
    page.goto(f"{base_url}/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
