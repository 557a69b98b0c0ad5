"""The Matrix front end against a real Synapse: residents, volunteers and staff talk to the bot
with matrix-nio clients; the bot, the intake worker and the delivery worker run the real code."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import struct
import zlib
from datetime import timedelta

from nio import UploadResponse
from sqlalchemy import func, select

from services.matrix.api import MatrixApi, txn_id
from services.matrix.channel import Incoming, MatrixChannel
from services.matrix.store import create_store
from shared import volunteering
from shared.clock import utcnow
from shared.db.models import OutboxMessage, Request, Task, User, Volunteer
from shared.flows.reply import Reply
from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification, send
from shared.repo.outbox import queue_notification
from shared.repo.users import get_or_create_user, give_consent, grant_role
from tests.matrix.conftest import MatrixWorld, Person, Seen

OPTION = re.compile(r"^(\d+)\. (.+)$", re.M)
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def options(message: Seen) -> dict[str, int]:
    return {text: int(number) for number, text in OPTION.findall(message.body)}


def number_of(message: Seen, words: str) -> int:
    return next(n for text, n in options(message).items() if words in text)


async def onboard(world: MatrixWorld, person: Person) -> str:
    """Consent, community (by number), language (by the option's words): the resident's direct room."""
    room = await person.direct_room_with(world.bot_id)
    await world.wait_joined(room)
    await person.say(room, "!start")
    (consent,) = await person.next_from(room, world.bot_id)
    assert "个人信息" in consent.body and options(consent)
    await person.say(room, "1")
    (communities,) = await person.next_from(room, world.bot_id)
    await person.say(room, str(number_of(communities, "张家园")))
    chosen, language = await person.next_from(room, world.bot_id, 2)
    assert "中文" in options(language)
    await person.say(room, "中文")
    _done, menu = await person.next_from(room, world.bot_id, 2)
    assert "张家园" in menu.body and options(menu)
    return room


async def test_resident_reports_gets_number_and_routed_reply_staff_sees_card(world: MatrixWorld, db):
    resident, staff = world.people["resident"], world.people["staff"]
    room = await onboard(world, resident)
    async with db.sessions() as session:
        user = (await session.scalars(select(User).where(User.external_id == resident.user_id))).one()
        assert (user.platform, user.community_code, user.locale) == ("matrix", "zjy", "zh")

    await resident.say(room, "楼道的灯坏了好几天了 晚上黑乎乎的")
    (ack,) = await resident.next_from(room, world.bot_id)
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
    assert "已收到您的诉求" in ack.body and request.number in ack.body and request.source == "matrix"

    await world.drain()
    (routed,) = await resident.next_from(room, world.bot_id)
    assert request.number in routed.body and "已转交" in routed.body
    card = await staff.wait_for(lambda seen: [s for s in seen if s.room_id == world.staff_room
                                              and request.number in s.body])
    assert options(card[0]), "the staff card offers its actions as a numbered list"
    async with db.sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [(r.platform, r.status) for r in rows] == [("matrix", "sent"), ("matrix", "sent")]
    assert {r.chat_id for r in rows} == {resident.user_id, world.staff_room}


async def test_staff_of_the_community_takes_by_number_others_cannot(world: MatrixWorld, db):
    resident, staff, outsider = world.people["resident"], world.people["staff"], world.people["outsider"]
    async with db.sessions() as session:
        for person, community in ((staff, "zjy"), (outsider, "cjx")):
            user = await get_or_create_user(session, "matrix", person.user_id)
            give_consent(user)
            user.community_code = community
            grant_role(user, "staff")
        await session.commit()
    room = await onboard(world, resident)
    await resident.say(room, "楼道的灯坏了好几天了 晚上黑乎乎的")
    await world.drain()
    (card,) = await staff.wait_for(lambda seen: [s for s in seen if s.room_id == world.staff_room and "ZJY-" in s.body])
    take = number_of(card, "受理")

    # Staff of another community, in the same room, answering the same card: refused privately, nothing changes.
    await outsider.say(world.staff_room, str(take), reply_to=card.event_id)
    refusal = await outsider.wait_for(lambda seen: [s for s in seen if s.room_id != world.staff_room
                                                    and s.sender == world.bot_id])
    assert "只有本社区的工作人员" in refusal[0].body
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
    assert request.assignee_id is None

    await staff.say(world.staff_room, str(take), reply_to=card.event_id)
    taken = await staff.wait_for(lambda seen: [s for s in seen if s.room_id != world.staff_room
                                               and s.sender == world.bot_id and "受理" in s.body])
    assert request.number in taken[0].body
    async with db.sessions() as session:
        request = await session.get(Request, request.id)
        staff_user = (await session.scalars(select(User).where(User.external_id == staff.user_id))).one()
    assert request.assignee_id == staff_user.id


async def test_volunteer_claims_the_numbered_offer_and_sees_it_edited_to_taken(world: MatrixWorld, db):
    volunteer = world.people["volunteer"]
    async with db.sessions() as session:
        user = await get_or_create_user(session, "matrix", volunteer.user_id)
        give_consent(user)
        user.community_code = "zjy"
        grant_role(user, "volunteer")
        session.add(Volunteer(user_id=user.id, name="志愿者小李", community_code="zjy", skills=["errands"],
                              days=ALL_DAYS, parts=["am", "pm", "eve"], status="approved"))
        await session.flush()
        start = utcnow() + timedelta(hours=3)
        task, ids = await volunteering.create_task(session, world.config, community="zjy", skill="errands",
                                                   title="帮忙取药", details=None, place="3号楼",
                                                   window_start=start, window_end=start + timedelta(hours=2))
        await session.commit()
    for outbox_id in ids:
        send(world.broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))
    await world.drain()
    # No direct room existed: the delivery worker created one and invited the volunteer.
    offer = (await volunteer.wait_for(lambda seen: [s for s in seen if "帮忙取药" in s.body
                                                    and s.room_id != world.volunteer_room]))[0]
    group_offer = (await volunteer.wait_for(lambda seen: [s for s in seen if "帮忙取药" in s.body
                                                          and s.room_id == world.volunteer_room]))[0]
    claim = number_of(offer, "我来接")
    await volunteer.say(offer.room_id, str(claim))
    await world.drain()
    edit = await volunteer.wait_for(lambda seen: [s for s in seen if s.replaces == offer.event_id])
    assert "已由 志愿者小李 认领" in edit[0].content["m.new_content"]["body"]
    group_edit = await volunteer.wait_for(lambda seen: [s for s in seen if s.replaces == group_offer.event_id])
    assert "已由 志愿者小李 认领" in group_edit[0].content["m.new_content"]["body"]
    async with db.sessions() as session:
        task = await session.get(Task, task.id)
    assert task.status == "claimed" and task.claimer_id == user.id

    # The edited offer has no options any more: answering it again is kindly refused and changes nothing.
    await volunteer.say(offer.room_id, str(claim), reply_to=offer.event_id)
    (answer,) = await volunteer.next_from(offer.room_id, world.bot_id)
    assert "没有第" in answer.body or "没有可以选择" in answer.body
    async with db.sessions() as session:
        again = await session.get(Task, task.id)
    assert (again.status, again.claimer_id, again.claimed_at) == (task.status, task.claimer_id, task.claimed_at)


async def test_bad_input_gets_a_kind_answer_and_changes_nothing(world: MatrixWorld, db):
    resident = world.people["resident"]
    room = await resident.direct_room_with(world.bot_id)
    await world.wait_joined(room)
    await resident.say(room, "7")   # nothing offered yet
    (nothing,) = await resident.next_from(room, world.bot_id)
    assert "没有可以选择的选项" in nothing.body
    await resident.say(room, "!start")
    (consent,) = await resident.next_from(room, world.bot_id)
    await resident.say(room, "9")   # out of range
    (out_of_range,) = await resident.next_from(room, world.bot_id)
    assert "没有第 9 项" in out_of_range.body and f"1 到 {len(options(consent))}" in out_of_range.body
    await resident.client.room_send(room, "m.room.message", {"msgtype": "m.file", "body": "x.pdf",
                                                             "url": "mxc://linju.test/nothing"})
    (unsupported,) = await resident.next_from(room, world.bot_id)
    assert "只能接收文字" in unsupported.body
    await resident.client.room_send(room, "m.room.message", {"msgtype": "m.text"})   # no body at all
    await resident.say(room, "1")   # consent still works after all that
    (communities,) = await resident.next_from(room, world.bot_id)
    assert "张家园" in communities.body
    await resident.say(room, str(number_of(communities, "张家园")))
    await resident.next_from(room, world.bot_id, 2)
    await resident.say(room, "1")
    await resident.next_from(room, world.bot_id, 2)
    await resident.say(room, "灯坏了" * 3000)   # 9000 characters
    (too_long,) = await resident.next_from(room, world.bot_id)
    assert "内容太长了" in too_long.body
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 0
        user = (await session.scalars(select(User).where(User.external_id == resident.user_id))).one()
    assert user.consent_at is not None and user.community_code == "zjy"


async def test_a_room_that_is_neither_direct_nor_configured_is_ignored(world: MatrixWorld, db):
    resident, outsider = world.people["resident"], world.people["outsider"]
    room = (await resident.client.room_create(name="楼栋群", invite=[world.bot_id, outsider.user_id])).room_id
    await outsider.sync(0)
    await world.wait_joined(room)
    await resident.say(room, "!start")
    await resident.say(room, "楼道的灯坏了好几天了 晚上黑乎乎的")
    dm = await resident.direct_room_with(world.bot_id)
    await world.wait_joined(dm)
    await resident.say(dm, "!help")
    (answer,) = await resident.next_from(dm, world.bot_id)   # the bot is alive, and said nothing in the group
    assert not [s for s in resident.seen if s.room_id == room and s.sender == world.bot_id]
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 0


async def test_the_same_event_twice_changes_nothing(world: MatrixWorld, db):
    resident = world.people["resident"]
    room = await onboard(world, resident)
    text = "家里水管漏水了"
    event_id = await resident.say(room, text)
    (ack,) = await resident.next_from(room, world.bot_id)
    assert "已收到您的诉求" in ack.body
    # The sync stream hands the same event again (a restart before the sync token was saved).
    again = Incoming(room_id=room, sender=resident.user_id, event_id=event_id,
                     content={"msgtype": "m.text", "body": text}, direct=True)
    assert await world.bot.channel.handle(again) == "duplicate"
    await world.drain()
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 1
    acks = [s for s in resident.seen if s.room_id == room and "已收到您的诉求" in s.body]
    assert len(acks) == 1


async def test_a_resend_with_the_same_transaction_id_is_the_same_event(world: MatrixWorld):
    """What makes Matrix delivery exactly-once for a worker that died after sending: the homeserver
    answers the same transaction id with the first event instead of posting a second message."""
    resident = world.people["resident"]
    room = await resident.direct_room_with(world.bot_id)
    await world.wait_joined(room)
    api = world.bot.api
    txn = txn_id("u1:r:routed:42")
    first = await api.send(room, Reply("通知一次"), for_user=resident.user_id, txn=txn)
    second = await api.send(room, Reply("通知一次"), for_user=resident.user_id, txn=txn)
    # Another delivery process: its own login (a new access token) on the same device id.
    other = MatrixApi(world.settings, world.bot.store)
    try:
        third = await other.send(room, Reply("通知一次"), for_user=resident.user_id, txn=txn)
    finally:
        await other.close()
    assert first == second == third
    await resident.wait_for(lambda seen: [s for s in seen if s.body == "通知一次"])
    await resident.sync(1000)
    assert len([s for s in resident.seen if s.body == "通知一次"]) == 1


async def test_a_telegram_user_links_their_matrix_account_with_a_one_time_code(world: MatrixWorld, db):
    from shared import linking

    resident = world.people["resident"]
    async with db.sessions() as session:
        telegram = await get_or_create_user(session, "telegram", "501777")
        give_consent(telegram)
        telegram.community_code = "zjy"
        code = await linking.issue_code(session, telegram)   # what /link on Telegram does
        await session.commit()
    room = await resident.direct_room_with(world.bot_id)
    await world.wait_joined(room)
    await resident.say(room, "!link 00000000")
    (wrong,) = await resident.next_from(room, world.bot_id)
    assert "不对" in wrong.body
    await resident.say(room, f"!link {code}")
    (linked,) = await resident.next_from(room, world.bot_id)
    assert "绑定成功" in linked.body
    await resident.say(room, "楼道的灯坏了好几天了 晚上黑乎乎的")   # no onboarding: they are the Telegram user
    (ack,) = await resident.next_from(room, world.bot_id)
    assert "已收到您的诉求" in ack.body
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
    assert request.user_id == telegram.id and request.source == "matrix"


async def test_a_reaction_with_a_number_answers_that_message(world: MatrixWorld, db):
    resident = world.people["resident"]
    room = await resident.direct_room_with(world.bot_id)
    await world.wait_joined(room)
    await resident.say(room, "!start")
    (consent,) = await resident.next_from(room, world.bot_id)

    async def react(event_id: str, key: str) -> None:
        await resident.client.room_send(room, "m.reaction", {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": event_id, "key": key}})

    await react(consent.event_id, "👍")   # not a number: ignored
    await react(consent.event_id, "1️⃣")
    (communities,) = await resident.next_from(room, world.bot_id)
    assert "张家园" in communities.body
    async with db.sessions() as session:
        user = (await session.scalars(select(User).where(User.external_id == resident.user_id))).one()
    assert user.consent_at is not None
    assert len([s for s in resident.seen if s.room_id == room and s.sender == world.bot_id]) == 2


async def test_the_homeservers_429_is_waited_out_and_every_notification_arrives_once(world: MatrixWorld, db):
    """Synapse's own limit for the bot lowered to 1 message/s (admin API): M_LIMIT_EXCEEDED makes the
    worker hold the room and re-enqueue; every row ends sent, each message seen once."""
    import json
    import urllib.request
    import uuid

    resident = world.people["resident"]
    admin = await asyncio.to_thread(world.homeserver.register, f"admin{uuid.uuid4().hex[:6]}", "admin-pass-123",
                                    True)
    login = json.dumps({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": admin},
                        "password": "admin-pass-123"}).encode()
    token = json.load(urllib.request.urlopen(urllib.request.Request(
        f"{world.homeserver.url}/_matrix/client/v3/login", data=login,
        headers={"Content-Type": "application/json"})))["access_token"]
    override = urllib.request.Request(
        f"{world.homeserver.url}/_synapse/admin/v1/users/{world.bot_id}/override_ratelimit",
        data=json.dumps({"messages_per_second": 1, "burst_count": 1}).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    await asyncio.to_thread(urllib.request.urlopen, override)

    room = await resident.direct_room_with(world.bot_id)
    await world.wait_joined(room)
    await resident.say(room, "!help")   # the bot learns the direct room
    await resident.next_from(room, world.bot_id)
    async with db.sessions() as session:
        user = await get_or_create_user(session, "matrix", resident.user_id)
        await session.commit()
        ids = [await queue_notification(session, key=f"u{user.id}:burst:{i}", chat_id=resident.user_id,
                                        platform="matrix", text=f"第 {i} 条通知") for i in range(5)]
        await session.commit()
    for outbox_id in ids:
        send(world.broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))
    await world.drain(timeout=60)
    async with db.sessions() as session:
        rows = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))
    assert {r.status for r in rows} == {"sent"}
    assert any(r.attempts > 1 for r in rows), "some were postponed by the homeserver's 429"
    await resident.wait_for(lambda seen: len({s.body for s in seen if s.body.endswith("条通知")}) == 5)
    await resident.sync(1500)
    bodies = [s.body for s in resident.seen if s.body.endswith("条通知")]
    assert sorted(bodies) == sorted(f"第 {i} 条通知" for i in range(5))   # each exactly once


def tiny_png() -> bytes:
    """A valid 1×1 PNG, built here rather than checked in."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


async def test_a_photo_and_a_location_reach_the_request_as_telegrams_do(world: MatrixWorld, db):
    resident = world.people["resident"]
    room = await onboard(world, resident)
    png = tiny_png()
    uploaded, _ = await resident.client.upload(io.BytesIO(png), content_type="image/png", filename="wall.png",
                                               filesize=len(png))
    assert isinstance(uploaded, UploadResponse), uploaded
    mxc = uploaded.content_uri
    image = {"msgtype": "m.image", "body": "楼道的灯坏了好几天了 晚上黑乎乎的", "filename": "wall.png", "url": mxc,
             "info": {"mimetype": "image/png", "size": len(png), "w": 1, "h": 1}}

    # A photo with a caption is a request, the photo its attachment (the mxc URI is the reference).
    await resident.client.room_send(room, "m.room.message", image)
    (ack,) = await resident.next_from(room, world.bot_id)
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
    assert request.number in ack.body and "已收到您的诉求" in ack.body
    assert (request.text, request.source) == ("楼道的灯坏了好几天了 晚上黑乎乎的", "matrix")
    assert request.attachments == [{"type": "photo", "file_id": mxc}]
    await world.drain()
    (routed,) = await resident.next_from(room, world.bot_id)
    assert request.number in routed.body and "已转交" in routed.body

    # Bad input, each a kind answer and no request: an image without its file, a photo without words.
    await resident.client.room_send(room, "m.room.message", {"msgtype": "m.image", "body": "wall.png"})
    (no_file,) = await resident.next_from(room, world.bot_id)
    assert "没有收到" in no_file.body
    await resident.client.room_send(room, "m.room.message", {**image, "body": "wall.png"})
    (no_words,) = await resident.next_from(room, world.bot_id)
    assert "请用文字描述" in no_words.body

    # Adding a location to the request, as a Telegram resident would.
    await resident.say(room, "!requests")
    (listing,) = await resident.next_from(room, world.bot_id)
    await resident.say(room, str(number_of(listing, request.number)))
    (view,) = await resident.next_from(room, world.bot_id)
    await resident.say(room, str(number_of(view, "补充信息")))
    (prompt,) = await resident.next_from(room, world.bot_id)
    assert "补充" in prompt.body
    for geo_uri in ("geo:99,200", "geo:36.06;103.83", None):   # malformed: kindly refused, nothing stored
        content = {"msgtype": "m.location", "body": "Location", **({"geo_uri": geo_uri} if geo_uri else {})}
        await resident.client.room_send(room, "m.room.message", content)
        (refused,) = await resident.next_from(room, world.bot_id)
        assert "位置无法识别" in refused.body
    location = {"msgtype": "m.location", "body": "Location at 36.0611, 103.8343",
                "geo_uri": "geo:36.0611,103.8343;u=20"}
    sent = await resident.client.room_send(room, "m.room.message", location)
    (added,) = await resident.next_from(room, world.bot_id)
    assert "已把补充信息加到诉求" in added.body and request.number in added.body
    # The same event delivered again (a restart before the sync token was saved) adds nothing.
    again = Incoming(room_id=room, sender=resident.user_id, event_id=sent.event_id, content=location, direct=True)
    assert await world.bot.channel.handle(again) == "duplicate"
    await world.drain()
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 1
        request = await session.get(Request, request.id)
        told = (await session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("g:info_added:%")))).one()
    assert request.attachments == [{"type": "photo", "file_id": mxc},
                                   {"type": "location", "latitude": 36.0611, "longitude": 103.8343}]
    assert (told.platform, told.chat_id, told.status) == ("matrix", world.staff_room, "sent")


