"""The web pages in a real browser: Debian's Chromium, headless, driven by playwright.

Sign in, open the coverage heatmap and a candlestick chart, start a fill (after its dry-run
preview) and watch its progress change to completion. Screenshots of each page go to
``build/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import Served, add_user, serve_env, serving

from etl.config import load_settings
from etl.tasks.backfill import BackfillRequest, backfill
from etl.tasks.runtime import Runtime
from etl.tasks.sync import sync_instruments

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
PASSWORD = "pages-pass-91be"
HELD = ("600000.SH", "600009.SH", "600016.SH")
ADJUSTED = "603861.SH"  # listed 2023-04-14; the sim's first ex-date of it: 2024-07-23
ACROSS = (dt.date(2024, 7, 15), dt.date(2024, 8, 2))
EX_DATE = "2024-07-23"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (.ci/run installs it: apt-get install chromium)")
    base = tmp_path_factory.mktemp("pages")
    root = base / "data"
    root.mkdir()
    rt = Runtime(settings=load_settings(data_dir=root, env={}), progress=False)
    asyncio.run(sync_instruments(rt, "sim", "SH"))
    req = BackfillRequest("sim", "klines", HELD, "1d", dt.date(2024, 1, 2), dt.date(2024, 1, 12))
    asyncio.run(backfill(rt, req))
    # around a symbol's first ex-date, with its factors: adjusted prices on the chart
    across = BackfillRequest("sim", "klines", (ADJUSTED,), "1d", *ACROSS)
    asyncio.run(backfill(rt, across))
    factors = BackfillRequest("sim", "adj_factors", (ADJUSTED,), None, *ACROSS)
    asyncio.run(backfill(rt, factors))
    env = serve_env(root, base / "config")
    add_user(env, "alice", PASSWORD, "admin")
    with serving(env) as server:
        headers = server.login("alice", PASSWORD)
        created = httpx.post(server.base_url + "/configs/sdk", headers=headers,
                             json={"name": "offline", "vendor": "sim"})  # fmt: skip
        assert created.json()["data"]["is_default"] is True
        yield server


@pytest.fixture(scope="module")
def page(site: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        failed: list[str] = []
        tab.on("requestfailed", lambda r: failed.append(r.url))
        tab.route(  # nothing may come from anywhere but the server
            "**/*",
            lambda route: (
                route.continue_() if route.request.url.startswith(site.url) else route.abort()
            ),
        )
        tab.goto(site.url)
        tab.fill("#signin-user", "alice")
        tab.fill("#signin-password", PASSWORD)
        tab.click("#signin-submit")
        tab.wait_for_selector("#page-coverage:not([hidden])")
        yield tab
        assert failed == []
        browser.close()


def test_sign_in_shows_who(page: Any) -> None:
    assert "alice (admin)" in page.inner_text("#who")


def test_coverage_heatmap(page: Any) -> None:
    page.click("#nav-coverage")
    page.fill("#coverage-start", "2024-01-02")
    page.fill("#coverage-end", "2024-01-19")
    page.click("#coverage-show")
    page.wait_for_selector("#coverage-heatmap .heatmaplayer")
    summary = page.inner_text("#coverage-summary")
    assert "present 27, missing 3557" in summary  # 3 symbols x 9 sessions (Jan 2-12) held
    assert "missing" in summary
    page.screenshot(path=str(SHOTS / "coverage.png"), full_page=True)


def test_candlestick_chart(page: Any) -> None:
    page.click("#nav-chart")
    page.fill("#chart-symbol", "600000.SH")
    page.fill("#chart-start", "2024-01-01")
    page.fill("#chart-end", "2024-01-31")
    page.click("#chart-show")
    page.wait_for_function("document.querySelector('#chart-summary').textContent.includes('bars')")
    assert page.inner_text("#chart-summary").startswith("600000.SH: 9 bars")
    page.wait_for_selector("#chart-plot .boxlayer .trace")  # plotly draws candles as boxes
    # one volume bar a day, drawn in the plot and again in the range slider
    assert page.locator("#chart-plot .barlayer .point").count() == 2 * 9
    assert page.locator("#chart-plot .rangeslider-container").count() == 1
    page.screenshot(path=str(SHOTS / "chart.png"), full_page=True)


def _trace(page: Any) -> dict[str, list[Any]]:
    """The candles the chart draws: dates and prices."""
    trace: dict[str, list[Any]] = page.evaluate(
        "(() => { const t = document.getElementById('chart-plot').data[0];"
        " return {x: t.x, open: t.open, high: t.high, low: t.low, close: t.close}; })()"
    )
    return trace


def _chart(page: Any, adjust: str) -> dict[str, list[Any]]:
    """Switch the price selector (which redraws the chart) and read the new candles."""
    page.select_option("#chart-adjust", adjust)
    page.wait_for_function(
        f"document.querySelector('#chart-summary').textContent.endsWith('({adjust})')"
    )
    return _trace(page)


def test_chart_adjusted_prices(page: Any, site: Served) -> None:
    """raw / qfq / hfq across the first ex-date of a symbol: qfq keeps the latest bar as
    stored (it anchors there) and scales the bars before the ex-date down; hfq keeps the
    earliest bar as stored (no factor before the first ex-date) and scales the later ones up."""
    page.click("#nav-chart")
    page.fill("#chart-symbol", ADJUSTED)
    page.fill("#chart-start", ACROSS[0].isoformat())
    page.fill("#chart-end", ACROSS[1].isoformat())
    page.select_option("#chart-adjust", "raw")
    page.click("#chart-show")
    page.wait_for_function("document.querySelector('#chart-summary').textContent.endsWith('(raw)')")
    raw = _trace(page)
    qfq = _chart(page, "qfq")
    page.screenshot(path=str(SHOTS / "chart-qfq.png"), full_page=True)
    hfq = _chart(page, "hfq")
    assert raw["x"] == qfq["x"] == hfq["x"] and EX_DATE in raw["x"]
    ex = raw["x"].index(EX_DATE)  # bars [0, ex) precede the ex-date
    assert 0 < ex < len(raw["x"]) - 1
    factors = httpx.get(
        site.base_url + "/stock/adj-factor", headers=site.login("alice", PASSWORD),
        params={"codes": ADJUSTED, "start_date": "19900101", "end_date": "20240809"},
    ).json()["data"][ADJUSTED]  # fmt: skip
    assert [f["trade_date"] for f in factors] == [EX_DATE.replace("-", "")]
    factor = factors[0]["backward_factor"]
    assert factor != pytest.approx(1.0)
    for name in ("open", "high", "low", "close"):
        first, last = raw[name][0], raw[name][-1]
        assert qfq[name][-1] == pytest.approx(last, rel=1e-9)  # the latest as stored
        assert qfq[name][ex:] == pytest.approx(raw[name][ex:], rel=1e-9)
        assert qfq[name][0] == pytest.approx(first / factor, rel=1e-9)  # changed before
        assert hfq[name][0] == pytest.approx(first, rel=1e-9)  # the earliest as stored
        assert hfq[name][:ex] == pytest.approx(raw[name][:ex], rel=1e-9)
        assert hfq[name][-1] == pytest.approx(last * factor, rel=1e-9)  # changed after
    assert _chart(page, "raw")["close"] == raw["close"]  # and back


def test_fill_with_preview_and_live_progress(page: Any) -> None:
    page.click("#nav-tasks")
    page.fill("#fill-start", "2023-01-03")
    page.fill("#fill-end", "2024-01-31")
    page.click("#fill-preview")
    page.wait_for_function(
        "document.querySelector('#fill-plan').textContent.startsWith('plan:')"
        " || document.querySelector('#fill-error').textContent"
    )
    assert page.inner_text("#fill-error") == ""
    assert "requests" in page.inner_text("#fill-plan")
    page.click("#fill-start-button")
    page.wait_for_function("document.querySelector('#fill-plan').textContent.includes('started')")
    task_id = int(page.inner_text("#fill-plan").split()[1])
    row = f"#task-{task_id}"
    page.wait_for_selector(row)
    seen = [(page.get_attribute(row, "data-status"), page.get_attribute(row, "data-progress"))]
    page.screenshot(path=str(SHOTS / "tasks-running.png"), full_page=True)
    page.wait_for_selector(f"{row}[data-status=completed]", timeout=120_000)
    seen.append((page.get_attribute(row, "data-status"), page.get_attribute(row, "data-progress")))
    assert seen[0] != seen[-1] and seen[-1] == ("completed", "1")
    assert "100%" in page.inner_text(row)
    page.screenshot(path=str(SHOTS / "tasks.png"), full_page=True)
