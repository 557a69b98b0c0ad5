"""Charts (server-side SVG) and the monthly CSV exports, narrowed to the viewer's communities."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup

from services.dashboard import charts
from services.dashboard.context import dashboard, viewer
from services.dashboard.render import page
from shared.clock import utcnow
from shared.flows.texts import category_name
from shared.reports import parse_month, weekly, write_hours_csv, write_requests_csv

WEEKS = 8


async def charts_page(request: web.Request) -> web.Response:
    dash, who = dashboard(request), viewer(request)
    tz = dash.config.defaults.timezone
    today = utcnow().astimezone(ZoneInfo(tz)).date()
    async with dash.database.sessions() as session:
        weeks = await weekly(session, today=today, weeks=WEEKS, tz=tz, communities=who.communities)
    x = [w.start.strftime("%m-%d") for w in weeks]
    labels = sorted({label for w in weeks for label in w.per_category})
    names = [category_name(who.locale, label) for label in labels]
    series = [(name, [w.per_category.get(label, 0) for w in weeks]) for label, name in zip(labels, names)]
    figures = {
        "per_category": Markup(charts.stacked_bars(who.t("dashboard.chart_per_category"), x, series,
                                                   who.t("dashboard.unit_requests"))),
        "legend": charts.legend(names),
        "response": Markup(charts.line(who.t("dashboard.chart_response"), x,
                                       [w.totals.median_first_response_hours for w in weeks],
                                       who.t("dashboard.unit_hours"))),
        "sla": Markup(charts.line(who.t("dashboard.chart_sla"), x, [w.totals.sla_met_pct for w in weeks], "%",
                                  y_max=100)),
        "satisfaction": Markup(charts.line(who.t("dashboard.chart_satisfaction"), x,
                                           [w.totals.satisfaction for w in weeks], "1–5", y_max=5)),
        "hours": Markup(charts.stacked_bars(who.t("dashboard.chart_hours"), x,
                                            [(who.t("dashboard.unit_hours"), [w.volunteer_hours for w in weeks])],
                                            who.t("dashboard.unit_hours"))),
    }
    return page(request, "charts.html", {"figures": figures, "weeks": weeks})


async def export(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    if kind not in ("requests", "hours"):
        raise web.HTTPNotFound()
    parsed = parse_month(request.query.get("month"))
    if parsed is None:
        raise web.HTTPBadRequest(text="month must look like 2026-11")
    dash, who = dashboard(request), viewer(request)
    year, month = parsed
    out = io.StringIO()
    writer = write_requests_csv if kind == "requests" else write_hours_csv
    async with dash.database.sessions() as session:
        await writer(session, out, year=year, month=month, tz=dash.config.defaults.timezone,
                     communities=who.communities)
    scope = "all" if who.communities is None else "-".join(sorted(who.communities))
    filename = f"linju-{kind}-{scope}-{year:04d}-{month:02d}.csv"
    # A BOM so spreadsheet programs open the Chinese text as UTF-8.
    return web.Response(body=("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def routes() -> list[web.RouteDef]:
    return [web.get("/charts", charts_page), web.get("/export/{kind}.csv", export)]