async def test_an_encrypted_room_is_told_once_that_the_bot_cannot_read_it(world: MatrixWorld, caplog):
    resident = world.people["resident"]
    encryption = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
    room = (await resident.client.room_create(name="私聊（加密）", invite=[world.bot_id],
                                              initial_state=[encryption])).room_id
    with caplog.at_level(logging.WARNING, logger="linju.matrix"):
        (notice,) = await resident.next_from(room, world.bot_id)
    assert notice.content["msgtype"] == "m.notice"
    zh, en = notice.body.index("加密"), notice.body.index("encrypted rooms")
    assert zh < en and world.bot_id in notice.body and "!start" in notice.body
    warnings = [r for r in caplog.records if r.name == "linju.matrix" and "encrypted room" in r.getMessage()]
    assert warnings and all(room not in str(r.__dict__) and resident.user_id not in str(r.__dict__) for r in warnings)

    # What the resident writes there arrives encrypted; the bot says nothing more, even after a restart
    # (its in-memory note gone, the store's kept).
    world.bot.told_encrypted.clear()
    for _ in range(2):
        await resident.client.room_send(room, "m.room.encrypted", {
            "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnB…", "sender_key": "c2VuZGVy",
            "session_id": "c2Vzc2lvbg", "device_id": "RESIDENT"})
    dm = await resident.direct_room_with(world.bot_id)
    await world.wait_joined(dm)
    await resident.say(dm, "!help")   # answered after the encrypted events were synced
    await resident.next_from(dm, world.bot_id)
    await resident.sync(1500)
    assert len([s for s in resident.seen if s.room_id == room and s.sender == world.bot_id]) == 1
    assert room in world.bot.told_encrypted
    restarted = create_store(world.settings.redis_url, world.bot_id)
    try:
        channel = MatrixChannel(world.bot.api, restarted, world.db.sessions, world.config, world.bot.channel.enqueue)
        assert await channel.encrypted_room(room) is False
    finally:
        await restarted.close()
    assert not [s for s in resident.seen if s.room_id == dm and "加密" in s.body]
