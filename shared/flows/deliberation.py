"""Deliberation (议事四步法, 畅谈客厅) in chat.

Residents: /topics lists the community's topics; propose one (title → description → photo or
skip → compound or whole community); support, comment, vote (changeable until close), rate.
Staff: accept a proposal or handle it as a request, turn a `deliberation` request into a topic,
hide comments with a reason, schedule meetings, open a vote (options → secret/open → quorum →
duration), plan actions with owners and dates, post progress, close with a report; /topics
offers the board of topics by step.

Every action re-checks role, community, compound and stage on the server (shared.deliberation).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from shared import deliberation as service
from shared.clock import local_clock, utcnow
from shared.db.models import DelibTopic
from shared.domain import deliberation as rules
from shared.domain.deliberation import Stage
from shared.domain.text import clean_text, has_words
from shared.flows import actions
from shared.flows.context import FlowContext
from shared.flows.deliver import commit_and_deliver
from shared.flows.guard import is_staff_for
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import category_name
from shared.i18n import t
from shared.repo.requests import get_request
from shared.taxonomy import LABELS

TOPICS_SHOWN = 10
_REASONS = {
    "not_allowed": "errors.not_allowed",
    "stale": "errors.stale_button",
    "other_community": "deliberation.other_community",
    "other_compound": "deliberation.other_compound",
    "closed": "deliberation.vote_closed",
    "stage": "deliberation.wrong_stage",
    "unknown_compound": "errors.stale_button",
}


def _id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 18 else None


def _say(ctx: FlowContext, key: str, **params: object) -> list[Reply]:
    return [Reply(t(ctx.locale, key, **params))]


def _stale(ctx: FlowContext) -> list[Reply]:
    return _say(ctx, "errors.stale_button")


def _compounds(ctx: FlowContext, community: str | None = None) -> list[str]:
    code = community or ctx.user.community_code
    return list(ctx.config.community(code).compounds) if code and ctx.config.has_community(code) else []


async def _refusal(ctx: FlowContext, outcome: service.Outcome) -> list[Reply]:
    """A kind reply for a refused operation; a resident without a declared compound is asked for it."""
    if outcome.result == "need_compound" and outcome.topic is not None:
        return [_compound_prompt(ctx, outcome.topic)]
    return _say(ctx, _REASONS.get(outcome.result, "errors.stale_button"))


def _stage_name(ctx: FlowContext, stage: str) -> str:
    return t(ctx.locale, f"deliberation.stage_{stage}")


def _visible(ctx: FlowContext, topic: DelibTopic | None) -> bool:
    """Staff of the community see every topic; residents their community's accepted ones (and their own proposals)."""
    if topic is None:
        return False
    if is_staff_for(ctx, topic.community_code):
        return True
    if ctx.user.community_code != topic.community_code:
        return False
    return topic.stage not in (Stage.PROPOSED, Stage.ANSWERED) or topic.proposer_id == ctx.user.id


async def _topic_for(ctx: FlowContext, topic_id: str) -> DelibTopic | None:
    topic = await service.load_topic(ctx.session, _id(topic_id))
    return topic if _visible(ctx, topic) else None


async def _staff_topic(ctx: FlowContext, topic_id: str) -> DelibTopic | None:
    topic = await service.load_topic(ctx.session, _id(topic_id))
    return topic if topic is not None and is_staff_for(ctx, topic.community_code) else None


# --- lists and the board ------------------------------------------------------------------------

async def topics(ctx: FlowContext) -> list[Reply]:
    community = ctx.user.community_code
    if not community:
        return _stale(ctx)
    ctx.state.pop("await", None)
    found = await service.community_topics(ctx.session, community, limit=TOPICS_SHOWN)
    lines = [t(ctx.locale, "deliberation.list_line", id=tp.id, title=tp.title, stage=_stage_name(ctx, tp.stage),
               scope=service.scope_name(tp, ctx.locale)) for tp in found]
    text = t(ctx.locale, "deliberation.list_title") + "\n" + ("\n".join(lines) or t(ctx.locale, "deliberation.list_empty"))
    buttons = [Button(f"#{tp.id} {tp.title[:18]}", actions.make("dl", "view", tp.id)) for tp in found]
    buttons.append(Button(t(ctx.locale, "deliberation.propose"), actions.make("dlm", "new")))
    if is_staff_for(ctx, community):
        buttons.append(Button(t(ctx.locale, "deliberation.board"), actions.make("dlm", "board")))
    return [Reply(text, rows(*buttons, per_row=1))]


