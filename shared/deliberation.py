"""Deliberation (议事四步法, 畅谈客厅): topics through propose → discuss → decide → carry out, applied once here.

Every operation checks who may do it (staff of the topic's community; residents of its
community or compound), changes the stage with a conditional UPDATE (so a repeated press
or a race changes nothing twice), writes the public timeline, queues notifications in the
outbox under unique keys, and returns their ids for delivery after commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify
from shared.clock import local_clock
from shared.config import CommunitiesConfig
from shared.db.models import (
    DelibAction,
    DelibBallot,
    DelibComment,
    DelibEvent,
    DelibMeeting,
    DelibRating,
    DelibResidence,
    DelibSupport,
    DelibTopic,
    DelibVote,
    Request,
    User,
)
from shared.db.upsert import insert_for
from shared.domain import deliberation as rules
from shared.domain.deliberation import Stage
from shared.domain.permissions import is_staff_of
from shared.domain.requests import OPEN_STATUSES, RequestStatus
from shared.flows import actions
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t
from shared.repo.requests import add_event as add_request_event
from shared.repo.requests import create_request, get_request, transition

STAFF_LOCALE = notify.STAFF_LOCALE


@dataclass
class Outcome:
    """What an operation did: `result` is "ok" or a reason code the flow turns into a kind reply."""

    result: str
    ids: list[int] = field(default_factory=list)
    topic: DelibTopic | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.result == "ok"


def guarded(model):  # type: ignore[no-untyped-def]
    """A conditional UPDATE whose WHERE the database evaluates (objects in the session are not touched)."""
    return update(model).execution_options(synchronize_session=False)


def _ids(*ids: int | None) -> list[int]:
    return [i for i in ids if i]


def is_staff(user: User, community: str) -> bool:
    return is_staff_of(user.roles, user.community_code, community)


def local_time(config: CommunitiesConfig, when: datetime) -> str:
    return local_clock(when, config.defaults.timezone)


def scope_name(topic_or_compound: DelibTopic | str | None, locale: str) -> str:
    compound = topic_or_compound.compound if isinstance(topic_or_compound, DelibTopic) else topic_or_compound
    return compound or t(locale, "deliberation.whole_community")


def view_button(locale: str, topic_id: int) -> Button:
    return Button(t(locale, "deliberation.open_topic"), actions.make("dl", "view", topic_id))


# --- who may take part ------------------------------------------------------------------------

async def residence_of(session: AsyncSession, user: User) -> str | None:
    row = await session.get(DelibResidence, user.id)
    return row.compound if row is not None and row.community_code == user.community_code else None


async def declare_compound(session: AsyncSession, config: CommunitiesConfig, user: User, compound: str) -> str:
    """Record the resident's compound once: "ok", "already" (kept as declared) or "unknown"."""
    if not user.community_code or compound not in config.community(user.community_code).compounds:
        return "unknown"
    row = await session.get(DelibResidence, user.id)
    if row is not None and row.community_code == user.community_code:
        return "already"
    if row is not None:   # moved to another community: the old compound no longer applies
        row.community_code, row.compound = user.community_code, compound
        return "ok"
    stmt = (insert_for(session, DelibResidence)
            .values(user_id=user.id, community_code=user.community_code, compound=compound)
            .on_conflict_do_nothing(index_elements=["user_id"]))
    await session.execute(stmt)
    return "ok"


async def standing(session: AsyncSession, user: User, topic: DelibTopic) -> str:
    """"ok", or why this person may not support, comment or rate: other_community, need_compound, other_compound."""
    return await standing_in(session, user, topic.community_code, topic.compound)


async def standing_in(session: AsyncSession, user: User, community: str, compound: str | None) -> str:
    """The same for a community, or one compound of it (a vote's electorate)."""
    if user.community_code != community:
        return "other_community"
    mine = await residence_of(session, user) if compound else None
    if compound and mine is None:
        return "need_compound"
    if not rules.eligible(user.community_code, mine, community, compound):
        return "other_compound"
    return "ok"


# --- plumbing ---------------------------------------------------------------------------------

async def add_event(session: AsyncSession, topic_id: int, kind: str, *, actor: str = "system", **data: Any) -> None:
    session.add(DelibEvent(topic_id=topic_id, kind=kind, actor=actor, data=data))


async def load_topic(session: AsyncSession, topic_id: int | None) -> DelibTopic | None:
    return await session.get(DelibTopic, topic_id) if topic_id else None


