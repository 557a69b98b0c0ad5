"""Open311 GeoReport v2: services, submissions through the same intake, public reads without personal data."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import func, select

from services.dashboard.app import build, create_app
from services.intake.worker import Intake
from shared.clock import utcnow
from shared.db.models import OutboxMessage, Request
from shared.domain.requests import RequestStatus
from shared.open311 import SERVICE_CODES

KEY = "key-of-the-web-form"
V2 = "/open311/v2"


async def _client(db, settings):  # type: ignore[no-untyped-def]
    from dramatiq.brokers.stub import StubBroker

    settings = settings.model_copy(update={"dashboard_secret": SecretStr("s"), "open311_api_keys": [KEY, "other-key"]})
    broker = StubBroker()
    dash = build(settings, db, broker)
    return TestClient(TestServer(create_app(dash))), broker, settings


async def _count(db) -> int:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Request)))


async def test_services_and_definitions(db, settings):
    client, _, _ = await _client(db, settings)
    async with client:
        services = await (await client.get(f"{V2}/services.json?jurisdiction_id=zjy")).json()
        assert [s["service_code"] for s in services] == list(SERVICE_CODES)
        assert "fridge" not in SERVICE_CODES and "other" not in SERVICE_CODES
        english = await (await client.get(f"{V2}/services.json", headers={"Accept-Language": "en-GB"})).json()
        assert english[1]["service_name"] == "Repairs"
        definition = await (await client.get(f"{V2}/services/repair.json")).json()
        assert {a["code"] for a in definition["attributes"]} == {"on_behalf_name", "building"}
        assert (await client.get(f"{V2}/services/fridge.json")).status == 404
        assert (await client.get(f"{V2}/services.json?jurisdiction_id=nowhere")).status == 404


async def test_submission_goes_through_intake_and_reaches_staff(db, settings, config):
    client, broker, settings = await _client(db, settings)
    async with client:
        response = await client.post(f"{V2}/requests.json", data={
            "api_key": KEY, "jurisdiction_id": "zjy", "service_code": "repair",
            "description": "3号楼楼道灯坏了一个星期，晚上很黑", "address_string": "张家园3号楼",
            "attribute[on_behalf_name]": "李奶奶", "first_name": "不存", "phone": "13800001111"})
        assert response.status == 201
        [answer] = await response.json()
        assert answer["service_request_id"].startswith("ZJY-") and answer["token"]
        assert broker.queues["intake"].qsize() == 1  # the same queue the bot uses
        async with db.sessions() as session:
            stored = await session.scalar(select(Request))
        assert stored.source == "open311" and stored.user_id is None and stored.on_behalf_name == "李奶奶"
        assert "13800001111" not in str(stored.attachments)  # contact fields are not kept

        intake = Intake(settings, broker, config=config)
        try:
            await intake.process(stored.id)
        finally:
            await intake.close()
        async with db.sessions() as session:
            routed = await session.get(Request, stored.id)
            staff_chat = str(config.community("zjy").staff_chat_id)
            to_staff = await session.scalar(select(func.count()).select_from(OutboxMessage)
                                            .where(OutboxMessage.chat_id == staff_chat))
        assert routed.status == RequestStatus.ROUTED and routed.category == "repair" and to_staff == 1

        token = await (await client.get(f"{V2}/tokens/{answer['token']}.json")).json()
        assert token == [{"service_request_id": routed.number, "token": answer["token"]}]
        [view] = await (await client.get(f"{V2}/requests/{routed.number}.json")).json()
        assert view["status"] == "open" and view["linju_status"] == "routed" and view["service_code"] == "repair"
        assert view["expected_datetime"] is not None
        assert "楼道灯" not in str(view) and "李奶奶" not in str(view) and "张家园3号楼" not in str(view)


async def test_vague_text_takes_the_submitters_service(db, settings, config):
    client, broker, settings = await _client(db, settings)
    async with client:
        response = await client.post(f"{V2}/requests.json", data={
            "api_key": KEY, "jurisdiction_id": "cjx", "service_code": "sanitation", "description": "你好 请帮忙看看",
            "lat": "36.06", "long": "103.83"})
        assert response.status == 201
        async with db.sessions() as session:
            stored = await session.scalar(select(Request))
        intake = Intake(settings, broker, config=config)
        try:
            await intake.process(stored.id)
            await intake.process(stored.id)  # a second delivery changes nothing
        finally:
            await intake.close()
        async with db.sessions() as session:
            routed = await session.get(Request, stored.id)
        assert routed.status == RequestStatus.ROUTED and routed.category == "sanitation"


async def test_bad_submissions_store_nothing(db, settings):
    client, broker, _ = await _client(db, settings)
    good = {"api_key": KEY, "jurisdiction_id": "zjy", "service_code": "repair", "description": "水管漏水",
            "address_string": "1号楼"}
    cases = [
        ({**good, "api_key": ""}, 403), ({**good, "api_key": "guess"}, 403), ({k: v for k, v in good.items() if k != "api_key"}, 403),
        ({**good, "jurisdiction_id": "xxx"}, 404), ({**good, "jurisdiction_id": ""}, 404),
        ({**good, "service_code": "fridge"}, 404), ({**good, "service_code": "drop table"}, 404),
        ({**good, "description": ""}, 400), ({**good, "description": "   \u200b"}, 400), ({**good, "description": "字" * 5000}, 400),
        ({**good, "address_string": "", "lat": "36"}, 400), ({**good, "lat": "north"}, 400), ({**good, "lat": "91"}, 400),
        ({**good, "long": "nan"}, 400), ({**good, "media_url": "javascript:alert(1)"}, 400),
    ]
    async with client:
        for data, status in cases:
            response = await client.post(f"{V2}/requests.json", data=data)
            assert response.status == status, data
            body = await response.json()
            assert body[0]["code"] == status and body[0]["description"]
    assert await _count(db) == 0 and "intake" not in broker.queues or broker.queues["intake"].qsize() == 0


async def test_listing_filters_statuses_and_dates(db, settings):
    client, _, _ = await _client(db, settings)
    async with client:
        numbers = []
        for community, code in (("zjy", "repair"), ("zjy", "safety"), ("cjx", "repair")):
            [answer] = await (await client.post(f"{V2}/requests.json", data={
                "api_key": KEY, "jurisdiction_id": community, "service_code": code, "description": f"测试 {code}",
                "address_string": "某号楼"})).json()
            numbers.append(answer["service_request_id"])
        everything = await (await client.get(f"{V2}/requests.json")).json()
        assert {r["service_request_id"] for r in everything} == set(numbers)
        assert all(r["status"] == "open" and r["linju_status"] == "received" for r in everything)
        zjy = await (await client.get(f"{V2}/requests.json?jurisdiction_id=zjy")).json()
        assert {r["service_request_id"] for r in zjy} == set(numbers[:2])
        picked = await (await client.get(f"{V2}/requests.json?service_request_id={numbers[0]},{numbers[2]}")).json()
        assert {r["service_request_id"] for r in picked} == {numbers[0], numbers[2]}
        assert await (await client.get(f"{V2}/requests.json?status=closed")).json() == []
        page = await (await client.get(f"{V2}/requests.json?page_size=2&page=2")).json()
        assert len(page) == 1
        now = utcnow()
        recent = await (await client.get(f"{V2}/requests.json", params={
            "start_date": (now - timedelta(days=1)).isoformat(), "end_date": (now + timedelta(days=1)).isoformat()})).json()
        assert len(recent) == 3
        old = await (await client.get(f"{V2}/requests.json", params={"end_date": (now - timedelta(days=2)).isoformat()})).json()
        assert old == []
        for query in ("start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z", "start_date=yesterday",
                      "status=maybe", "page=0", "page_size=999", "page=abc"):
            assert (await client.get(f"{V2}/requests.json?{query}")).status == 400, query
        assert (await client.get(f"{V2}/requests/NOPE-1.json")).status == 404
        assert (await client.get(f"{V2}/tokens/nothing.json")).status == 404


async def test_openapi_document_is_served(db, settings):
    client, _, _ = await _client(db, settings)
    async with client:
        doc = await (await client.get(f"{V2}/openapi.json")).json()
        assert doc["openapi"].startswith("3.") and "/requests.json" in doc["paths"]
