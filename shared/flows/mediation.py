"""Mediation cases in chat: open a case, invite and record parties, sessions, notes, agreement, follow-up.

Who may press what is checked here on every action, whatever the button said:
- mediators (staff of the community, approved volunteers with the mediation skill) open cases;
- mediators on the case see it, write confidential notes, record sessions and attendance;
- the lead adds parties, schedules sessions, writes the agreement, escalates, refers or closes;
- a party acts only through their own party row (or, for the consent, the invitation code they typed).
"""

from __future__ import annotations

from sqlalchemy import select

from shared import mediation as service
from shared.db.models import MediationMediator, User
from shared.notify import excerpt
from shared.clock import utcnow
from shared.db.models import (
    MediationAgreement,
    MediationCase,
    MediationParty,
    MediationSession,
    Request,
)
from shared.domain import mediation as rules
from shared.domain.mediation import TAKING_PART, CaseStatus, PartyStatus, SessionStatus
from shared.domain.requests import OPEN_STATUSES
from shared.domain.text import clean_text, has_words
from shared.flows import actions
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.guard import is_staff_for
from shared.flows.reply import Button, Reply, rows
from shared.i18n import t
from shared.repo.users import give_consent

CASE_OPS = ("view", "join", "lead", "party", "pinv", "prec", "sess", "note", "notes", "agree", "esc", "legal", "close")
LEAD_OPS = ("party", "pinv", "prec", "sess", "agree", "esc", "legal", "close")
LIST_LIMIT = 15


def _id(value: str | int | None) -> int | None:
    if isinstance(value, int):
        return value
    return int(value) if value and value.isdigit() and len(value) <= 18 else None


def _no(ctx: FlowContext) -> list[Reply]:
    return [Reply(t(ctx.locale, "mediation.not_allowed"))]


def _stale(ctx: FlowContext) -> list[Reply]:
    return [Reply(t(ctx.locale, "errors.stale_button"))]


async def _case(ctx: FlowContext, case_id: str | int | None) -> MediationCase | None:
    number = _id(case_id)
    return await ctx.session.get(MediationCase, number) if number is not None else None


async def _mediator_case(ctx: FlowContext, case_id: str | int | None) -> MediationCase | None:
    """The case, when this person is a mediator on it (else None: the caller refuses)."""
    case = await _case(ctx, case_id)
    if case is None or not await service.is_on_case(ctx.session, case.id, ctx.user.id):
        return None
    return case


def _text(ctx: FlowContext, text: str | None, limit: int) -> str | None:
    cleaned = clean_text(text)
    return cleaned if cleaned and has_words(cleaned) and len(cleaned) <= limit else None


# --- lists ----------------------------------------------------------------------------------------

async def entry(ctx: FlowContext) -> list[Reply]:
    """/cases: a party's own cases; a mediator's cases and the mediation requests waiting for a case."""
    ctx.state.pop("await", None)
    buttons: list[Button] = []
    mine = await ctx.session.execute(select(MediationParty, MediationCase).join(
        MediationCase, MediationCase.id == MediationParty.case_id).where(
        MediationParty.user_id == ctx.user.id, MediationParty.status == str(PartyStatus.CONSENTED))
        .order_by(MediationCase.id.desc()).limit(LIST_LIMIT))
    for party, case in mine:
        buttons.append(Button(t(ctx.locale, "mediation.list_party", number=case.number,
                                status=t(ctx.locale, f"mediation.status.{case.status}")), actions.make("mdv", party.id)))
    community = ctx.user.community_code
    mediator = community is not None and await service.can_mediate(ctx.session, ctx.user, community)
    led = await ctx.session.scalars(select(MediationCase).join(
        MediationMediator, MediationMediator.case_id == MediationCase.id).where(
        MediationMediator.user_id == ctx.user.id, MediationCase.status.in_([str(s) for s in rules.ACTIVE]))
        .order_by(MediationCase.id.desc()).limit(LIST_LIMIT))
    led = list(led)
    if community is not None and is_staff_for(ctx, community):
        # Staff oversee every active case of their community, not only the ones they are on.
        seen = {case.id for case in led}
        led += [case for case in await ctx.session.scalars(select(MediationCase).where(
            MediationCase.community_code == community, MediationCase.status.in_([str(s) for s in rules.ACTIVE]))
            .order_by(MediationCase.id.desc()).limit(LIST_LIMIT)) if case.id not in seen]
    for case in led:
        buttons.append(Button(t(ctx.locale, "mediation.list_case", number=case.number,
                                status=t(ctx.locale, f"mediation.status.{case.status}")), actions.make("md", "view", case.id)))
    if mediator:
        waiting = await ctx.session.scalars(select(Request).outerjoin(
            MediationCase, MediationCase.request_id == Request.id).where(
            Request.community_code == community, Request.category == "mediation",
            Request.status.in_([str(s) for s in OPEN_STATUSES]), MediationCase.id.is_(None))
            .order_by(Request.id).limit(LIST_LIMIT))
        for request in waiting:
            buttons.append(Button(t(ctx.locale, "mediation.list_request", number=request.number),
                                  actions.make("mdo", request.id)))
        if is_staff_for(ctx, community):
            buttons.append(Button(t(ctx.locale, "mediation.stats_button"), actions.make("mdl", "stats")))
    if not buttons:
        return [Reply(t(ctx.locale, "mediation.list_empty"))]
    return [Reply(t(ctx.locale, "mediation.list_title"), rows(*buttons, per_row=1))]


