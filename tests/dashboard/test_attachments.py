"""A request's photos and locations on its page, and the photo proxy to the Bot API.

The photos are real uploads to the playground (a Bot-API-compatible server): a resident sends one
through the playground as through Telegram, the bot's `getUpdates` hands over its file_id, and the
dashboard fetches it back with `getFile` and the file URL, as it would from api.telegram.org.
"""

from __future__ import annotations

import base64
import html
import logging
import os
import socket
import struct
import zlib
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr
from sqlalchemy import update

from services.dashboard.app import build, create_app
from services.dashboard.attachments import describe
from shared import casework
from shared.db.models import Request, User
from shared.domain.requests import RequestStatus
from shared.intake.outcome import route
from shared.logs import JsonFormatter
from shared.privacy import forget_user
from shared.repo.requests import create_request
from tests.dashboard.conftest import ADMIN, RESIDENT, STAFF_CJX, STAFF_ZJY, VOLUNTEER, Browser, stored_request
from tests.playground.conftest import Playground, start  # noqa: F401 - fixture

# Pinned in the playground: another token is refused, as Telegram would.
TOKEN = "7000000002:dashboard-photo-token-kept-secret"
LAT, LON = 36.0611, 103.8342  # 张家园, Lanzhou
MAP = "https://www.openstreetmap.org/?mlat=36.061100&mlon=103.834200#map=18/36.061100/103.834200"