async def board(ctx: FlowContext) -> list[Reply]:
    community = ctx.user.community_code
    if not community or not is_staff_for(ctx, community):
        return _say(ctx, "errors.not_allowed")
    steps = await service.board(ctx.session, community)
    parts = []
    buttons = []
    for step, found in steps.items():
        parts.append(t(ctx.locale, f"deliberation.step_{step}", count=len(found)))
        for tp in found:
            parts.append("  " + t(ctx.locale, "deliberation.list_line", id=tp.id, title=tp.title,
                                  stage=_stage_name(ctx, tp.stage), scope=service.scope_name(tp, ctx.locale)))
            buttons.append(Button(f"#{tp.id} {tp.title[:18]}", actions.make("dl", "view", tp.id)))
    return [Reply(t(ctx.locale, "deliberation.board_title") + "\n" + "\n".join(parts), rows(*buttons[:20], per_row=2))]


async def on_menu(ctx: FlowContext, choice: str) -> list[Reply]:
    handlers = {"list": topics, "new": start_proposal, "board": board}
    handler = handlers.get(choice)
    return await handler(ctx) if handler else _stale(ctx)


# --- the topic card ---------------------------------------------------------------------------

async def view(ctx: FlowContext, topic_id: str) -> list[Reply]:
    topic = await _topic_for(ctx, topic_id)
    if topic is None:
        return _say(ctx, "deliberation.not_found")
    s, loc = ctx.session, ctx.locale
    staff = is_staff_for(ctx, topic.community_code)
    lines = [t(loc, "deliberation.card", id=topic.id, title=topic.title, scope=service.scope_name(topic, loc),
               stage=_stage_name(ctx, topic.stage), step=rules.STEP_OF[Stage(topic.stage)],
               supporters=await service.support_count(s, topic.id), description=topic.description)]
    if topic.photos:
        lines.append(t(loc, "deliberation.photos", count=len(topic.photos)))
    meeting = await service.next_meeting(s, topic.id, utcnow())
    if meeting is not None:
        lines.append(t(loc, "deliberation.next_meeting", when=service.local_time(ctx.config, meeting.starts_at),
                       place=meeting.place))
    vote = await service.last_vote(s, topic.id)
    if vote is not None and vote.closed_at is None:
        mine = await service.my_ballot(s, vote.id, ctx.user.id)
        lines.append(t(loc, "deliberation.vote_line", closes=service.local_time(ctx.config, vote.closes_at),
                       quorum=vote.quorum, mode=t(loc, "deliberation.secret" if vote.secret else "deliberation.open"),
                       options=" / ".join(vote.options)))
        if mine is not None:
            lines.append(t(loc, "deliberation.your_ballot", option=vote.options[mine]))
    elif vote is not None:
        lines.append(service.result_text(loc, topic, vote))
    for action in await service.actions_of(s, topic.id):
        lines.append(t(loc, "deliberation.action_line", action=action.title, owner=action.owner,
                       due=action.due_on.isoformat(), status=t(loc, f"deliberation.action_{action.status}")))
    if topic.report:
        lines.append(t(loc, "deliberation.report_line", report=topic.report))
    if topic.stage == Stage.CLOSED:
        count, average = await service.rating_summary(s, topic.id)
        if count:
            lines.append(t(loc, "deliberation.rating_line", count=count, average=f"{average:.1f}"))
    buttons = [Button(t(loc, "deliberation.timeline"), actions.make("dl", "tl", topic.id)),
               Button(t(loc, "deliberation.comments"), actions.make("dl", "cm", topic.id))]
    if topic.stage in rules.OPEN_STAGES and not staff:
        if not await service.has_supported(s, topic.id, ctx.user.id):
            buttons.append(Button(t(loc, "deliberation.support"), actions.make("dl", "sup", topic.id)))
        buttons.append(Button(t(loc, "deliberation.comment"), actions.make("dl", "com", topic.id)))
    if vote is not None and vote.closed_at is None and not staff:
        buttons += [Button(str(o)[:40], actions.make("dlv", vote.id, i)) for i, o in enumerate(vote.options)]
    if topic.stage == Stage.CLOSED and not staff:
        buttons += [Button("⭐" * n, actions.make("dlr", topic.id, n)) for n in range(1, 6)]
    if staff:
        buttons += _staff_buttons(ctx, topic)
        for action in await service.actions_of(s, topic.id):
            if action.status == "open" and topic.stage == Stage.CARRYING_OUT:
                buttons += [Button(t(loc, "deliberation.progress_button", action=action.title[:12]),
                                   actions.make("dla", "prog", action.id)),
                            Button(t(loc, "deliberation.done_button", action=action.title[:12]),
                                   actions.make("dla", "done", action.id))]
                if action.task_id is None and action.request_id is None:
                    buttons += [Button(t(loc, "deliberation.task_button", action=action.title[:12]),
                                       actions.make("dla", "task", action.id)),
                                Button(t(loc, "deliberation.request_button", action=action.title[:12]),
                                       actions.make("dla", "req", action.id))]
    return [Reply("\n\n".join(lines), rows(*buttons, per_row=2))]


