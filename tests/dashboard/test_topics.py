"""The deliberation board by step and a topic's public timeline: own community only (admins: all, or one)."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import update

from shared import deliberation
from shared.clock import utcnow
from shared.db.models import DelibTopic, User
from shared.domain.deliberation import Stage
from tests.dashboard.conftest import ADMIN, STAFF_CJX, STAFF_ZJY, add_person

SECTION = re.compile(r'<section class="card step-(\d)">(.*?)</section>', re.S)


async def _topic(db, config, proposer: User, staff: User | None, title: str, stage: str) -> int:  # type: ignore[no-untyped-def]
    """A topic taken through the service as far as `stage`."""
    now = utcnow()
    async with db.sessions() as session:
        proposer = await session.get(User, proposer.id)
        outcome = await deliberation.propose(session, config, proposer, title=title, description=f"{title}：详细说明",
                                             photos=[], compound=None)
        topic_id = outcome.topic.id
        if stage != Stage.PROPOSED:
            staff = await session.get(User, staff.id)
            assert (await deliberation.accept(session, config, topic_id, staff)).ok
        if stage == Stage.VOTING:
            assert (await deliberation.open_vote(session, config, topic_id, staff, options=["换新管", "先修补"],
                                                 secret=True, quorum=3, hours=48, now=now, compound=None)).ok
        if stage == Stage.CARRYING_OUT:
            await session.execute(update(DelibTopic).where(DelibTopic.id == topic_id).values(stage=str(Stage.DECIDED)))
            assert (await deliberation.add_action(session, config, topic_id, staff, title="更换上下水管网",
                                                  owner="街道物管办", due=date.today() + timedelta(days=20))).ok
        if stage == Stage.CLOSED:
            assert (await deliberation.close_topic(session, config, topic_id, staff, "管道已更换完毕")).ok
        await session.commit()
    return topic_id


def sections(body: str) -> dict[int, str]:
    return {int(step): html for step, html in SECTION.findall(body)}


def listed(html: str, topic_id: int) -> bool:
    return f'href="/topics/{topic_id}"' in html


async def test_the_board_lists_own_topics_by_step(browser, people, db, config):
    zjy = {stage: await _topic(db, config, people.resident, people.staff_zjy, f"张家园议题{stage}", stage)
           for stage in (Stage.PROPOSED, Stage.DISCUSSING, Stage.VOTING, Stage.CARRYING_OUT, Stage.CLOSED)}
    neighbour = await add_person(db, "9010", "畅家巷居民", None, "cjx")
    theirs = await _topic(db, config, neighbour, people.staff_cjx, "畅家巷议题", Stage.DISCUSSING)
    await browser.sign_in(STAFF_ZJY)
    page = await browser.client.get("/topics")
    body = await page.text()
    assert page.status == 200 and 'href="/topics"' in body  # in the nav
    found = sections(body)
    assert sorted(found) == [1, 2, 3, 4, 5]
    expected = {Stage.PROPOSED: 1, Stage.DISCUSSING: 2, Stage.VOTING: 3, Stage.CARRYING_OUT: 4, Stage.CLOSED: 5}
    for stage, step in expected.items():
        assert [s for s, html in found.items() if listed(html, zjy[stage])] == [step], stage
    assert "第二步 商议：1 个" in body and "已办结：1 个" in body
    assert not listed(body, theirs) and "畅家巷议题" not in body
    # Asking for another community changes nothing for staff.
    assert not listed(await (await browser.client.get("/topics?community=cjx")).text(), theirs)


async def test_a_topic_page_shows_its_public_timeline(browser, people, db, config):
    topic_id = await _topic(db, config, people.resident, people.staff_zjy, "井儿街上下水管改造", Stage.CARRYING_OUT)
    await browser.sign_in(STAFF_ZJY)
    body = await (await browser.client.get(f"/topics/{topic_id}")).text()
    assert "井儿街上下水管改造" in body and "井儿街上下水管改造：详细说明" in body
    assert "第4步" in body and "执行中" in body
    assert "更换上下水管网" in body and "街道物管办" in body
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', body, re.S).group(1)
    assert timeline.index("提出议题（全社区）") < timeline.index("社区受理为议题") < timeline.index("落实事项：更换上下水管网")
    voting = await _topic(db, config, people.resident, people.staff_zjy, "小区门口装长椅", Stage.VOTING)
    body = await (await browser.client.get(f"/topics/{voting}")).text()
    assert "换新管 / 先修补" in body and "至少 3 票" in body
    english = await (await browser.client.get(f"/lang/en?next=/topics/{topic_id}")).text()
    assert "Public timeline" in english and "Step 4" in english


async def test_another_communitys_topic_is_not_found(browser, people, db, config):
    neighbour = await add_person(db, "9010", "畅家巷居民", None, "cjx")
    theirs = await _topic(db, config, neighbour, people.staff_cjx, "畅家巷停车难", Stage.DISCUSSING)
    await browser.sign_in(STAFF_ZJY)
    for path in (f"/topics/{theirs}", "/topics/999999", "/topics/abc", "/topics/-1", "/topics/" + "9" * 30):
        response = await browser.client.get(path, allow_redirects=False)
        assert response.status == 404, path
        assert "畅家巷停车难" not in await response.text()


async def test_admin_sees_every_community_or_one(browser, people, db, config):
    ours = await _topic(db, config, people.resident, people.staff_zjy, "张家园议题", Stage.DISCUSSING)
    neighbour = await add_person(db, "9010", "畅家巷居民", None, "cjx")
    theirs = await _topic(db, config, neighbour, people.staff_cjx, "畅家巷议题", Stage.DISCUSSING)
    await browser.sign_in(ADMIN)
    body = await (await browser.client.get("/topics")).text()
    assert listed(body, ours) and listed(body, theirs)
    body = await (await browser.client.get("/topics?community=cjx")).text()
    assert not listed(body, ours) and listed(body, theirs)
    body = await (await browser.client.get("/topics?community=nowhere")).text()  # ignored, not an error
    assert listed(body, ours) and listed(body, theirs)
    assert (await browser.client.get(f"/topics/{theirs}")).status == 200


async def test_cjx_staff_see_only_theirs_and_strangers_see_nothing(browser, other_browser, people, db, config):
    ours = await _topic(db, config, people.resident, people.staff_zjy, "张家园议题", Stage.DISCUSSING)
    response = await other_browser.client.get("/topics", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert (await other_browser.client.get(f"/topics/{ours}", allow_redirects=False)).status == 303
    await browser.sign_in(STAFF_CJX)
    body = await (await browser.client.get("/topics")).text()
    assert not listed(body, ours) and "张家园议题" not in body
    assert (await browser.client.get(f"/topics/{ours}")).status == 404
