"""Mediation cases (毛大姐调解室 and every community's mediators): each rule once, here.

Flows and the scheduler call these. Operations return outbox ids to deliver after the caller
commits (see shared.flows.deliver). Every change is a conditional UPDATE on a status or stage
column, or an INSERT on a unique key, so a repeated press, message or sweep changes nothing twice.

Privacy: a party is told only what is meant for them — their own invitation, the sessions, the
agreement text, the case's level and status. Names of the other side, the parties' private
messages and the mediators' notes go to mediators only; group chats get the case number only.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import notify
from shared.clock import as_utc
from shared.config import CommunitiesConfig
from shared.db.models import (
    MediationAgreement,
    MediationAnswer,
    MediationAttendance,
    MediationCase,
    MediationMediator,
    MediationNote,
    MediationParty,
    MediationSession,
    MediationStage,
    Request,
    User,
    Volunteer,
)
from shared.db.upsert import insert_for
from shared.domain import mediation as rules
from shared.domain.mediation import (
    TAKING_PART,
    AgreementStatus,
    CaseStatus,
    Ladder,
    PartyStatus,
    SessionStatus,
    StageOutcome,
)
from shared.domain.permissions import is_staff_of
from shared.domain.requests import OPEN_STATUSES, RequestStatus
from shared.flows import actions
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import format_due
from shared.i18n import t
from shared.repo.requests import add_event, transition

log = logging.getLogger("linju.mediation")

OutboxIds = list[int]
BATCH = 500
SKILL = "mediation"


def _ids(*ids: int | None) -> OutboxIds:
    return [i for i in ids if i]


def _locale(user: User | None) -> str:
    return (user.locale if user else None) or "zh"


# --- configuration and names -------------------------------------------------------------------

def ladder(config: CommunitiesConfig, community_code: str) -> Ladder:
    """The community's levels and timings, from its `kind: mediation` programme (defaults otherwise)."""
    programme = next((p for p in config.community(community_code).programmes if p.kind == "mediation"), None)
    return rules.ladder_from(programme.model_extra if programme is not None else None)


def room_name(config: CommunitiesConfig, community_code: str, locale: str) -> str:
    return config.team_name(community_code, "mediation", locale)


def level_name(config: CommunitiesConfig, case: MediationCase, locale: str, level: int | None = None) -> str:
    code = ladder(config, case.community_code).name_of(case.level if level is None else level)
    return t(locale, f"mediation.level.{code}")


def side_name(locale: str, side: int) -> str:
    return t(locale, f"mediation.side.{side}") if 1 <= side <= 6 else t(locale, "mediation.side.n", n=side)


def local_when(config: CommunitiesConfig, locale: str, when: datetime) -> str:
    return format_due(config, locale, when)


def to_utc(config: CommunitiesConfig, local: datetime) -> datetime:
    return local.replace(tzinfo=ZoneInfo(config.defaults.timezone)).astimezone(ZoneInfo("UTC"))


def local_now(config: CommunitiesConfig, now: datetime) -> datetime:
    return as_utc(now).astimezone(ZoneInfo(config.defaults.timezone)).replace(tzinfo=None)


# --- who may act -----------------------------------------------------------------------------------

async def can_mediate(session: AsyncSession, user: User, community: str) -> bool:
    """Staff of the community (or admins), and approved volunteers of the community with the mediation skill."""
    if is_staff_of(user.roles, user.community_code, community):
        return True
    volunteer = await session.get(Volunteer, user.id)
    return (volunteer is not None and volunteer.status == "approved" and volunteer.community_code == community
            and SKILL in (volunteer.skills or []))


async def is_on_case(session: AsyncSession, case_id: int, user_id: int) -> bool:
    return await session.get(MediationMediator, (case_id, user_id)) is not None


async def mediators(session: AsyncSession, case_id: int) -> list[User]:
    return list(await session.scalars(select(User).join(MediationMediator, MediationMediator.user_id == User.id)
                                      .where(MediationMediator.case_id == case_id).order_by(User.id)))


async def parties(session: AsyncSession, case_id: int) -> list[MediationParty]:
    return list(await session.scalars(select(MediationParty).where(MediationParty.case_id == case_id)
                                      .order_by(MediationParty.side)))


async def taking_part(session: AsyncSession, case_id: int) -> list[MediationParty]:
    return [p for p in await parties(session, case_id) if p.status in TAKING_PART]


async def party_of(session: AsyncSession, case_id: int, user_id: int) -> MediationParty | None:
    return await session.scalar(select(MediationParty).where(MediationParty.case_id == case_id,
                                                             MediationParty.user_id == user_id))


async def case_for_request(session: AsyncSession, request_id: int) -> MediationCase | None:
    return await session.scalar(select(MediationCase).where(MediationCase.request_id == request_id))


async def current_stage(session: AsyncSession, case_id: int) -> MediationStage | None:
    return await session.scalar(select(MediationStage).where(MediationStage.case_id == case_id,
                                                             MediationStage.ended_at.is_(None))
                                .order_by(MediationStage.id.desc()).limit(1))


