"""The operator console as an operator uses it: sign in, create with a preview, watch, pause,
retry what failed, import clients, and what a read token and hostile names look like."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import requests
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console, screenshot, sign_in
from tests.conftest import READ_TOKEN, WRITE_TOKEN
from tests.support.waiting import wait_until

LIVE_S = 2.5  # changes must show within 2 s without a reload; a poll is 1.5-2 s


def seed(console: Console, tag: str, n: int, opted_out: int = 0, base: int = 0) -> list[str]:
    """n clients tagged `tag` (the last `opted_out` of them opted out of SMS); their phones."""
    phones = [f"+7{9000000000 + base + i}" for i in range(n)]
    clients = [
        {"phone": phone, "tags": [tag], "attributes": {"first_name": f"Ann{i}"}}
        for i, phone in enumerate(phones)
    ]
    report = console.api.import_clients(clients)
    assert report["rejected"] == 0, report
    for phone in phones[n - opted_out :]:
        (client,) = console.api.request("GET", "/clients", params={"phone": phone})["items"]
        console.api.request("PATCH", f"/clients/{client['id']}", json={"opted_out": ["http"]})
    return phones


def campaign(console: Console, tag: str, **more: object) -> dict:
    ends = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    body = {
        "name": f"campaign {tag}",
        "channel": "http",
        "text": "Hi {{first_name}}",
        "filter": {"tags": [tag]},
        "ends_at": ends.isoformat(),
        **more,
    }
    return console.api.create_campaign(**body)


def test_sign_in_keeps_the_token_in_this_tab_only(page: Page, console: Console) -> None:
    page.goto(f"{console.url}/console")
    page.fill("#token", "not-a-token")
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#sign-in-error")).to_have_text("That token is not valid.")
    sign_in(page, console)
    expect(page.locator("h1")).to_have_text("Campaigns")
    expect(page.locator("#who")).to_have_text("write token")
    assert WRITE_TOKEN not in page.url
    assert page.evaluate("sessionStorage.getItem('herald.console.token')") == WRITE_TOKEN
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    # Another tab of the same browser has its own sessionStorage: it must sign in again.
    other = page.context.new_page()
    other.goto(f"{console.url}/console")
    expect(other.locator("#sign-in")).to_be_visible()
    other.close()
    page.click("#sign-out")
    expect(page.locator("#sign-in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_the_console_is_served_with_a_strict_policy(console: Console) -> None:
    response = requests.get(f"{console.url}/console", timeout=5)
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    html = response.text
    # No inline script: every <script> loads a file of the console's own.
    assert re.findall(r"<script[^>]*>", html) == ['<script type="module" src="/console/app.js">']
    for asset in ("app.js", "api.js", "dom.js", "console.css", "pages/campaign.js"):
        got = requests.get(f"{console.url}/console/{asset}", timeout=5)
        assert got.status_code == 200, asset
        assert got.headers["Content-Security-Policy"] == policy


def test_create_with_a_live_preview_then_watch_it_complete(page: Page, console: Console) -> None:
    phones = seed(console, "create", 120, opted_out=20, base=100_000)
    sign_in(page, console)
    page.click("#nav a[data-nav=new]")
    page.fill("#f-name", "Spring sale")
    page.fill("#f-text", "Hi {{first_name}}, spring is here")
    page.fill("#f-tags", "create")
    # A field the API refuses shows its reason at that field, before anything is stored.
    page.fill("#f-window-start", "09:00")
    page.fill("#f-window-end", "09:00")
    error = page.locator(".field[data-field='send_window.end'] .field-error")
    expect(error).to_have_text("start and end must differ")
    page.fill("#f-window-start", "00:00")
    page.fill("#f-window-end", "23:59")
    expect(error).to_have_text("")
    preview = page.locator("#preview")
    expect(preview.locator("[data-preview=recipients] dd")).to_have_text("100")
    expect(preview.locator("[data-preview=matched] dd")).to_have_text("120")
    expect(preview.locator("[data-preview=left-out] dd")).to_contain_text("20 opted out")
    expect(preview.locator("#sample pre")).to_have_text("Hi Ann0, spring is here")
    expect(preview.locator("[data-preview=finish] dd")).to_contain_text("at")
    expect(preview.locator("[data-preview=sms] dd")).to_have_text(
        "100 segments (100 GSM-7, 0 UCS-2)"
    )
    # E-mail fields show for the e-mail channel only.
    expect(page.locator("#f-subject")).to_be_hidden()
    page.select_option("#f-channel", "email")
    expect(page.locator("#f-subject")).to_be_visible()
    page.select_option("#f-channel", "http")
    expect(page.locator("#f-subject")).to_be_hidden()
    screenshot(page, "create")
    # A test send to one address goes out now and stores nothing.
    page.fill("#test-address", phones[1])
    page.click("#test-send button")
    expect(page.locator("#test-result")).to_contain_text(f"Sent to {phones[1]}")
    listed = console.api.request("GET", "/campaigns", params={"limit": 1000})["items"]
    assert all(c["name"] != "Spring sale" for c in listed)
    page.click("#create")
    page.wait_for_url(re.compile(r"#/campaigns/\d+$"))
    expect(page.locator("#campaign-name")).to_have_text("Spring sale")
    expect(page.locator("#campaign-status")).to_have_text("completed", timeout=60_000)
    expect(page.locator("[data-count=sent] dd")).to_have_text("100")
    expect(page.locator("#summary")).to_contain_text("100.0% done")
    expect(page.locator("#chart svg rect.bar-rect").first).to_be_visible()
    screenshot(page, "campaign")
    page.click("#nav a[data-nav=campaigns]")
    row = page.locator("#campaigns tbody tr", has_text="Spring sale")
    expect(row.locator(".pct")).to_have_text("100.0%")
    expect(row.locator(".status")).to_have_text("completed")
    screenshot(page, "campaigns")


def test_pause_and_resume_with_a_confirmation(page: Page, console: Console) -> None:
    seed(console, "pause", 300, base=200_000)
    created = campaign(console, "pause", rate_limit=20)
    sign_in(page, console)
    page.goto(f"{console.url}/console#/campaigns/{created['id']}")
    expect(page.locator("#campaign-status")).to_have_text("running", timeout=20_000)
    page.click("#pause")
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_be_visible()
    dialog.locator("button.secondary").click()  # "Keep as is": nothing changes
    expect(dialog).to_have_count(0)
    assert console.api.request("GET", f"/campaigns/{created['id']}")["status"] == "running"
    page.click("#pause")
    page.locator("dialog.confirm button.danger").click()
    expect(page.locator("#campaign-status")).to_have_text("paused", timeout=LIVE_S * 1000)
    expect(page.locator("#resume")).to_be_visible()
    expect(page.locator("#pause")).to_have_count(0)
    sent_at_pause = console.api.stats(created["id"])["sent"]
    assert sent_at_pause < 300
    page.click("#resume")
    page.locator("dialog.confirm button.danger").click()
    expect(page.locator("#campaign-status")).to_have_text("running", timeout=LIVE_S * 1000)
    # The counts move on the page without a reload.
    sent = page.locator("[data-count=sent] dd")
    expect(sent).not_to_have_text(str(sent_at_pause), timeout=10_000)


def test_failed_messages_show_their_reasons_and_retry(page: Page, console: Console) -> None:
    seed(console, "retry", 40, base=300_000)
    console.gateway.app.set_behaviour(reject_rate=1.0)
    try:
        created = campaign(console, "retry")
        wait_until(lambda: console.api.stats(created["id"])["failed"] == 40, timeout=30)
    finally:
        console.gateway.app.set_behaviour(reject_rate=0.0)
    sign_in(page, console)
    page.goto(f"{console.url}/console#/campaigns/{created['id']}")
    expect(page.locator("[data-count=failed] dd")).to_have_text("40")
    expect(page.locator("#failed tbody tr")).to_have_count(40)
    expect(page.locator("#failed tbody tr").first.locator(".reason")).not_to_have_text("–")
    page.click("#retry-failed")
    expect(page.locator("#retry-result")).to_have_text("40 failed messages put back to pending.")
    expect(page.locator("[data-count=sent] dd")).to_have_text("40", timeout=30_000)
    expect(page.locator("#failed tbody tr")).to_have_count(0)
    expect(page.locator("#retry-failed")).to_be_hidden()


def test_import_a_csv_with_progress_and_reasons_then_find_and_edit(
    page: Page, console: Console, tmp_path: Path
) -> None:
    rows = ["phone,tags,first_name"]
    rows += [f"+7{9100000000 + i},imported,Bob{i}" for i in range(4500)]
    rows[1001] = "not-a-phone,imported,Bad"  # record 1001: in the first chunk
    rows[3001] = "+7912,imported,Short"  # record 3001: in the second chunk
    csv = tmp_path / "clients.csv"
    csv.write_text("\n".join(rows) + "\n")
    sign_in(page, console)
    page.click("#nav a[data-nav=clients]")
    page.set_input_files("#import-file", str(csv))
    page.click("#import-start")
    status = page.locator("#import-status")
    expect(status).to_have_text(
        re.compile(r"^Imported 4,500 records: 4,498 created, 0 updated, 2 rejected\.$"),
        timeout=60_000,
    )
    expect(page.locator("#import .bar")).to_have_attribute("aria-valuenow", "100")
    reasons = page.locator("#import-reasons tbody tr")
    expect(reasons).to_have_count(2)
    expect(reasons.nth(0).locator("td").nth(0)).to_have_text("1001")
    expect(reasons.nth(0).locator("td").nth(1)).to_have_text("not-a-phone")
    expect(reasons.nth(1).locator("td").nth(0)).to_have_text("3001")
    screenshot(page, "clients")
    # Search by phone prefix (spaces allowed) and tag; open the client and edit a tag.
    page.fill("#q-phone", "+7 910 000 001")
    page.fill("#q-tag", "imported")
    page.click("#client-search button")
    expect(page.locator("#clients tbody tr")).to_have_count(10)
    page.locator("#clients tbody tr").first.locator("a.phone").click()
    expect(page.locator("#client-form h2")).to_contain_text("Client")
    page.fill("#c-tags", "imported, vip")
    page.fill("#c-opted_out", "http")
    page.click("#client-form button[type=submit]")
    expect(page.locator("#edit-result")).to_contain_text("Saved client")
    found = console.api.request("GET", "/clients", params={"phone": "+79100000010"})["items"]
    assert found[0]["tags"] == ["imported", "vip"]
    assert found[0]["opted_out"] == ["http"]
    expect(page.locator("#clients tbody tr").first.locator(".opted-out")).to_have_text("http")
    # A refused edit names its field and changes nothing.
    page.fill("#c-timezone", "Mars/Olympus")
    page.click("#client-form button[type=submit]")
    expect(page.locator(".field[data-field=timezone] .field-error")).not_to_have_text("")
    assert console.api.request("GET", f"/clients/{found[0]['id']}")["timezone"] == "UTC"


def test_a_read_token_sees_everything_and_no_write_control(page: Page, console: Console) -> None:
    seed(console, "reader", 5, base=400_000)
    created = campaign(
        console, "reader", starts_at=(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    )
    sign_in(page, console, READ_TOKEN)
    expect(page.locator("#who")).to_have_text("read token")
    expect(page.locator("#nav a[data-nav=new]")).to_be_hidden()
    expect(page.locator("#campaigns tbody tr", has_text="campaign reader")).to_be_visible()
    expect(page.locator("a.button[data-write]")).to_be_hidden()
    page.goto(f"{console.url}/console#/campaigns/{created['id']}")
    expect(page.locator("#campaign-status")).to_have_text("scheduled")
    expect(page.locator("#actions button")).to_have_count(0)
    expect(page.locator("#retry-failed")).to_be_hidden()
    expect(page.locator("#test-send")).to_have_count(0)
    page.click("#nav a[data-nav=clients]")
    expect(page.locator("#import")).to_have_count(0)
    page.locator("#clients tbody tr").first.locator("a.phone").click()
    expect(page.locator("#c-phone")).to_be_disabled()
    expect(page.locator("#client-form button[type=submit]")).to_have_count(0)
    page.click("#nav a[data-nav=operations]")
    expect(page.locator("#tiles #dead-letters .value")).not_to_have_text("")


def test_hostile_names_show_as_the_characters_they_are(page: Page, console: Console) -> None:
    seed(console, "hostile", 3, base=500_000)
    name = "<img src=x onerror=alert(1)>"
    created = campaign(
        console,
        "hostile",
        name=name,
        text="<script>alert(2)</script> {{first_name}}",
        starts_at=(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
    )
    sign_in(page, console)
    link = page.locator(f"#campaigns tbody tr[data-campaign-id='{created['id']}'] a.name")
    expect(link).to_have_text(name)
    assert page.locator("#campaigns img").count() == 0
    link.click()
    expect(page.locator("#campaign-name")).to_have_text(name)
    expect(page.locator("#details dd.text")).to_have_text(
        "<script>alert(2)</script> {{first_name}}"
    )
    assert page.locator("main img, main script").count() == 0
    # The page fixture fails the test on any dialog (an alert() that ran) or page error.


def test_operations_at_a_glance_and_a_breaker_that_opens(page: Page, console: Console) -> None:
    sign_in(page, console)
    page.click("#nav a[data-nav=operations]")
    expect(page.locator("#tiles #breaker .value")).to_have_text("closed", timeout=15_000)
    # Permanent failures of the other tests are parked batches: the tile shows the broker's count.
    parked = console.api.request("GET", "/operations")["dead_letters"]
    assert isinstance(parked, int)
    expect(page.locator("#tiles #dead-letters .value")).to_have_text(f"{parked:,}")
    expect(page.locator("#senders tbody tr")).to_have_count(1)
    expect(page.locator("#links a[href='/docs']")).to_be_visible()
    expect(page.locator("#links a[href='/metrics']")).to_be_visible()
    expect(page.locator("#links a", has_text="RabbitMQ management UI")).to_be_visible()
    screenshot(page, "operations")
    seed(console, "breaker", 200, base=600_000)
    console.gateway.app.set_behaviour(fail_rate=1.0)
    try:
        created = campaign(console, "breaker")
        expect(page.locator("#tiles #breaker .value")).to_have_text("open", timeout=20_000)
        expect(page.locator("#senders tbody tr .state.open")).to_have_text("default: open")
    finally:
        console.gateway.app.set_behaviour(fail_rate=0.0)
    expect(page.locator("#tiles #breaker .value")).to_have_text("closed", timeout=30_000)
    wait_until(lambda: console.api.stats(created["id"])["sent"] == 200, timeout=60)