def _staff_buttons(ctx: FlowContext, topic: DelibTopic) -> list[Button]:
    loc, stage = ctx.locale, topic.stage
    ops: list[tuple[str, str]] = []
    if rules.can(stage, "accept"):
        ops += [("acc", "deliberation.accept"), ("req", "deliberation.as_request")]
    if stage in rules.MEETING_STAGES:
        ops.append(("meet", "deliberation.schedule_meeting"))
    if rules.can(stage, "open_vote"):
        ops.append(("vote", "deliberation.open_vote"))
    if rules.can(stage, "plan_action"):
        ops.append(("act", "deliberation.add_action"))
    if rules.can(stage, "close"):
        ops.append(("close", "deliberation.close"))
    return [Button(t(loc, key), actions.make("dl", op, topic.id)) for op, key in ops]


async def show_timeline(ctx: FlowContext, topic_id: str) -> list[Reply]:
    topic = await _topic_for(ctx, topic_id)
    if topic is None:
        return _say(ctx, "deliberation.not_found")
    lines = []
    for event in await service.timeline(ctx.session, topic.id):
        when = local_clock(event.created_at, ctx.config.defaults.timezone, "%m-%d %H:%M")
        lines.append(f"{when} {service.event_text(ctx.locale, event)}")
    return [Reply(t(ctx.locale, "deliberation.timeline_title", id=topic.id, title=topic.title) + "\n" + "\n".join(lines),
                  rows(service.view_button(ctx.locale, topic.id)))]


async def show_comments(ctx: FlowContext, topic_id: str) -> list[Reply]:
    topic = await _topic_for(ctx, topic_id)
    if topic is None:
        return _say(ctx, "deliberation.not_found")
    found = await service.visible_comments(ctx.session, topic.id)
    body = "\n".join(f"· {c.text}" for c in found) or t(ctx.locale, "deliberation.no_comments")
    return [Reply(t(ctx.locale, "deliberation.comments_title", title=topic.title) + "\n" + body,
                  rows(service.view_button(ctx.locale, topic.id)))]


# --- step 1: propose --------------------------------------------------------------------------

async def start_proposal(ctx: FlowContext) -> list[Reply]:
    if not ctx.user.community_code:
        return _stale(ctx)
    ctx.state.clear()
    ctx.state["dl"] = {}
    ctx.state["await"] = "dl_title"
    return _say(ctx, "deliberation.ask_title", limit=rules.TITLE_LIMIT)


async def on_title(ctx: FlowContext, text: str | None, _attachments: list | None = None) -> list[Reply]:
    form = ctx.state.get("dl")
    if form is None:
        ctx.state.pop("await", None)
        return _stale(ctx)
    title = " ".join(clean_text(text).split())
    if not title or not has_words(title) or len(title) > rules.TITLE_LIMIT:
        return _say(ctx, "deliberation.title_invalid", limit=rules.TITLE_LIMIT)
    form["title"] = title
    ctx.state["await"] = "dl_desc"
    return _say(ctx, "deliberation.ask_description", limit=rules.DESCRIPTION_LIMIT)


async def on_description(ctx: FlowContext, text: str | None, _attachments: list | None = None) -> list[Reply]:
    form = ctx.state.get("dl")
    if form is None or "title" not in form:
        ctx.state.pop("await", None)
        return _stale(ctx)
    description = clean_text(text)
    if not description or not has_words(description) or len(description) > rules.DESCRIPTION_LIMIT:
        return _say(ctx, "deliberation.description_invalid", limit=rules.DESCRIPTION_LIMIT)
    form["description"] = description
    ctx.state["await"] = "dl_photo"
    return [Reply(t(ctx.locale, "deliberation.ask_photo"),
                  rows(Button(t(ctx.locale, "deliberation.skip_photo"), actions.make("dlp", "skip"))))]


