"""A request's attachments as its page shows them.

The bot keeps what a resident sent with a request, or added to it later, in `Request.attachments`:
`{"type": "photo", "file_id": …}` and `{"type": "location", "latitude": …, "longitude": …}` (an
Open311 submission adds `{"kind": "open311", "address": …, "lat": …, "long": …, "media_url": …}`).
The photos stay on Telegram's servers; the page shows them through `services/dashboard/photos.py`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

# A Telegram file_id is URL-safe base64. Anything else (a Matrix `mxc://` reference) is not Telegram's
# to give, so it is named on the page but never sent to the Bot API.
TELEGRAM_FILE_ID = re.compile(r"[A-Za-z0-9_-]{10,255}")
MAX_SHOWN_CHARS = 200


@dataclass(frozen=True)
class Attachment:
    """One entry of `Request.attachments` as the page shows it; `index` is its place in the stored list.

    kind: `photo` (a Telegram photo, shown through the proxy), `photo_elsewhere` (a photo sent through
    another chat platform), `location`, `open311` (what an Open311 submitter gave), `other`.
    """

    index: int
    kind: str
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    link: str | None = None
    type_name: str = ""
    file_id: str | None = field(default=None, repr=False)

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def coordinates(self) -> str:
        return f"{self.latitude:.5f}, {self.longitude:.5f}" if self.latitude is not None else ""

    @property
    def map_url(self) -> str | None:
        if self.latitude is None or self.longitude is None:
            return None
        lat, lon = f"{self.latitude:.6f}", f"{self.longitude:.6f}"
        return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=18/{lat}/{lon}"


def _point(latitude: object, longitude: object) -> tuple[float, float] | None:
    """Coordinates that are numbers on the globe, or None (a malformed entry is never put in a link)."""
    if isinstance(latitude, bool) or isinstance(longitude, bool):
        return None
    try:
        lat, lon = float(latitude), float(longitude)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def _short(value: object) -> str | None:
    return (value.strip()[:MAX_SHOWN_CHARS] or None) if isinstance(value, str) else None


def _web_link(value: object) -> str | None:
    """An http(s) URL as given (Open311 checks it on submission; checked again before it becomes a link)."""
    if isinstance(value, str) and len(value) <= 500 and value.startswith(("https://", "http://")) \
            and not any(c.isspace() for c in value):
        return value
    return None


def describe(stored: object) -> list[Attachment]:
    """What the page shows of `Request.attachments`; an erased request's `[]` shows nothing."""
    shown: list[Attachment] = []
    for index, item in enumerate(stored if isinstance(stored, list) else []):
        if not isinstance(item, dict):
            shown.append(Attachment(index, "other", type_name="?"))
            continue
        kind = item.get("type")
        point = None
        if kind == "photo":
            file_id = item.get("file_id")
            if isinstance(file_id, str) and TELEGRAM_FILE_ID.fullmatch(file_id):
                shown.append(Attachment(index, "photo", file_id=file_id))
            else:
                shown.append(Attachment(index, "photo_elsewhere"))
        elif kind == "location" and (point := _point(item.get("latitude"), item.get("longitude"))):
            shown.append(Attachment(index, "location", *point))
        elif kind is None and item.get("kind") == "open311":
            point = _point(item.get("lat"), item.get("long"))
            shown.append(Attachment(index, "open311", *(point or (None, None)), address=_short(item.get("address")),
                                    link=_web_link(item.get("media_url"))))
        else:
            shown.append(Attachment(index, "other", type_name=(_short(kind) or _short(item.get("kind")) or "?")[:40]))
    return shown
