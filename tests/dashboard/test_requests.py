"""The queue, the detail page and the staff actions: same rules as the chat, own community only, once only."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from shared.clock import utcnow
from shared.logs import JsonFormatter
from shared.db.models import OutboxMessage, Request
from shared.domain.requests import RequestStatus
from tests.dashboard.conftest import events_of, stored_request, ADMIN, RESIDENT, STAFF_ZJY, add_request


def listed(body: str, request: Request) -> bool:
    """The request is a row of the queue (not just echoed in the search box)."""
    return f'href="/requests/{request.id}">{request.number}</a>' in body


async def _to_resident(db) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return list(await session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == RESIDENT)
                                          .order_by(OutboxMessage.id)))


async def test_queue_shows_only_the_staff_members_community(browser, people, db, config):
    own = await add_request(db, config, people.resident, "zjy", "楼道灯坏了三天")
    other = await add_request(db, config, people.resident, "cjx", "垃圾桶满了没人清")
    await browser.sign_in(STAFF_ZJY)
    body = await (await browser.client.get("/requests")).text()
    assert listed(body, own) and not listed(body, other)
    # Asking for another community in the filter shows nothing of it either.
    body = await (await browser.client.get("/requests?community=cjx")).text()
    assert not listed(body, other)
    body = await (await browser.client.get(f"/requests?q={other.number}")).text()
    assert not listed(body, other)


async def test_admin_sees_every_community(browser, people, db, config):
    own = await add_request(db, config, people.resident, "zjy", "楼道灯坏了三天")
    other = await add_request(db, config, people.resident, "cjx", "垃圾桶满了没人清")
    await browser.sign_in(ADMIN)
    body = await (await browser.client.get("/requests")).text()
    assert listed(body, own) and listed(body, other)
    body = await (await browser.client.get("/requests?community=cjx")).text()
    assert not listed(body, own) and listed(body, other)
    assert (await browser.client.get(f"/requests/{other.id}")).status == 200


async def test_another_communitys_request_by_id_is_not_found(browser, people, db, config):
    other = await add_request(db, config, people.resident, "cjx", "邻居家漏水到我家")
    await browser.sign_in(STAFF_ZJY)
    for path in (f"/requests/{other.id}", "/requests/999999", "/requests/abc", "/requests/-1", "/requests/" + "9" * 30):
        response = await browser.client.get(path, allow_redirects=False)
        assert response.status == 404, path
        assert "邻居家漏水" not in await response.text()
    # Actions by id: a valid CSRF token of this session is not enough.
    page = await (await browser.client.get("/requests")).text()
    from tests.dashboard.conftest import CSRF

    csrf = CSRF.search(page).group(1)
    told_before = len(await _to_resident(db))
    for action, value in (("take", ""), ("reply", "你好"), ("resolve", ""), ("category", "safety"), ("reassign", "zjy")):
        response = await browser.client.post(f"/requests/{other.id}/{action}", allow_redirects=False,
                                             data={"csrf": csrf, "nonce": f"n-{action}", "value": value})
        assert response.status == 404, action
    after = await stored_request(db, other.id)
    assert after.status == RequestStatus.ROUTED and after.community_code == "cjx" and after.category == "repair"
    assert len(await _to_resident(db)) == told_before


async def test_detail_shows_the_timeline_and_the_message(browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "楼道灯坏了三天")
    await browser.sign_in(STAFF_ZJY)
    body = await (await browser.client.get(f"/requests/{request.id}")).text()
    assert "楼道灯坏了三天" in body and request.number in body
    assert "处理记录" in body and body.count("<li>") >= 2  # received, routed …


async def test_take_reply_resolve_reach_the_resident_once_each(browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "楼道灯坏了三天")
    await browser.sign_in(STAFF_ZJY)

    forms = await browser.forms(request.id)
    csrf, nonce = forms["take"]
    for _ in range(2):  # a double click on "Take"
        response = await browser.client.post(f"/requests/{request.id}/take", allow_redirects=False,
                                             data={"csrf": csrf, "nonce": nonce})
        assert response.status == 303
    assert response.headers["Location"].endswith("done=already")
    assert (await stored_request(db, request.id)).status == RequestStatus.IN_PROGRESS
    assert (await stored_request(db, request.id)).assignee_id == people.staff_zjy.id
    assert await events_of(db, request.id, "taken") == 1

    forms = await browser.forms(request.id)
    csrf, nonce = forms["reply"]
    for _ in range(2):  # the same reply form sent twice
        await browser.client.post(f"/requests/{request.id}/reply", allow_redirects=False,
                                  data={"csrf": csrf, "nonce": nonce, "value": "师傅明天上午来修"})
    assert await events_of(db, request.id, "staff_reply") == 1
    replies = [m for m in await _to_resident(db) if "师傅明天上午来修" in m.text]
    assert len(replies) == 1 and replies[0].status == "pending"

    response = await browser.act(request.id, "resolve")
    assert response.headers["Location"].endswith("done=resolved")
    assert (await stored_request(db, request.id)).status == RequestStatus.RESOLVED
    # Resolving again from a fresh form is refused by the lifecycle, not done twice.
    response = await browser.act(request.id, "reply", "补充一句")  # still allowed on a resolved request
    assert response.headers["Location"].endswith("done=replied")
    async with db.sessions() as session:
        await session.execute(update(Request).where(Request.id == request.id).values(status=RequestStatus.CLOSED))
        await session.commit()
    forms = await browser.forms(request.id)
    assert forms == {}  # nothing left to do on a closed request


async def test_category_change_and_reassign(browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "楼道有煤气味")
    await browser.sign_in(STAFF_ZJY)
    response = await browser.act(request.id, "category", "safety")
    assert response.headers["Location"].endswith("done=category")
    assert (await stored_request(db, request.id)).category == "safety"
    response = await browser.act(request.id, "category", "not-a-label")
    assert response.status == 400 and (await stored_request(db, request.id)).category == "safety"
    response = await browser.act(request.id, "reassign", "nowhere")
    assert response.status == 400 and (await stored_request(db, request.id)).community_code == "zjy"
    response = await browser.act(request.id, "reassign", "cjx")
    assert response.status == 303 and response.headers["Location"] == "/requests?done=reassigned"
    moved = await stored_request(db, request.id)
    assert moved.community_code == "cjx" and moved.status == RequestStatus.ROUTED
    assert await events_of(db, request.id, "reassigned") == 1
    # It left this staff member's reach.
    assert (await browser.client.get(f"/requests/{request.id}")).status == 404


async def test_empty_or_huge_reply_is_not_sent(browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "楼道灯坏了三天")
    await browser.sign_in(STAFF_ZJY)
    for text in ("", "   ", "\u200b\u200b", "x" * 5000):
        response = await browser.act(request.id, "reply", text)
        assert response.headers["Location"].endswith("done=empty")
    assert await events_of(db, request.id, "staff_reply") == 0
    assert [m for m in await _to_resident(db) if "staff_reply" in m.key] == []


async def test_actions_need_the_sessions_csrf_token(browser, other_browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "楼道灯坏了三天")
    await browser.sign_in(STAFF_ZJY)
    await other_browser.sign_in(STAFF_ZJY)
    other_csrf = (await other_browser.forms(request.id))["take"][0]
    for csrf in ("", "forged", other_csrf):
        response = await browser.act(request.id, "take", csrf=csrf)
        assert response.status == 403
    response = await browser.client.post(f"/requests/{request.id}/take", data={"nonce": "abc"}, allow_redirects=False)
    assert response.status == 403
    assert (await stored_request(db, request.id)).status == RequestStatus.ROUTED
    assert await events_of(db, request.id, "taken") == 0


async def test_unknown_action_and_missing_nonce(browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "楼道灯坏了三天")
    await browser.sign_in(STAFF_ZJY)
    csrf = (await browser.forms(request.id))["take"][0]
    response = await browser.client.post(f"/requests/{request.id}/delete", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 404
    response = await browser.client.post(f"/requests/{request.id}/take", data={"csrf": csrf}, allow_redirects=False)
    assert response.headers["Location"].endswith("done=already")
    assert (await stored_request(db, request.id)).status == RequestStatus.ROUTED


async def test_filters(browser, people, db, config):
    light = await add_request(db, config, people.resident, "zjy", "楼道灯坏了三天", label="repair")
    gas = await add_request(db, config, people.resident, "zjy", "厨房有煤气味", label="safety", urgent=True)
    bins = await add_request(db, config, people.resident, "zjy", "垃圾桶满了", label="sanitation")
    async with db.sessions() as session:
        await session.execute(update(Request).where(Request.id == bins.id)
                              .values(due_at=utcnow() - timedelta(hours=1)))
        await session.execute(update(Request).where(Request.id == light.id)
                              .values(status=RequestStatus.RESOLVED, created_at=utcnow() - timedelta(days=40)))
        await session.commit()
    await browser.sign_in(STAFF_ZJY)

    async def shown(query: str) -> set[str]:
        body = await (await browser.client.get(f"/requests?{query}")).text()
        return {r.number for r in (light, gas, bins) if listed(body, r)}

    assert await shown("") == {light.number, gas.number, bins.number}
    assert await shown("category=safety") == {gas.number}
    assert await shown("urgent=1") == {gas.number}
    assert await shown("overdue=1") == {bins.number}
    assert await shown("status=resolved") == {light.number}
    assert await shown("status=open") == {gas.number, bins.number}
    today = utcnow().date()
    assert await shown(f"from={today - timedelta(days=2)}&to={today + timedelta(days=1)}") == {gas.number, bins.number}
    assert await shown(f"to={today - timedelta(days=30)}") == {light.number}
    assert await shown(f"q={gas.number.lower()}") == {gas.number}
    assert await shown(f"q={gas.number[-5:]}") == {gas.number}
    # Nonsense in the filters is ignored, not an error.
    assert await shown("category=drop%20table&status=%27&from=yesterday&page=-3&urgent=yes") == \
        {light.number, gas.number, bins.number}
    assert await shown("q=%25") == set()


async def test_personal_data_stays_out_of_info_logs(browser, people, db, config, caplog):
    request = await add_request(db, config, people.resident, "zjy", "我家住3号楼2单元501电话13800001111")
    caplog.set_level(logging.INFO)
    await browser.sign_in(STAFF_ZJY)
    code = (await browser.code_sent_to(STAFF_ZJY))[-1]
    await browser.client.get(f"/requests/{request.id}")
    await browser.act(request.id, "take")
    await browser.act(request.id, "reply", "张阿姨您好，师傅明天来")
    # What the log lines say, formatted as production formats them. The test server's own access log
    # is left out: `linju dashboard` runs with access_log=None (paths and query strings stay out).
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records
                       if r.levelno >= logging.INFO and r.name != "aiohttp.access")
    assert "dashboard action" in logged  # the actions are logged …
    for secret in ("13800001111", "2单元501", "张阿姨", "王社工", "师傅明天来", code, f'"{STAFF_ZJY}"'):
        assert secret not in logged, secret  # … without what anyone wrote, names, codes or chat ids


async def test_refer_outside_and_record_the_answer(browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "自来水发黄好几天了")
    await browser.sign_in(STAFF_ZJY)
    body = config.defaults.referral_bodies[0].code
    response = await browser.act(request.id, "refer", body)  # no reference
    assert response.headers["Location"].endswith("done=bad_reference")
    response = await browser.act(request.id, "refer", "no-such-body")
    assert response.status == 400
    forms = await browser.forms(request.id)
    csrf, nonce = forms["refer"]
    for _ in range(2):
        response = await browser.client.post(f"/requests/{request.id}/refer", allow_redirects=False,
                                             data={"csrf": csrf, "nonce": nonce, "value": body, "reference": "WS-2026-118"})
    assert await events_of(db, request.id, "referred") == 1
    assert "WS-2026-118" in await (await browser.client.get(f"/requests/{request.id}")).text()
    assert (await browser.act(request.id, "referral_answered")).headers["Location"].endswith("done=referral_answered")
    assert await events_of(db, request.id, "referral_answered") == 1
    assert "referral_answered" not in await browser.forms(request.id)