async def _set_stage(session: AsyncSession, topic_id: int, operation: str, **values: Any) -> DelibTopic | None:
    """Apply `operation` if the topic's stage allows it; the database decides (None: not allowed / already done)."""
    allowed, target = rules.TRANSITIONS[operation]
    stmt = (guarded(DelibTopic)
            .where(DelibTopic.id == topic_id, DelibTopic.stage.in_([str(s) for s in allowed]))
            .values(stage=str(target), updated_at=func.now(), **values)
            .returning(DelibTopic)
            .execution_options(synchronize_session=False, populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def tell_group(session: AsyncSession, config: CommunitiesConfig, community: str, key: str,
                     reply: Reply) -> list[int]:
    return await notify.to_group(session, config, community, "staff", f"g:dl:{key}", reply.text,
                                 options=reply.options_json())


async def tell_users(session: AsyncSession, users: list[User], key: str, build) -> list[int]:  # type: ignore[no-untyped-def]
    """Tell each person in their own language; `build(locale)` makes the Reply."""
    ids = []
    for user in users:
        outbox_id = await notify.to_user(session, user, f"dl:{key}", build(user.locale or "zh"))
        if outbox_id:
            ids.append(outbox_id)
    return ids


async def supporters(session: AsyncSession, topic: DelibTopic) -> list[User]:
    """The proposer and everyone who supported the topic (they hear about meetings and progress)."""
    ids = set(await session.scalars(select(DelibSupport.user_id).where(DelibSupport.topic_id == topic.id)))
    if topic.proposer_id:
        ids.add(topic.proposer_id)
    return await _users(session, ids)


async def participants(session: AsyncSession, topic: DelibTopic) -> list[User]:
    """Everyone who took part: proposer, supporters, commenters and voters."""
    ids = {u.id for u in await supporters(session, topic)}
    ids |= set(await session.scalars(select(DelibComment.user_id).where(DelibComment.topic_id == topic.id,
                                                                        DelibComment.user_id.is_not(None))))
    ids |= set(await session.scalars(select(DelibBallot.user_id).join(DelibVote, DelibVote.id == DelibBallot.vote_id)
                                     .where(DelibVote.topic_id == topic.id)))
    return await _users(session, ids)


async def eligible_residents(session: AsyncSession, community: str, compound: str | None) -> list[User]:
    """Who may vote: residents of the community, or those who declared the compound."""
    stmt = select(User).where(User.community_code == community, User.consent_at.is_not(None))
    if compound:
        stmt = stmt.join(DelibResidence, DelibResidence.user_id == User.id).where(
            DelibResidence.compound == compound, DelibResidence.community_code == community)
    return list(await session.scalars(stmt.order_by(User.id)))


async def _users(session: AsyncSession, ids: set[int]) -> list[User]:
    if not ids:
        return []
    return list(await session.scalars(select(User).where(User.id.in_(sorted(ids))).order_by(User.id)))


def staff_card(topic: DelibTopic, locale: str = STAFF_LOCALE) -> Reply:
    """What staff see of a new proposal, with accept / handle-as-request."""
    text = t(locale, "deliberation.staff_new", id=topic.id, title=topic.title, scope=scope_name(topic, locale),
             description=notify.excerpt(topic.description))
    return Reply(text, rows(Button(t(locale, "deliberation.accept"), actions.make("dl", "acc", topic.id)),
                            Button(t(locale, "deliberation.as_request"), actions.make("dl", "req", topic.id)),
                            view_button(locale, topic.id)))


# --- step 1: propose --------------------------------------------------------------------------

async def propose(session: AsyncSession, config: CommunitiesConfig, user: User, *, title: str, description: str,
                  photos: list[str], compound: str | None) -> Outcome:
    if not user.community_code:
        return Outcome("other_community")
    if compound is not None and compound not in config.community(user.community_code).compounds:
        return Outcome("unknown_compound")
    topic = DelibTopic(community_code=user.community_code, compound=compound, title=title, description=description,
                       photos=photos, proposer_id=user.id, stage=str(Stage.PROPOSED))
    session.add(topic)
    await session.flush()
    await add_event(session, topic.id, "proposed", actor=f"user:{user.id}", scope=scope_name(compound, "zh"))
    ids = await tell_group(session, config, topic.community_code, f"new:{topic.id}", staff_card(topic))
    return Outcome("ok", ids, topic)


async def accept(session: AsyncSession, config: CommunitiesConfig, topic_id: int, staff: User) -> Outcome:
    topic = await load_topic(session, topic_id)
    if topic is None or not is_staff(staff, topic.community_code):
        return Outcome("not_allowed")
    updated = await _set_stage(session, topic.id, "accept")
    if updated is None:
        return Outcome("stage", topic=topic)
    await add_event(session, topic.id, "accepted", actor=f"user:{staff.id}")
    proposer = await session.get(User, topic.proposer_id) if topic.proposer_id else None
    ids = _ids(await notify.to_user(session, proposer, f"dl:accepted:{topic.id}",
                                    Reply(t(proposer.locale if proposer else "zh", "deliberation.accepted_you",
                                            id=topic.id, title=topic.title),
                                          rows(view_button(proposer.locale if proposer else "zh", topic.id)))))
    return Outcome("ok", ids, updated)


async def answer_as_request(session: AsyncSession, config: CommunitiesConfig, topic_id: int, staff: User) -> Outcome:
    """Step 1 ended otherwise: the proposal is handled as a normal request (numbered, routed, followed up)."""
    from shared.intake.outcome import route

    topic = await load_topic(session, topic_id)
    if topic is None or not is_staff(staff, topic.community_code):
        return Outcome("not_allowed")
    updated = await _set_stage(session, topic.id, "answer", closed_at=func.now())
    if updated is None:
        return Outcome("stage", topic=topic)
    proposer = await session.get(User, topic.proposer_id) if topic.proposer_id else None
    # create_request commits (its number must be durable): the stage change above commits with it.
    request, _created = await create_request(
        session, community_code=topic.community_code, user_id=topic.proposer_id,
        text=f"{topic.title}\n{topic.description}", idempotency_key=f"delib:{topic.id}",
        source=proposer.platform if proposer else "telegram",
        attachments=[{"type": "photo", "file_id": p} for p in topic.photos or []])
    await add_event(session, topic.id, "answered", actor=f"user:{staff.id}", number=request.number)
    await add_request_event(session, request.id, "from_topic", actor=f"user:{staff.id}", topic=topic.id)
    ids = await route(session, config, request, "deliberation", urgent=False, confidence=None,
                      actor=f"user:{staff.id}", only_from={RequestStatus.RECEIVED})
    return Outcome("ok", ids, updated, {"number": request.number})


async def from_request(session: AsyncSession, config: CommunitiesConfig, request_id: int, staff: User,
                       compound: str | None) -> Outcome:
    """A resident's `deliberation` request becomes an accepted topic; the request closes into it."""
    request = await get_request(session, request_id)
    if request is None or not is_staff(staff, request.community_code):
        return Outcome("not_allowed")
    if compound is not None and compound not in config.community(request.community_code).compounds:
        return Outcome("unknown_compound")
    existing = await session.scalar(select(DelibTopic).where(DelibTopic.request_id == request.id))
    if existing is not None:
        return Outcome("already", topic=existing)
    if request.category != "deliberation" or request.status not in OPEN_STATUSES:
        return Outcome("stage")
    closed = await transition(session, request.id, RequestStatus.CLOSED,
                              only_from={RequestStatus.ROUTED, RequestStatus.IN_PROGRESS}, closed_at=func.now())
    if closed is None:
        return Outcome("stage")
    text = " ".join(request.text.split())
    title = text[:rules.TITLE_LIMIT]
    photos = [a["file_id"] for a in request.attachments or [] if a.get("type") == "photo" and a.get("file_id")]
    topic = DelibTopic(community_code=request.community_code, compound=compound, title=title,
                       description=request.text[:rules.DESCRIPTION_LIMIT], photos=photos, proposer_id=request.user_id,
                       request_id=request.id, stage=str(Stage.DISCUSSING))
    try:
        async with session.begin_nested():
            session.add(topic)
            await session.flush()
    except IntegrityError:   # a concurrent press made the topic first
        return Outcome("already")
    await add_event(session, topic.id, "proposed", actor=f"user:{request.user_id}" if request.user_id else "system",
                    number=request.number, scope=scope_name(compound, "zh"))
    await add_event(session, topic.id, "accepted", actor=f"user:{staff.id}")
    await add_request_event(session, request.id, "became_topic", actor=f"user:{staff.id}", topic=topic.id)
    resident = await notify.resident_of(session, request)
    locale = resident.locale if resident else "zh"
    ids = _ids(await notify.to_resident(session, request, f"dl_topic:{topic.id}",
                                        Reply(t(locale, "deliberation.request_became_topic", number=request.number,
                                                id=topic.id, title=topic.title),
                                              rows(view_button(locale, topic.id)))))
    return Outcome("ok", ids, topic)


# --- step 2: discuss --------------------------------------------------------------------------

async def support(session: AsyncSession, config: CommunitiesConfig, topic_id: int, user: User) -> Outcome:
    topic = await load_topic(session, topic_id)
    if topic is None:
        return Outcome("stale")
    if topic.stage not in rules.OPEN_STAGES:
        return Outcome("stage", topic=topic)
    why = await standing(session, user, topic)
    if why != "ok":
        return Outcome(why, topic=topic)
    stmt = (insert_for(session, DelibSupport).values(topic_id=topic.id, user_id=user.id)
            .on_conflict_do_nothing(index_elements=["topic_id", "user_id"]).returning(DelibSupport.user_id))
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        return Outcome("already", topic=topic)
    count = int(await session.scalar(select(func.count()).select_from(DelibSupport)
                                     .where(DelibSupport.topic_id == topic.id)) or 0)
    ids: list[int] = []
    threshold = config.defaults.deliberation.support_threshold
    if rules.reaches_threshold(count, threshold):
        flagged = await session.scalar(guarded(DelibTopic).where(DelibTopic.id == topic.id, DelibTopic.flagged_at.is_(None))
                                       .values(flagged_at=func.now()).returning(DelibTopic.id))
        if flagged is not None:
            await add_event(session, topic.id, "flagged", supporters=count)
            reply = Reply(t(STAFF_LOCALE, "deliberation.flagged", id=topic.id, title=topic.title, count=count),
                          rows(view_button(STAFF_LOCALE, topic.id)))
            ids = await tell_group(session, config, topic.community_code, f"flagged:{topic.id}", reply)
    return Outcome("ok", ids, topic, {"count": count})


async def comment(session: AsyncSession, config: CommunitiesConfig, topic_id: int, user: User, text: str,
                  key: str) -> Outcome:
    topic = await load_topic(session, topic_id)
    if topic is None:
        return Outcome("stale")
    if topic.stage not in rules.OPEN_STAGES:
        return Outcome("stage", topic=topic)
    why = await standing(session, user, topic)
    if why != "ok":
        return Outcome(why, topic=topic)
    stmt = (insert_for(session, DelibComment).values(topic_id=topic.id, user_id=user.id, key=key[:128], text=text)
            .on_conflict_do_nothing(index_elements=["key"]).returning(DelibComment.id))
    comment_id = (await session.execute(stmt)).scalar_one_or_none()
    if comment_id is None:
        return Outcome("already", topic=topic)
    # Staff moderate: each new comment reaches the staff group with "hide, because …" buttons.
    reply = Reply(t(STAFF_LOCALE, "deliberation.staff_comment", id=topic.id, title=topic.title,
                    text=notify.excerpt(text)),
                  rows(*(Button(t(STAFF_LOCALE, f"deliberation.hide_{r}"), actions.make("dlh", comment_id, r))
                         for r in rules.HIDE_REASONS), per_row=3))
    ids = await tell_group(session, config, topic.community_code, f"comment:{comment_id}", reply)
    return Outcome("ok", ids, topic)


async def hide_comment(session: AsyncSession, config: CommunitiesConfig, comment_id: int, staff: User,
                       reason: str) -> Outcome:
    row = await session.get(DelibComment, comment_id) if comment_id else None
    topic = await load_topic(session, row.topic_id) if row else None
    if row is None or topic is None or not is_staff(staff, topic.community_code):
        return Outcome("not_allowed")
    if reason not in rules.HIDE_REASONS:
        return Outcome("stale")
    hidden = await session.scalar(guarded(DelibComment).where(DelibComment.id == row.id, DelibComment.hidden_at.is_(None))
                                  .values(hidden_at=func.now(), hidden_by=staff.id, hide_reason=reason)
                                  .returning(DelibComment.id))
    if hidden is None:
        return Outcome("already", topic=topic)
    await add_event(session, topic.id, "comment_hidden", actor=f"user:{staff.id}", reason=reason)
    author = await session.get(User, row.user_id) if row.user_id else None
    locale = author.locale if author else "zh"
    ids = _ids(await notify.to_user(session, author, f"dl:hidden:{row.id}",
                                    Reply(t(locale, "deliberation.your_comment_hidden", title=topic.title,
                                            reason=t(locale, f"deliberation.reason_{reason}")))))
    return Outcome("ok", ids, topic)


async def visible_comments(session: AsyncSession, topic_id: int, limit: int = 10) -> list[DelibComment]:
    stmt = (select(DelibComment).where(DelibComment.topic_id == topic_id, DelibComment.hidden_at.is_(None))
            .order_by(DelibComment.id.desc()).limit(limit))
    return list(reversed(list(await session.scalars(stmt))))


async def schedule_meeting(session: AsyncSession, config: CommunitiesConfig, topic_id: int, staff: User,
                           starts_at: datetime, place: str) -> Outcome:
    topic = await load_topic(session, topic_id)
    if topic is None or not is_staff(staff, topic.community_code):
        return Outcome("not_allowed")
    if topic.stage not in rules.MEETING_STAGES:
        return Outcome("stage", topic=topic)
    meeting = DelibMeeting(topic_id=topic.id, starts_at=starts_at, place=place, created_by=staff.id)
    session.add(meeting)
    await session.flush()
    when = local_time(config, starts_at)
    await add_event(session, topic.id, "meeting", actor=f"user:{staff.id}", when=when, place=place)
    ids = await tell_users(session, await supporters(session, topic), f"meeting:{meeting.id}", lambda locale: Reply(
        t(locale, "deliberation.meeting_set", title=topic.title, when=when, place=place), rows(view_button(locale, topic.id))))
    return Outcome("ok", ids, topic, {"when": when})


# --- step 3: decide ---------------------------------------------------------------------------

def ballot_reply(locale: str, topic: DelibTopic, vote: DelibVote, config: CommunitiesConfig, headline: str) -> Reply:
    text = t(locale, headline, id=topic.id, title=topic.title, closes=local_time(config, vote.closes_at),
             quorum=vote.quorum, mode=t(locale, "deliberation.secret" if vote.secret else "deliberation.open"),
             scope=scope_name(vote.compound, locale))
    return Reply(text, rows(*(Button(str(option)[:40], actions.make("dlv", vote.id, i))
                              for i, option in enumerate(vote.options)), per_row=1))


async def open_vote(session: AsyncSession, config: CommunitiesConfig, topic_id: int, staff: User, *,
                    options: list[str], secret: bool, quorum: int, hours: int, now: datetime,
                    compound: str | None) -> Outcome:
    """Open a vote. `compound`: who may vote — the topic's compound (the default for a compound topic)
    or None, every resident of the community."""
    topic = await load_topic(session, topic_id)
    if topic is None or not is_staff(staff, topic.community_code):
        return Outcome("not_allowed")
    if rules.parse_hours(str(hours)) is None or not 1 <= quorum <= rules.MAX_QUORUM \
            or not rules.MIN_OPTIONS <= len(options) <= rules.MAX_OPTIONS \
            or compound not in (None, topic.compound):
        return Outcome("stale")
    updated = await _set_stage(session, topic.id, "open_vote")
    if updated is None:
        return Outcome("stage", topic=topic)
    vote = DelibVote(topic_id=topic.id, options=options, compound=compound, secret=secret, quorum=quorum,
                     closes_at=now + timedelta(hours=hours), created_by=staff.id)
    session.add(vote)
    await session.flush()
    await add_event(session, topic.id, "vote_opened", actor=f"user:{staff.id}", options=" / ".join(options),
                    quorum=quorum, closes=local_time(config, vote.closes_at),
                    mode="secret" if secret else "open", scope=scope_name(compound, "zh"))
    # Every eligible resident is told, with the ballot: a vote only the supporters hear of is not a vote.
    audience = {u.id: u for u in await eligible_residents(session, topic.community_code, compound)}
    for user in await participants(session, topic):   # e.g. a supporter who has since moved away is not asked
        if user.id not in audience and await standing_in(session, user, topic.community_code, compound) == "ok":
            audience[user.id] = user
    ids = await tell_users(session, list(audience.values()), f"vote:{vote.id}",
                          lambda locale: ballot_reply(locale, topic, vote, config, "deliberation.vote_open"))
    return Outcome("ok", ids, updated, {"vote_id": vote.id})


async def open_vote_of(session: AsyncSession, topic_id: int) -> DelibVote | None:
    return await session.scalar(select(DelibVote).where(DelibVote.topic_id == topic_id, DelibVote.closed_at.is_(None))
                                .order_by(DelibVote.id.desc()).limit(1))


async def last_vote(session: AsyncSession, topic_id: int) -> DelibVote | None:
    return await session.scalar(select(DelibVote).where(DelibVote.topic_id == topic_id)
                                .order_by(DelibVote.id.desc()).limit(1))


async def cast(session: AsyncSession, vote_id: int, user: User, choice: int, now: datetime) -> Outcome:
    """One ballot per person and vote, changeable until close: "ok", "changed", "same", or why not."""
    vote = await session.get(DelibVote, vote_id) if vote_id else None
    topic = await load_topic(session, vote.topic_id) if vote else None
    if vote is None or topic is None:
        return Outcome("stale")
    why = await standing_in(session, user, topic.community_code, vote.compound)
    if why != "ok":
        return Outcome(why, topic=topic, extra={"compound": vote.compound})
    if not 0 <= choice < len(vote.options):
        return Outcome("stale", topic=topic)
    # Lock the vote row (PostgreSQL) so a ballot and the closing never interleave: a ballot either
    # lands before the count or finds the vote closed.
    still_open = await session.scalar(guarded(DelibVote)
                                      .where(DelibVote.id == vote.id, DelibVote.closed_at.is_(None),
                                             DelibVote.closes_at > now)
                                      .values(quorum=DelibVote.quorum).returning(DelibVote.id))
    if still_open is None:
        return Outcome("closed", topic=topic)
    before = await session.scalar(select(DelibBallot.choice).where(DelibBallot.vote_id == vote.id,
                                                                   DelibBallot.user_id == user.id))
    stmt = insert_for(session, DelibBallot).values(vote_id=vote.id, user_id=user.id, choice=choice, updated_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["vote_id", "user_id"],
                                      set_={"choice": stmt.excluded.choice, "updated_at": stmt.excluded.updated_at})
    await session.execute(stmt)
    result = "ok" if before is None else ("same" if before == choice else "changed")
    return Outcome("ok", topic=topic, extra={"ballot": result, "option": vote.options[choice]})


def result_text(locale: str, topic: DelibTopic, vote: DelibVote, names: dict[int, list[str]] | None = None) -> str:
    result = vote.result or {}
    counts = result.get("counts", [0] * len(vote.options))
    lines = []
    for i, option in enumerate(vote.options):
        line = t(locale, "deliberation.result_line", option=option, count=counts[i] if i < len(counts) else 0)
        if names and names.get(i):
            line += " (" + "、".join(names[i]) + ")"
        lines.append(line)
    outcome = result.get("result")
    if outcome == "decided":
        verdict = t(locale, "deliberation.result_decided", option=vote.options[int(result["winner"])])
    else:
        verdict = t(locale, "deliberation.result_tie" if outcome == "tie" else "deliberation.result_no_quorum")
    return t(locale, "deliberation.result", id=topic.id, title=topic.title, turnout=result.get("turnout", 0),
             quorum=vote.quorum, verdict=verdict, lines="\n".join(lines))


async def close_vote(session: AsyncSession, config: CommunitiesConfig, vote_id: int, now: datetime) -> Outcome:
    """Count, record the result, move the topic on and publish result and turnout to everyone who took part."""
    vote = (await session.execute(guarded(DelibVote).where(DelibVote.id == vote_id, DelibVote.closed_at.is_(None))
                                  .values(closed_at=now).returning(DelibVote)
                                  .execution_options(synchronize_session=False, populate_existing=True))
            ).scalar_one_or_none()
    if vote is None:
        return Outcome("already")
    ballots = list((await session.execute(select(DelibBallot.choice, DelibBallot.user_id)
                                          .where(DelibBallot.vote_id == vote.id))).all())
    outcome = rules.decide(rules.tally((c for c, _ in ballots), len(vote.options)), vote.quorum)
    vote.result = {"result": str(outcome.result), "counts": list(outcome.counts), "turnout": outcome.turnout,
                   "winner": outcome.winner}
    operation = "vote_decided" if outcome.result == rules.Result.DECIDED else "vote_failed"
    topic = await _set_stage(session, vote.topic_id, operation)
    if topic is None:
        topic = await load_topic(session, vote.topic_id)
    await add_event(session, topic.id, "vote_closed", result=str(outcome.result), turnout=outcome.turnout,
                    quorum=vote.quorum, option=vote.options[outcome.winner] if outcome.winner is not None else "")
    names: dict[int, list[str]] | None = None
    if not vote.secret:   # an open vote (举手表决) shows who chose what
        names = {}
        voters = {u.id: u for u in await _users(session, {uid for _, uid in ballots})}
        for choice, uid in ballots:
            names.setdefault(choice, []).append((voters[uid].display_name or f"#{uid}")[:20])
    ids = await tell_users(session, await participants(session, topic), f"result:{vote.id}",
                          lambda locale: Reply(result_text(locale, topic, vote, names), rows(view_button(locale, topic.id))))
    ids += await tell_group(session, config, topic.community_code, f"result:{vote.id}",
                            Reply(result_text(STAFF_LOCALE, topic, vote, names), rows(view_button(STAFF_LOCALE, topic.id))))
    return Outcome("ok", ids, topic, {"result": str(outcome.result)})


# --- step 4: carry out and report --------------------------------------------------------------

async def add_action(session: AsyncSession, config: CommunitiesConfig, topic_id: int, staff: User, *,
                     title: str, owner: str, due: date) -> Outcome:
    topic = await load_topic(session, topic_id)
    if topic is None or not is_staff(staff, topic.community_code):
        return Outcome("not_allowed")
    updated = await _set_stage(session, topic.id, "plan_action")
    if updated is None:
        return Outcome("stage", topic=topic)
    action = DelibAction(topic_id=topic.id, title=title, owner=owner, due_on=due, created_by=staff.id, status="open")
    session.add(action)
    await session.flush()
    await add_event(session, topic.id, "action_added", actor=f"user:{staff.id}", action=title, owner=owner,
                    due=due.isoformat())
    ids = await tell_users(session, await participants(session, topic), f"action:{action.id}", lambda locale: Reply(
        t(locale, "deliberation.action_added_you", title=topic.title, action=title, owner=owner, due=due.isoformat()),
        rows(view_button(locale, topic.id))))
    return Outcome("ok", ids, updated, {"action_id": action.id})


async def staff_action(session: AsyncSession, action_id: int, staff: User) -> tuple[DelibAction | None, DelibTopic | None]:
    action = await session.get(DelibAction, action_id) if action_id else None
    topic = await load_topic(session, action.topic_id) if action else None
    if action is None or topic is None or not is_staff(staff, topic.community_code):
        return None, None
    return action, topic


async def action_progress(session: AsyncSession, config: CommunitiesConfig, action_id: int, staff: User,
                          text: str) -> Outcome:
    action, topic = await staff_action(session, action_id, staff)
    if action is None:
        return Outcome("not_allowed")
    if action.status != "open" or topic.stage != Stage.CARRYING_OUT:
        return Outcome("stage", topic=topic)
    n = await session.scalar(guarded(DelibAction).where(DelibAction.id == action.id, DelibAction.status == "open")
                             .values(progress=DelibAction.progress + 1).returning(DelibAction.progress))
    if n is None:
        return Outcome("stage", topic=topic)
    await add_event(session, topic.id, "progress", actor=f"user:{staff.id}", action=action.title, text=text)
    ids = await tell_users(session, await supporters(session, topic), f"progress:{action.id}:{n}", lambda locale: Reply(
        t(locale, "deliberation.progress_you", title=topic.title, action=action.title, text=text),
        rows(view_button(locale, topic.id))))
    return Outcome("ok", ids, topic)


async def action_done(session: AsyncSession, config: CommunitiesConfig, action_id: int, staff: User) -> Outcome:
    action, topic = await staff_action(session, action_id, staff)
    if action is None:
        return Outcome("not_allowed")
    done = await session.scalar(guarded(DelibAction).where(DelibAction.id == action.id, DelibAction.status == "open")
                                .values(status="done", done_at=func.now()).returning(DelibAction.id))
    if done is None:
        return Outcome("already", topic=topic)
    await add_event(session, topic.id, "action_done", actor=f"user:{staff.id}", action=action.title)
    ids = await tell_users(session, await supporters(session, topic), f"done:{action.id}", lambda locale: Reply(
        t(locale, "deliberation.action_done_you", title=topic.title, action=action.title),
        rows(view_button(locale, topic.id))))
    return Outcome("ok", ids, topic)


async def action_task(session: AsyncSession, config: CommunitiesConfig, action_id: int, staff: User, skill: str,
                      now: datetime) -> Outcome:
    """An action carried out by volunteers becomes a volunteer task (offered to matching volunteers)."""
    from shared import volunteering

    action, topic = await staff_action(session, action_id, staff)
    if action is None:
        return Outcome("not_allowed")
    if config.skill(skill) is None:
        return Outcome("stale")
    # Row lock on PostgreSQL: a second press waits, then finds the task already made.
    mine = await session.scalar(guarded(DelibAction).where(DelibAction.id == action.id, DelibAction.status == "open",
                                                          DelibAction.task_id.is_(None))
                                .values(progress=DelibAction.progress).returning(DelibAction.id))
    if mine is None:
        return Outcome("already", topic=topic)
    tz = ZoneInfo(config.defaults.timezone)
    end = datetime.combine(action.due_on, datetime.min.time(), tz).replace(hour=18).astimezone(ZoneInfo("UTC"))
    start, end = volunteering.default_window(now, end)
    task, ids = await volunteering.create_task(
        session, config, community=topic.community_code, skill=skill, title=f"{topic.title}: {action.title}"[:200],
        details=action.title, place=topic.compound, window_start=start, window_end=end, source="deliberation",
        created_by=staff.id)
    await session.execute(guarded(DelibAction).where(DelibAction.id == action.id).values(task_id=task.id))
    await add_event(session, topic.id, "action_task", actor=f"user:{staff.id}", action=action.title)
    return Outcome("ok", ids, topic, {"task_id": task.id})


async def action_request(session: AsyncSession, config: CommunitiesConfig, action_id: int, staff: User,
                         label: str) -> Outcome:
    """An action handled by a team becomes a request (numbered, routed, SLA), followed by the proposer."""
    from shared.intake.outcome import route
    from shared.taxonomy import LABELS

    action, topic = await staff_action(session, action_id, staff)
    if action is None:
        return Outcome("not_allowed")
    if label not in LABELS or config.route(topic.community_code, label).team is None:
        return Outcome("stale")
    mine = await session.scalar(guarded(DelibAction).where(DelibAction.id == action.id, DelibAction.status == "open",
                                                           DelibAction.request_id.is_(None))
                                .values(progress=DelibAction.progress).returning(DelibAction.id))
    if mine is None:
        return Outcome("already", topic=topic)
    proposer = await session.get(User, topic.proposer_id) if topic.proposer_id else None
    # create_request commits (its number must be durable before anyone is told it).
    request, _created = await create_request(
        session, community_code=topic.community_code, user_id=topic.proposer_id,
        text=f"{topic.title}: {action.title} ({action.owner}, {action.due_on.isoformat()})",
        idempotency_key=f"delib-action:{action.id}", source=proposer.platform if proposer else "telegram")
    if not _created:   # a concurrent press got there while the number was being committed
        return Outcome("already", topic=topic)
    await session.execute(guarded(DelibAction).where(DelibAction.id == action.id).values(request_id=request.id))
    await add_event(session, topic.id, "action_request", actor=f"user:{staff.id}", action=action.title,
                    number=request.number)
    await add_request_event(session, request.id, "from_topic", actor=f"user:{staff.id}", topic=topic.id)
    ids = await route(session, config, request, label, urgent=False, confidence=None, actor=f"user:{staff.id}",
                      only_from={RequestStatus.RECEIVED})
    return Outcome("ok", ids, topic, {"number": request.number})


async def close_topic(session: AsyncSession, config: CommunitiesConfig, topic_id: int, staff: User,
                      report: str) -> Outcome:
    topic = await load_topic(session, topic_id)
    if topic is None or not is_staff(staff, topic.community_code):
        return Outcome("not_allowed")
    updated = await _set_stage(session, topic.id, "close", report=report, closed_at=func.now())
    if updated is None:
        return Outcome("stage", topic=topic)
    await add_event(session, topic.id, "closed", actor=f"user:{staff.id}", text=report)
    ids = await tell_users(session, await participants(session, topic), f"closed:{topic.id}", lambda locale: Reply(
        t(locale, "deliberation.closed_you", title=topic.title, report=report),
        rows(*(Button("⭐" * n, actions.make("dlr", topic.id, n)) for n in range(1, 6)), per_row=5)))
    return Outcome("ok", ids, updated)


async def rate(session: AsyncSession, topic_id: int, user: User, score: int) -> Outcome:
    topic = await load_topic(session, topic_id)
    if topic is None:
        return Outcome("stale")
    if topic.stage != Stage.CLOSED:
        return Outcome("stage", topic=topic)
    why = await standing(session, user, topic)
    if why != "ok":
        return Outcome(why, topic=topic)
    stmt = insert_for(session, DelibRating).values(topic_id=topic.id, user_id=user.id, score=score)
    stmt = stmt.on_conflict_do_update(index_elements=["topic_id", "user_id"], set_={"score": stmt.excluded.score})
    await session.execute(stmt)
    return Outcome("ok", topic=topic)


async def rating_summary(session: AsyncSession, topic_id: int) -> tuple[int, float | None]:
    count, average = (await session.execute(select(func.count(), func.avg(DelibRating.score))
                                            .where(DelibRating.topic_id == topic_id))).one()
    return int(count or 0), (float(average) if average is not None else None)


# --- reading ----------------------------------------------------------------------------------

async def timeline(session: AsyncSession, topic_id: int, limit: int = 30) -> list[DelibEvent]:
    stmt = select(DelibEvent).where(DelibEvent.topic_id == topic_id).order_by(DelibEvent.id.desc()).limit(limit)
    return list(reversed(list(await session.scalars(stmt))))


async def next_meeting(session: AsyncSession, topic_id: int, now: datetime) -> DelibMeeting | None:
    return await session.scalar(select(DelibMeeting).where(DelibMeeting.topic_id == topic_id, DelibMeeting.starts_at > now)
                                .order_by(DelibMeeting.starts_at).limit(1))


async def actions_of(session: AsyncSession, topic_id: int) -> list[DelibAction]:
    return list(await session.scalars(select(DelibAction).where(DelibAction.topic_id == topic_id).order_by(DelibAction.id)))


async def support_count(session: AsyncSession, topic_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(DelibSupport)
                                    .where(DelibSupport.topic_id == topic_id)) or 0)


async def has_supported(session: AsyncSession, topic_id: int, user_id: int) -> bool:
    return await session.get(DelibSupport, (topic_id, user_id)) is not None


async def my_ballot(session: AsyncSession, vote_id: int, user_id: int) -> int | None:
    return await session.scalar(select(DelibBallot.choice).where(DelibBallot.vote_id == vote_id,
                                                                 DelibBallot.user_id == user_id))


async def community_topics(session: AsyncSession, community: str, *, limit: int = 10) -> list[DelibTopic]:
    """Topics residents see: accepted and not answered as requests, newest activity first."""
    stmt = (select(DelibTopic).where(DelibTopic.community_code == community,
                                     DelibTopic.stage.in_([str(s) for s in (*rules.OPEN_STAGES, Stage.CLOSED)]))
            .order_by(DelibTopic.updated_at.desc(), DelibTopic.id.desc()).limit(limit))
    return list(await session.scalars(stmt))


BOARD_CLOSED = 5  # `board(..., closed_apart=True)`: closed topics in a bucket of their own


async def board(session: AsyncSession, community: str | None, *, per_step: int = 10,
                closed_apart: bool = False) -> dict[int, list[DelibTopic]]:
    """The staff board: topics by step (1–4), newest activity first; answered ones left out.

    `community` None means every community (admins). With `closed_apart`, closed topics are
    listed under BOARD_CLOSED instead of step 4. Each bucket is its own query, so a long
    tail of closed topics never crowds out the live ones.
    """
    buckets: dict[int, list[str]] = {}
    for stage, step in rules.STEP_OF.items():
        if stage == Stage.ANSWERED:
            continue
        bucket = BOARD_CLOSED if closed_apart and stage == Stage.CLOSED else step
        buckets.setdefault(bucket, []).append(str(stage))
    steps: dict[int, list[DelibTopic]] = {}
    for bucket in sorted(buckets):
        stmt = select(DelibTopic).where(DelibTopic.stage.in_(buckets[bucket]))
        if community is not None:
            stmt = stmt.where(DelibTopic.community_code == community)
        stmt = stmt.order_by(DelibTopic.updated_at.desc(), DelibTopic.id.desc()).limit(per_step)
        steps[bucket] = list(await session.scalars(stmt))
    return steps


def event_text(locale: str, event: DelibEvent) -> str:
    """One line of the public timeline (without its time), as the chat and the dashboard show it."""
    params = {k: v for k, v in (event.data or {}).items() if isinstance(v, (str, int, float))}
    if event.kind == "comment_hidden":
        params["reason"] = t(locale, f"deliberation.reason_{params.get('reason', 'offtopic')}")
    if event.kind == "vote_opened":
        params["mode"] = t(locale, "deliberation.secret" if params.get("mode") == "secret" else "deliberation.open")
    if event.kind == "vote_closed":
        params["verdict"] = t(locale, f"deliberation.verdict_{params.get('result', 'no_quorum')}",
                              option=params.get("option", ""))
    try:
        return t(locale, f"deliberation.tl_{event.kind}", **params)
    except (KeyError, IndexError):
        return event.kind


# --- the person's own data (PIPL: /mydata, /forgetme) --------------------------------------------

async def export_user_data(session: AsyncSession, user: User) -> dict[str, Any]:
    residence = await session.get(DelibResidence, user.id)
    proposed = list(await session.scalars(select(DelibTopic).where(DelibTopic.proposer_id == user.id)))
    comments = list(await session.scalars(select(DelibComment).where(DelibComment.user_id == user.id)))
    ballots = list((await session.execute(select(DelibVote, DelibBallot.choice)
                                          .join(DelibBallot, DelibBallot.vote_id == DelibVote.id)
                                          .where(DelibBallot.user_id == user.id))).all())
    return {
        "compound": residence.compound if residence else None,
        "topics_proposed": [{"id": tp.id, "title": tp.title, "stage": tp.stage} for tp in proposed],
        "topics_supported": list(await session.scalars(select(DelibSupport.topic_id)
                                                       .where(DelibSupport.user_id == user.id))),
        "comments": [{"topic": c.topic_id, "text": c.text, "hidden": c.hidden_at is not None} for c in comments],
        "ballots": [{"topic": v.topic_id, "choice": v.options[choice]} for v, choice in ballots],
        "ratings": [{"topic": r.topic_id, "score": r.score}
                    for r in await session.scalars(select(DelibRating).where(DelibRating.user_id == user.id))],
    }


async def forget_user(session: AsyncSession, user: User, erased: str) -> None:
    """Erase what the person wrote and where they live; keep counts (supports, ballots, ratings) for the results.

    A topic they proposed stays on the public record of the community's decision, no longer linked to them.
    """
    await session.execute(guarded(DelibComment).where(DelibComment.user_id == user.id).values(text=erased))
    await session.execute(guarded(DelibTopic).where(DelibTopic.proposer_id == user.id).values(proposer_id=None))
    residence = await session.get(DelibResidence, user.id)
    if residence is not None:
        await session.delete(residence)