async def on_photo(ctx: FlowContext, text: str | None, attachments: list | None = None) -> list[Reply]:
    form = ctx.state.get("dl")
    if form is None or "description" not in form:
        ctx.state.pop("await", None)
        return _stale(ctx)
    photo = next((a.get("file_id") for a in attachments or [] if a.get("type") == "photo"), None)
    if not photo or len(str(photo)) > 200:
        return [Reply(t(ctx.locale, "deliberation.photo_expected"),
                      rows(Button(t(ctx.locale, "deliberation.skip_photo"), actions.make("dlp", "skip"))))]
    form.setdefault("photos", []).append(str(photo))
    if len(form["photos"]) < 3:
        return [Reply(t(ctx.locale, "deliberation.photo_more", count=len(form["photos"])),
                      rows(Button(t(ctx.locale, "deliberation.photos_done"), actions.make("dlp", "done"))))]
    return await _after_photos(ctx)


async def skip_photo(ctx: FlowContext, op: str) -> list[Reply]:
    form = ctx.state.get("dl")
    if op not in ("skip", "done") or form is None or "description" not in form or ctx.state.get("await") != "dl_photo":
        return _stale(ctx)
    return await _after_photos(ctx)


async def _after_photos(ctx: FlowContext) -> list[Reply]:
    form = ctx.state["dl"]
    form.setdefault("photos", [])
    ctx.state.pop("await", None)
    compounds = _compounds(ctx)
    if not compounds:
        return await _create(ctx, None)
    buttons = [Button(t(ctx.locale, "deliberation.whole_community"), actions.make("dls", "all"))]
    buttons += [Button(name, actions.make("dls", i)) for i, name in enumerate(compounds)]
    return [Reply(t(ctx.locale, "deliberation.ask_scope"), rows(*buttons, per_row=1))]


async def on_scope(ctx: FlowContext, choice: str) -> list[Reply]:
    form = ctx.state.get("dl")
    if form is None or "description" not in form or "photos" not in form:
        return _stale(ctx)
    compounds = _compounds(ctx)
    if choice == "all":
        return await _create(ctx, None)
    index = _id(choice)
    if index is None or index >= len(compounds):
        return _stale(ctx)
    return await _create(ctx, compounds[index])


async def _create(ctx: FlowContext, compound: str | None) -> list[Reply]:
    form = ctx.state.pop("dl")
    ctx.state.pop("await", None)
    outcome = await service.propose(ctx.session, ctx.config, ctx.user, title=form["title"],
                                    description=form["description"], photos=form["photos"], compound=compound)
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return [Reply(t(ctx.locale, "deliberation.proposed", id=outcome.topic.id, title=outcome.topic.title,
                    scope=service.scope_name(compound, ctx.locale)),
                  rows(service.view_button(ctx.locale, outcome.topic.id)))]


async def accept(ctx: FlowContext, topic_id: str) -> list[Reply]:
    outcome = await service.accept(ctx.session, ctx.config, _id(topic_id) or 0, ctx.user)
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return [Reply(t(ctx.locale, "deliberation.accepted", id=outcome.topic.id, title=outcome.topic.title),
                  rows(service.view_button(ctx.locale, outcome.topic.id)))]


async def as_request(ctx: FlowContext, topic_id: str) -> list[Reply]:
    outcome = await service.answer_as_request(ctx.session, ctx.config, _id(topic_id) or 0, ctx.user)
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return _say(ctx, "deliberation.answered", number=outcome.extra["number"])


async def from_request(ctx: FlowContext, request_id: str, scope: str) -> list[Reply]:
    rid = _id(request_id)
    request = await get_request(ctx.session, rid) if rid else None
    if request is None or not is_staff_for(ctx, request.community_code):
        return _say(ctx, "staff.not_staff")
    compounds = _compounds(ctx, request.community_code)
    index = _id(scope)
    if scope != "all" and (index is None or index >= len(compounds)):
        return _stale(ctx)
    outcome = await service.from_request(ctx.session, ctx.config, request.id, ctx.user,
                                         None if scope == "all" else compounds[index])
    if outcome.result == "already" and outcome.topic is not None:
        return [Reply(t(ctx.locale, "deliberation.already_topic", id=outcome.topic.id),
                      rows(service.view_button(ctx.locale, outcome.topic.id)))]
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return [Reply(t(ctx.locale, "deliberation.accepted", id=outcome.topic.id, title=outcome.topic.title),
                  rows(service.view_button(ctx.locale, outcome.topic.id)))]