async def on_list(ctx: FlowContext, op: str) -> list[Reply]:
    if op == "mine":
        return await entry(ctx)
    if op == "stats":
        return await stats(ctx)
    return _stale(ctx)


async def stats(ctx: FlowContext) -> list[Reply]:
    community = ctx.user.community_code
    if community is None or not is_staff_for(ctx, community):
        return _no(ctx)
    now = utcnow()
    since = now.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    result = await service.community_stats(ctx.session, ctx.config, community, since, now)
    lines = [t(ctx.locale, "mediation.stats_head", room=service.room_name(ctx.config, community, ctx.locale),
               year=now.year, opened=result.opened, open_now=result.open_now)]
    for code, level in result.levels:
        rate = f"{level.success_pct}%" if level.success_pct is not None else "-"
        lines.append(t(ctx.locale, "mediation.stats_level", level=t(ctx.locale, f"mediation.level.{code}"),
                       handled=level.handled, agreed=level.agreed, escalated=level.escalated,
                       followed=level.followed_up, holding=level.holding, rate=rate))
    return [Reply("\n".join(lines))]


# --- opening and the mediator's card ----------------------------------------------------------------

async def open_from_request(ctx: FlowContext, request_id: str) -> list[Reply]:
    number = _id(request_id)
    request = await ctx.session.get(Request, number) if number is not None else None
    if request is None or not await service.can_mediate(ctx.session, ctx.user, request.community_code):
        return _no(ctx)
    opened = await service.open_case(ctx.session, ctx.config, request, ctx.user, utcnow())
    if opened.result == "not_mediation":
        return [Reply(t(ctx.locale, "mediation.not_mediation", number=request.number))]
    if opened.result == "not_open":
        return [Reply(t(ctx.locale, "mediation.request_closed", number=request.number))]
    if opened.result == "exists":
        case = opened.case
        if case is not None and await service.is_on_case(ctx.session, case.id, ctx.user.id):
            return [Reply(t(ctx.locale, "mediation.already_open", number=request.number)), await case_card(ctx, case)]
        return [Reply(t(ctx.locale, "mediation.already_open", number=request.number),
                      rows(Button(t(ctx.locale, "mediation.join"), actions.make("md", "join", case.id))))]
    await commit_and_deliver(ctx, opened.outbox_ids or [])
    return [Reply(t(ctx.locale, "mediation.opened", number=request.number)), await case_card(ctx, opened.case)]


def _party_line(ctx: FlowContext, party: MediationParty) -> str:
    return t(ctx.locale, "mediation.party_line", side=service.side_name(ctx.locale, party.side), name=party.name,
             status=t(ctx.locale, f"mediation.party_status.{party.status}"))


