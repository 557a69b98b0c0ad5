"""`linju intake export-feedback`: residents' category choices become labelled data.

When intake was unsure, the resident picked the category; each pick is a
`category_chosen` event. Exported as JSONL in the training-data format.
"""

from __future__ import annotations

import json
from typing import TextIO

from sqlalchemy import select

from shared.db.models import Request, RequestEvent
from shared.runtime import Database
from shared.settings import Settings


async def export_feedback(settings: Settings, out: TextIO) -> int:
    database = Database.connect(settings)
    count = 0
    try:
        async with database.sessions() as session:
            stmt = (
                select(Request.text, Request.urgent, RequestEvent.data)
                .join(RequestEvent, RequestEvent.request_id == Request.id)
                .where(RequestEvent.kind == "category_chosen")
                .order_by(RequestEvent.id)
            )
            for text, urgent, data in await session.execute(stmt):
                out.write(json.dumps({"text": text, "label": data["label"], "urgent": bool(urgent),
                                      "source": "feedback"}, ensure_ascii=False) + "\n")
                count += 1
    finally:
        await database.close()
    return count
