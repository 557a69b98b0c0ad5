"""Times shown to people are on the community's wall clock, not UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.clock import local_clock
from shared.config import load_communities
from shared.db.models import RequestEvent
from shared.flows.cards import timeline_lines
from shared.settings import REPO_ROOT


def test_a_stored_utc_time_reads_as_shanghai_time() -> None:
    assert local_clock(datetime(2026, 3, 1, 23, 30, tzinfo=UTC), "Asia/Shanghai") == "2026-03-02 07:30"
    # SQLite hands back naive datetimes; they are UTC too.
    assert local_clock(datetime(2026, 3, 1, 23, 30), "Asia/Shanghai", "%m-%d %H:%M") == "03-02 07:30"


def test_a_request_timeline_shows_local_times() -> None:
    config = load_communities(REPO_ROOT / "config" / "communities.yaml")
    event = RequestEvent(request_id=1, kind="routed", data={"label": "repair"},
                         created_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    [line] = timeline_lines(config, [event], "zh", for_resident=True)
    assert line.startswith("03-02 07:30 ")