async def case_card(ctx: FlowContext, case: MediationCase) -> Reply:
    """The mediators' view: names, sessions, agreement. Never sent to a party or a group."""
    request = await ctx.session.get(Request, case.request_id)
    lead = await ctx.session.get(User, case.lead_id)
    lines = [t(ctx.locale, "mediation.card", number=case.number, level=service.level_name(ctx.config, case, ctx.locale),
               status=t(ctx.locale, f"mediation.status.{case.status}"), lead=lead.display_name or "-",
               text=excerpt(request.text) if request else "-")]
    for party in await service.parties(ctx.session, case.id):
        lines.append(_party_line(ctx, party))
    meetings = await service.sessions_of(ctx.session, case.id)
    for meeting in meetings:
        lines.append(t(ctx.locale, "mediation.session_line", when=service.local_when(ctx.config, ctx.locale, meeting.starts_at),
                       place=meeting.place, status=t(ctx.locale, f"mediation.session_status.{meeting.status}")))
    agreement = await service.current_agreement(ctx.session, case.id)
    if agreement is not None:
        lines.append(t(ctx.locale, "mediation.agreement_line", text=agreement.text,
                       status=t(ctx.locale, f"mediation.agreement_status.{agreement.status}")))
    buttons = [Button(t(ctx.locale, "mediation.note"), actions.make("md", "note", case.id)),
               Button(t(ctx.locale, "mediation.notes"), actions.make("md", "notes", case.id))]
    is_lead = case.lead_id == ctx.user.id
    if case.status == CaseStatus.OPEN and is_lead:
        buttons += [Button(t(ctx.locale, "mediation.add_party"), actions.make("md", "party", case.id)),
                    Button(t(ctx.locale, "mediation.schedule"), actions.make("md", "sess", case.id)),
                    Button(t(ctx.locale, "mediation.agree"), actions.make("md", "agree", case.id))]
        if service.ladder(ctx.config, case.community_code).can_escalate(case.level):
            buttons.append(Button(t(ctx.locale, "mediation.escalate"), actions.make("md", "esc", case.id)))
        buttons += [Button(t(ctx.locale, "mediation.legal"), actions.make("md", "legal", case.id)),
                    Button(t(ctx.locale, "mediation.close"), actions.make("md", "close", case.id))]
    for meeting in meetings:
        if meeting.status == SessionStatus.HELD and case.status in rules.ACTIVE:
            buttons.append(Button(t(ctx.locale, "mediation.attendance", when=service.local_when(
                ctx.config, ctx.locale, meeting.starts_at)), actions.make("mdss", "att", meeting.id)))
        if meeting.status == SessionStatus.SCHEDULED:
            buttons.append(Button(t(ctx.locale, "mediation.session_held", when=service.local_when(
                ctx.config, ctx.locale, meeting.starts_at)), actions.make("mdss", "held", meeting.id)))
            if is_lead:
                buttons.append(Button(t(ctx.locale, "mediation.session_cancel"), actions.make("mdss", "cancel", meeting.id)))
    if not is_lead and is_staff_for(ctx, case.community_code) and case.status in rules.ACTIVE:
        buttons.append(Button(t(ctx.locale, "mediation.take_lead"), actions.make("md", "lead", case.id)))
    if case.status in rules.ACTIVE and not await service.is_on_case(ctx.session, case.id, ctx.user.id):
        buttons.append(Button(t(ctx.locale, "mediation.join"), actions.make("md", "join", case.id)))
        buttons = [b for b in buttons if not b.action.startswith(("md:note:", "md:notes:", "mdss:"))]
    return Reply("\n".join(lines), rows(*buttons, per_row=2))


