"""How a request is shown: the staff card (with actions) and the resident's view (with timeline)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.clock import as_utc, local_clock, utcnow
from shared.config import CommunitiesConfig
from shared.db.models import Request, RequestEvent
from shared.domain.permissions import is_private_category
from shared.domain.requests import OPEN_STATUSES, RequestStatus
from shared.flows import actions
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import category_name, community_name, format_due, status_name
from shared.i18n import t
from shared.notify import excerpt


def is_overdue(request: Request) -> bool:
    return (request.status in (RequestStatus.ROUTED, RequestStatus.IN_PROGRESS) and request.due_at is not None
            and as_utc(request.due_at) < utcnow())


def staff_buttons(request: Request, locale: str) -> tuple[tuple[Button, ...], ...]:
    if request.status not in OPEN_STATUSES:
        return ()
    ops = [("take", "staff.take"), ("reply", "staff.reply"), ("cat", "staff.change_category"),
           ("move", "staff.reassign"), ("ref", "staff.refer"), ("task", "staff.volunteer_task"),
           ("res", "staff.resolve")]
    if request.status == RequestStatus.IN_PROGRESS:
        ops = [op for op in ops if op[0] != "take"]
    buttons = [Button(t(locale, key), actions.make("st", op, request.id)) for op, key in ops]
    if request.category == "mediation":
        buttons.append(Button(t(locale, "mediation.open_button"), actions.make("mdo", request.id)))
    return rows(*buttons, per_row=3)


def staff_card(config: CommunitiesConfig, request: Request, locale: str, *, in_group: bool,
               headline: str = "staff.card_new") -> Reply:
    """The card staff act on. In a group chat, private categories show no details."""
    hidden = in_group and is_private_category(request.category)
    text = t(locale, headline, number=request.number,
             community=community_name(config, request.community_code, locale),
             category=category_name(locale, request.category),
             team=config.team_name(request.community_code, request.team, locale) if request.team else "-",
             due=format_due(config, locale, request.due_at) if request.due_at else "-",
             status=status_name(locale, request.status),
             text=t(locale, "staff.hidden_text") if hidden else excerpt(request.text))
    if request.on_behalf_name and not hidden:
        text += "\n" + t(locale, "staff.on_behalf", name=request.on_behalf_name)
    if request.urgent:
        text = t(locale, "staff.urgent_mark") + " " + text
    if is_overdue(request):
        text = t(locale, "staff.overdue_mark") + " " + text
    return Reply(text, staff_buttons(request, locale) + topic_buttons(config, request, locale))


def topic_buttons(config: CommunitiesConfig, request: Request, locale: str) -> tuple[tuple[Button, ...], ...]:
    """A `deliberation` request can become a topic (议题) for the whole community or one compound."""
    if request.category != "deliberation" or request.status not in OPEN_STATUSES:
        return ()
    scopes = [("all", t(locale, "deliberation.whole_community")),
              *((str(i), name) for i, name in enumerate(config.community(request.community_code).compounds))]
    return rows(*(Button(t(locale, "deliberation.make_topic", scope=name), actions.make("dlf", request.id, code))
                  for code, name in scopes), per_row=2)


def timeline_lines(config: CommunitiesConfig, events: Sequence[RequestEvent], locale: str, *, for_resident: bool) -> list[str]:
    lines = []
    for event in events:
        key = f"timeline.{event.kind}"
        if for_resident and event.kind in {"sla_reminder", "sla_escalated"}:
            continue
        params = {k: v for k, v in (event.data or {}).items() if isinstance(v, (str, int, float))}
        if "label" in params:
            params["category"] = category_name(locale, str(params["label"]))
        if "body" in params:
            body = config.referral_body(str(params["body"]))
            params["body"] = body.name.get(locale, body.name["zh"]) if body else str(params["body"])
        when = local_clock(event.created_at, config.defaults.timezone, "%m-%d %H:%M")
        try:
            text = t(locale, key, **{"category": "", "text": "", "rating": "", "reason": "", "body": "", "reference": "",
                                     "number": "", **params})
        except KeyError:
            text = event.kind
        lines.append(f"{when} {text}")
    return lines


def resident_view(config: CommunitiesConfig, request: Request, events: Sequence[RequestEvent], locale: str) -> Reply:
    head = t(locale, "requests.detail", number=request.number, category=category_name(locale, request.category),
             status=status_name(locale, request.status))
    body = "\n".join([head, "", *timeline_lines(config, events, locale, for_resident=True)])
    buttons: list[Button] = []
    if request.status in OPEN_STATUSES:
        buttons = [Button(t(locale, "requests.add_info"), actions.make("add", request.id)),
                   Button(t(locale, "requests.withdraw"), actions.make("wd", request.id))]
    return Reply(body, rows(*buttons))
