"""Merging a duplicate and making a volunteer task from a request's page: the chat's rules, own community
only, CSRF on every form, once per form, kind refusals for bad input."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from shared.clock import as_utc
from shared.db.models import OutboxMessage, Request, RequestFollower, Task, Volunteer
from shared.domain.requests import RequestStatus
from shared.domain.tasks import DAYS, PARTS
from tests.dashboard.conftest import events_of, stored_request, ADMIN, CSRF, STAFF_CJX, STAFF_ZJY, add_request


async def _outbox(db, pattern: str) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return list(await session.scalars(select(OutboxMessage).where(OutboxMessage.key.like(pattern))
                                          .order_by(OutboxMessage.id)))


async def _tasks(db) -> list[Task]:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return list(await session.scalars(select(Task).order_by(Task.id)))


def done(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status == 303, response.status
    return response.headers["Location"].rsplit("done=", 1)[-1]


# --- merge ---------------------------------------------------------------------------------------

async def _merge(browser, duplicate: Request, number: str, **override):  # type: ignore[no-untyped-def]
    csrf, nonce = (await browser.forms(duplicate.id))["merge"]
    data = {"csrf": csrf, "nonce": nonce, "value": number, **override}
    return await browser.client.post(f"/requests/{duplicate.id}/merge", data=data, allow_redirects=False)


async def test_merge_a_duplicate_once_and_its_reporter_follows_the_other(browser, people, db, config):
    original = await add_request(db, config, people.resident, "zjy", "3号楼楼道灯坏了")
    duplicate = await add_request(db, config, people.volunteer, "zjy", "三号楼的楼道灯不亮")
    await browser.sign_in(STAFF_ZJY)
    page = await (await browser.client.get(f"/requests/{duplicate.id}")).text()
    assert f'<option value="{original.number}">' in page  # offered as a target

    csrf, nonce = (await browser.forms(duplicate.id))["merge"]
    for expected in ("merged", "already"):  # the same form sent twice
        response = await browser.client.post(f"/requests/{duplicate.id}/merge", allow_redirects=False,
                                             data={"csrf": csrf, "nonce": nonce, "value": f" {original.number.lower()} "})
        assert done(response) == expected
    merged = await stored_request(db, duplicate.id)
    assert merged.status == RequestStatus.CLOSED and merged.duplicate_of_id == original.id
    assert (await stored_request(db, original.id)).status == RequestStatus.ROUTED
    assert await events_of(db, duplicate.id, "merged_into") == 1
    assert await events_of(db, original.id, "follower_added") == 1
    async with db.sessions() as session:
        assert await session.get(RequestFollower, (original.id, people.volunteer.id)) is not None
    told = await _outbox(db, f"u%:r:merged:{duplicate.id}")
    assert len(told) == 1 and told[0].chat_id == str(people.volunteer.external_id)
    assert original.number in told[0].text and told[0].status == "pending"
    # The merged request offers no more actions; its page says what happened.
    assert await browser.forms(duplicate.id) == {}
    assert "已作为重复诉求合并" in await (await browser.client.get(f"/requests/{duplicate.id}?done=merged")).text()


async def test_merge_refusals_change_nothing(browser, people, db, config):
    first = await add_request(db, config, people.resident, "zjy", "楼道灯坏了")
    second = await add_request(db, config, people.resident, "zjy", "楼道灯还是坏的")
    closed = await add_request(db, config, people.resident, "zjy", "上个月的灯")
    foreign = await add_request(db, config, people.resident, "cjx", "畅家巷垃圾桶满了")
    async with db.sessions() as session:
        await session.execute(update(Request).where(Request.id == closed.id).values(status=RequestStatus.CLOSED))
        await session.commit()
    await browser.sign_in(STAFF_ZJY)
    cases = [
        (second.number, "merge_self"),
        (closed.number, "merge_target_closed"),
        (foreign.number, "merge_not_found"),     # another community's: as if it did not exist
        ("ZJY-2026-99999", "merge_not_found"),
        ("", "merge_bad_number"), ("abc", "merge_bad_number"), (str(first.id), "merge_bad_number"),
        ("ZJY-2026-00001; DROP TABLE requests", "merge_bad_number"), ("Z" * 500, "merge_bad_number"),
    ]
    for number, expected in cases:
        assert done(await _merge(browser, second, number)) == expected, number
        page = await (await browser.client.get(f"/requests/{second.id}?done={expected}")).text()
        assert '<p class="flash" role="status">' in page, expected  # a kind sentence, not an error page
    for request in (first, second, closed, foreign):
        assert await events_of(db, request.id, "merged_into") == 0
        assert await events_of(db, request.id, "follower_added") == 0
    assert (await stored_request(db, second.id)).status == RequestStatus.ROUTED
    assert (await stored_request(db, second.id)).duplicate_of_id is None
    assert await _outbox(db, "u%:r:merged:%") == []

    # A request already merged away takes no further duplicates.
    assert done(await _merge(browser, second, first.number)) == "merged"
    third = await add_request(db, config, people.resident, "zjy", "灯坏了好几天")
    assert done(await _merge(browser, third, second.number)) == "merge_target_closed"
    assert (await stored_request(db, third.id)).status == RequestStatus.ROUTED


async def test_admin_cannot_merge_across_communities(browser, people, db, config):
    zjy = await add_request(db, config, people.resident, "zjy", "楼道灯坏了")
    cjx = await add_request(db, config, people.resident, "cjx", "楼道灯坏了")
    await browser.sign_in(ADMIN)
    assert done(await _merge(browser, zjy, cjx.number)) == "merge_other_community"
    assert (await stored_request(db, zjy.id)).status == RequestStatus.ROUTED
    assert await events_of(db, cjx.id, "follower_added") == 0


async def test_merge_another_communitys_request_by_its_id_is_not_found(browser, people, db, config):
    mine = await add_request(db, config, people.resident, "zjy", "楼道灯坏了")
    theirs = await add_request(db, config, people.resident, "cjx", "畅家巷楼道灯坏了")
    other = await add_request(db, config, people.resident, "cjx", "畅家巷楼道灯也坏了")
    await browser.sign_in(STAFF_ZJY)
    csrf = CSRF.search(await (await browser.client.get("/requests")).text()).group(1)
    for path, number in ((f"/requests/{theirs.id}/merge", other.number), (f"/requests/{theirs.id}/merge", mine.number),
                         ("/requests/abc/merge", mine.number), ("/requests/99999999/merge", mine.number)):
        response = await browser.client.post(path, data={"csrf": csrf, "nonce": f"n{path}{number}", "value": number},
                                             allow_redirects=False)
        assert response.status == 404, path
    assert (await stored_request(db, theirs.id)).status == RequestStatus.ROUTED
    assert await events_of(db, mine.id, "follower_added") == 0 and await events_of(db, other.id, "follower_added") == 0


async def test_merge_needs_the_sessions_csrf_token(browser, other_browser, people, db, config):
    original = await add_request(db, config, people.resident, "zjy", "楼道灯坏了")
    duplicate = await add_request(db, config, people.resident, "zjy", "楼道灯不亮")
    await browser.sign_in(STAFF_ZJY)
    await other_browser.sign_in(STAFF_ZJY)
    other_csrf = (await other_browser.forms(duplicate.id))["merge"][0]
    for csrf in ("", "forged", other_csrf):
        assert (await _merge(browser, duplicate, original.number, csrf=csrf)).status == 403
    response = await browser.client.post(f"/requests/{duplicate.id}/merge", allow_redirects=False,
                                         data={"nonce": "n1", "value": original.number})
    assert response.status == 403
    assert (await stored_request(db, duplicate.id)).status == RequestStatus.ROUTED
    assert await events_of(db, duplicate.id, "merged_into") == 0


# --- volunteer task ------------------------------------------------------------------------------

async def _helper(db, people) -> None:  # type: ignore[no-untyped-def]
    """An approved zjy volunteer who runs errands at any time (so every window matches)."""
    async with db.sessions() as session:
        session.add(Volunteer(user_id=people.volunteer.id, name="赵志愿", community_code="zjy", skills=["errands"],
                              days=list(DAYS), parts=list(PARTS), status="approved"))
        await session.commit()


def task_form(csrf: str, nonce: str, **override: str) -> dict[str, str]:
    return {"csrf": csrf, "nonce": nonce, "skill": "errands", "window": "due", "title": "帮张阿姨取药",
            "details": "3号楼2单元，药在社区医院", "place": "张家园3号楼附近", "hours": "1.5", **override}


async def _task(browser, request: Request, **override: str):  # type: ignore[no-untyped-def]
    csrf, nonce = (await browser.forms(request.id))["task"]
    return await browser.client.post(f"/requests/{request.id}/task", data={**task_form(csrf, nonce), **override},
                                     allow_redirects=False)


async def test_create_a_task_from_a_request_once_and_offer_it(browser, people, db, config):
    await _helper(db, people)
    request = await add_request(db, config, people.resident, "zjy", "我腿脚不便，想请人帮忙去医院取药")
    await browser.sign_in(STAFF_ZJY)
    page = await (await browser.client.get(f"/requests/{request.id}")).text()
    assert 'name="skill"' in page and '<option value="errands">' in page and "明天上午" in page

    csrf, nonce = (await browser.forms(request.id))["task"]
    for expected in ("task_created", "already"):  # the same form sent twice
        response = await browser.client.post(f"/requests/{request.id}/task", data=task_form(csrf, nonce),
                                             allow_redirects=False)
        assert done(response) == expected
    [task] = await _tasks(db)
    assert (task.request_id, task.community_code, task.skill, task.source, task.status) == \
        (request.id, "zjy", "errands", "request", "open")
    assert (task.title, task.details, task.place, task.est_hours, task.created_by) == \
        ("帮张阿姨取药", "3号楼2单元，药在社区医院", "张家园3号楼附近", 1.5, people.staff_zjy.id)
    assert as_utc(task.window_end) > as_utc(task.window_start)
    assert await events_of(db, request.id, "task_created") == 1
    # Offered the normal way: the outbox, to the volunteer group and the matching volunteer, with a Claim button.
    group = await _outbox(db, f"g:offer:{task.id}:%")
    private = await _outbox(db, f"u{people.volunteer.id}:offer:{task.id}:%")
    assert len(group) == 1 and len(private) == 1
    for offer in group + private:
        assert offer.status == "pending"
        assert [b["action"] for row in offer.options for b in row] == [f"tk:claim:{task.id}"]
        assert "帮张阿姨取药" in offer.text and "张家园3号楼附近" in offer.text
        assert "药在社区医院" not in offer.text  # details only after the claim
    # A second, fresh form finds the request's active task and makes none.
    page = await (await browser.client.get(f"/requests/{request.id}")).text()
    assert "帮张阿姨取药" in page and "待认领" in page
    assert "task" not in await browser.forms(request.id)
    csrf = CSRF.search(page).group(1)
    response = await browser.client.post(f"/requests/{request.id}/task", data=task_form(csrf, "fresh-nonce"),
                                         allow_redirects=False)
    assert done(response) == "task_exists"
    assert len(await _tasks(db)) == 1 and len(await _outbox(db, "%:offer:%")) == 2


async def test_task_window_choice_and_defaults(browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "想请人陪老人聊聊天")
    await browser.sign_in(STAFF_ZJY)
    assert done(await _task(browser, request, window="tomorrow_am", skill="companionship", place="", hours="",
                            details="")) == "task_created"
    [task] = await _tasks(db)
    assert as_utc(task.window_end) - as_utc(task.window_start) == timedelta(hours=3)
    assert (task.skill, task.place, task.details, task.est_hours) == ("companionship", None, None, 1.0)


async def test_task_bad_input_changes_nothing(browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "想请人帮忙取药")
    await browser.sign_in(STAFF_ZJY)
    for field, value in (("skill", "hacking"), ("skill", ""), ("window", "yesterday"), ("window", "")):
        response = await _task(browser, request, **{field: value})
        assert response.status == 400, (field, value)
    for field, value, expected in (
            ("title", "", "task_bad_title"), ("title", "   ", "task_bad_title"), ("title", "\u200b\u200b", "task_bad_title"),
            ("title", "长" * 201, "task_bad_title"), ("details", "长" * 2001, "task_bad_details"),
            ("place", "地" * 201, "task_bad_place"), ("hours", "abc", "task_bad_hours"), ("hours", "0", "task_bad_hours"),
            ("hours", "25", "task_bad_hours"), ("hours", "nan", "task_bad_hours"), ("hours", "-1", "task_bad_hours")):
        assert done(await _task(browser, request, **{field: value})) == expected, (field, value)
    assert await _tasks(db) == [] and await events_of(db, request.id, "task_created") == 0
    assert await _outbox(db, "%:offer:%") == []


async def test_no_task_from_a_closed_request(browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "想请人帮忙取药")
    await browser.sign_in(STAFF_ZJY)
    csrf, nonce = (await browser.forms(request.id))["task"]
    async with db.sessions() as session:  # closed while the page was open
        await session.execute(update(Request).where(Request.id == request.id).values(status=RequestStatus.CLOSED))
        await session.commit()
    response = await browser.client.post(f"/requests/{request.id}/task", data=task_form(csrf, nonce),
                                         allow_redirects=False)
    assert done(response) == "task_not_open"
    assert await _tasks(db) == [] and "task" not in await browser.forms(request.id)


async def test_task_for_another_communitys_request_is_not_found(browser, people, db, config):
    theirs = await add_request(db, config, people.resident, "cjx", "畅家巷老人想请人取药")
    mine = await add_request(db, config, people.resident, "zjy", "张家园老人想请人取药")
    await browser.sign_in(STAFF_CJX)
    csrf = CSRF.search(await (await browser.client.get("/requests")).text()).group(1)
    for path in (f"/requests/{mine.id}/task", "/requests/abc/task", "/requests/-5/task"):
        response = await browser.client.post(path, data=task_form(csrf, f"n-{path}"), allow_redirects=False)
        assert response.status == 404, path
    assert await _tasks(db) == []
    # Their own request works from the same session.
    assert done(await _task(browser, theirs)) == "task_created"
    assert [t.community_code for t in await _tasks(db)] == ["cjx"]


async def test_task_needs_the_sessions_csrf_token(browser, other_browser, people, db, config):
    request = await add_request(db, config, people.resident, "zjy", "想请人帮忙取药")
    await browser.sign_in(STAFF_ZJY)
    await other_browser.sign_in(STAFF_ZJY)
    other_csrf = (await other_browser.forms(request.id))["task"][0]
    for csrf in ("", "forged", other_csrf):
        assert (await _task(browser, request, csrf=csrf)).status == 403
    data = task_form("x", "n2")
    del data["csrf"]
    response = await browser.client.post(f"/requests/{request.id}/task", data=data, allow_redirects=False)
    assert response.status == 403
    assert await _tasks(db) == [] and await _outbox(db, "%:offer:%") == []