async def on_case(ctx: FlowContext, op: str, case_id: str) -> list[Reply]:
    if op not in CASE_OPS:
        return _stale(ctx)
    case = await _case(ctx, case_id)
    if case is None:
        return _no(ctx)
    if op == "join":
        if not await service.can_mediate(ctx.session, ctx.user, case.community_code) or case.status not in rules.ACTIVE:
            return _no(ctx)
        await service.join(ctx.session, case, ctx.user)
        await ctx.session.commit()
        return [await case_card(ctx, case)]
    if op == "lead":
        if not is_staff_for(ctx, case.community_code):
            return _no(ctx)
        if await service.take_lead(ctx.session, case, ctx.user):
            await ctx.session.commit()
            return [Reply(t(ctx.locale, "mediation.lead_taken", number=case.number)), await case_card(ctx, case)]
        return [await case_card(ctx, case)] if await service.is_on_case(ctx.session, case.id, ctx.user.id) else _stale(ctx)
    on_case = await service.is_on_case(ctx.session, case.id, ctx.user.id)
    if op == "view" and not on_case and is_staff_for(ctx, case.community_code):
        return [await case_card(ctx, case)]   # staff of the community oversee every case (notes need joining)
    if not on_case:
        return _no(ctx)
    if op in LEAD_OPS and case.lead_id != ctx.user.id:
        return [Reply(t(ctx.locale, "mediation.lead_only"))]
    if op == "view":
        return [await case_card(ctx, case)]
    if op == "notes":
        return [await notes_view(ctx, case)]
    if op == "note":
        ctx.state.update({"await": "md_note", "md_case": case.id})
        return [Reply(t(ctx.locale, "mediation.ask_note", number=case.number))]
    if case.status != CaseStatus.OPEN:
        return [Reply(t(ctx.locale, "mediation.not_open", number=case.number,
                        status=t(ctx.locale, f"mediation.status.{case.status}")))]
    if op == "party":
        ctx.state.update({"await": "md_party_name", "md_case": case.id})
        return [Reply(t(ctx.locale, "mediation.ask_party_name", limit=rules.NAME_LIMIT))]
    if op in ("pinv", "prec"):
        return await add_party(ctx, case, offline=op == "prec")
    if op == "sess":
        ctx.state.update({"await": "md_session", "md_case": case.id})
        return [Reply(t(ctx.locale, "mediation.ask_session"))]
    if op == "agree":
        if not await service.taking_part(ctx.session, case.id):
            return [Reply(t(ctx.locale, "mediation.no_parties"))]
        ctx.state.update({"await": "md_agreement", "md_case": case.id})
        return [Reply(t(ctx.locale, "mediation.ask_agreement"))]
    if op == "esc" and not service.ladder(ctx.config, case.community_code).can_escalate(case.level):
        return [Reply(t(ctx.locale, "mediation.top_level"))]
    ctx.state.update({"await": "md_reason", "md_case": case.id, "md_next": op})
    return [Reply(t(ctx.locale, f"mediation.ask_reason_{op}"))]


async def notes_view(ctx: FlowContext, case: MediationCase) -> Reply:
    """Confidential notes and the parties' private messages, for mediators on the case."""
    parties = {p.id: p for p in await service.parties(ctx.session, case.id)}
    lines = [t(ctx.locale, "mediation.notes_head", number=case.number)]
    for note in await service.notes(ctx.session, case.id):
        if note.kind == "party_message" and note.party_id in parties:
            who = t(ctx.locale, "mediation.from_party", side=service.side_name(ctx.locale, parties[note.party_id].side))
        else:
            who = t(ctx.locale, "mediation.from_mediator")
        lines.append(f"· {who}: {excerpt(note.text)}")
    if len(lines) == 1:
        lines.append(t(ctx.locale, "mediation.notes_empty"))
    return Reply("\n".join(lines), rows(Button(t(ctx.locale, "mediation.open_case"), actions.make("md", "view", case.id))))


# --- parties --------------------------------------------------------------------------------------

async def on_party_name(ctx: FlowContext, text: str | None, _key: str) -> list[Reply]:
    case = await _mediator_case(ctx, ctx.state.get("md_case"))
    if case is None or case.lead_id != ctx.user.id:
        ctx.state.clear()
        return _no(ctx)
    name = _text(ctx, text, rules.NAME_LIMIT)
    if name is None:
        return [Reply(t(ctx.locale, "mediation.party_name_invalid", limit=rules.NAME_LIMIT))]
    ctx.state.pop("await", None)
    ctx.state["md_party_name"] = name
    return [Reply(t(ctx.locale, "mediation.ask_party_kind", name=name),
                  rows(Button(t(ctx.locale, "mediation.party_invite"), actions.make("md", "pinv", case.id)),
                       Button(t(ctx.locale, "mediation.party_record"), actions.make("md", "prec", case.id)), per_row=1))]


