"""Programme pages, charts, CSV exports, metrics and health: render, scope, and no leaks."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from shared.clock import utcnow
from shared.db.models import Book, BookHold, FridgeItem, FridgeShift, Request, Task, Volunteer
from shared.domain.requests import RequestStatus
from shared.flows.texts import category_name
from shared.reports import month_bounds
from tests.dashboard.conftest import ADMIN, STAFF_CJX, STAFF_ZJY, add_request


def this_month() -> tuple[str, datetime]:
    """The communities' current month ("2026-11") and an instant inside it."""
    local = utcnow().astimezone(ZoneInfo("Asia/Shanghai"))
    since, _ = month_bounds(local.year, local.month, "Asia/Shanghai")
    return f"{local.year:04d}-{local.month:02d}", since + timedelta(hours=1)


async def _seed_programmes(db, people) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    _, worked = this_month()
    async with db.sessions() as session:
        session.add(Volunteer(user_id=people.volunteer.id, name="赵志愿", community_code="zjy", skills=["errands"],
                              status="approved"))
        session.add_all([
            Task(community_code="zjy", skill="errands", title="帮张家园老人取药", window_start=now + timedelta(hours=2),
                 window_end=now + timedelta(hours=4), est_hours=1.5, status="open"),
            Task(community_code="cjx", skill="errands", title="畅家巷的任务", window_start=now + timedelta(hours=2),
                 window_end=now + timedelta(hours=4), est_hours=1.0, status="open"),
            Task(community_code="zjy", skill="errands", title="陪同就医", window_start=now - timedelta(days=2),
                 window_end=now - timedelta(days=2, hours=-2), status="confirmed", claimer_id=people.volunteer.id,
                 claimed_at=worked - timedelta(hours=1), done_at=worked, hours=2.0,
                 confirmed_hours=2.0),
        ])
        session.add(FridgeItem(code="AB12", fridge_code="zjy-fridge", community_code="zjy", name="面包", quantity=6,
                               remaining=4, kind="bread", best_before=date.today() + timedelta(days=1),
                               status="in_fridge", slot_start=now, slot_end=now + timedelta(hours=1)))
        session.add(FridgeShift(fridge_code="zjy-fridge", community_code="zjy", starts_at=now - timedelta(hours=3),
                                ends_at=now - timedelta(hours=2, minutes=30), temperature=4.5, cleaned=True,
                                checked_at=now - timedelta(hours=3)))
        book = Book(house_code="zjy-books", community_code="zjy", title="小王子", author="圣埃克苏佩里",
                    condition="good", location="house", status="held", search_key="小王子")
        session.add(book)
        await session.flush()
        session.add(BookHold(book_id=book.id, requester_id=people.resident.id, status="held",
                             expires_at=now + timedelta(days=2)))
        await session.commit()


async def test_programme_pages_show_own_community(browser, people, db, config):
    await _seed_programmes(db, people)
    fridge_codes = [f.code for c in config.communities if c.code == "zjy" for f in c.fridges]
    house = next(c.book_house for c in config.communities if c.code == "zjy")
    async with db.sessions() as session:  # use the configured codes
        await session.execute(update(FridgeItem).values(fridge_code=fridge_codes[0]))
        await session.execute(update(FridgeShift).values(fridge_code=fridge_codes[0]))
        await session.execute(update(Book).values(house_code=house.code))
        await session.commit()
    await browser.sign_in(STAFF_ZJY)
    tasks = await (await browser.client.get("/tasks")).text()
    assert "帮张家园老人取药" in tasks and "畅家巷的任务" not in tasks
    assert "赵志愿" in tasks and "2.0" in tasks
    fridge = await (await browser.client.get("/fridge")).text()
    assert "面包" in fridge and "4/6" in fridge and "4.5" in fridge
    books = await (await browser.client.get("/books")).text()
    assert "小王子" in books and "保留中" in books
    for path in ("/tasks?month=bad", "/tasks?month=2026-13", "/lang/en?next=/fridge"):
        assert (await browser.client.get(path)).status == 200, path
    english = await (await browser.client.get("/fridge")).text()
    assert "Fridges" in english


async def test_cjx_staff_see_none_of_zjys_programmes(browser, people, db, config):
    await _seed_programmes(db, people)
    await browser.sign_in(STAFF_CJX)
    tasks = await (await browser.client.get("/tasks")).text()
    assert "畅家巷的任务" in tasks and "帮张家园老人取药" not in tasks and "赵志愿" not in tasks
    assert "小王子" not in await (await browser.client.get("/books")).text()
    assert "面包" not in await (await browser.client.get("/fridge")).text()


