"""The dashboard API against a generated event stream on real Kafka, SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest
from reporting_harness import Reporting, StartReporting, publish_fast
from reporting_stream import Expected, Stream, assert_numbers_match, generate

from rhythm_shared.contracts.topics import CHECKINS, dlq_topic
from rhythm_shared.testing.kafka import publish_raw, read_records

pytestmark = pytest.mark.kafka


async def _ingest(svc: Reporting, stream: Stream, kafka_bootstrap: str, prefix: str) -> int:
    events = stream.by_time()
    count = await publish_fast(kafka_bootstrap, events, topic_prefix=prefix)
    # Redelivered duplicates (same CloudEvents id) and re-sent copies (new id): no effect.
    ids = [f"dup-{i}" for i in range(40)]
    count += await publish_fast(kafka_bootstrap, events[100:140], topic_prefix=prefix, ids=ids)
    count += await publish_fast(kafka_bootstrap, events[100:140], topic_prefix=prefix, ids=ids)
    await svc.wait_consumed(count)
    return int(count)


async def test_dashboard_numbers_equal_numbers_computed_from_the_events(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    stream = generate(tenant)
    async with start_reporting() as svc:
        await _ingest(svc, stream, kafka_bootstrap, topic_prefix)
        hidden = await assert_numbers_match(svc, Expected(stream.events))
        # The whole organisation is never a small group here; its departments sometimes are.
        assert not [h for h in hidden if h[1] == "*"]


async def test_an_unreadable_record_goes_to_the_dead_letter_topic_and_ingest_moves_on(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    stream = generate(tenant)
    async with start_reporting() as svc:
        await publish_raw(kafka_bootstrap, f"{topic_prefix}{CHECKINS}", b"{not json", key=b"x")
        count = 1 + await publish_fast(
            kafka_bootstrap, stream.by_time()[:300], topic_prefix=topic_prefix
        )
        await svc.wait_consumed(count)
        dead = await read_records(kafka_bootstrap, f"{topic_prefix}{dlq_topic('reporting')}")
        assert len(dead) == 1
        assert dead[0].value == b"{not json"
        assert any(k == "rhythm_dlq_reason" for k, _ in dead[0].headers)


async def test_a_manager_sees_their_subtree_and_nothing_outside_it(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    stream = generate(tenant)
    async with start_reporting() as svc:
        await _ingest(svc, stream, kafka_bootstrap, topic_prefix)
        manager = svc.token("dh1", "manager")
        ok = await svc.client.get("/v1/dashboards/cadence-adherence", headers=manager)
        assert ok.status_code == 200
        assert ok.json()["scope"]["org_unit_id"] == "ou-d1"
        inside = await svc.client.get(
            "/v1/dashboards/ownership", params={"unit": "ou-t11"}, headers=manager
        )
        assert inside.status_code == 200
        for unit in ("ou-d2", "ou-t21", "ou-root", "*"):
            for path in ("cadence-adherence", "manager-adherence", "goals/attention", "feedback"):
                refused = await svc.client.get(
                    f"/v1/dashboards/{path}", params={"unit": unit}, headers=manager
                )
                assert refused.status_code == 403, (unit, path)
        units = (await svc.client.get("/v1/dashboards/units", headers=manager)).json()
        assert {u["org_unit_id"] for u in units["rows"]} == {"ou-d1", "ou-t11", "ou-t12", "ou-t32"}
        employee = svc.token("e111", "employee")
        assert (await svc.client.get("/v1/dashboards/goals", headers=employee)).status_code == 403
        lead_without_unit = svc.token("nobody", "manager")
        assert (
            await svc.client.get("/v1/dashboards/goals", headers=lead_without_unit)
        ).status_code == 403
        other_tenant = svc.token("ceo", "executive", tenant="someone-else")
        missing = await svc.client.get(
            "/v1/dashboards/goals", params={"unit": "ou-d1"}, headers=other_tenant
        )
        assert missing.status_code == 404
        bad = await svc.client.get(
            "/v1/dashboards/goals",
            params={"period": "2026-13"},
            headers=svc.token("ceo", "executive"),
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"][-1] == "period"


async def test_groups_of_fewer_than_five_people_are_suppressed(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    stream = generate(tenant)
    async with start_reporting() as svc:
        await _ingest(svc, stream, kafka_bootstrap, topic_prefix)
        small = await svc.get("cadence-adherence", unit=stream.small_unit, period="2026-Q1")
        assert small["suppressed"] is True
        assert small["summary"]["on_time_pct"] is None
        # Months with a few people's obligations are hidden, counts and all; months with
        # nobody's show their zeros.
        assert any(r["suppressed"] for r in small["rows"])
        for row in small["rows"]:
            if row["suppressed"]:
                assert row["obligations"] is None
                assert row["missed_pct"] is None
            else:
                assert row["obligations"] == 0
        assert small["scope"]["people"] is None
        by_unit = await svc.get("cadence-adherence/by-unit", unit="ou-d2", period="2026-Q1")
        rows = {r["org_unit_id"]: r for r in by_unit["rows"]}
        assert rows[stream.small_unit]["suppressed"] is True
        assert rows[stream.small_unit]["missed_pct"] is None
        # Department 2 less team 2.1 would be its head and team 2.2: four people. So 2.1 goes.
        assert rows["ou-t21"]["suppressed"] is True
        assert rows["ou-t21"]["obligations"] is None
        assert rows["ou-t21"]["people"] is None
        managers = await svc.get("manager-adherence", unit="*", period="2026-Q1", limit=100)
        listed = {r["manager_id"] for r in managers["rows"]}
        assert "tl22" not in listed  # a team of two
        # Team 2.1 less its lead's team is the lead alone: the row would give the lead away.
        assert "tl21" not in listed
        assert managers["summary"]["managers_suppressed"] >= 2
        feedback = await svc.get("feedback", unit="ou-d2", period="2026")
        rows = {r["org_unit_id"]: r for r in feedback["rows"]}
        # The department itself may be hidden (then no rows at all); the small team always is.
        assert feedback["suppressed"] or rows[stream.small_unit]["suppressed"]


async def test_every_table_exports_as_csv(
    start_reporting: StartReporting, kafka_bootstrap: str, topic_prefix: str, tenant: str
) -> None:
    stream = generate(tenant)
    async with start_reporting() as svc:
        await _ingest(svc, stream, kafka_bootstrap, topic_prefix)
        headers = svc.token("ceo", "executive")
        for path in (
            "cadence-adherence",
            "cadence-adherence/by-unit",
            "manager-adherence",
            "ownership",
            "feedback",
            "goals",
            "goals/attention",
            "workload-pulse",
            "units",
        ):
            as_json = (
                await svc.client.get(
                    f"/v1/dashboards/{path}", params={"period": "2026-Q1"}, headers=headers
                )
            ).json()
            for response in (
                await svc.client.get(
                    f"/v1/dashboards/{path}",
                    params={"period": "2026-Q1", "format": "csv"},
                    headers=headers,
                ),
                await svc.client.get(
                    f"/v1/dashboards/{path}/export.csv",
                    params={"period": "2026-Q1"},
                    headers=headers,
                ),
            ):
                assert response.status_code == 200, (path, response.text)
                assert response.headers["content-type"].startswith("text/csv")
                table = list(csv.reader(io.StringIO(response.text)))
                assert table[0] == list(as_json["columns"]), path
                if path not in ("manager-adherence", "goals/attention"):  # JSON shows the top 20
                    assert len(table) - 1 == len(as_json["rows"]), path
        openapi = (await svc.client.get("/openapi.json")).json()
        description = openapi["paths"]["/v1/dashboards/cadence-adherence"]["get"]["description"]
        assert "on time" in description
        assert "fewer than 5" in description
