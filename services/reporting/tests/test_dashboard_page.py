"""The dashboard page in a real headless browser (Debian's chromium, driven by playwright)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from reporting_harness import Reporting, publish_fast
from reporting_stream import generate

from rhythm_cli.run import dashboard_link
from rhythm_reporting.main import Settings, build
from rhythm_shared.kit.auth import issue_token
from rhythm_shared.kit.clock import ManualClock
from rhythm_shared.kit.settings import DEV_JWT_SECRET
from rhythm_shared.testing.kafka import wait_for

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not IN_CI,
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(settings: Settings, clock: ManualClock) -> AsyncIterator[tuple[str, Any]]:
    app = build(settings, clock=clock)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None)
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await wait_for(started, timeout_s=60)
    try:
        yield f"http://127.0.0.1:{port}", app.state.runtime
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_dashboard_page_shows_the_api_numbers_and_the_pickers_change_them(
    reporting_settings: Settings,
    kafka_bootstrap: str,
    topic_prefix: str,
    tenant: str,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    if IN_CI:
        from playwright.async_api import async_playwright
    else:
        playwright_api = pytest.importorskip(
            "playwright.async_api", reason="playwright==1.65.2 (reporting's dev group) is missing"
        )
        async_playwright = playwright_api.async_playwright
    stream = generate(tenant)
    clock.travel_to(datetime(2026, 7, 15, 9, tzinfo=UTC))  # the stream runs January to June
    token = issue_token(
        DEV_JWT_SECRET,
        tenant=tenant,
        subject="ceo",
        roles=["executive"],
        now=clock.now(),
        ttl=timedelta(days=3650),
    )
    async with serving(reporting_settings, clock) as (base, runtime):
        count = await publish_fast(kafka_bootstrap, stream.by_time(), topic_prefix=topic_prefix)

        async def consumed() -> bool:
            probe = Reporting(runtime, None, reporting_settings, tenant, clock)
            return bool(await probe.consumed() >= count)

        await wait_for(consumed, timeout_s=60)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}
        ) as api:

            async def summary(path: str, unit: str, period: str) -> dict[str, Any]:
                response = await api.get(
                    f"/v1/dashboards/{path}", params={"unit": unit, "period": period}
                )
                assert response.status_code == 200
                return response.json()  # type: ignore[no-any-return]

            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=str(CHROMIUM),
                    args=[
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--no-first-run",
                    ],
                )
                page = await browser.new_page(viewport={"width": 1366, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))

                async def loaded(state: str) -> None:
                    try:
                        await page.wait_for_selector(f'body[data-loaded="{state}"]', timeout=30_000)
                    except Exception as exc:
                        status = await page.locator("#status").inner_text()
                        raise AssertionError(f"page not loaded: {status!r} {errors}") from exc

                # The link `make run` prints signs in through the fragment, which the page
                # removes from the address bar at once; the page sends no referrer.
                response = await page.goto(dashboard_link(base, token, "2026-Q1"))
                assert response is not None
                assert response.headers["referrer-policy"] == "no-referrer"
                await loaded("*|2026-Q1")
                assert token not in page.url
                assert "token" not in page.url
                assert "period=2026-Q1" in page.url

                async def shown(key: str) -> str:
                    text = await page.locator(f'.kpi [data-kpi="{key}"]').first.inner_text()
                    return str(text).strip()

                async def assert_page_matches(unit: str, period: str) -> str:
                    adherence = (await summary("cadence-adherence", unit, period))["summary"]
                    ownership = (await summary("ownership", unit, period))["summary"]
                    goals = (await summary("goals", unit, period))["summary"]
                    assert await shown("on_time_pct") == f"{adherence['on_time_pct']:.1f} %"
                    assert await shown("missed_pct") == f"{adherence['missed_pct']:.1f} %"
                    assert (
                        await shown("employee_initiated_pct")
                        == f"{ownership['employee_initiated_pct']:.1f} %"
                    )
                    assert await shown("goals") == str(goals["goals"])
                    by_unit = (await summary("cadence-adherence/by-unit", unit, period))["rows"]
                    assert await page.locator("#table-units tbody tr").count() == len(by_unit)
                    assert await page.locator("#chart-adherence svg g[data-month]").count() == 12
                    return await shown("on_time_pct")

                tenant_wide = await assert_page_matches("*", "2026-Q1")
                # The unit picker lists the tree and changes the numbers.
                options = await page.locator("#unit option").all_inner_texts()
                assert any("Department 1" in o for o in options)
                await page.select_option("#unit", "ou-d1")
                await loaded("ou-d1|2026-Q1")
                department = await assert_page_matches("ou-d1", "2026-Q1")
                assert department != tenant_wide
                # The period picker too.
                await page.select_option("#period", "2026-Q2")
                await loaded("ou-d1|2026-Q2")
                await assert_page_matches("ou-d1", "2026-Q2")
                await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
                # A small team is shown as hidden, not as numbers.
                await page.select_option("#unit", "ou-t22")
                await loaded("ou-t22|2026-Q2")
                assert await shown("on_time_pct") == "\u2013"  # an en dash: no number
                assert "figures hidden" in await page.locator("#scope-line").inner_text()
                hidden_months = page.locator("#chart-adherence svg g[data-month] text")
                assert "hidden" in await hidden_months.all_text_contents()
                # A token in the query string does not sign in (it was sent to the server
                # already): the page removes it and asks for a token.
                stale = await browser.new_page()
                await stale.goto(f"{base}/dashboard?token={token}&period=2026-Q1")
                await stale.wait_for_selector("#login:not([hidden])", timeout=30_000)
                assert token not in stale.url
                assert await stale.locator("#dashboard").is_hidden()
                assert errors == []
                await browser.close()