async def current_agreement(session: AsyncSession, case_id: int) -> MediationAgreement | None:
    return await session.scalar(select(MediationAgreement).where(MediationAgreement.case_id == case_id)
                                .order_by(MediationAgreement.id.desc()).limit(1))


async def _move(session: AsyncSession, case: MediationCase, target: CaseStatus, *, only_from: set[CaseStatus] | None = None,
                **values: object) -> bool:
    """Change the case's status if the lifecycle (and `only_from`) allows it; the database decides."""
    sources = only_from if only_from is not None else set(rules.sources_of(target))
    result = await session.execute(update(MediationCase).where(MediationCase.id == case.id,
                                                               MediationCase.status.in_([str(s) for s in sources]))
                                   .values(status=str(target), **values))
    if result.rowcount != 1:
        return False
    await session.refresh(case)
    return True


async def _lock_case(session: AsyncSession, case_id: int) -> None:
    """Serialise answers on one case (PostgreSQL row lock), so the last of two simultaneous "yes" sees both."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(MediationCase.id).where(MediationCase.id == case_id).with_for_update())


async def _end_stage(session: AsyncSession, case: MediationCase, outcome: StageOutcome, now: datetime,
                     reason: str | None = None) -> None:
    await session.execute(update(MediationStage).where(MediationStage.case_id == case.id, MediationStage.ended_at.is_(None))
                          .values(ended_at=now, outcome=str(outcome), reason=reason))


def _start_stage(session: AsyncSession, case: MediationCase, level: int, now: datetime) -> None:
    session.add(MediationStage(case_id=case.id, community_code=case.community_code, level=level, started_at=now))


async def _to_mediators(session: AsyncSession, case: MediationCase, key: str, text_key: str, *,
                        buttons: bool = True, **params: object) -> OutboxIds:
    ids = []
    for user in await mediators(session, case.id):
        rendered = {k: side_name(_locale(user), v) if k == "side" else v for k, v in params.items()}
        reply = Reply(t(_locale(user), text_key, number=case.number, **rendered),
                      rows(Button(t(_locale(user), "mediation.open_case"), actions.make("md", "view", case.id)))
                      if buttons else ())
        ids.append(await notify.to_user(session, user, f"md:{key}", reply, case.request_id))
    return _ids(*ids)


async def _to_parties(session: AsyncSession, case: MediationCase, key: str, text_key: str, **params: object) -> OutboxIds:
    """Each party taking part with a chat account, in their language, with a way back to their case."""
    ids = []
    for party in await taking_part(session, case.id):
        if party.user_id is None:
            continue
        user = await session.get(User, party.user_id)
        locale = _locale(user)
        reply = Reply(t(locale, text_key, number=case.number, **params),
                      rows(Button(t(locale, "mediation.my_case"), actions.make("mdv", party.id))))
        ids.append(await notify.to_user(session, user, f"md:{key}:p{party.id}", reply, case.request_id))
    return _ids(*ids)


async def _to_group(session: AsyncSession, config: CommunitiesConfig, case: MediationCase, key: str, text_key: str,
                    **params: object) -> OutboxIds:
    """The staff group hears the case number and level only, never names or what was said."""
    text = t(notify.STAFF_LOCALE, text_key, number=case.number, **params)
    # Pressed in the group, the card is answered privately and only to staff and mediators.
    view = Reply(text, rows(Button(t(notify.STAFF_LOCALE, "mediation.open_case"), actions.make("md", "view", case.id))))
    return await notify.to_group(session, config, case.community_code, "staff", f"g:md:{key}", text,
                                 options=view.options_json(), request_id=case.request_id)


# --- opening a case ---------------------------------------------------------------------------------

@dataclass
class Opened:
    result: str                        # opened | exists | not_mediation | not_open
    case: MediationCase | None = None
    outbox_ids: OutboxIds | None = None


async def open_case(session: AsyncSession, config: CommunitiesConfig, request: Request, mediator: User,
                    now: datetime) -> Opened:
    """A `mediation` request becomes a case at the first level, led by `mediator` (checked by the caller)."""
    if request.category != "mediation":
        return Opened("not_mediation")
    existing = await case_for_request(session, request.id)
    if existing is not None:
        return Opened("exists", existing)
    if request.status not in OPEN_STATUSES:
        return Opened("not_open")
    case_id = (await session.execute(insert_for(session, MediationCase).values(
        request_id=request.id, community_code=request.community_code, number=request.number,
        status=str(CaseStatus.OPEN), level=0, lead_id=mediator.id, opened_by=mediator.id, followup_stage=0,
        created_at=now).on_conflict_do_nothing(index_elements=["request_id"]).returning(MediationCase.id))).scalar_one_or_none()
    if case_id is None:   # the same press, processed twice at once
        return Opened("exists", await case_for_request(session, request.id))
    case = await session.get(MediationCase, case_id)
    session.add(MediationMediator(case_id=case.id, user_id=mediator.id))
    _start_stage(session, case, 0, now)
    outbox: list[int | None] = []
    reporter = await session.get(User, request.user_id) if request.user_id else None
    if reporter is not None:
        party = MediationParty(case_id=case.id, side=1, role="reporter", name=(reporter.display_name or "-")[:100],
                               user_id=reporter.id, status=str(PartyStatus.INVITED), created_by=mediator.id)
        session.add(party)
        await session.flush()
        outbox.append(await notify.to_user(session, reporter, f"md:consent:p{party.id}",
                                           consent_prompt(config, case, party, _locale(reporter)), request.id))
    await transition(session, request.id, RequestStatus.IN_PROGRESS, only_from={RequestStatus.ROUTED},
                     assignee_id=mediator.id)
    # The case keeps its own schedule (sessions, follow-up): the request's SLA clock stops here.
    await session.execute(update(Request).where(Request.id == request.id)
                          .values(due_at=None, first_response_at=func.coalesce(Request.first_response_at, now)))
    await add_event(session, request.id, "mediation_opened", actor=f"user:{mediator.id}",
                    level=level_name(config, case, "zh"))
    ids = _ids(*outbox) + await _to_group(session, config, case, f"opened:{case.id}", "mediation.group_opened",
                                          level=level_name(config, case, notify.STAFF_LOCALE))
    log.info("mediation case opened", extra={"case_id": case.id, "request_id": request.id,
                                             "community": case.community_code})
    return Opened("opened", case, ids)


async def join(session: AsyncSession, case: MediationCase, user: User) -> bool:
    """A co-mediator joins the case (eligibility checked by the caller). False: already on it."""
    inserted = await session.execute(insert_for(session, MediationMediator).values(case_id=case.id, user_id=user.id)
                                     .on_conflict_do_nothing(index_elements=["case_id", "user_id"])
                                     .returning(MediationMediator.user_id))
    return inserted.scalar_one_or_none() is not None


async def take_lead(session: AsyncSession, case: MediationCase, user: User) -> bool:
    """Staff of the community take the lead (the former lead stays on the case)."""
    await join(session, case, user)
    result = await session.execute(update(MediationCase).where(MediationCase.id == case.id,
                                                               MediationCase.lead_id != user.id,
                                                               MediationCase.status.in_([str(s) for s in rules.ACTIVE]))
                                   .values(lead_id=user.id))
    if result.rowcount != 1:
        return False
    await session.refresh(case)
    return True


# --- parties ---------------------------------------------------------------------------------------

def _hash(code: str) -> str:
    return hashlib.sha256(f"linju-mediation:{code}".encode()).hexdigest()


def new_code() -> str:
    return "".join(secrets.choice(rules.CODE_ALPHABET) for _ in range(rules.CODE_LENGTH))


async def add_party(session: AsyncSession, case: MediationCase, mediator: User, name: str, *, offline: bool,
                    now: datetime) -> tuple[MediationParty | None, str | None]:
    """Another side: invited through the bot with a one-time code, or recorded in person (no chat account).

    Returns (party, code); the code is shown once to the mediator and stored only as a hash.
    """
    if case.status != CaseStatus.OPEN:
        return None, None
    sides = list(await session.scalars(select(MediationParty.side).where(MediationParty.case_id == case.id)))
    code = None if offline else new_code()
    # INSERT … ON CONFLICT on (case, side): the same press handled twice at once adds one party.
    party_id = (await session.execute(insert_for(session, MediationParty).values(
        case_id=case.id, side=rules.side_label_index(sides), role="other", name=name[:100],
        status=str(PartyStatus.RECORDED if offline else PartyStatus.INVITED),
        invite_hash=None if offline else _hash(code),
        invite_expires_at=None if offline else now + timedelta(days=rules.INVITE_DAYS),
        consent_at=now if offline else None, created_by=mediator.id)
        .on_conflict_do_nothing(index_elements=["case_id", "side"]).returning(MediationParty.id))).scalar_one_or_none()
    if party_id is None:
        return None, None
    party = await session.get(MediationParty, party_id)
    return party, code


async def find_invitation(session: AsyncSession, code: str, now: datetime) -> MediationParty | None:
    """The party a valid, unused, unexpired code invites to a case that is still going on."""
    party = await session.scalar(select(MediationParty).where(MediationParty.invite_hash == _hash(code)))
    if party is None or party.status != PartyStatus.INVITED or party.invite_expires_at is None \
            or as_utc(party.invite_expires_at) <= now:
        return None
    case = await session.get(MediationCase, party.case_id)
    return party if case is not None and case.status in rules.ACTIVE else None


def consent_prompt(config: CommunitiesConfig, case: MediationCase, party: MediationParty, locale: str) -> Reply:
    """What taking part means and what is stored; the same for the reporter and an invited side."""
    return Reply(t(locale, "mediation.consent_prompt", number=case.number,
                   room=room_name(config, case.community_code, locale), level=level_name(config, case, locale)),
                 rows(Button(t(locale, "mediation.consent_yes"), actions.make("mdy", party.id, "yes")),
                      Button(t(locale, "mediation.consent_no"), actions.make("mdy", party.id, "no"))))


@dataclass
class Consent:
    result: str                  # consented | declined | already | taken | mediator | gone
    outbox_ids: OutboxIds | None = None


async def consent(session: AsyncSession, config: CommunitiesConfig, party: MediationParty, user: User, yes: bool,
                  now: datetime) -> Consent:
    """The person answers the invitation. The caller checked this person holds the invitation or is the party."""
    case = await session.get(MediationCase, party.case_id)
    if case is None or case.status not in rules.ACTIVE:
        return Consent("gone")
    if party.status != PartyStatus.INVITED:
        return Consent("already")
    if await is_on_case(session, case.id, user.id):
        return Consent("mediator")
    other = await party_of(session, case.id, user.id)
    if other is not None and other.id != party.id:
        return Consent("taken")
    values: dict[str, object] = {"invite_hash": None, "invite_expires_at": None}
    if yes:
        values.update(status=str(PartyStatus.CONSENTED), consent_at=now, user_id=user.id)
    else:
        # Declining stores nothing more about the person: the invitation is used up, no account is linked.
        values.update(status=str(PartyStatus.DECLINED))
    result = await session.execute(update(MediationParty).where(MediationParty.id == party.id,
                                                                MediationParty.status == str(PartyStatus.INVITED))
                                   .values(**values))
    if result.rowcount != 1:
        return Consent("already")
    await session.refresh(party)
    key = "party_consented" if yes else "party_declined"
    ids = await _to_mediators(session, case, f"{key}:p{party.id}", f"mediation.{key}", side=party.side,
                              name=party.name)
    return Consent("consented" if yes else "declined", ids)


# --- sessions ---------------------------------------------------------------------------------------

async def schedule_session(session: AsyncSession, config: CommunitiesConfig, case: MediationCase, mediator: User,
                           starts_at: datetime, place: str) -> tuple[MediationSession | None, OutboxIds]:
    if case.status != CaseStatus.OPEN:
        return None, []
    meeting = MediationSession(case_id=case.id, level=case.level, starts_at=starts_at, place=place[:200],
                               status=str(SessionStatus.SCHEDULED), reminder_stage=0, created_by=mediator.id)
    session.add(meeting)
    await session.flush()
    ids = await _session_notice(session, config, case, meeting, f"session:{meeting.id}", "mediation.session_invite",
                                skip=mediator.id)
    return meeting, ids


async def _session_notice(session: AsyncSession, config: CommunitiesConfig, case: MediationCase, meeting: MediationSession,
                          key: str, text_key: str, *, skip: int | None = None) -> OutboxIds:
    ids: OutboxIds = []
    for user in await mediators(session, case.id):
        if user.id == skip:
            continue
        locale = _locale(user)
        ids += _ids(await notify.to_user(session, user, f"md:{key}", Reply(
            t(locale, text_key, number=case.number, when=local_when(config, locale, meeting.starts_at), place=meeting.place),
            rows(Button(t(locale, "mediation.open_case"), actions.make("md", "view", case.id)))), case.request_id))
    for party in await taking_part(session, case.id):
        if party.user_id is None:
            continue
        user = await session.get(User, party.user_id)
        locale = _locale(user)
        ids += _ids(await notify.to_user(session, user, f"md:{key}:p{party.id}", Reply(
            t(locale, text_key, number=case.number, when=local_when(config, locale, meeting.starts_at), place=meeting.place),
            rows(Button(t(locale, "mediation.my_case"), actions.make("mdv", party.id)))), case.request_id))
    return ids


async def set_session_status(session: AsyncSession, config: CommunitiesConfig, meeting: MediationSession,
                             target: SessionStatus, now: datetime) -> OutboxIds | None:
    """Held or cancelled, once. None: it was not scheduled any more."""
    values: dict[str, object] = {"status": str(target)}
    if target == SessionStatus.HELD:
        values["held_at"] = now
    result = await session.execute(update(MediationSession).where(MediationSession.id == meeting.id,
                                                                  MediationSession.status == str(SessionStatus.SCHEDULED))
                                   .values(**values))
    if result.rowcount != 1:
        return None
    await session.refresh(meeting)
    if target == SessionStatus.CANCELLED:
        case = await session.get(MediationCase, meeting.case_id)
        return await _session_notice(session, config, case, meeting, f"cancelled:{meeting.id}", "mediation.session_cancelled")
    return []


async def record_attendance(session: AsyncSession, meeting: MediationSession, party: MediationParty, present: bool,
                            by: User) -> None:
    """Set (or correct) whether a party came; pressing the same answer twice changes nothing."""
    await session.execute(insert_for(session, MediationAttendance)
                          .values(session_id=meeting.id, party_id=party.id, present=present, recorded_by=by.id)
                          .on_conflict_do_update(index_elements=["session_id", "party_id"],
                                                 set_={"present": present, "recorded_by": by.id}))


async def attendance(session: AsyncSession, session_id: int) -> dict[int, bool]:
    rows_ = await session.execute(select(MediationAttendance.party_id, MediationAttendance.present)
                                  .where(MediationAttendance.session_id == session_id))
    return {party_id: present for party_id, present in rows_}


async def sessions_of(session: AsyncSession, case_id: int) -> list[MediationSession]:
    return list(await session.scalars(select(MediationSession).where(MediationSession.case_id == case_id)
                                      .order_by(MediationSession.starts_at)))


# --- confidential notes and private messages -----------------------------------------------------

async def add_note(session: AsyncSession, case: MediationCase, *, kind: str, text: str, key: str,
                   author: User | None = None, party: MediationParty | None = None) -> bool:
    """Store a note once per incoming message (`key`). False: the same message was stored already."""
    inserted = await session.execute(insert_for(session, MediationNote).values(
        case_id=case.id, kind=kind, author_id=author.id if author else None, party_id=party.id if party else None,
        text=text, idempotency_key=key).on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(MediationNote.id))
    return inserted.scalar_one_or_none() is not None


async def party_message(session: AsyncSession, case: MediationCase, party: MediationParty, text: str,
                        key: str) -> OutboxIds | None:
    """A party writes privately to the mediators; no other party ever sees it."""
    if not await add_note(session, case, kind="party_message", text=text, key=key, party=party):
        return None
    return await _to_mediators(session, case, f"msg:{key}", "mediation.party_wrote", side=party.side,
                               name=party.name, text=notify.excerpt(text))


async def notes(session: AsyncSession, case_id: int) -> list[MediationNote]:
    return list(await session.scalars(select(MediationNote).where(MediationNote.case_id == case_id)
                                      .order_by(MediationNote.id)))


# --- agreement ------------------------------------------------------------------------------------

def agreement_question(config: CommunitiesConfig, case: MediationCase, agreement: MediationAgreement,
                       party: MediationParty, locale: str, *, on_behalf: bool = False) -> Reply:
    key = "mediation.agreement_for_offline" if on_behalf else "mediation.agreement_ask"
    return Reply(t(locale, key, number=case.number, text=agreement.text, side=side_name(locale, party.side),
                   name=party.name),
                 rows(Button(t(locale, "mediation.accept"), actions.make("mdk", agreement.id, party.id, "yes")),
                      Button(t(locale, "mediation.decline"), actions.make("mdk", agreement.id, party.id, "no"))))


async def propose_agreement(session: AsyncSession, config: CommunitiesConfig, case: MediationCase, lead: User,
                            text: str, now: datetime) -> tuple[MediationAgreement | None, OutboxIds]:
    """Write the agreement down and ask every party taking part to accept it (offline ones through the lead)."""
    present = await taking_part(session, case.id)
    if not present or not await _move(session, case, CaseStatus.PROPOSED, only_from={CaseStatus.OPEN}):
        return None, []
    agreement = MediationAgreement(case_id=case.id, community_code=case.community_code, level=case.level, text=text,
                                   status=str(AgreementStatus.PROPOSED), proposed_by=lead.id, created_at=now)
    session.add(agreement)
    await session.flush()
    ids: OutboxIds = []
    for party in present:
        if party.user_id is not None:
            user = await session.get(User, party.user_id)
            question = agreement_question(config, case, agreement, party, _locale(user))
            ids += _ids(await notify.to_user(session, user, f"md:agreement:{agreement.id}:p{party.id}", question,
                                             case.request_id))
        else:
            question = agreement_question(config, case, agreement, party, _locale(lead), on_behalf=True)
            ids += _ids(await notify.to_user(session, lead, f"md:agreement:{agreement.id}:p{party.id}", question,
                                             case.request_id))
    return agreement, ids


async def _answer(session: AsyncSession, agreement: MediationAgreement, party: MediationParty, kind: str, yes: bool,
                  by: User) -> bool:
    inserted = await session.execute(insert_for(session, MediationAnswer).values(
        agreement_id=agreement.id, party_id=party.id, kind=kind, answer=yes, recorded_by=by.id)
        .on_conflict_do_nothing(index_elements=["agreement_id", "party_id", "kind"]).returning(MediationAnswer.party_id))
    return inserted.scalar_one_or_none() is not None


async def answers(session: AsyncSession, agreement_id: int, kind: str) -> dict[int, bool]:
    found = await session.execute(select(MediationAnswer.party_id, MediationAnswer.answer)
                                  .where(MediationAnswer.agreement_id == agreement_id, MediationAnswer.kind == kind))
    return {party_id: answer for party_id, answer in found}


@dataclass
class Answered:
    result: str                     # recorded | agreed | declined | held | broken | already | stale
    outbox_ids: OutboxIds | None = None


async def answer_agreement(session: AsyncSession, config: CommunitiesConfig, agreement: MediationAgreement,
                           party: MediationParty, yes: bool, by: User, now: datetime) -> Answered:
    """A party accepts or declines the written agreement. All accept → agreed; one declines → mediation goes on."""
    await _lock_case(session, agreement.case_id)
    case = await session.get(MediationCase, agreement.case_id, populate_existing=True)
    if agreement.status != AgreementStatus.PROPOSED or case.status != CaseStatus.PROPOSED:
        return Answered("stale")
    if not await _answer(session, agreement, party, "accept", yes, by):
        return Answered("already")
    side = party.side
    if not yes:
        await session.execute(update(MediationAgreement).where(MediationAgreement.id == agreement.id,
                                                               MediationAgreement.status == str(AgreementStatus.PROPOSED))
                              .values(status=str(AgreementStatus.DECLINED)))
        await _move(session, case, CaseStatus.OPEN, only_from={CaseStatus.PROPOSED})
        return Answered("declined", await _to_mediators(session, case, f"declined:{agreement.id}",
                                                        "mediation.agreement_declined", side=side, name=party.name))
    present = [p.id for p in await taking_part(session, case.id)]
    if not rules.all_answered_yes(present, await answers(session, agreement.id, "accept")):
        return Answered("recorded", await _to_mediators(session, case, f"accepted:{agreement.id}:p{party.id}",
                                                        "mediation.agreement_accepted_one", side=side, name=party.name))
    done = await session.execute(update(MediationAgreement).where(MediationAgreement.id == agreement.id,
                                                                  MediationAgreement.status == str(AgreementStatus.PROPOSED))
                                 .values(status=str(AgreementStatus.ACCEPTED), accepted_at=now))
    if done.rowcount != 1:
        return Answered("already")
    days = ladder(config, case.community_code).followup_days
    await _move(session, case, CaseStatus.AGREED, only_from={CaseStatus.PROPOSED},
                followup_due=now + timedelta(days=days), followup_stage=0)
    await _end_stage(session, case, StageOutcome.AGREED, now)
    await add_event(session, case.request_id, "mediation_agreed", level=level_name(config, case, "zh"))
    ids = await _to_mediators(session, case, f"agreed:{agreement.id}", "mediation.agreed_mediators", weeks=max(1, days // 7))
    ids += await _to_parties(session, case, f"agreed:{agreement.id}", "mediation.agreed_parties", weeks=max(1, days // 7))
    return Answered("agreed", ids)


# --- no agreement: escalate, refer, close ---------------------------------------------------------

async def escalate(session: AsyncSession, config: CommunitiesConfig, case: MediationCase, lead: User, reason: str,
                   now: datetime) -> OutboxIds | None:
    """The lead passes the case to the next level with a reason. None: at the top already, or not open."""
    steps = ladder(config, case.community_code)
    if case.status != CaseStatus.OPEN or not steps.can_escalate(case.level):
        return None
    current = case.level
    result = await session.execute(update(MediationCase).where(MediationCase.id == case.id, MediationCase.level == current,
                                                               MediationCase.status == str(CaseStatus.OPEN))
                                   .values(level=steps.escalate(current)))
    if result.rowcount != 1:
        return None
    await session.refresh(case)
    await _end_stage(session, case, StageOutcome.ESCALATED, now, reason)
    _start_stage(session, case, case.level, now)
    level = level_name(config, case, "zh")
    await add_event(session, case.request_id, "mediation_escalated", actor=f"user:{lead.id}", level=level)
    log.info("mediation case escalated", extra={"case_id": case.id, "level": case.level})
    key = f"escalated:{case.id}:{case.level}"
    ids = await _to_mediators(session, case, key, "mediation.escalated_mediators", level=level, reason=reason)
    ids += await _to_parties(session, case, key, "mediation.escalated_parties", level=level)
    ids += await _to_group(session, config, case, f"escalated:{case.id}:{case.level}", "mediation.group_escalated",
                           level=level)
    return ids


async def finish_without_agreement(session: AsyncSession, config: CommunitiesConfig, case: MediationCase, lead: User,
                                   target: CaseStatus, reason: str, now: datetime) -> OutboxIds | None:
    """No agreement: refer to legal aid, or close. None: the case is not open."""
    assert target in (CaseStatus.REFERRED, CaseStatus.CLOSED)
    if not await _move(session, case, target, only_from={CaseStatus.OPEN}, closed_at=now):
        return None
    outcome = StageOutcome.REFERRED if target == CaseStatus.REFERRED else StageOutcome.CLOSED
    await _end_stage(session, case, outcome, now, reason)
    await _close_request(session, case, now, solved=None)
    await add_event(session, case.request_id, f"mediation_{target}", actor=f"user:{lead.id}")
    key = f"{target}:{case.id}"
    ids = await _to_mediators(session, case, key, f"mediation.{target}_mediators", reason=reason)
    ids += await _to_parties(session, case, key, f"mediation.{target}_parties")
    return ids


async def _close_request(session: AsyncSession, case: MediationCase, now: datetime, *, solved: bool | None) -> None:
    values: dict[str, object] = {"closed_at": now}
    if solved:
        values.update(resolved_at=now, solved=True)
    await transition(session, case.request_id, RequestStatus.CLOSED,
                     only_from={RequestStatus.ROUTED, RequestStatus.IN_PROGRESS, RequestStatus.RESOLVED}, **values)


# --- follow-up -----------------------------------------------------------------------------------------

def followup_question(case: MediationCase, agreement: MediationAgreement, party: MediationParty, locale: str, *,
                      reminder: bool = False, on_behalf: bool = False) -> Reply:
    key = "mediation.followup_offline" if on_behalf else ("mediation.followup_reminder" if reminder
                                                          else "mediation.followup_ask")
    return Reply(t(locale, key, number=case.number, text=agreement.text, side=side_name(locale, party.side),
                   name=party.name),
                 rows(Button(t(locale, "mediation.holds_yes"), actions.make("mdf", agreement.id, party.id, "yes")),
                      Button(t(locale, "mediation.holds_no"), actions.make("mdf", agreement.id, party.id, "no"))))


async def _ask_followup(session: AsyncSession, case: MediationCase, agreement: MediationAgreement, *,
                        reminder: bool) -> OutboxIds:
    done = await answers(session, agreement.id, "followup")
    lead = await session.get(User, case.lead_id)
    ids: OutboxIds = []
    tag = "fu_remind" if reminder else "fu"
    for party in await taking_part(session, case.id):
        if party.id in done:
            continue
        if party.user_id is not None:
            user = await session.get(User, party.user_id)
            reply = followup_question(case, agreement, party, _locale(user), reminder=reminder)
            ids += _ids(await notify.to_user(session, user, f"md:{tag}:{agreement.id}:p{party.id}", reply, case.request_id))
        elif not reminder:
            reply = followup_question(case, agreement, party, _locale(lead), on_behalf=True)
            ids += _ids(await notify.to_user(session, lead, f"md:{tag}:{agreement.id}:p{party.id}", reply, case.request_id))
    return ids


async def answer_followup(session: AsyncSession, config: CommunitiesConfig, agreement: MediationAgreement,
                          party: MediationParty, yes: bool, by: User, now: datetime) -> Answered:
    """"Does the agreement hold?" All yes → resolved and counted as holding; one no → reopened at the same level."""
    await _lock_case(session, agreement.case_id)
    case = await session.get(MediationCase, agreement.case_id, populate_existing=True)
    latest = await current_agreement(session, case.id)
    if case.status != CaseStatus.FOLLOWUP or latest is None or latest.id != agreement.id:
        return Answered("stale")
    if not await _answer(session, agreement, party, "followup", yes, by):
        return Answered("already")
    side = party.side
    if not yes:
        if not await _move(session, case, CaseStatus.OPEN, only_from={CaseStatus.FOLLOWUP}, followup_stage=0,
                           followup_due=None, followup_asked_at=None):
            return Answered("already")
        await session.execute(update(MediationAgreement).where(MediationAgreement.id == agreement.id)
                              .values(held=False))
        _start_stage(session, case, case.level, now)
        await add_event(session, case.request_id, "mediation_reopened", level=level_name(config, case, "zh"))
        ids = await _to_mediators(session, case, f"broken:{agreement.id}", "mediation.reopened_lead", side=side,
                                  name=party.name, level=level_name(config, case, "zh"))
        ids += await _to_parties(session, case, f"broken:{agreement.id}", "mediation.reopened_parties")
        return Answered("broken", ids)
    present = [p.id for p in await taking_part(session, case.id)]
    if not rules.all_answered_yes(present, await answers(session, agreement.id, "followup")):
        return Answered("recorded", [])
    if not await _move(session, case, CaseStatus.RESOLVED, only_from={CaseStatus.FOLLOWUP}, closed_at=now):
        return Answered("already")
    await session.execute(update(MediationAgreement).where(MediationAgreement.id == agreement.id).values(held=True))
    await _close_request(session, case, now, solved=True)
    await add_event(session, case.request_id, "mediation_held")
    ids = await _to_mediators(session, case, f"held:{agreement.id}", "mediation.held_mediators")
    ids += await _to_parties(session, case, f"held:{agreement.id}", "mediation.held_parties")
    return Answered("held", ids)


# --- the scheduler's sweep -----------------------------------------------------------------------------

async def mediation_sweep(session: AsyncSession, config: CommunitiesConfig, now: datetime) -> OutboxIds:
    """Session reminders the day before; follow-ups when due, one reminder, then closing unanswered ones.

    Each step advances a stage column with a conditional UPDATE first, so running twice sends nothing twice.
    """
    now = as_utc(now)
    ids: OutboxIds = []
    horizon = now + timedelta(hours=168)
    upcoming = await session.scalars(select(MediationSession).where(
        MediationSession.status == str(SessionStatus.SCHEDULED), MediationSession.reminder_stage == 0,
        MediationSession.starts_at > now, MediationSession.starts_at <= horizon)
        .order_by(MediationSession.starts_at).limit(BATCH))   # the soonest first: those are the ones due
    for meeting in list(upcoming):
        case = await session.get(MediationCase, meeting.case_id)
        hours = ladder(config, case.community_code).reminder_hours
        if not rules.reminder_due(as_utc(meeting.starts_at), now, hours):
            continue
        moved = await session.execute(update(MediationSession).where(MediationSession.id == meeting.id,
                                                                     MediationSession.reminder_stage == 0)
                                      .values(reminder_stage=1))
        if moved.rowcount == 1:
            ids += await _session_notice(session, config, case, meeting, f"reminder:{meeting.id}",
                                         "mediation.session_reminder")

    due = await session.scalars(select(MediationCase).where(MediationCase.status == str(CaseStatus.AGREED),
                                                            MediationCase.followup_due <= now)
                                .order_by(MediationCase.followup_due).limit(BATCH))
    for case in list(due):
        if not await _move(session, case, CaseStatus.FOLLOWUP, only_from={CaseStatus.AGREED}, followup_stage=1,
                           followup_asked_at=now):
            continue
        agreement = await current_agreement(session, case.id)
        await add_event(session, case.request_id, "mediation_followup")
        ids += await _ask_followup(session, case, agreement, reminder=False)

    asked = await session.scalars(select(MediationCase).where(MediationCase.status == str(CaseStatus.FOLLOWUP),
                                                              MediationCase.followup_stage.in_([1, 2]))
                                  .order_by(MediationCase.followup_asked_at).limit(BATCH))   # the oldest first
    for case in list(asked):
        steps = ladder(config, case.community_code)
        since = as_utc(case.followup_asked_at)
        if case.followup_stage == 1 and since + timedelta(days=steps.followup_remind_days) <= now:
            moved = await session.execute(update(MediationCase).where(MediationCase.id == case.id,
                                                                      MediationCase.followup_stage == 1)
                                          .values(followup_stage=2))
            if moved.rowcount == 1:
                ids += await _ask_followup(session, case, await current_agreement(session, case.id), reminder=True)
        elif case.followup_stage == 2 and since + timedelta(days=steps.followup_close_days) <= now:
            # Nobody said it broke, not everyone said it holds: resolved, but not counted as holding.
            if await _move(session, case, CaseStatus.RESOLVED, only_from={CaseStatus.FOLLOWUP}, closed_at=now):
                await _close_request(session, case, now, solved=None)
                await add_event(session, case.request_id, "mediation_unconfirmed")
                ids += await _to_mediators(session, case, f"unconfirmed:{case.id}", "mediation.unconfirmed_mediators")
    return ids


# --- statistics ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CommunityStats:
    opened: int
    open_now: int
    levels: list[tuple[str, rules.LevelStats]]


async def community_stats(session: AsyncSession, config: CommunitiesConfig, community: str, since: datetime,
                          until: datetime) -> CommunityStats:
    """Cases opened in [since, until) in the community: per level handled, agreed, escalated and holding."""
    cases = select(MediationCase.id).where(MediationCase.community_code == community, MediationCase.created_at >= since,
                                           MediationCase.created_at < until)
    case_ids = list(await session.scalars(cases))
    stages = [(c, lvl, o) for c, lvl, o in await session.execute(
        select(MediationStage.case_id, MediationStage.level, MediationStage.outcome)
        .where(MediationStage.case_id.in_(case_ids)))] if case_ids else []
    agreed = [(c, lvl, h) for c, lvl, h in await session.execute(
        select(MediationAgreement.case_id, MediationAgreement.level, MediationAgreement.held)
        .where(MediationAgreement.case_id.in_(case_ids),
               MediationAgreement.status == str(AgreementStatus.ACCEPTED)))] if case_ids else []
    open_now = int(await session.scalar(select(func.count()).select_from(MediationCase).where(
        MediationCase.community_code == community, MediationCase.status.in_([str(s) for s in rules.ACTIVE]))) or 0)
    steps = ladder(config, community)
    return CommunityStats(len(case_ids), open_now,
                          [(code, rules.level_stats(stages, agreed, i)) for i, code in enumerate(steps.levels)])


# --- the person's own data (PIPL: /mydata, /forgetme) ---------------------------------------------------

async def export_party_data(session: AsyncSession, user: User) -> list[dict[str, object]]:
    """The cases this person is a party of, with what they wrote; never the other side or the notes."""
    found = await session.execute(select(MediationParty, MediationCase.number).join(
        MediationCase, MediationCase.id == MediationParty.case_id).where(MediationParty.user_id == user.id)
        .order_by(MediationParty.id))
    out = []
    for party, number in found:
        written = await session.scalars(select(MediationNote.text).where(
            MediationNote.party_id == party.id, MediationNote.kind == "party_message").order_by(MediationNote.id))
        out.append({"case": number, "side": party.side, "name": party.name, "status": party.status,
                    "consent_at": party.consent_at.isoformat() if party.consent_at else None,
                    "messages_to_mediators": list(written)})
    return out


async def forget_party(session: AsyncSession, user: User, erased: str) -> None:
    """Erase the person's name and private messages on every case; statuses and answers stay for statistics."""
    party_ids = list(await session.scalars(select(MediationParty.id).where(MediationParty.user_id == user.id)))
    if not party_ids:
        return
    await session.execute(update(MediationParty).where(MediationParty.id.in_(party_ids)).values(name=erased))
    await session.execute(update(MediationNote).where(MediationNote.party_id.in_(party_ids),
                                                      MediationNote.kind == "party_message").values(text=erased))