def png(width: int, height: int) -> bytes:
    """A valid PNG of noise (it does not compress, so it is larger than one 64 KB chunk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + os.urandom(3 * width) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PHOTO = png(160, 160)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def playground(start) -> Playground:  # noqa: F811
    playground = await start(token=TOKEN)
    await playground.person(int(RESIDENT), "张阿姨")
    return playground


async def upload(playground: Playground, data: bytes = PHOTO, caption: str = "楼道灯坏了") -> str:
    """The resident sends a photo; the file_id is what the bot receives in its update (and stores)."""
    await playground.post("/playground/api/send", {"user_id": int(RESIDENT), "text": caption,
                                                   "photo": base64.b64encode(data).decode()})
    bot = playground.bot(TOKEN)
    try:
        updates = await bot.get_updates(timeout=0)
        await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)  # acknowledged, as the bot does
    finally:
        await bot.session.close()
    return updates[-1].message.photo[-1].file_id


def dashboard_settings(settings, base: str, token: str = TOKEN):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"dashboard_secret": SecretStr("test-secret-for-the-dashboard"),
                                       "telegram_bot_token": SecretStr(token), "telegram_api_base": base})


async def browser_for(dash, db) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    async with TestClient(TestServer(create_app(dash))) as client:
        yield Browser(client, db)


@pytest.fixture
async def staff(playground, settings, db) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    """A browser on a dashboard that fetches photos from the playground, as from Telegram."""
    async for browser in browser_for(build(dashboard_settings(settings, playground.base), db, StubBroker()), db):
        yield browser


@pytest.fixture
async def other(playground, settings, db) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    async for browser in browser_for(build(dashboard_settings(settings, playground.base), db, StubBroker()), db):
        yield browser


async def reported(db, config, resident: User, community: str, text: str,  # type: ignore[no-untyped-def]
                   attachments: list, *, label: str = "repair") -> Request:
    """A request stored as the bot stores one that came with a photo, then routed by intake."""
    async with db.sessions() as session:
        request, _ = await create_request(session, community_code=community, user_id=resident.id, text=text,
                                          idempotency_key=f"test:{community}:{text}", attachments=attachments)
        await route(session, config, request, label, urgent=False, confidence=0.95, actor="test",
                    only_from={RequestStatus.RECEIVED})
        await session.commit()
        return await session.get(Request, request.id)


async def add_location(db, config, request: Request, resident: User) -> None:  # type: ignore[no-untyped-def]
    """The resident adds their location later ("add information" under my requests)."""
    async with db.sessions() as session:
        found, user = await session.get(Request, request.id), await session.get(User, resident.id)
        ids = await casework.add_info(session, config, found, user, "",
                                      [{"type": "location", "latitude": LAT, "longitude": LON}])
        assert ids is not None
        await session.commit()


def photo_url(request: Request, index: int) -> str:
    return f"/requests/{request.id}/attachments/{index}"


async def api_calls(playground: Playground, method: str) -> int:
    return (await playground.get("/playground/api/stats"))["api_calls"].get(method, 0)


async def test_detail_shows_the_photo_and_the_location(staff, playground, people, db, config):
    file_id = await upload(playground)
    request = await reported(db, config, people.resident, "zjy", "楼道灯坏了", [{"type": "photo", "file_id": file_id}])
    await add_location(db, config, request, people.resident)
    await staff.sign_in(STAFF_ZJY)
    body = await (await staff.client.get(f"/requests/{request.id}")).text()
    assert "<h2>附件</h2>" in body
    assert f'<a href="{photo_url(request, 0)}"' in body and f'<img class="thumb" src="{photo_url(request, 0)}"' in body
    assert f'href="{html.escape(MAP)}"' in body and "36.06110, 103.83420" in body
    assert "OpenStreetMap" in body
    # The page names the photo by its place in the list: neither the token nor the file_id reach the browser.
    assert TOKEN not in body and TOKEN.split(":")[1] not in body and file_id not in body
    # In English too, from the catalogue.
    await staff.client.get("/lang/en", allow_redirects=False)
    body = await (await staff.client.get(f"/requests/{request.id}")).text()
    assert "Attachments" in body and "Show on OpenStreetMap" in body and 'alt="Photo 1"' in body


async def test_no_attachments_no_section(staff, people, db, config):
    request = await reported(db, config, people.resident, "zjy", "楼道灯坏了", [])
    await staff.sign_in(STAFF_ZJY)
    body = await (await staff.client.get(f"/requests/{request.id}")).text()
    assert "<h2>附件</h2>" not in body and "/attachments/" not in body


async def test_proxy_streams_the_photos_real_bytes(staff, other, playground, people, db, config):
    file_id = await upload(playground)
    request = await reported(db, config, people.resident, "zjy", "楼道灯坏了", [{"type": "photo", "file_id": file_id}])
    for browser, who in ((staff, STAFF_ZJY), (other, ADMIN)):
        await browser.sign_in(who)
        response = await browser.client.get(photo_url(request, 0))
        assert response.status == 200, who
        assert await response.read() == PHOTO
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["Content-Length"] == str(len(PHOTO))
        assert "private" in response.headers["Cache-Control"] and "public" not in response.headers["Cache-Control"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert await api_calls(playground, "getFile") == 2


async def test_other_communities_forged_ids_and_indexes_get_nothing(staff, other, playground, people, db, config):
    file_id = await upload(playground)
    request = await reported(db, config, people.resident, "zjy", "楼道灯坏了",
                             [{"type": "photo", "file_id": file_id},
                              {"type": "location", "latitude": LAT, "longitude": LON}])
    await staff.sign_in(STAFF_CJX)  # staff of another community: as if the request did not exist
    for path in (photo_url(request, 0), photo_url(request, 1), photo_url(request, 9)):
        response = await staff.client.get(path, allow_redirects=False)
        assert response.status == 404, path
        assert PHOTO[:8] not in await response.read()
    await other.sign_in(STAFF_ZJY)
    indexes = ("1", "2", "99", "-1", "abc", "0x0", "1e0", "０", "9" * 30)
    forged = [f"/requests/{request.id}/attachments/{index}" for index in indexes]
    forged += ["/requests/999999/attachments/0", "/requests/abc/attachments/0"]
    for path in forged:
        response = await other.client.get(path, allow_redirects=False)
        assert response.status == 404, path
        assert PHOTO[:8] not in await response.read()
    # The one that is a location is named as not a photo, kindly, in the viewer's language.
    body = await (await other.client.get(photo_url(request, 1))).text()
    assert "这条诉求没有这个照片附件" in body and request.number in body
    assert await api_calls(playground, "getFile") == 0  # nothing was asked of Telegram for any of these


async def test_people_who_are_not_staff_get_no_photo(staff, playground, people, db, config):
    file_id = await upload(playground)
    request = await reported(db, config, people.resident, "zjy", "楼道灯坏了", [{"type": "photo", "file_id": file_id}])
    # Not signed in (a resident or a volunteer cannot sign in: they get no code): sent to the sign-in page.
    response = await staff.client.get(photo_url(request, 0), allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    for account in (RESIDENT, VOLUNTEER):
        await staff.ask_code(account)
        assert await staff.code_sent_to(account) == []
    # A staff member demoted to resident loses the photo with the next request, session or not.
    await staff.sign_in(STAFF_ZJY)
    assert (await staff.client.get(photo_url(request, 0))).status == 200
    async with db.sessions() as session:
        await session.execute(update(User).where(User.id == people.staff_zjy.id).values(roles=[]))
        await session.commit()
    response = await staff.client.get(photo_url(request, 0), allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert PHOTO[:8] not in await response.read()


async def test_private_category_stays_with_the_handling_community(staff, other, playground, people, db, config):
    file_id = await upload(playground, caption="工资被拖欠")
    request = await reported(db, config, people.resident, "cjx", "老板拖欠工资三个月",
                             [{"type": "photo", "file_id": file_id}], label="legal_aid")
    await staff.sign_in(STAFF_ZJY)
    for path in (f"/requests/{request.id}", photo_url(request, 0)):
        response = await staff.client.get(path, allow_redirects=False)
        body = await response.read()
        assert response.status == 404, path
        assert "拖欠工资".encode() not in body and PHOTO[:8] not in body
    await other.sign_in(STAFF_CJX)
    assert (await other.client.get(photo_url(request, 0))).status == 200
    # Reassigned away from zjy's reach: a zjy request that moves to cjx is no longer zjy's to see.
    moved = await reported(db, config, people.resident, "zjy", "邻里纠纷调解", [{"type": "photo", "file_id": file_id}],
                           label="mediation")
    assert (await staff.client.get(photo_url(moved, 0))).status == 200
    async with db.sessions() as session:
        await session.execute(update(Request).where(Request.id == moved.id).values(community_code="cjx"))
        await session.commit()
    assert (await staff.client.get(photo_url(moved, 0))).status == 404


async def test_erased_request_shows_no_attachment(staff, playground, people, db, config):
    file_id = await upload(playground)
    request = await reported(db, config, people.resident, "zjy", "楼道灯坏了", [{"type": "photo", "file_id": file_id}])
    await add_location(db, config, request, people.resident)
    async with db.sessions() as session:  # /forgetme
        await forget_user(session, await session.get(User, people.resident.id), config)
        await session.commit()
    assert (await stored_request(db, request.id)).attachments == []
    await staff.sign_in(STAFF_ZJY)
    body = await (await staff.client.get(f"/requests/{request.id}")).text()
    assert "<h2>附件</h2>" not in body and "/attachments/" not in body and "openstreetmap" not in body
    response = await staff.client.get(photo_url(request, 0))
    assert response.status == 404 and PHOTO[:8] not in await response.read()


async def test_a_photo_telegram_no_longer_has_is_a_kind_404(staff, playground, people, db, config):
    file_id = await upload(playground)
    unknown = "AgACAgQAAx" + "Q" * 32
    request = await reported(db, config, people.resident, "zjy", "楼道灯坏了",
                             [{"type": "photo", "file_id": file_id}, {"type": "photo", "file_id": unknown}])
    await staff.sign_in(STAFF_ZJY)
    response = await staff.client.get(photo_url(request, 1))
    assert response.status == 404 and "Telegram 上已经取不到了" in await response.text()
    await playground.post("/playground/api/reset", {})  # every file gone
    response = await staff.client.get(photo_url(request, 0))
    body = await response.text()
    assert response.status == 404 and "Telegram 上已经取不到了" in body and TOKEN.split(":")[1] not in body
    assert response.headers["Cache-Control"] == "no-store"


async def test_telegram_unreachable_or_refusing_is_a_kind_502(playground, settings, people, db, config, caplog):
    file_id = await upload(playground)
    request = await reported(db, config, people.resident, "zjy", "楼道灯坏了", [{"type": "photo", "file_id": file_id}])
    caplog.set_level(logging.INFO)
    for base, token in ((f"http://127.0.0.1:{free_port()}", TOKEN),   # nothing listens there
                        (playground.base, "7000000002:a-token-telegram-refuses")):
        dash = build(dashboard_settings(settings, base, token), db, StubBroker())
        async for browser in browser_for(dash, db):
            await browser.sign_in(STAFF_ZJY)
            response = await browser.client.get(photo_url(request, 0))
            body = await response.text()
            assert response.status == 502, base
            assert "暂时无法从 Telegram 取得这张照片" in body
            assert token.split(":")[1] not in body
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "dashboard photo unavailable" in logged
    for secret in ("dashboard-photo-token-kept-secret", "a-token-telegram-refuses", file_id):
        assert secret not in logged, secret


async def test_a_photo_from_another_platform_is_named_not_fetched(staff, playground, people, db, config):
    request = await reported(db, config, people.resident, "zjy", "楼道灯坏了",
                             [{"type": "photo", "file_id": "mxc://matrix.example.org/AbCdEf123"}, {"type": "voice"}])
    await staff.sign_in(STAFF_ZJY)
    body = await (await staff.client.get(f"/requests/{request.id}")).text()
    assert "经其他聊天平台发来" in body and "其他附件（voice）" in body and "mxc://" not in body
    assert "/attachments/0" not in body
    assert (await staff.client.get(photo_url(request, 0))).status == 404
    assert await api_calls(playground, "getFile") == 0


async def test_personal_data_stays_out_of_info_logs(staff, playground, people, db, config, caplog):
    file_id = await upload(playground, caption="我家住3号楼2单元501")
    request = await reported(db, config, people.resident, "zjy", "我家住3号楼2单元501电话13800001111",
                             [{"type": "photo", "file_id": file_id}])
    await add_location(db, config, request, people.resident)
    caplog.set_level(logging.INFO)
    await staff.sign_in(STAFF_ZJY)
    await staff.client.get(f"/requests/{request.id}")
    assert (await staff.client.get(photo_url(request, 0))).status == 200
    assert (await staff.client.get(photo_url(request, 1))).status == 404
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records
                       if r.levelno >= logging.INFO and r.name != "aiohttp.access")
    assert "dashboard photo shown" in logged
    for secret in ("13800001111", "2单元501", "张阿姨", "王社工", file_id, TOKEN.split(":")[1], str(LAT), f'"{RESIDENT}"',
                   "photos/file_"):
        assert secret not in logged, secret


def test_describe_names_every_kind_and_trusts_no_coordinates():
    shown = describe([
        {"type": "photo", "file_id": "AgACAgQAAx" + "a" * 30},
        {"type": "location", "latitude": LAT, "longitude": LON},
        {"type": "location", "latitude": "nan", "longitude": 1},
        {"type": "location", "latitude": 91, "longitude": 0},
        {"type": "location", "latitude": True, "longitude": 0},
        {"type": "photo", "file_id": "../../etc/passwd"},
        {"kind": "open311", "service_code": "repair", "address": "井儿街 3 号", "lat": LAT, "long": LON,
         "media_url": "javascript:alert(1)"},
        {"kind": "open311", "media_url": "https://city.example.org/p/1.jpg"},
        "not a dict",
        {"type": "<b>sticker</b>" * 20},
    ])
    assert [a.kind for a in shown] == ["photo", "location", "other", "other", "other", "photo_elsewhere", "open311",
                                       "open311", "other", "other"]
    assert shown[1].map_url == MAP and shown[1].coordinates == "36.06110, 103.83420"
    assert shown[2].map_url is None and shown[2].type_name == "location"
    assert shown[6].map_url == MAP and shown[6].address == "井儿街 3 号" and shown[6].link is None
    assert shown[7].link == "https://city.example.org/p/1.jpg" and shown[7].map_url is None
    assert len(shown[9].type_name) == 40  # named, shortened; the template escapes it
    assert "file_id" not in repr(shown[0])
    assert describe([]) == [] and describe(None) == []