async def test_charts_render_as_inline_svg(browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "楼道灯坏了三天")
    async with db.sessions() as session:
        now = utcnow()
        await session.execute(update(Request).where(Request.id == request.id).values(
            status=RequestStatus.CLOSED, first_response_at=now, resolved_at=now, rating=4))
        await session.commit()
    await browser.sign_in(STAFF_ZJY)
    response = await browser.client.get("/charts")
    body = await response.text()
    assert response.status == 200 and body.count("<svg") == 5
    assert "<script" not in body and "http://" not in body.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert f"<title>{category_name('zh', 'repair')}: 1</title>" in body  # the bar of this week
    assert "<title>4</title>" in body  # satisfaction dot


async def test_csv_exports_are_scoped_and_free_of_message_text(browser, people, db, config):
    own = await add_request(db, config, people.resident, "zjy", "楼道灯坏了 电话13800001111")
    other = await add_request(db, config, people.resident, "cjx", "垃圾桶满了")
    month, _ = this_month()
    await browser.sign_in(STAFF_ZJY)
    response = await browser.client.get(f"/export/requests.csv?month={month}")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert "zjy" in response.headers["Content-Disposition"]
    text = (await response.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["number"] for r in rows] == [own.number]
    assert "13800001111" not in text and other.number not in text
    assert rows[0]["category"] == "repair" and rows[0]["status"] == "routed"
    for bad in ("", "2026", "2026-13", "11-2026", "2026-1"):
        assert (await browser.client.get(f"/export/requests.csv?month={bad}")).status == 400
    assert (await browser.client.get(f"/export/people.csv?month={month}")).status == 404


async def test_hours_export(browser, people, db, config):
    await _seed_programmes(db, people)
    month, _ = this_month()
    await browser.sign_in(ADMIN)
    text = (await (await browser.client.get(f"/export/hours.csv?month={month}")).read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows == [{"community": "zjy", "volunteer": "赵志愿", "tasks": "1", "hours_reported": "2.0",
                     "hours_confirmed": "2.0"}]
    await browser.client.get("/lang/zh")
    await browser.sign_in(STAFF_CJX)
    text = (await (await browser.client.get(f"/export/hours.csv?month={month}")).read()).decode("utf-8-sig")
    assert list(csv.DictReader(io.StringIO(text))) == []


async def test_metrics_in_prometheus_format(browser, people, db, config):
    await add_request(db, config, people.resident, "zjy", "楼道灯坏了三天")
    await add_request(db, config, people.resident, "zjy", "厨房有煤气味", label="safety", urgent=True)
    await _seed_programmes(db, people)
    response = await browser.client.get("/metrics")
    assert response.status == 200
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    requests = {(s.labels["community"], s.labels["category"], s.labels["status"]): s.value
                for s in families["linju_requests"].samples}
    assert requests[("zjy", "repair", "routed")] == 1 and requests[("zjy", "safety", "routed")] == 1
    assert "linju_intake_latency_seconds" in families
    assert {s.labels["status"] for s in families["linju_outbox"].samples} >= {"pending"}
    assert families["linju_task_claims"].samples[0].value == 1
    assert "煤气" not in await response.text()


async def test_metrics_token(dashboard_app, db, people):
    from aiohttp.test_utils import TestClient, TestServer
    from pydantic import SecretStr

    from services.dashboard.app import create_app

    dashboard_app.settings = dashboard_app.settings.model_copy(update={"metrics_token": SecretStr("scrape-me")})
    async with TestClient(TestServer(create_app(dashboard_app))) as client:
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})).status == 200


async def test_health_and_readiness(browser, people):
    assert (await browser.client.get("/healthz")).status == 200
    response = await browser.client.get("/readyz")
    assert response.status == 200 and (await response.json())["database"] is True


async def test_security_headers_and_language_redirects(browser, people):
    response = await browser.client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    for target in ("//evil.example/", "http://evil.example/", "javascript:alert(1)"):
        response = await browser.client.get("/lang/en", params={"next": target}, allow_redirects=False)
        assert response.headers["Location"] == "/requests", target
    assert (await browser.client.get("/lang/fr", allow_redirects=False)).status == 404
    # Answers raised as exceptions (a missing request, the sign-in redirect) carry them too.
    for path in ("/requests/999999999", "/lang/fr"):
        response = await browser.client.get(path, allow_redirects=False)
        assert response.status in (303, 404), path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["Cache-Control"] == "no-store", path
