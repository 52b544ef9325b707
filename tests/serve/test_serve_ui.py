"""The web UI in a real headless Chromium (Debian's chromium, driven by Playwright).

Skips cleanly when /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

import os
import time

import pytest

from plasmite_serve.client import RemoteClient
from plasmite_serve.testing import ServerProcess

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium"),
]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-ui")
    with ServerProcess(d, "--token", "uitoken") as s:
        c = RemoteClient(s.base_url, token="uitoken")
        c.create_pool("alpha").append({"hello": "first"}, ["greeting"])
        c.create_pool("beta", 2 * 1024 * 1024)
        yield s


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, errors


def test_lists_pools_with_sizes_and_bounds(server, page):
    page.goto(server.url("/ui?token=uitoken"))
    pools = page.locator("[data-testid=pool]")
    pools.first.wait_for(timeout=10000)
    assert pools.count() == 2
    alpha = page.locator("[data-testid=pool][data-pool=alpha]")
    assert "1.0 MiB" in alpha.locator("[data-testid=pool-size]").inner_text()
    assert "seq 1–1" in alpha.locator("[data-testid=pool-bounds]").inner_text()
    beta = page.locator("[data-testid=pool][data-pool=beta]")
    assert "2.0 MiB" in beta.locator("[data-testid=pool-size]").inner_text()
    assert "empty" in beta.locator("[data-testid=pool-bounds]").inner_text()
    assert "token=" not in page.url  # the token is moved out of the address bar
    # Phone-usable: nothing overflows a 390 px wide viewport.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_without_token_the_page_asks_for_it(server, page):
    page.goto(server.url("/ui"))
    status = page.locator("[data-testid=list-status]")
    expect(status).to_contain_text("token", timeout=10000)
    assert "Permission" in status.inner_text()
    page.fill("[data-testid=token]", "uitoken")
    page.click("#token-apply")
    page.locator("[data-testid=pool]").first.wait_for(timeout=10000)


def test_live_view_shows_a_feed_within_a_second(server, page):
    page.goto(server.url("/ui/pools/alpha?token=uitoken"))
    page.locator("[data-testid=message][data-seq='1']").wait_for(timeout=10000)
    expect(page.locator("[data-testid=live-status]")).to_have_text("live", timeout=10000)
    pool = RemoteClient(server.base_url, token="uitoken").open_pool("alpha")
    sent = time.monotonic()
    m = pool.append({"live": "now"}, ["fresh"])
    page.locator(f"[data-testid=message][data-seq='{m.seq}']").wait_for(timeout=1000)
    assert time.monotonic() - sent < 1.0
    assert "now" in page.locator(f"[data-testid=message][data-seq='{m.seq}']").inner_text()


def test_filters_and_pause_resume(server, page):
    pool = RemoteClient(server.base_url, token="uitoken").open_pool("alpha")
    pool.append({"kind": "apple"}, ["fruit"])
    pool.append({"kind": "carrot"}, ["veg"])
    page.goto(server.url("/ui/pools/alpha?token=uitoken"))
    msgs = page.locator("[data-testid=message]")
    page.locator("[data-testid=message]", has_text="carrot").wait_for(timeout=10000)
    page.fill("[data-testid=tag-filter]", "fruit")
    expect(msgs).to_have_count(1)
    assert "apple" in msgs.first.inner_text()
    page.fill("[data-testid=tag-filter]", "")
    page.fill("[data-testid=text-filter]", "carr")
    expect(msgs).to_have_count(1)
    assert "carrot" in msgs.first.inner_text()
    page.fill("[data-testid=text-filter]", "")
    total = msgs.count()

    page.click("[data-testid=pause]")
    assert page.locator("[data-testid=live-status]").inner_text() == "paused"
    m = pool.append({"kind": "while-paused"})
    expect(page.locator("[data-testid=counter]")).to_contain_text("1 waiting", timeout=5000)
    assert page.locator(f"[data-testid=message][data-seq='{m.seq}']").count() == 0
    page.click("[data-testid=pause]")
    page.locator(f"[data-testid=message][data-seq='{m.seq}']").wait_for(timeout=5000)
    expect(msgs).to_have_count(total + 1)


def test_append_form(server, page):
    page.goto(server.url("/ui/pools/beta?token=uitoken"))
    expect(page.locator("[data-testid=live-status]")).to_have_text("live", timeout=10000)
    page.fill("[data-testid=append-data]", '{"from": "the form"}')
    page.fill("[data-testid=append-tags]", "ui, manual")
    page.click("[data-testid=append-submit]")
    expect(page.locator("[data-testid=append-status]")).to_contain_text("Appended seq", timeout=5000)
    card = page.locator("[data-testid=message]", has_text="the form")
    card.wait_for(timeout=5000)
    stored = RemoteClient(server.base_url, token="uitoken").open_pool("beta").get(int(card.get_attribute("data-seq")))
    assert stored.data == {"from": "the form"} and stored.tags == ["ui", "manual"]
    # Invalid input is shown, not thrown: plain text is stored as a string.
    page.fill("[data-testid=append-data]", "just words")
    page.click("[data-testid=append-submit]")
    page.locator("[data-testid=message]", has_text="just words").wait_for(timeout=5000)


def test_read_only_server_shows_the_refusal(tmp_path, browser):
    from plasmite import Client

    with Client(tmp_path) as c:
        c.create_pool("ro").append({"x": 1})
    with ServerProcess(tmp_path, "--access", "read-only") as s:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(s.url("/ui/pools/ro"))
        page.locator("[data-testid=message][data-seq='1']").wait_for(timeout=10000)
        page.fill("[data-testid=append-data]", '{"y": 2}')
        page.click("[data-testid=append-submit]")
        expect(page.locator("[data-testid=append-status]")).to_contain_text("Permission", timeout=5000)
        assert "read-only" in page.locator("[data-testid=append-status]").inner_text()
        ctx.close()
