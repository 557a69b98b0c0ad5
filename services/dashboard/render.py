"""Rendering helpers shared by the pages: the template context and small formatters."""

from __future__ import annotations

import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from services.dashboard.context import dashboard, viewer
from shared.clock import as_utc
from shared.flows.texts import category_name, community_name, status_name


def page(request: web.Request, template: str, context: dict, status: int = 200) -> web.Response:
    dash, who = dashboard(request), viewer(request)
    config = dash.config
    tz = ZoneInfo(config.defaults.timezone)

    def when(value: datetime | None) -> str:
        return as_utc(value).astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else "-"

    base = {
        "viewer": who, "csrf": who.csrf, "locale": who.locale, "tr": who.t,
        "nonce": lambda: secrets.token_urlsafe(16),
        "when": when,
        "category": lambda label: category_name(who.locale, label),
        "status": lambda value: status_name(who.locale, value),
        "community": lambda code: community_name(config, code, who.locale),
        "visible_communities": [c for c in config.communities if who.may_see(c.code)],
        "path": request.path_qs,
        "done": request.query.get("done"),
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)