# --- step 2: discuss --------------------------------------------------------------------------

def _compound_prompt(ctx: FlowContext, topic: DelibTopic) -> Reply:
    buttons = [Button(name, actions.make("dlc", i)) for i, name in enumerate(_compounds(ctx))]
    return Reply(t(ctx.locale, "deliberation.ask_compound", compound=topic.compound), rows(*buttons, per_row=1))


async def declare(ctx: FlowContext, choice: str) -> list[Reply]:
    compounds = _compounds(ctx)
    index = _id(choice)
    if index is None or index >= len(compounds):
        return _stale(ctx)
    result = await service.declare_compound(ctx.session, ctx.config, ctx.user, compounds[index])
    if result == "already":
        return _say(ctx, "deliberation.compound_already", compound=await service.residence_of(ctx.session, ctx.user))
    if result != "ok":
        return _stale(ctx)
    await commit_and_deliver(ctx, [])
    return _say(ctx, "deliberation.compound_set", compound=compounds[index])


async def support(ctx: FlowContext, topic_id: str) -> list[Reply]:
    outcome = await service.support(ctx.session, ctx.config, _id(topic_id) or 0, ctx.user)
    if outcome.result == "already":
        return _say(ctx, "deliberation.already_supported")
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return [Reply(t(ctx.locale, "deliberation.supported", title=outcome.topic.title, count=outcome.extra["count"]),
                  rows(service.view_button(ctx.locale, outcome.topic.id)))]


async def ask_comment(ctx: FlowContext, topic_id: str) -> list[Reply]:
    topic = await _topic_for(ctx, topic_id)
    if topic is None:
        return _say(ctx, "deliberation.not_found")
    if topic.stage not in rules.OPEN_STAGES:
        return _say(ctx, "deliberation.wrong_stage")
    why = await service.standing(ctx.session, ctx.user, topic)
    if why != "ok":
        return await _refusal(ctx, service.Outcome(why, topic=topic))
    ctx.state.clear()
    ctx.state.update({"await": "dl_comment", "dl_topic": topic.id})
    return _say(ctx, "deliberation.ask_comment", title=topic.title, limit=rules.COMMENT_LIMIT)


async def on_comment(ctx: FlowContext, text: str | None, _attachments: list | None = None, *,
                     key: str = "") -> list[Reply]:
    topic_id = ctx.state.get("dl_topic")
    body = clean_text(text)
    if not body or not has_words(body) or len(body) > rules.COMMENT_LIMIT:
        return _say(ctx, "deliberation.comment_invalid", limit=rules.COMMENT_LIMIT)
    ctx.state.clear()
    outcome = await service.comment(ctx.session, ctx.config, topic_id or 0, ctx.user, body, key)
    if outcome.result == "already":
        return []
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return [Reply(t(ctx.locale, "deliberation.commented", title=outcome.topic.title),
                  rows(service.view_button(ctx.locale, outcome.topic.id)))]


async def hide(ctx: FlowContext, comment_id: str, reason: str) -> list[Reply]:
    outcome = await service.hide_comment(ctx.session, ctx.config, _id(comment_id) or 0, ctx.user, reason)
    if outcome.result == "already":
        return _say(ctx, "deliberation.already_hidden")
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return _say(ctx, "deliberation.hidden", reason=t(ctx.locale, f"deliberation.reason_{reason}"))


async def _ask_staff_text(ctx: FlowContext, topic_id: str, step: str, allowed,  # type: ignore[no-untyped-def]
                          key: str, **params) -> list[Reply]:
    topic = await _staff_topic(ctx, topic_id)
    if topic is None:
        return _say(ctx, "errors.not_allowed")
    if not allowed(topic.stage):
        return _say(ctx, "deliberation.wrong_stage")
    ctx.state.clear()
    ctx.state.update({"await": step, "dl_topic": topic.id})
    return _say(ctx, key, title=topic.title, **params)


async def ask_meeting(ctx: FlowContext, topic_id: str) -> list[Reply]:
    return await _ask_staff_text(ctx, topic_id, "dl_meet", lambda s: s in rules.MEETING_STAGES, "deliberation.ask_meeting")


