"""A real browser EventSource against the Plasma gateway (Debian's chromium,
driven by Playwright): typed events arrive, and after the gateway restarts the
browser's own reconnection (Last-Event-ID) resumes without loss or repeat.

Skips cleanly when /usr/bin/chromium or playwright is missing.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("plasmite_plasma")
playwright_api = pytest.importorskip("playwright.sync_api")

from plasmite import Client  # noqa: E402
from plasmite_plasma.testing import GatewayProcess  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")

LISTEN = """(query) => {
  window.got = []; window.opens = 0;
  const es = new EventSource("/?" + query);
  es.onopen = () => { window.opens += 1; };
  es.onmessage = (e) => { window.got.push({id: e.lastEventId, data: JSON.parse(e.data)}); };
}"""


def test_eventsource_receives_typed_events_and_resumes_after_restart(tmp_path):
    pool = Client(tmp_path).pool("plasma")
    env = {"PLASMA_DEBUG": "true", "PLASMA_SSE_RETRY": "300"}
    with GatewayProcess(tmp_path, env=env) as gw, playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(gw.url + "/debug")  # a same-origin document to run EventSource in
            page.evaluate(LISTEN, "eventType=program:1234,poll")
            page.wait_for_function("window.opens === 1", timeout=20000)
            pool.append({"meta": {"type": "program:1234:views"}, "data": {"n": 1}})
            pool.append({"meta": {"type": "program:9"}, "data": {"n": "not for us"}})
            pool.append({"meta": {"type": "poll"}, "data": {"n": 2}})
            page.wait_for_function("window.got.length === 2", timeout=20000)

            gw.stop()  # the browser sees the stream end and keeps retrying
            pool.append({"meta": {"type": "poll"}, "data": {"n": 3}})  # published while the gateway is down
            gw.start()
            page.wait_for_function("window.opens >= 2 && window.got.length >= 3", timeout=30000)
            pool.append({"meta": {"type": "program:1234"}, "data": {"n": 4}})
            page.wait_for_function("window.got.length >= 4", timeout=20000)
            page.wait_for_timeout(500)
            got = page.evaluate("window.got")
            assert [e["data"]["meta"]["type"] for e in got] == ["program:1234:views", "poll", "poll", "program:1234"]
            assert [e["data"]["data"]["n"] for e in got] == [1, 2, 3, 4]
            assert [e["id"] for e in got] == ["1", "3", "4", "5"]  # pool seqs
        finally:
            browser.close()