async def add_party(ctx: FlowContext, case: MediationCase, *, offline: bool) -> list[Reply]:
    name = ctx.state.get("md_party_name")
    if not name or ctx.state.get("md_case") != case.id:
        return _stale(ctx)   # a second press after the party was added, or no name typed
    party, code = await service.add_party(ctx.session, case, ctx.user, name, offline=offline, now=utcnow())
    if party is None:
        return _stale(ctx)
    ctx.state.pop("md_party_name", None)
    ctx.state.pop("md_case", None)
    await ctx.session.commit()
    side = service.side_name(ctx.locale, party.side)
    if offline:
        return [Reply(t(ctx.locale, "mediation.party_recorded", side=side, name=party.name)), await case_card(ctx, case)]
    text = t(ctx.locale, "mediation.party_invited", side=side, name=party.name, code=code, days=rules.INVITE_DAYS)
    username = await ctx.bot_username() if ctx.bot_username is not None else None
    if username:
        text += "\n" + t(ctx.locale, "mediation.party_invite_link", link=f"https://t.me/{username}?start=md{code}")
    return [Reply(text), await case_card(ctx, case)]


async def invitation(ctx: FlowContext, text: str | None) -> list[Reply]:
    """/join CODE or /start mdCODE: show what taking part means; nothing is stored until the answer."""
    code = rules.normalize_code(text)
    party = await service.find_invitation(ctx.session, code, utcnow()) if code else None
    if party is None:
        return [Reply(t(ctx.locale, "mediation.invite_invalid"))]
    case = await ctx.session.get(MediationCase, party.case_id)
    ctx.state["md_invite"] = party.id
    return [service.consent_prompt(ctx.config, case, party, ctx.locale)]


async def on_consent(ctx: FlowContext, party_id: str, answer: str) -> list[Reply]:
    number = _id(party_id)
    party = await ctx.session.get(MediationParty, number) if number is not None else None
    if party is None or answer not in ("yes", "no"):
        return _stale(ctx)
    holds_invite = ctx.state.get("md_invite") == party.id and party.user_id is None
    if party.user_id != ctx.user.id and not holds_invite:
        return _no(ctx)
    now = utcnow()
    result = await service.consent(ctx.session, ctx.config, party, ctx.user, answer == "yes", now)
    if result.result in ("already", "gone"):
        return [Reply(t(ctx.locale, "mediation.consent_already"))]
    if result.result in ("taken", "mediator"):
        return [Reply(t(ctx.locale, f"mediation.consent_{result.result}"))]
    ctx.state.pop("md_invite", None)
    case = await ctx.session.get(MediationCase, party.case_id)
    if result.result == "consented":
        # Taking part needs the bot's own consent and a community too; the invitation covers both.
        give_consent(ctx.user)
        if ctx.user.community_code is None:
            ctx.user.community_code = case.community_code
    await commit_and_deliver(ctx, result.outbox_ids or [])
    if result.result == "declined":
        return [Reply(t(ctx.locale, "mediation.declined", number=case.number))]
    return [Reply(t(ctx.locale, "mediation.consented", number=case.number)), await party_view_reply(ctx, case, party)]


async def _own_party(ctx: FlowContext, party_id: str | int | None) -> MediationParty | None:
    number = _id(party_id)
    party = await ctx.session.get(MediationParty, number) if number is not None else None
    if party is None or party.user_id != ctx.user.id or party.status != PartyStatus.CONSENTED:
        return None
    return party


async def party_view(ctx: FlowContext, party_id: str) -> list[Reply]:
    party = await _own_party(ctx, party_id)
    if party is None:
        return _no(ctx)
    case = await ctx.session.get(MediationCase, party.case_id)
    return [await party_view_reply(ctx, case, party)]


