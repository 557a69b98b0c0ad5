"""Deliberation (议事): the board of topics by step, and a topic with its public timeline.

Read-only: staff act on topics in chat (shared/flows/deliberation.py). The board is
`shared.deliberation.board()`, narrowed to the viewer's community (admins: every community,
or one picked in the filter); a topic of another community is "not found".
"""

from __future__ import annotations

from aiohttp import web

from services.dashboard.context import dashboard, viewer
from services.dashboard.render import page
from shared import deliberation
from shared.clock import utcnow
from shared.db.models import DelibTopic
from shared.domain.deliberation import STEP_OF, Stage

PER_STEP = 30
STEP_KEYS = {1: "deliberation.step_1", 2: "deliberation.step_2", 3: "deliberation.step_3",
             4: "deliberation.step_4", deliberation.BOARD_CLOSED: "dashboard.topics_closed"}


def _community(request: web.Request) -> str | None:
    """The community the board shows: staff their own; admins the one asked for, or None (all)."""
    who, config = viewer(request), dashboard(request).config
    if not who.admin:
        return who.community
    asked = request.query.get("community") or None
    return asked if asked is not None and config.has_community(asked) else None


async def board_page(request: web.Request) -> web.Response:
    dash, who = dashboard(request), viewer(request)
    community = _community(request)
    if community is None and not who.admin:
        steps: dict[int, list[DelibTopic]] = {}
    else:
        async with dash.database.sessions() as session:
            steps = await deliberation.board(session, community, per_step=PER_STEP, closed_apart=True)
    return page(request, "topics.html", {"steps": steps, "step_keys": STEP_KEYS, "selected": community,
                                         "per_step": PER_STEP,
                                         "scope": lambda topic: deliberation.scope_name(topic, who.locale)})


def _topic_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise web.HTTPNotFound()
    return int(text)


async def topic_page(request: web.Request) -> web.Response:
    dash, who = dashboard(request), viewer(request)
    async with dash.database.sessions() as session:
        topic = await deliberation.load_topic(session, _topic_id(request))
        if topic is None or not who.may_see(topic.community_code):
            raise web.HTTPNotFound(text="no such topic")
        events = await deliberation.timeline(session, topic.id, limit=200)
        vote = await deliberation.last_vote(session, topic.id)
        context = {
            "topic": topic, "step": STEP_OF[Stage(topic.stage)],
            "scope": deliberation.scope_name(topic, who.locale),
            "supporters": await deliberation.support_count(session, topic.id),
            "meeting": await deliberation.next_meeting(session, topic.id, utcnow()),
            "vote": vote,
            "result": deliberation.result_text(who.locale, topic, vote) if vote and vote.closed_at else None,
            "actions": await deliberation.actions_of(session, topic.id),
            "rating": await deliberation.rating_summary(session, topic.id),
            "timeline": [(event.created_at, deliberation.event_text(who.locale, event)) for event in events],
        }
    return page(request, "topic.html", context)


def routes() -> list[web.RouteDef]:
    return [web.get("/topics", board_page), web.get("/topics/{id}", topic_page)]