async def on_meeting(ctx: FlowContext, text: str | None, _attachments: list | None = None) -> list[Reply]:
    parsed = rules.parse_meeting(clean_text(text), ctx.config.defaults.timezone, utcnow())
    if isinstance(parsed, str):
        return _say(ctx, f"deliberation.meeting_{parsed}", limit=rules.PLACE_LIMIT)
    topic_id = ctx.state.pop("dl_topic", 0)
    ctx.state.pop("await", None)
    outcome = await service.schedule_meeting(ctx.session, ctx.config, topic_id, ctx.user, *parsed)
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return [Reply(t(ctx.locale, "deliberation.meeting_scheduled", when=outcome.extra["when"], place=parsed[1]),
                  rows(service.view_button(ctx.locale, outcome.topic.id)))]


# --- step 3: decide ---------------------------------------------------------------------------

async def ask_options(ctx: FlowContext, topic_id: str) -> list[Reply]:
    return await _ask_staff_text(ctx, topic_id, "dl_options", lambda s: rules.can(s, "open_vote"),
                                 "deliberation.ask_options", low=rules.MIN_OPTIONS, high=rules.MAX_OPTIONS)


async def on_options(ctx: FlowContext, text: str | None, _attachments: list | None = None) -> list[Reply]:
    options = rules.parse_options(clean_text(text))
    if options is None:
        return _say(ctx, "deliberation.options_invalid", low=rules.MIN_OPTIONS, high=rules.MAX_OPTIONS,
                    limit=rules.OPTION_LIMIT)
    ctx.state.pop("await", None)
    ctx.state["dl_vote"] = {"options": options}
    return [Reply(t(ctx.locale, "deliberation.ask_mode", options=" / ".join(options)),
                  rows(Button(t(ctx.locale, "deliberation.secret"), actions.make("dlo", "secret")),
                       Button(t(ctx.locale, "deliberation.open"), actions.make("dlo", "open"))))]


async def on_mode(ctx: FlowContext, mode: str) -> list[Reply]:
    form = ctx.state.get("dl_vote")
    if form is None or mode not in ("secret", "open") or not ctx.state.get("dl_topic"):
        return _stale(ctx)
    form["secret"] = mode == "secret"
    topic = await _staff_topic(ctx, str(ctx.state["dl_topic"]))
    if topic is None:
        return _say(ctx, "errors.not_allowed")
    if topic.compound:   # who may vote: the compound's residents by default, or the whole community
        form.pop("compound", None)
        return [Reply(t(ctx.locale, "deliberation.ask_voters"),
                      rows(Button(t(ctx.locale, "deliberation.voters_compound", compound=topic.compound),
                                  actions.make("dlw", "compound")),
                           Button(t(ctx.locale, "deliberation.voters_community"), actions.make("dlw", "community")),
                           per_row=1))]
    form["compound"] = None
    return _quorum_prompt(ctx)


async def on_voters(ctx: FlowContext, choice: str) -> list[Reply]:
    form = ctx.state.get("dl_vote")
    topic = await _staff_topic(ctx, str(ctx.state.get("dl_topic") or 0))
    if form is None or "secret" not in form or topic is None or choice not in ("compound", "community"):
        return _stale(ctx)
    form["compound"] = topic.compound if choice == "compound" else None
    return _quorum_prompt(ctx)


def _quorum_prompt(ctx: FlowContext) -> list[Reply]:
    default = ctx.config.defaults.deliberation.default_quorum
    choices = sorted({default, *rules.QUORUM_CHOICES})
    return [Reply(t(ctx.locale, "deliberation.ask_quorum", default=default),
                  rows(*(Button(str(n), actions.make("dlq", n)) for n in choices), per_row=3))]


async def on_quorum(ctx: FlowContext, value: str) -> list[Reply]:
    form = ctx.state.get("dl_vote")
    quorum = rules.parse_quorum(value)
    if form is None or "compound" not in form or quorum is None:
        return _stale(ctx)
    form["quorum"] = quorum
    return [Reply(t(ctx.locale, "deliberation.ask_hours"),
                  rows(*(Button(t(ctx.locale, "deliberation.hours", hours=h), actions.make("dlt", h))
                         for h in rules.VOTE_HOURS), per_row=2))]