async def party_view_reply(ctx: FlowContext, case: MediationCase, party: MediationParty) -> Reply:
    """What a party sees: their side, level, status, sessions, the agreement. No other party, no notes."""
    lines = [t(ctx.locale, "mediation.party_card", number=case.number,
               room=service.room_name(ctx.config, case.community_code, ctx.locale),
               level=service.level_name(ctx.config, case, ctx.locale),
               status=t(ctx.locale, f"mediation.status.{case.status}"), side=service.side_name(ctx.locale, party.side))]
    for meeting in await service.sessions_of(ctx.session, case.id):
        if meeting.status == SessionStatus.SCHEDULED:
            lines.append(t(ctx.locale, "mediation.party_session", when=service.local_when(ctx.config, ctx.locale,
                                                                                          meeting.starts_at),
                           place=meeting.place))
    buttons = [Button(t(ctx.locale, "mediation.write"), actions.make("mdm", party.id))]
    agreement = await service.current_agreement(ctx.session, case.id)
    if agreement is not None and agreement.status != rules.AgreementStatus.DECLINED:
        lines.append(t(ctx.locale, "mediation.party_agreement", text=agreement.text))
        if case.status == CaseStatus.PROPOSED and party.id not in await service.answers(ctx.session, agreement.id, "accept"):
            buttons += [Button(t(ctx.locale, "mediation.accept"), actions.make("mdk", agreement.id, party.id, "yes")),
                        Button(t(ctx.locale, "mediation.decline"), actions.make("mdk", agreement.id, party.id, "no"))]
        if case.status == CaseStatus.FOLLOWUP and party.id not in await service.answers(ctx.session, agreement.id,
                                                                                        "followup"):
            buttons += [Button(t(ctx.locale, "mediation.holds_yes"), actions.make("mdf", agreement.id, party.id, "yes")),
                        Button(t(ctx.locale, "mediation.holds_no"), actions.make("mdf", agreement.id, party.id, "no"))]
    return Reply("\n".join(lines), rows(*buttons, per_row=2))


async def ask_message(ctx: FlowContext, party_id: str) -> list[Reply]:
    party = await _own_party(ctx, party_id)
    if party is None:
        return _no(ctx)
    case = await ctx.session.get(MediationCase, party.case_id)
    if case.status not in rules.ACTIVE:
        return [Reply(t(ctx.locale, "mediation.case_over", number=case.number))]
    ctx.state.update({"await": "md_message", "md_party": party.id})
    return [Reply(t(ctx.locale, "mediation.ask_message"))]


async def on_message(ctx: FlowContext, text: str | None, key: str) -> list[Reply]:
    party = await _own_party(ctx, ctx.state.get("md_party"))
    if party is None:
        ctx.state.clear()
        return _no(ctx)
    body = _text(ctx, text, rules.NOTE_LIMIT)
    if body is None:
        return [Reply(t(ctx.locale, "mediation.text_invalid", limit=rules.NOTE_LIMIT))]
    ctx.state.pop("await", None)
    ctx.state.pop("md_party", None)
    case = await ctx.session.get(MediationCase, party.case_id)
    ids = await service.party_message(ctx.session, case, party, body, key)
    await commit_and_deliver(ctx, ids or [])
    return [Reply(t(ctx.locale, "mediation.message_sent"))]


# --- sessions ------------------------------------------------------------------------------------

async def on_session_text(ctx: FlowContext, text: str | None, _key: str) -> list[Reply]:
    case = await _mediator_case(ctx, ctx.state.get("md_case"))
    if case is None or case.lead_id != ctx.user.id:
        ctx.state.clear()
        return _no(ctx)
    now = utcnow()
    local = service.local_now(ctx.config, now)
    parsed = rules.parse_session(clean_text(text)[:300], local.date(), local)
    if parsed.error is not None:
        return [Reply(t(ctx.locale, f"mediation.session_{parsed.error}", limit=rules.PLACE_LIMIT))]
    ctx.state.pop("await", None)
    ctx.state.pop("md_case", None)
    meeting, ids = await service.schedule_session(ctx.session, ctx.config, case, ctx.user,
                                                  service.to_utc(ctx.config, parsed.when), parsed.place)
    if meeting is None:
        return _stale(ctx)
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "mediation.session_scheduled", when=service.local_when(ctx.config, ctx.locale,
                                                                                        meeting.starts_at),
                    place=meeting.place))]


async def _mediator_session(ctx: FlowContext, session_id: str) -> tuple[MediationSession | None, MediationCase | None]:
    number = _id(session_id)
    meeting = await ctx.session.get(MediationSession, number) if number is not None else None
    case = await _mediator_case(ctx, meeting.case_id) if meeting is not None else None
    return (meeting, case) if case is not None else (None, None)


