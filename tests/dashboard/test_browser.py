"""The dashboard in headless Chromium (Debian's), on a phone-sized screen: sign in with the code the bot
sent, filter the queue, open a request, reply, and check the resident received the reply.

Messages travel the real way: outbox → the delivery worker's `Deliverer` → a real aiogram Bot →
the playground (a Telegram-compatible Bot API), where the test reads each person's chat.

A screenshot of the queue is saved as a test artefact: var/dashboard-queue.png.
Under CI=true a missing Chromium fails the test; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from services.bot.delivery import Deliverer
from services.dashboard.app import create_app
from shared.db.models import OutboxMessage
from shared.settings import REPO_ROOT
from tests.dashboard.conftest import CODE, RESIDENT, STAFF_ZJY, add_request
from tests.playground.conftest import bot, playground, start  # noqa: F401 - fixtures
from tests.playground.test_page import CHROMIUM, CHROMIUM_ARGS, need_chromium

SCREENSHOT = REPO_ROOT / "var" / "dashboard-queue.png"


async def deliver_pending(deliverer: Deliverer, db, chat: str) -> None:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        ids = list(await session.scalars(select(OutboxMessage.id).where(OutboxMessage.chat_id == chat,
                                                                         OutboxMessage.status == "pending")))
    for outbox_id in ids:
        outcome = await deliverer.deliver(outbox_id)
        for _ in range(10):  # the limiter allows about one message per second to a chat
            if outcome != "postponed":
                break
            await asyncio.sleep(1.1)
            outcome = await deliverer.deliver(outbox_id)
        assert outcome == "sent"


async def test_staff_member_signs_in_filters_opens_and_replies(dashboard_app, people, db, config, playground, bot):
    need_chromium()
    from playwright.async_api import async_playwright, expect

    for user_id, name in ((STAFF_ZJY, "王社工"), (RESIDENT, "张阿姨")):
        await playground.person(int(user_id), name)
    deliverer = Deliverer(dashboard_app.settings, StubBroker(), bot=bot)

    light = await add_request(db, config, people.resident, "zjy", "3号楼楼道灯坏了三天了")
    noise = await add_request(db, config, people.resident, "zjy", "楼上每天半夜装修很吵", label="mediation")
    runner = web.AppRunner(create_app(dashboard_app))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with async_playwright() as driver:
            browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                page = await browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
                page.set_default_timeout(10_000)
                await page.goto(base + "/requests")
                await expect(page.locator("h1")).to_have_text("工作人员登录")
                await page.fill("input[name=account]", STAFF_ZJY)
                await page.click("button[type=submit]")
                await expect(page.locator("input[name=code]")).to_be_visible()
                await deliver_pending(deliverer, db, STAFF_ZJY)
                [message] = await playground.messages(int(STAFF_ZJY))  # what the bot said in the staff chat
                await page.fill("input[name=code]", CODE.search(message["text"]).group(1))
                await page.click("button[type=submit]")
                await expect(page.locator("h1")).to_have_text("诉求队列")
                await expect(page.locator(f"text={light.number}")).to_be_visible()
                await expect(page.locator(f"text={noise.number}")).to_be_visible()

                await page.select_option("select[name=category]", "repair")
                await page.click("form.filters button[type=submit]")
                await expect(page.locator(f"a:has-text('{light.number}')")).to_be_visible()
                await expect(page.locator(f"a:has-text('{noise.number}')")).to_have_count(0)
                SCREENSHOT.parent.mkdir(exist_ok=True)
                await page.screenshot(path=str(SCREENSHOT), full_page=True)

                await page.click(f"a:has-text('{light.number}')")
                await expect(page.locator(".message")).to_have_text("3号楼楼道灯坏了三天了")
                await page.fill("textarea[name=value]", "您好，电工明天上午来修")
                await page.click("form.stack button[type=submit]")
                await expect(page.locator(".flash")).to_have_text("回复已发送给居民。")
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
    await deliver_pending(deliverer, db, RESIDENT)
    await deliverer.close()
    received = [m["text"] for m in await playground.messages(int(RESIDENT)) if "电工明天上午来修" in m["text"]]
    assert len(received) == 1 and light.number in received[0]
    assert SCREENSHOT.stat().st_size > 10_000