async def on_hours(ctx: FlowContext, value: str) -> list[Reply]:
    form = ctx.state.get("dl_vote")
    hours = rules.parse_hours(value)
    topic_id = ctx.state.get("dl_topic")
    if form is None or "quorum" not in form or hours is None or not topic_id:
        return _stale(ctx)
    ctx.state.clear()
    outcome = await service.open_vote(ctx.session, ctx.config, topic_id, ctx.user, options=form["options"],
                                      secret=form["secret"], quorum=form["quorum"], hours=hours, now=utcnow(),
                                      compound=form["compound"])
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return [Reply(t(ctx.locale, "deliberation.vote_opened", title=outcome.topic.title, people=len(outcome.ids)),
                  rows(service.view_button(ctx.locale, outcome.topic.id)))]


async def cast(ctx: FlowContext, vote_id: str, choice: str) -> list[Reply]:
    vid, index = _id(vote_id), _id(choice)
    if vid is None or index is None:
        return _stale(ctx)
    outcome = await service.cast(ctx.session, vid, ctx.user, index, utcnow())
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, [])
    return _say(ctx, f"deliberation.ballot_{outcome.extra['ballot']}", option=outcome.extra["option"])


# --- step 4: carry out and report --------------------------------------------------------------

async def ask_action(ctx: FlowContext, topic_id: str) -> list[Reply]:
    return await _ask_staff_text(ctx, topic_id, "dl_action", lambda s: rules.can(s, "plan_action"),
                                 "deliberation.ask_action")


async def on_action(ctx: FlowContext, text: str | None, _attachments: list | None = None) -> list[Reply]:
    today = utcnow().astimezone(ZoneInfo(ctx.config.defaults.timezone)).date()
    parsed = rules.parse_action(clean_text(text), today)
    if isinstance(parsed, str):
        return _say(ctx, f"deliberation.action_{parsed}_invalid")
    topic_id = ctx.state.pop("dl_topic", 0)
    ctx.state.pop("await", None)
    title, owner, due = parsed
    outcome = await service.add_action(ctx.session, ctx.config, topic_id, ctx.user, title=title, owner=owner, due=due)
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return [Reply(t(ctx.locale, "deliberation.action_added", action=title, owner=owner, due=due.isoformat()),
                  rows(service.view_button(ctx.locale, outcome.topic.id)))]


async def on_action_op(ctx: FlowContext, op: str, action_id: str) -> list[Reply]:
    aid = _id(action_id)
    if aid is None or op not in ("prog", "done", "task", "req"):
        return _stale(ctx)
    action, topic = await service.staff_action(ctx.session, aid, ctx.user)
    if action is None:
        return _say(ctx, "errors.not_allowed")
    if op == "prog":
        if action.status != "open" or topic.stage != Stage.CARRYING_OUT:
            return _say(ctx, "deliberation.wrong_stage")
        ctx.state.clear()
        ctx.state.update({"await": "dl_progress", "dl_action": action.id})
        return _say(ctx, "deliberation.ask_progress", action=action.title)
    if op == "done":
        outcome = await service.action_done(ctx.session, ctx.config, action.id, ctx.user)
        if outcome.result == "already":
            return _say(ctx, "deliberation.already_done")
        await commit_and_deliver(ctx, outcome.ids)
        return _say(ctx, "deliberation.action_marked_done", action=action.title)
    if action.task_id is not None or action.request_id is not None or action.status != "open":
        return _say(ctx, "deliberation.already_task")
    if op == "req":
        labels = [label for label in LABELS if ctx.config.route(topic.community_code, label).team is not None]
        return [Reply(t(ctx.locale, "deliberation.ask_category", action=action.title),
                      rows(*(Button(category_name(ctx.locale, label), actions.make("dlx", action.id, label))
                             for label in labels), per_row=2))]
    skills = ctx.config.defaults.volunteer_skills
    return [Reply(t(ctx.locale, "deliberation.ask_skill", action=action.title),
                  rows(*(Button(s.name.get(ctx.locale) or s.name["zh"], actions.make("dlk", action.id, s.code))
                         for s in skills), per_row=2))]


async def on_progress(ctx: FlowContext, text: str | None, _attachments: list | None = None) -> list[Reply]:
    body = clean_text(text)
    if not body or not has_words(body) or len(body) > rules.COMMENT_LIMIT:
        return _say(ctx, "deliberation.progress_invalid", limit=rules.COMMENT_LIMIT)
    action_id = ctx.state.get("dl_action") or 0
    ctx.state.clear()
    outcome = await service.action_progress(ctx.session, ctx.config, action_id, ctx.user, body)
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return _say(ctx, "deliberation.progress_sent", people=len(outcome.ids))