async def on_session(ctx: FlowContext, op: str, session_id: str) -> list[Reply]:
    if op not in ("held", "cancel", "att"):
        return _stale(ctx)
    meeting, case = await _mediator_session(ctx, session_id)
    if meeting is None:
        return _no(ctx)
    if op == "cancel" and case.lead_id != ctx.user.id:
        return [Reply(t(ctx.locale, "mediation.lead_only"))]
    if op in ("held", "cancel"):
        target = SessionStatus.HELD if op == "held" else SessionStatus.CANCELLED
        ids = await service.set_session_status(ctx.session, ctx.config, meeting, target, utcnow())
        if ids is None and not (op == "held" and meeting.status == SessionStatus.HELD):
            return [Reply(t(ctx.locale, "mediation.session_not_scheduled"))]
        await commit_and_deliver(ctx, ids or [])
        if op == "cancel":
            return [Reply(t(ctx.locale, "mediation.session_cancelled_done"))]
    return [await attendance_prompt(ctx, meeting)]


async def attendance_prompt(ctx: FlowContext, meeting: MediationSession) -> Reply:
    present = await service.attendance(ctx.session, meeting.id)
    buttons, lines = [], [t(ctx.locale, "mediation.attendance_head",
                            when=service.local_when(ctx.config, ctx.locale, meeting.starts_at))]
    for party in await service.parties(ctx.session, meeting.case_id):
        if party.status not in TAKING_PART:
            continue
        mark = {True: "✅", False: "❌"}.get(present.get(party.id), "·")
        side = service.side_name(ctx.locale, party.side)
        lines.append(f"{mark} {side} {party.name}")
        buttons += [Button(t(ctx.locale, "mediation.came", side=side), actions.make("mda", meeting.id, party.id, "y")),
                    Button(t(ctx.locale, "mediation.absent", side=side), actions.make("mda", meeting.id, party.id, "n"))]
    buttons.append(Button(t(ctx.locale, "mediation.open_case"), actions.make("md", "view", meeting.case_id)))
    return Reply("\n".join(lines), rows(*buttons, per_row=2))


async def on_attendance(ctx: FlowContext, session_id: str, party_id: str, mark: str) -> list[Reply]:
    if mark not in ("y", "n"):
        return _stale(ctx)
    meeting, case = await _mediator_session(ctx, session_id)
    number = _id(party_id)
    party = await ctx.session.get(MediationParty, number) if number is not None else None
    if meeting is None or party is None or party.case_id != case.id:
        return _no(ctx)
    if meeting.status != SessionStatus.HELD or party.status not in TAKING_PART:
        return _stale(ctx)
    await service.record_attendance(ctx.session, meeting, party, mark == "y", ctx.user)
    await ctx.session.commit()
    return [await attendance_prompt(ctx, meeting)]


# --- notes, agreement and the next step ----------------------------------------------------------------

async def on_note(ctx: FlowContext, text: str | None, key: str) -> list[Reply]:
    case = await _mediator_case(ctx, ctx.state.get("md_case"))
    if case is None:
        ctx.state.clear()
        return _no(ctx)
    body = _text(ctx, text, rules.NOTE_LIMIT)
    if body is None:
        return [Reply(t(ctx.locale, "mediation.text_invalid", limit=rules.NOTE_LIMIT))]
    ctx.state.pop("await", None)
    ctx.state.pop("md_case", None)
    await service.add_note(ctx.session, case, kind="note", text=body, key=key, author=ctx.user)
    await ctx.session.commit()
    return [Reply(t(ctx.locale, "mediation.note_saved"),
                  rows(Button(t(ctx.locale, "mediation.open_case"), actions.make("md", "view", case.id))))]


async def on_agreement_text(ctx: FlowContext, text: str | None, _key: str) -> list[Reply]:
    case = await _mediator_case(ctx, ctx.state.get("md_case"))
    if case is None or case.lead_id != ctx.user.id:
        ctx.state.clear()
        return _no(ctx)
    body = _text(ctx, text, rules.AGREEMENT_LIMIT)
    if body is None:
        return [Reply(t(ctx.locale, "mediation.text_invalid", limit=rules.AGREEMENT_LIMIT))]
    ctx.state.pop("await", None)
    ctx.state.pop("md_case", None)
    agreement, ids = await service.propose_agreement(ctx.session, ctx.config, case, ctx.user, body, utcnow())
    if agreement is None:
        return [Reply(t(ctx.locale, "mediation.not_open", number=case.number,
                        status=t(ctx.locale, f"mediation.status.{case.status}")))]
    await commit_and_deliver(ctx, ids)
    return [Reply(t(ctx.locale, "mediation.agreement_sent", number=case.number))]


