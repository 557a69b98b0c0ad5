"""A resident's photo (`m.image`) or location (`m.location`) as the flows' attachments.

The same shapes the Telegram bot hands the flows (`services/bot/handlers/messages.py`):
`{"type": "photo", "file_id": …}` and `{"type": "location", "latitude": …, "longitude": …}`.
A Matrix photo's reference is its `mxc://` URI (the bot does not download it). Like a
Telegram photo's caption, the text that comes with it is the caption only: in Matrix an
image's `body` is a caption when a separate `filename` is given, else just the file name.
A location's `body` is a client's fallback text ("Location at …"), never a description.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

MEDIA = ("m.image", "m.location")
# Media ids are [A-Za-z0-9_-]; a server name is a host name or an IP literal, with an optional port.
MXC = re.compile(r"mxc://[A-Za-z0-9.\-]+(?::\d{1,5})?/[A-Za-z0-9_\-]+|mxc://\[[0-9A-Fa-f:.]+\](?::\d{1,5})?/[A-Za-z0-9_\-]+")
# The flows keep a photo reference of at most this many characters (books, deliberation).
MAX_REFERENCE = 200
# RFC 5870: geo:<lat>,<lon>[,<alt>][;crs=…][;u=…]; only WGS-84 (the default crs) is understood.
GEO = re.compile(r"geo:(-?\d{1,3}(?:\.\d{1,15})?),(-?\d{1,3}(?:\.\d{1,15})?)(?:,-?\d{1,6}(?:\.\d{1,15})?)?"
                 r"(;[A-Za-z0-9\-]+=[A-Za-z0-9\-_.!~*'()%]+)*", re.I)
MAX_GEO_URI = 200


@dataclass(frozen=True)
class Media:
    """What one media event gives the flows: a caption (or None) and its attachment; or a problem,
    the catalogue key of the kind reply when the event cannot be used (then nothing is stored)."""

    text: str | None = None
    attachments: list[dict[str, Any]] | None = None
    problem: str | None = None


def parse_geo(uri: object) -> tuple[float, float] | None:
    """(latitude, longitude) of a `geo:` URI, or None when it is not one we can trust."""
    if not isinstance(uri, str) or len(uri) > MAX_GEO_URI:
        return None
    match = GEO.fullmatch(uri.strip())
    if match is None:
        return None
    params = dict(p.split("=", 1) for p in (match.group(0).split(";")[1:]))
    if params.get("crs", "wgs84").lower() != "wgs84":
        return None
    latitude, longitude = float(match.group(1)), float(match.group(2))
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return latitude, longitude


def is_mxc(uri: object) -> bool:
    return isinstance(uri, str) and len(uri) <= MAX_REFERENCE and MXC.fullmatch(uri) is not None


def caption(content: dict[str, Any]) -> str | None:
    body, filename = content.get("body"), content.get("filename")
    if isinstance(body, str) and isinstance(filename, str) and body.strip() and body != filename:
        return body
    return None


def media(content: dict[str, Any]) -> Media:
    """An `m.image` or `m.location` event's content as the flows' text and attachments."""
    if content.get("msgtype") == "m.image":
        url = content.get("url")
        if not is_mxc(url):   # no url (or an encrypted `file`, which the bot cannot open), or not an mxc URI
            return Media(problem="matrix.bad_image")
        return Media(caption(content), [{"type": "photo", "file_id": url}])
    point = parse_geo(content.get("geo_uri"))
    if point is None:
        return Media(problem="matrix.bad_location")
    return Media(None, [{"type": "location", "latitude": point[0], "longitude": point[1]}])
