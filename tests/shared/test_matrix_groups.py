"""A community's groups are its Matrix rooms when configured, else its Telegram groups."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import Community
from shared.notify import group_of


def with_rooms(config, **rooms):  # type: ignore[no-untyped-def]
    communities = [c.model_copy(update=rooms) if c.code == "zjy" else c for c in config.communities]
    return config.model_copy(update={"communities": communities})


def test_the_matrix_room_wins_and_telegram_stays_the_default(config):
    zjy = config.community("zjy")
    assert group_of(config, "zjy", "staff") == ("telegram", zjy.staff_chat_id)
    assert group_of(config, "zjy", "volunteer") == ("telegram", zjy.volunteer_chat_id)
    matrix = with_rooms(config, matrix_staff_room="!staff:linju.test", matrix_volunteer_room="!vol:linju.test")
    assert group_of(matrix, "zjy", "staff") == ("matrix", "!staff:linju.test")
    assert group_of(matrix, "zjy", "volunteer") == ("matrix", "!vol:linju.test")
    none = with_rooms(config, staff_chat_id=None, volunteer_chat_id=None)
    assert group_of(none, "zjy", "staff") is None and group_of(none, "zjy", "volunteer") is None


def test_a_room_id_must_look_like_one(config):
    data = config.community("zjy").model_dump()
    for bad in ("#alias:linju.test", "staff", "!nocolon"):
        with pytest.raises(ValidationError):
            Community.model_validate({**data, "matrix_staff_room": bad})
