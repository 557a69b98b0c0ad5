"""Linking a Telegram and a Matrix account with a one-time code, through the channel-neutral flows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from shared import linking
from shared.clock import utcnow
from shared.db.models import IdentityLink, LinkCode, Request, User
from shared.flows.context import FlowContext
from shared.flows.dispatch import handle_command, handle_text
from shared.privacy import export_user_data, forget_user
from shared.repo.users import find_user, get_or_create_user, give_consent


async def _noop(*_args) -> None:  # type: ignore[no-untyped-def]
    return None


async def say(db, config, platform: str, external_id: str, command: str, args: str | None = None,
              state: dict | None = None) -> str:
    async with db.sessions() as session:
        user = await get_or_create_user(session, platform, external_id)
        await session.commit()
        ctx = FlowContext(session=session, config=config, user=user, enqueue=_noop, platform=platform,
                          state=state if state is not None else {})
        replies = await handle_command(ctx, command, args)
        return "\n".join(r.text for r in replies)


async def resident(db, external_id: str = "501001") -> User:
    async with db.sessions() as session:
        user = await get_or_create_user(session, "telegram", external_id)
        give_consent(user)
        user.community_code = "zjy"
        await session.commit()
        return user


def code_in(text: str) -> str:
    return next(word for word in text.replace("，", " ").replace("：", " ").split() if word.isdigit() and len(word) == 8)


async def test_a_matrix_account_links_to_a_telegram_user_and_acts_as_them(db, config):
    telegram = await resident(db)
    code = code_in(await say(db, config, "telegram", "501001", "link"))
    async with db.sessions() as session:
        stored = (await session.scalars(select(LinkCode))).one()
    assert stored.code_hash != code and len(stored.code_hash) == 64   # only a hash is kept

    answer = await say(db, config, "matrix", "@wang:linju.test", "link", code)
    assert "绑定成功" in answer
    async with db.sessions() as session:
        acting = await find_user(session, "matrix", "@wang:linju.test")
        assert acting.id == telegram.id
        ctx = FlowContext(session=session, config=config, user=acting, enqueue=_noop, platform="matrix")
        replies = await handle_text(ctx, "楼道的灯坏了好几天了", idempotency_key="mx:$e1")
        assert "已收到您的诉求" in replies[0].text
        request = (await session.scalars(select(Request))).one()
        assert request.user_id == telegram.id and request.source == "matrix"
        exported = await export_user_data(session, acting)
        assert exported["linked_accounts"] == [{"platform": "matrix", "id": "@wang:linju.test"}]


async def test_codes_work_once_expire_and_refuse_the_wrong_account(db, config):
    await resident(db)
    code = code_in(await say(db, config, "telegram", "501001", "link"))
    assert "自己刚刚获取" in await say(db, config, "telegram", "501001", "link", code)
    assert "同一个平台" in await say(db, config, "telegram", "999", "link", code)
    assert "绑定成功" in await say(db, config, "matrix", "@a:linju.test", "link", code)
    assert "用过" in await say(db, config, "matrix", "@b:linju.test", "link", code)          # used once
    assert "已经绑定过" not in await say(db, config, "matrix", "@a:linju.test", "link", code)  # still just invalid

    late = code_in(await say(db, config, "telegram", "501001", "link"))
    async with db.sessions() as session:
        await session.execute(update(LinkCode).values(expires_at=utcnow() - timedelta(minutes=1)))
        await session.commit()
    assert "过期" in await say(db, config, "matrix", "@c:linju.test", "link", late)

    first = code_in(await say(db, config, "telegram", "501001", "link"))
    second = code_in(await say(db, config, "telegram", "501001", "link"))
    assert "不对" in await say(db, config, "matrix", "@d:linju.test", "link", first)   # replaced by a newer code
    assert "绑定成功" in await say(db, config, "matrix", "@d:linju.test", "link", second)
    for malformed in ("12", "abcdefgh", "1" * 200, "１２３４５６７８"):
        assert "不对" in await say(db, config, "matrix", "@e:linju.test", "link", malformed)
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IdentityLink)) == 2


async def test_an_account_with_its_own_history_cannot_be_linked_away(db, config):
    await resident(db)
    code = code_in(await say(db, config, "telegram", "501001", "link"))
    async with db.sessions() as session:
        other = await get_or_create_user(session, "matrix", "@busy:linju.test")
        give_consent(other)
        other.community_code = "zjy"
        await session.commit()
        ctx = FlowContext(session=session, config=config, user=other, enqueue=_noop, platform="matrix")
        await handle_text(ctx, "小区垃圾桶满了没人清", idempotency_key="mx:$e2")
    assert "已经有自己的诉求" in await say(db, config, "matrix", "@busy:linju.test", "link", code)
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IdentityLink)) == 0
        assert (await session.scalars(select(LinkCode))).one().used_at is None   # still usable by the right account


async def test_guessing_codes_is_stopped_after_a_few_tries(db, config):
    await resident(db)
    code = code_in(await say(db, config, "telegram", "501001", "link"))
    state: dict = {}
    for guess in range(linking.MAX_FAILURES):
        assert "不对" in await say(db, config, "matrix", "@guess:linju.test", "link", f"{guess:08d}", state)
    assert "次数太多" in await say(db, config, "matrix", "@guess:linju.test", "link", code, state)
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IdentityLink)) == 0


async def test_forgetting_the_person_unlinks_the_other_account(db, config):
    telegram = await resident(db)
    code = code_in(await say(db, config, "telegram", "501001", "link"))
    await say(db, config, "matrix", "@gone:linju.test", "link", code)
    async with db.sessions() as session:
        await forget_user(session, await session.get(User, telegram.id))
        await session.commit()
        acting = await find_user(session, "matrix", "@gone:linju.test")
    assert acting is not None and acting.id != telegram.id