async def on_skill(ctx: FlowContext, action_id: str, skill: str) -> list[Reply]:
    aid = _id(action_id)
    if aid is None:
        return _stale(ctx)
    outcome = await service.action_task(ctx.session, ctx.config, aid, ctx.user, skill, utcnow())
    if outcome.result == "already":
        return _say(ctx, "deliberation.already_task")
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return _say(ctx, "deliberation.task_created")


async def on_category(ctx: FlowContext, action_id: str, label: str) -> list[Reply]:
    aid = _id(action_id)
    if aid is None:
        return _stale(ctx)
    outcome = await service.action_request(ctx.session, ctx.config, aid, ctx.user, label)
    if outcome.result == "already":
        return _say(ctx, "deliberation.already_task")
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return _say(ctx, "deliberation.request_created", number=outcome.extra["number"])


async def ask_report(ctx: FlowContext, topic_id: str) -> list[Reply]:
    return await _ask_staff_text(ctx, topic_id, "dl_report", lambda s: rules.can(s, "close"),
                                 "deliberation.ask_report", limit=rules.REPORT_LIMIT)


async def on_report(ctx: FlowContext, text: str | None, _attachments: list | None = None) -> list[Reply]:
    body = clean_text(text)
    if not body or not has_words(body) or len(body) > rules.REPORT_LIMIT:
        return _say(ctx, "deliberation.report_invalid", limit=rules.REPORT_LIMIT)
    topic_id = ctx.state.get("dl_topic") or 0
    ctx.state.clear()
    outcome = await service.close_topic(ctx.session, ctx.config, topic_id, ctx.user, body)
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, outcome.ids)
    return _say(ctx, "deliberation.topic_closed", title=outcome.topic.title, people=len(outcome.ids))


async def rate(ctx: FlowContext, topic_id: str, score: str) -> list[Reply]:
    value = rules.valid_rating(score)
    tid = _id(topic_id)
    if value is None or tid is None:
        return _stale(ctx)
    outcome = await service.rate(ctx.session, tid, ctx.user, value)
    if not outcome.ok:
        return await _refusal(ctx, outcome)
    await commit_and_deliver(ctx, [])
    return _say(ctx, "deliberation.rated", stars="⭐" * value)


# --- routing ----------------------------------------------------------------------------------

_TOPIC_OPS = {"view": view, "tl": show_timeline, "cm": show_comments, "sup": support, "com": ask_comment,
              "acc": accept, "req": as_request, "meet": ask_meeting, "vote": ask_options, "act": ask_action,
              "close": ask_report}

TEXT_STEPS = {"dl_title": on_title, "dl_desc": on_description, "dl_photo": on_photo, "dl_comment": on_comment,
              "dl_meet": on_meeting, "dl_options": on_options, "dl_action": on_action, "dl_progress": on_progress,
              "dl_report": on_report}

VERBS = frozenset({"dl", "dlm", "dls", "dlp", "dlc", "dlf", "dlo", "dlw", "dlq", "dlt", "dlv", "dlh", "dla", "dlk",
                   "dlx", "dlr"})


async def on_action_string(ctx: FlowContext, verb: str, args: tuple[str, ...]) -> list[Reply]:
    if verb == "dl":
        handler = _TOPIC_OPS.get(args[0])
        return await handler(ctx, args[1]) if handler else _stale(ctx)
    single = {"dlm": on_menu, "dls": on_scope, "dlp": skip_photo, "dlc": declare, "dlo": on_mode, "dlw": on_voters,
              "dlq": on_quorum, "dlt": on_hours}
    if verb in single:
        return await single[verb](ctx, args[0])
    double = {"dlf": from_request, "dlv": cast, "dlh": hide, "dla": on_action_op, "dlk": on_skill, "dlx": on_category,
              "dlr": rate}
    return await double[verb](ctx, *args) if verb in double else _stale(ctx)


async def on_text(ctx: FlowContext, step: str, text: str | None, attachments: list | None, *,
                  idempotency_key: str) -> list[Reply]:
    if step == "dl_comment":
        return await on_comment(ctx, text, attachments, key=idempotency_key)
    return await TEXT_STEPS[step](ctx, text, attachments)
