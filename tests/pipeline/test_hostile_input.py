"""Property-based (hypothesis): every handler, fed hostile input, answers kindly and changes nothing it should not.

The world: two communities with a resident each and their requests, zjy staff, volunteers of both
communities, a task, a listed book; plus an intruder — a zjy resident with no role who owns
nothing. The bot is the real dispatcher (aiogram) with the real flows and PostgreSQL.

- Every conversation step that waits for text (discovered in shared/flows, see
  `tests.hostile.awaited_steps`) and the idle state get empty, huge, emoji-only, RTL,
  zero-width, control-character, SQL- and HTML-looking text, and stickers, voice, documents,
  contacts, locations, photos, dice, video notes and animations where text is expected.
- Every callback verb (read from `shared.flows.actions.VERBS` at run time, so verbs of features
  merged later are covered) gets forged data: foreign or deleted objects, other communities,
  wrong arity, truncated, malformed, oversize — pressed by the intruder, the owner, staff and a
  volunteer, in private chats and in a group.

Checked for every example: no exception (tests.guards fails the test if the last-line error
handler had to answer), the person got an answer (a message, an edit, or an answered button),
and: whatever the intruder sends changes no row that existed before (requests and their history,
tasks, volunteers, other users, book holds and points, followers, referrals); whatever anyone in
zjy sends changes nothing of the other community; every stored request text is clean and at most
4,096 characters.

The world lives across examples (building it per example would take minutes), so what one example
changes, the next one starts from: a property that fails only because of an earlier example's change
(a zjy staff member who had pressed `comm:cjx` was then staff of cjx, before that was refused) cannot
be replayed by hypothesis alone and is reported as `Flaky`. The failure message therefore carries
the presses and texts that changed anything before it: replay those, in order, then the failing one.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import AnswerCallbackQuery
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shared.db.models import Base
from shared.domain.text import MAX_REQUEST_CHARS, clean_text
from tests.hostile import NON_TEXT, Hostile, awaited_steps, forged_data, hostile_text
from tests.pipeline.test_books import list_book
from tests.pipeline.test_request_handling import CJX_STAFF, STAFF, STAFF_CHAT_ZJY, make_staff, report
from tests.pipeline.test_resident_request import RESIDENT, onboard
from tests.pipeline.test_volunteers import CJX_HELPER, HELPER, approved_volunteer

INTRUDER = 501777   # zjy resident, no role, owns nothing
NEIGHBOUR = 501888  # cjx resident
ACTORS = (INTRUDER, RESIDENT, STAFF, HELPER)

# Rows an intruder must never change (those that existed before; new rows of their own are fine).
GUARDED = ("requests", "request_events", "tasks", "volunteers", "users", "book_holds", "book_points",
           "request_followers", "referrals")
COMMUNITY_COLUMN = {"requests": "community_code", "tasks": "community_code", "volunteers": "community_code",
                    "users": "community_code"}



def on_postgres(test):  # type: ignore[no-untyped-def]
    """One backend is enough for properties about the flows (the other suites run both)."""
    test = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)(test)
    return pytest.mark.parametrize("broker", ["stub"], indirect=True)(test)


HYPOTHESIS = settings(max_examples=120, deadline=None, derandomize=False,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                             HealthCheck.data_too_large])


class World:
    def __init__(self, p, db, users: dict[int, int], pool: list[str]) -> None:  # type: ignore[no-untyped-def]
        self.p, self.db, self.users, self.pool = p, db, users, pool
        self.hostile = Hostile()
        self.history: list[str] = []   # what changed rows so far, in order: the reproduction of a failure

    def remember(self, actor: int, what: object, before: dict, after: dict) -> None:
        changed = sorted({name for name, rows in before.items() if rows != after[name]})
        if changed:
            self.history.append(f"{actor} {what!r:.80} changed {', '.join(changed)}")

    async def rows(self) -> dict[str, dict[tuple, tuple]]:
        snapshot: dict[str, dict[tuple, tuple]] = {}
        async with self.db.sessions() as session:
            for name in GUARDED:
                table = Base.metadata.tables[name]
                keys = [c.name for c in table.primary_key.columns]
                result = await session.execute(select(table))
                snapshot[name] = {tuple(row._mapping[k] for k in keys): tuple(row) for row in result}
        return snapshot

    def changed(self, before: dict, after: dict, actor: int) -> list[str]:
        """Rows that existed before and are now different or gone, and that `actor` had no business changing."""
        problems = []
        for name, rows in before.items():
            table = Base.metadata.tables[name]
            columns = [c.name for c in table.columns]
            for key, row in rows.items():
                if after[name].get(key) == row:
                    continue
                values = dict(zip(columns, row))
                if self._own(name, values, actor, before):
                    continue  # their own account, their own requests (routed meanwhile by intake) …
                if actor != INTRUDER and not self._other_community(name, values):
                    continue  # people of zjy may change zjy's things; the property is about cjx
                problems.append(f"{name} {key}: {values} -> {after[name].get(key)}")
        return problems

    def _own(self, name: str, values: dict[str, Any], actor: int, before: dict) -> bool:
        me = self.users[actor]
        if name == "users":
            return values["id"] == me
        if name in ("requests", "volunteers", "request_followers"):
            return values.get("user_id") == me
        if name == "request_events":
            owner = [r for k, r in before["requests"].items() if k == (values["request_id"],)]
            columns = [c.name for c in Base.metadata.tables["requests"].columns]
            return bool(owner) and dict(zip(columns, owner[0]))["user_id"] == me
        return False

    @staticmethod
    def _other_community(name: str, values: dict[str, Any]) -> bool:
        column = COMMUNITY_COLUMN.get(name)
        return column is not None and values.get(column) == "cjx"

    async def request_texts_clean(self) -> list[str]:
        async with self.db.sessions() as session:
            texts = list(await session.scalars(select(Base.metadata.tables["requests"].c.text)))
        return [t[:40] for t in texts if not t or len(t) > MAX_REQUEST_CHARS or clean_text(t) != t]

    def buttons(self) -> list[str]:
        """Callback data of every button the bot has shown anyone so far: real verbs, real ops, real ids."""
        seen = set()
        for call in self.p.telegram.calls:
            markup = getattr(call, "reply_markup", None)
            for row in getattr(markup, "inline_keyboard", None) or []:
                seen.update(b.callback_data for b in row if b.callback_data)
        return sorted(seen)

    def answered(self, chat: int, since: int, callback_id: str | None = None) -> bool:
        for call in self.p.telegram.calls[since:]:
            if isinstance(call, AnswerCallbackQuery) and call.callback_query_id == callback_id:
                return True
            if str(getattr(call, "chat_id", "")) == str(chat):
                return True
        return False


async def user_ids(db) -> dict[int, int]:  # type: ignore[no-untyped-def]
    from shared.repo.users import find_user

    async with db.sessions() as session:
        return {tg: (await find_user(session, "telegram", str(tg))).id
                for tg in (INTRUDER, RESIDENT, STAFF, HELPER, NEIGHBOUR, CJX_STAFF, CJX_HELPER)}


@pytest.fixture
async def world(pipeline, db, config) -> World:
    p = pipeline
    await onboard(p)
    await onboard(p, INTRUDER)
    await onboard(p, NEIGHBOUR, "cjx")
    await make_staff(db, STAFF, "zjy")
    await make_staff(db, CJX_STAFF, "cjx")
    await approved_volunteer(db, HELPER, "zjy", phone="13800001111")
    await approved_volunteer(db, CJX_HELPER, "cjx")
    mine = await report(p, db, "楼道的灯坏了好几天了")
    theirs = await report(p, db, "小区门口的路灯不亮了", user_id=NEIGHBOUR)
    await p.feed(p.updates.press(STAFF, f"stk:{mine.id}:errands", chat_id=STAFF_CHAT_ZJY))
    await list_book(p, RESIDENT, "《平凡的世界》 路遥")
    await p.drain()
    pool: set[str] = {str(mine.id), str(theirs.id), "0", "999999999", "-1", "zjy", "cjx", "nsm", "xyz"}
    async with db.sessions() as session:
        for table in Base.metadata.sorted_tables:
            if "id" in table.c and table.c.id.primary_key:
                pool.update(str(i) for i in await session.scalars(select(table.c.id).limit(50)))
    pool.update(f.code for c in config.communities for f in c.fridges)
    return World(p, db, await user_ids(db), sorted(pool))


async def set_step(world: World, user: int, step: str | None) -> None:
    key = StorageKey(bot_id=world.p.bot.id, chat_id=user, user_id=user)
    await world.p.dispatcher.storage.set_data(key, {"await": step} if step else {})


@on_postgres
@HYPOTHESIS
@given(data=st.data())
async def test_every_text_step_answers_hostile_content_kindly(world: World, data: st.DataObject) -> None:
    actor = data.draw(st.sampled_from(ACTORS), label="actor")
    step = data.draw(st.sampled_from([None, *awaited_steps()]), label="step")
    kind = data.draw(st.sampled_from(["text", "text", "text", *NON_TEXT]), label="kind")
    if kind == "text":
        text = data.draw(hostile_text, label="text")
        update = world.hostile.text(actor, text)
    else:
        caption = data.draw(st.one_of(st.none(), hostile_text), label="caption")
        update = world.hostile.content(actor, kind, caption=caption)
        text = None
    before = await world.rows()
    since = len(world.p.telegram.calls)
    await set_step(world, actor, step)
    await world.p.feed(update)
    await world.p.drain()
    foreign_command = text is not None and text.startswith("/") and "@" in text.split()[0]
    if not foreign_command:
        assert world.answered(actor, since), f"no answer to {kind} {text!r:.60} in step {step}"
    after = await world.rows()
    problems = world.changed(before, after, actor)
    assert not problems, (problems[:3], world.history[-10:])
    world.remember(actor, (step, kind, text), before, after)
    assert not await world.request_texts_clean()


@on_postgres
@HYPOTHESIS
@given(data=st.data())
async def test_every_button_answers_forged_data_and_changes_nothing_foreign(world: World,
                                                                            data: st.DataObject) -> None:
    actor = data.draw(st.sampled_from(ACTORS), label="actor")
    # Everything is drawn up front, whatever is used: the buttons seen grow from example to example,
    # and hypothesis needs the same draws for the same choices.
    ids = [i for i in world.pool if i.lstrip("-").isdigit()]
    mode = data.draw(st.sampled_from(["seen", "swapped", "swapped", "forged"]), label="mode")
    index = data.draw(st.integers(0, 10**6), label="button")
    swaps = iter(data.draw(st.lists(st.sampled_from(ids), min_size=3, max_size=3), label="ids"))
    forged = data.draw(forged_data(world.pool), label="data")
    seen = world.buttons()
    if mode != "forged" and seen:
        # A real button, pressed by whoever (someone else's, an old one), or with its ids swapped for
        # another person's, another community's, a deleted or a nonexistent object.
        forged = seen[index % len(seen)]
        if mode == "swapped":
            verb, *args = forged.split(":")
            forged = ":".join([verb, *(next(swaps) if a.isdigit() else a for a in args)])
    in_group = data.draw(st.booleans(), label="in_group") and actor == STAFF
    update = world.hostile.press(actor, forged, chat_id=STAFF_CHAT_ZJY if in_group else None,
                                 message_id=data.draw(st.integers(1, 2**31 - 1), label="message_id"))
    before = await world.rows()
    since = len(world.p.telegram.calls)
    await world.p.feed(update)
    await world.p.drain()
    assert world.answered(actor, since, update.callback_query.id), f"button {forged!r} not answered"
    after = await world.rows()
    problems = world.changed(before, after, actor)
    assert not problems, (problems[:3], world.history[-10:])
    world.remember(actor, forged, before, after)
    assert not await world.request_texts_clean()


def test_discovery_finds_the_known_steps_and_verbs() -> None:
    """The discovery the properties rely on sees what exists today (and so what is merged later)."""
    steps = set(awaited_steps())
    assert {"add_info", "answer", "staff_reply", "vol_name", "vol_phone", "book_title", "fr_qty"} <= steps
    from tests.hostile import verbs

    assert {"consent", "st", "tk", "fr", "bkr"} <= set(verbs())
