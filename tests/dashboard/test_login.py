"""Sign-in: a code from the bot, once, in time, for staff only; sessions; CSRF on the sign-in forms."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from shared.clock import utcnow
from shared.db.models import OutboxMessage, StaffLoginCode, StaffSession
from shared.staff_login import MAX_ATTEMPTS, MAX_CODES_PER_WINDOW
from tests.dashboard.conftest import CSRF, ADMIN, RESIDENT, STAFF_ZJY, VOLUNTEER


async def _sessions(db) -> int:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(StaffSession)))


async def test_pages_need_a_session(browser, people):
    for path in ("/requests", "/requests/1", "/tasks", "/fridge", "/books", "/charts", "/export/requests.csv?month=2026-11"):
        response = await browser.client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/login", path
    response = await browser.client.post("/requests/1/take", data={"csrf": "x", "nonce": "y"}, allow_redirects=False)
    assert response.status == 403


async def test_staff_signs_in_with_the_code_the_bot_sent_and_out_again(browser, people, db):
    status, challenge = await browser.ask_code(STAFF_ZJY)
    assert status == 200 and challenge
    codes = await browser.code_sent_to(STAFF_ZJY)
    assert len(codes) == 1
    async with db.sessions() as session:  # only an HMAC of the code is stored
        row = await session.scalar(select(StaffLoginCode))
        assert codes[0] not in row.code_hash
    response = await browser.verify(challenge, codes[0])
    assert response.status == 303 and response.headers["Location"] == "/requests"
    assert "linju_session" in response.cookies and response.cookies["linju_session"]["httponly"]
    page = await browser.client.get("/requests")
    assert page.status == 200 and "诉求队列" in await page.text()

    csrf = CSRF.search(await page.text()).group(1)
    response = await browser.client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    async with db.sessions() as session:
        assert (await session.scalar(select(StaffSession))).revoked_at is not None
    assert (await browser.client.get("/requests", allow_redirects=False)).status == 303


async def test_admin_may_sign_in(browser, people):
    await browser.sign_in(ADMIN)
    assert (await browser.client.get("/requests", allow_redirects=False)).status == 200


async def test_wrong_code_is_refused_and_too_many_tries_burn_it(browser, people, db):
    _, challenge = await browser.ask_code(STAFF_ZJY)
    right = (await browser.code_sent_to(STAFF_ZJY))[0]
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = await browser.verify(challenge, wrong)
    assert response.status == 401 and "linju_session" not in response.cookies
    for _ in range(MAX_ATTEMPTS - 1):
        assert (await browser.verify(challenge, wrong)).status == 401
    # Now even the right code does not work: guessing has a ceiling.
    assert (await browser.verify(challenge, right)).status == 401
    assert await _sessions(db) == 0


async def test_expired_code_is_refused(browser, people, db):
    _, challenge = await browser.ask_code(STAFF_ZJY)
    code = (await browser.code_sent_to(STAFF_ZJY))[0]
    async with db.sessions() as session:
        await session.execute(update(StaffLoginCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    assert (await browser.verify(challenge, code)).status == 401
    assert await _sessions(db) == 0


async def test_code_works_once(browser, other_browser, people, db):
    _, challenge = await browser.ask_code(STAFF_ZJY)
    code = (await browser.code_sent_to(STAFF_ZJY))[0]
    assert (await browser.verify(challenge, code)).status == 303
    assert (await other_browser.verify(challenge, code)).status == 401
    assert await _sessions(db) == 1


async def test_code_of_one_challenge_does_not_open_another(browser, people):
    _, first = await browser.ask_code(STAFF_ZJY)
    _, second = await browser.ask_code(STAFF_ZJY)
    first_code, second_code = await browser.code_sent_to(STAFF_ZJY)
    if first_code != second_code:
        assert (await browser.verify(second, first_code)).status == 401
    assert (await browser.verify(first, first_code)).status == 303


async def test_residents_volunteers_and_strangers_get_no_code_and_no_hint(browser, people, db):
    _, staff_page = await browser.ask_code(STAFF_ZJY)
    for account in (RESIDENT, VOLUNTEER, "123456789"):
        response = await browser.client.post("/login", data={"csrf": await browser.login_csrf(), "account": account})
        assert response.status == 200
        assert "登录码已由机器人发到您的聊天窗口" in await response.text()  # the same words as for staff
        assert await browser.code_sent_to(account) == []
        _, challenge = await browser.ask_code(account)
        for guess in ("000000", "123456"):
            assert (await browser.verify(challenge, guess)).status == 401
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1  # the staff member's
    assert await _sessions(db) == 0


async def test_asking_for_codes_is_rate_limited(browser, people):
    for _ in range(MAX_CODES_PER_WINDOW + 2):
        assert (await browser.ask_code(STAFF_ZJY))[0] == 200
    assert len(await browser.code_sent_to(STAFF_ZJY)) == MAX_CODES_PER_WINDOW


async def test_bad_account_input_is_answered_kindly(browser, people):
    for account in ("", "abc", "1" * 40, "12 34", "<script>"):
        response = await browser.client.post("/login", data={"csrf": await browser.login_csrf(), "account": account})
        assert response.status == 400
        assert "请输入数字形式的 Telegram 用户 ID" in await response.text()


async def test_sign_in_forms_need_their_csrf_token(browser, people):
    await browser.login_csrf()  # the browser cookie exists
    assert (await browser.client.post("/login", data={"account": STAFF_ZJY})).status == 403
    assert (await browser.client.post("/login", data={"account": STAFF_ZJY, "csrf": "forged"})).status == 403
    assert await browser.code_sent_to(STAFF_ZJY) == []
    _, challenge = await browser.ask_code(STAFF_ZJY)
    code = (await browser.code_sent_to(STAFF_ZJY))[0]
    response = await browser.client.post("/login/verify", data={"challenge": challenge, "code": code},
                                         allow_redirects=False)
    assert response.status == 403
    assert (await browser.verify(challenge, code)).status == 303


async def test_a_csrf_token_of_another_browser_does_not_fit(browser, other_browser, people):
    foreign = await other_browser.login_csrf()
    await browser.login_csrf()
    response = await browser.client.post("/login", data={"account": STAFF_ZJY, "csrf": foreign})
    assert response.status == 403
    assert await browser.code_sent_to(STAFF_ZJY) == []


async def test_demoted_staff_lose_their_session(browser, people, db):
    await browser.sign_in(STAFF_ZJY)
    async with db.sessions() as session:
        user = await session.get(type(people.staff_zjy), people.staff_zjy.id)
        user.roles = []
        await session.commit()
    assert (await browser.client.get("/requests", allow_redirects=False)).status == 303


async def test_staff_without_a_community_get_no_code(browser, people, db):
    from tests.dashboard.conftest import add_person

    await add_person(db, "9010", "无社区", "staff", None)
    await browser.ask_code("9010")
    assert await browser.code_sent_to("9010") == []


async def test_malformed_form_bodies_are_refused_not_crashed(browser, people):
    await browser.login_csrf()
    bad = {"Content-Type": "multipart/form-data"}  # no boundary
    assert (await browser.client.post("/login", data=b"x", headers=bad)).status == 400
    await browser.sign_in(STAFF_ZJY)
    assert (await browser.client.post("/logout", data=b"x", headers=bad)).status == 400
    assert (await browser.client.get("/requests", allow_redirects=False)).status == 200  # still signed in