async def on_reason(ctx: FlowContext, text: str | None, _key: str) -> list[Reply]:
    case = await _mediator_case(ctx, ctx.state.get("md_case"))
    step = ctx.state.get("md_next")
    if case is None or case.lead_id != ctx.user.id or step not in ("esc", "legal", "close"):
        ctx.state.clear()
        return _no(ctx)
    reason = _text(ctx, text, rules.REASON_LIMIT)
    if reason is None:
        return [Reply(t(ctx.locale, "mediation.text_invalid", limit=rules.REASON_LIMIT))]
    for key in ("await", "md_case", "md_next"):
        ctx.state.pop(key, None)
    now = utcnow()
    if step == "esc":
        ids = await service.escalate(ctx.session, ctx.config, case, ctx.user, reason, now)
    else:
        target = CaseStatus.REFERRED if step == "legal" else CaseStatus.CLOSED
        ids = await service.finish_without_agreement(ctx.session, ctx.config, case, ctx.user, target, reason, now)
    if ids is None:
        return [Reply(t(ctx.locale, "mediation.not_open", number=case.number,
                        status=t(ctx.locale, f"mediation.status.{case.status}")))]
    await commit_and_deliver(ctx, ids)
    done = {"esc": "mediation.escalated_done", "legal": "mediation.referred_done", "close": "mediation.closed_done"}[step]
    return [Reply(t(ctx.locale, done, number=case.number, level=service.level_name(ctx.config, case, ctx.locale)))]


async def _answering_party(ctx: FlowContext, agreement_id: str, party_id: str) -> tuple[MediationAgreement | None,
                                                                                           MediationParty | None]:
    """The party answers for themselves; a party without a chat account is answered for by the lead."""
    a_id, p_id = _id(agreement_id), _id(party_id)
    agreement = await ctx.session.get(MediationAgreement, a_id) if a_id is not None else None
    party = await ctx.session.get(MediationParty, p_id) if p_id is not None else None
    if agreement is None or party is None or party.case_id != agreement.case_id or party.status not in TAKING_PART:
        return None, None
    if party.user_id is not None:
        return (agreement, party) if party.user_id == ctx.user.id else (None, None)
    case = await ctx.session.get(MediationCase, agreement.case_id)
    return (agreement, party) if case.lead_id == ctx.user.id else (None, None)


async def on_agreement_answer(ctx: FlowContext, agreement_id: str, party_id: str, answer: str) -> list[Reply]:
    return await _party_answer(ctx, agreement_id, party_id, answer, service.answer_agreement, "mediation.answer_")


async def on_followup(ctx: FlowContext, agreement_id: str, party_id: str, answer: str) -> list[Reply]:
    return await _party_answer(ctx, agreement_id, party_id, answer, service.answer_followup, "mediation.followup_")


async def _party_answer(ctx: FlowContext, agreement_id: str, party_id: str, answer: str, record,  # type: ignore[no-untyped-def]
                        reply_prefix: str) -> list[Reply]:
    """A party's yes/no on an agreement (accepting it, or saying whether it holds): checked, then recorded once."""
    if answer not in ("yes", "no"):
        return _stale(ctx)
    agreement, party = await _answering_party(ctx, agreement_id, party_id)
    if agreement is None:
        return _no(ctx)
    result = await record(ctx.session, ctx.config, agreement, party, answer == "yes", ctx.user, utcnow())
    if result.result in ("stale", "already"):
        return [Reply(t(ctx.locale, "mediation.answer_already"))]
    await commit_and_deliver(ctx, result.outbox_ids or [])
    return [Reply(t(ctx.locale, f"{reply_prefix}{result.result}"))]


def _once(step):  # type: ignore[no-untyped-def]
    """Remember the message a step consumed, so the same message delivered again is not read as a request."""
    async def run(ctx: FlowContext, text: str | None, key: str) -> list[Reply]:
        replies = await step(ctx, text, key)
        if ctx.state.get("await") is None:
            ctx.state["md_last"] = key
        return replies
    return run


TEXT_STEPS = {name: _once(step) for name, step in {
    "md_party_name": on_party_name, "md_session": on_session_text, "md_note": on_note,
    "md_agreement": on_agreement_text, "md_reason": on_reason, "md_message": on_message}.items()}
