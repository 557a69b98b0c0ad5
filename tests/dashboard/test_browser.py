"""The dashboard in headless Chromium (Debian's), on a phone-sized screen: sign in with the code the bot
sent, filter the queue, open a request, reply, and check the reply is queued to the resident's chat.

A screenshot of the queue is saved as a test artefact: var/dashboard-queue.png.
Under CI=true a missing Chromium fails the test; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from services.dashboard.app import create_app
from shared.db.models import OutboxMessage
from shared.settings import REPO_ROOT
from tests.dashboard.conftest import CODE, RESIDENT, STAFF_ZJY, add_request
from tests.playground.test_page import CHROMIUM, CHROMIUM_ARGS, need_chromium

SCREENSHOT = REPO_ROOT / "var" / "dashboard-queue.png"


async def test_staff_member_signs_in_filters_opens_and_replies(dashboard_app, people, db, config):
    need_chromium()
    from playwright.async_api import async_playwright, expect

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
                async with db.sessions() as session:
                    message = await session.scalar(select(OutboxMessage).where(OutboxMessage.chat_id == STAFF_ZJY))
                await page.fill("input[name=code]", CODE.search(message.text).group(1))
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
    async with db.sessions() as session:
        replies = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == RESIDENT,
                                                                         OutboxMessage.text.contains("电工明天上午来修"))))
    assert len(replies) == 1 and light.number in replies[0].text
    assert SCREENSHOT.stat().st_size > 10_000
