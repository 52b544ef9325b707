"""The web UI's first hour (issue 12): live header, compact view, the way back,
creating and deleting pools, and the per-pool rate charts.

In a real headless Chromium (Debian's chromium through Playwright) against a
real server; skips cleanly when /usr/bin/chromium or playwright is missing.
Screenshots go to the test's temporary directory (``PLASMITE_UI_SHOTS=DIR``
keeps them) so a person can look at the result.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from plasmite_serve.client import RemoteClient
from plasmite_serve.testing import ServerProcess

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")]
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


@pytest.fixture
def server(tmp_path):
    with ServerProcess(tmp_path / "pools") as s:
        yield s


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 900, "height": 800})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # Refused requests (404 favicon, 409 on purpose) are logged by the browser; the page handles them.
    pg.on("console", lambda m: errors.append(m.text)
          if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    yield pg
    ctx.close()
    assert not errors, errors


def shot(page, tmp_path: Path, name: str) -> Path:
    out = Path(os.environ.get("PLASMITE_UI_SHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def test_header_seq_range_updates_live_and_back_to_the_list(server, page):
    pool = RemoteClient(server.base_url).create_pool("gamma")
    pool.append({"n": 1})
    pool.append({"n": 2})
    page.goto(server.url("/ui/pools/gamma"))
    info = page.locator("[data-testid=pool-info]")
    expect(info).to_contain_text("seq 1–2", timeout=10000)
    expect(page.locator("[data-testid=live-status]")).to_have_text("live", timeout=10000)
    for n in (3, 4, 5):
        pool.append({"n": n})
    expect(info).to_contain_text("seq 1–5", timeout=3000)  # not the 5 s refresh: each message moves it
    page.click("[data-testid=back]")
    page.locator("[data-testid=pool][data-pool=gamma]").wait_for(timeout=10000)
    assert page.url.rstrip("/").endswith("/ui")


def test_compact_view_fits_many_messages_per_screen(server, page, tmp_path):
    pool = RemoteClient(server.base_url).create_pool("busy")
    pool.append_many([{"service": "api", "n": i, "status": "ok", "latency_ms": 10 + i} for i in range(40)])
    page.goto(server.url("/ui/pools/busy"))
    page.locator("[data-testid=message][data-seq='40']").wait_for(timeout=10000)
    tall = page.locator("[data-testid=message][data-seq='40']").bounding_box()["height"]
    count_visible = """() => [...document.querySelectorAll('[data-testid=message]')]
        .filter(e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }).length"""
    before = page.evaluate(count_visible)
    page.click("[data-testid=compact-toggle]")
    expect(page.locator("[data-testid=compact-toggle]")).to_have_attribute("aria-pressed", "true")
    row = page.locator("[data-testid=message][data-seq='40']")
    short = row.bounding_box()["height"]
    assert short < 32 and short * 3 < tall, (short, tall)
    assert '{"service":"api","n":39' in row.inner_text()  # one line of compact JSON
    visible = page.evaluate(count_visible)
    shot(page, tmp_path, "compact")
    assert visible >= 10 and visible >= 3 * max(1, before), (visible, before)
    page.reload()  # the choice is remembered
    page.locator("[data-testid=message][data-seq='40']").wait_for(timeout=10000)
    expect(page.locator("[data-testid=compact-toggle]")).to_have_attribute("aria-pressed", "true")


def test_create_and_delete_pools_from_the_ui(server, page, tmp_path):
    pools_dir = server.pool_dir
    page.goto(server.url("/ui"))
    expect(page.locator("[data-testid=list-status]")).to_contain_text("No pools yet", timeout=10000)
    page.fill("[data-testid=create-name]", "made-in-ui")
    page.select_option("[data-testid=create-size]", str(8 * 1024 * 1024))
    page.click("[data-testid=create-submit]")
    card = page.locator("[data-testid=pool][data-pool=made-in-ui]")
    card.wait_for(timeout=10000)
    assert (pools_dir / "made-in-ui.plasmite").stat().st_size == 8 * 1024 * 1024
    page.fill("[data-testid=create-name]", "made-in-ui")
    page.click("[data-testid=create-submit]")
    expect(page.locator("[data-testid=create-status]")).to_contain_text("AlreadyExists", timeout=5000)

    page.fill("[data-testid=create-name]", "second")
    page.click("[data-testid=create-submit]")
    page.locator("[data-testid=pool][data-pool=second]").wait_for(timeout=10000)
    page.once("dialog", lambda d: d.dismiss())  # cancelling keeps the pool
    card.locator("[data-testid=pool-delete]").click()
    time.sleep(0.5)
    assert (pools_dir / "made-in-ui.plasmite").exists()
    page.once("dialog", lambda d: d.accept())
    card.locator("[data-testid=pool-delete]").click()
    expect(card).to_have_count(0, timeout=10000)
    assert not (pools_dir / "made-in-ui.plasmite").exists()

    # From a pool's own page: delete, then back on the list.
    page.goto(server.url("/ui/pools/second"))
    expect(page.locator("[data-testid=live-status]")).to_have_text("live", timeout=10000)
    page.once("dialog", lambda d: d.accept())
    page.click("[data-testid=delete-pool]")
    expect(page.locator("[data-testid=list-status]")).to_contain_text("No pools yet", timeout=10000)
    assert not (pools_dir / "second.plasmite").exists()


def test_read_only_server_refuses_create_and_disables_it(tmp_path, browser):
    from plasmite import Client

    with Client(tmp_path) as c:
        c.create_pool("kept")
    with ServerProcess(tmp_path, "--access", "read-only") as s:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(s.url("/ui"))
        page.locator("[data-testid=pool][data-pool=kept]").wait_for(timeout=10000)
        page.fill("[data-testid=create-name]", "nope")
        page.click("[data-testid=create-submit]")
        status = page.locator("[data-testid=create-status]")
        expect(status).to_contain_text("read-only", timeout=5000)
        expect(page.locator("[data-testid=create-submit]")).to_be_disabled()
        expect(page.locator("[data-testid=pool-delete]").first).to_be_disabled(timeout=10000)
        assert not (tmp_path / "nope.plasmite").exists()
        ctx.close()


def test_rate_charts_show_messages_per_second(server, page, tmp_path):
    client = RemoteClient(server.base_url)
    history = client.create_pool("steady")
    history.append_many([{"i": i} for i in range(40)])
    client.create_pool("idle")

    # The pool page counts its history by the messages' own times.
    page.goto(server.url("/ui/pools/steady"))
    chart = page.locator("[data-testid=pool-rate]")
    expect(chart).to_have_attribute("data-total", "40", timeout=10000)
    assert page.locator("[data-testid=pool-rate] svg path.edge").get_attribute("d")

    # Then the list samples each pool's newest seq; a writer at ~20 msg/s shows up within seconds.
    page.goto(server.url("/ui"))
    page.locator("[data-testid=pool][data-pool=steady]").wait_for(timeout=10000)
    # On first paint the list already shows each pool's recent history.
    expect(page.locator("[data-testid=pool][data-pool=steady] [data-testid=rate-chart]")).to_have_attribute(
        "data-total", "40", timeout=10000)
    stop = threading.Event()

    def writer():
        pool = RemoteClient(server.base_url).open_pool("steady")
        while not stop.is_set():
            pool.append({"tick": time.time()})
            time.sleep(0.05)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        steady = "[data-testid=pool][data-pool=steady] [data-testid=rate-chart]"
        page.wait_for_function(f"() => Number(document.querySelector('{steady}').dataset.total) >= 80",
                               timeout=30000)
        rate = float(page.locator(steady).get_attribute("data-rate"))
        assert 1 <= rate <= 100, rate
        idle = page.locator("[data-testid=pool][data-pool=idle] [data-testid=rate-chart-value]")
        assert idle.inner_text() in ("– msg/s", "0.0 msg/s")
        shot(page, tmp_path, "list")
    finally:
        stop.set()
        t.join(10)


def test_append_form_sends_objects_and_wraps_plain_text(server, page):
    pool = RemoteClient(server.base_url).create_pool("notes")
    page.goto(server.url("/ui/pools/notes"))
    expect(page.locator("[data-testid=live-status]")).to_have_text("live", timeout=10000)
    page.fill("[data-testid=append-data]", "[1, 2]")
    page.click("[data-testid=append-submit]")
    expect(page.locator("[data-testid=append-status]")).to_contain_text("must be a JSON object", timeout=5000)
    page.fill("[data-testid=append-data]", "just words")
    page.click("[data-testid=append-submit]")
    expect(page.locator("[data-testid=append-status]")).to_contain_text("Appended seq 1", timeout=5000)
    assert pool.get(1).data == {"msg": "just words"}
    assert pool.bounds() == (1, 1)  # the array was never sent
