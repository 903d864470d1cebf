"""The console in Debian's Chromium, driven by Playwright, against a whole stack of processes.

The stack has its own database and vhost; the page may reach the API's host and nothing
else: every other request is refused and recorded, and the tests assert there was none.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, sync_playwright

from deploy.stack import Stack
from sandbox.gateway import GatewayServer
from shared.db.migrate import rebuild
from tests.conftest import READ_TOKEN, WRITE_TOKEN, reset_vhost
from tests.support.api_client import ApiClient
from tests.support.processes import free_port, free_port_block

DATABASE_URL = os.environ.get(
    "HERALD_BROWSER_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/herald_browser"
)
VHOST = os.environ.get("HERALD_BROWSER_VHOST", "herald_browser")
GATEWAY_TOKEN = "browser-gateway-token"
CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps reaching for Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# Chromium logs every 4xx answer; the API refusing bad input is expected, a CSP refusal is not.
API_ANSWERED = "Failed to load resource: the server responded with a status of"
# Set to a folder to keep screenshots of the main pages (the README's come from here).
SCREENSHOTS = os.environ.get("HERALD_CONSOLE_SCREENSHOTS")


@dataclass
class Console:
    stack: Stack
    gateway: GatewayServer
    api: ApiClient
    url: str
    outside_requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """api, scheduler, a sender and stats on a fresh database, with a write and a read token."""
    rebuild(DATABASE_URL)
    reset_vhost(VHOST)
    gateway = GatewayServer(token=GATEWAY_TOKEN).start()
    api_port = free_port()
    env = {
        "HERALD_DATABASE_URL": DATABASE_URL,
        "HERALD_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
        "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write,{READ_TOKEN}:read",
        "HERALD_API_PORT": str(api_port),
        "HERALD_TICK_INTERVAL_S": "0.1",
        "HERALD_RETRY_DELAYS_MS": "1000,2000",
        "HERALD_GATEWAY_URL": gateway.url,
        "HERALD_GATEWAY_TOKEN": GATEWAY_TOKEN,
        # A breaker that opens after a few failures and is heard of within a second.
        "HERALD_BREAKER_MIN_CALLS": "20",
        "HERALD_BREAKER_OPEN_S": "2",
        "HERALD_SENDER_HEALTH_S": "1",
    }
    log_dir = Path(tmp_path_factory.mktemp("logs"))
    stack = Stack(env=env, senders=1, log_dir=log_dir, metrics_base=free_port_block(16))
    url = f"http://127.0.0.1:{api_port}"
    stack.start()
    try:
        stack.wait_ready(url)
        yield Console(stack, gateway, ApiClient(url, WRITE_TOKEN), url)
    finally:
        stack.stop()
        gateway.stop()
        for log in sorted(log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) that may reach only the API's host."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    problems: list[str] = []

    def only_the_api(route: Route) -> None:
        if route.request.url.startswith(console.url + "/"):
            route.continue_()
        else:
            console.outside_requests.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_api)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and not message.text.startswith(API_ANSWERED)
            else None
        ),
    )
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    yield page
    context.close()
    assert not console.outside_requests, console.outside_requests
    assert not problems, problems


def sign_in(page: Page, console: Console, token: str = WRITE_TOKEN) -> None:
    page.goto(f"{console.url}/console")
    page.fill("#token", token)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#nav:not([hidden])")


def screenshot(page: Page, name: str) -> None:
    """Keep a screenshot for the README when HERALD_CONSOLE_SCREENSHOTS names a folder."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
