"""Photos and locations from Matrix as the flows' attachments (pure, no homeserver)."""

from __future__ import annotations

import pytest

from services.matrix.events import Media, media, parse_geo


@pytest.mark.parametrize(("uri", "point"), [
    ("geo:36.0611,103.8343", (36.0611, 103.8343)),
    ("geo:36.0611,103.8343;u=35", (36.0611, 103.8343)),
    ("GEO:-33.8688,151.2093,58.5;crs=wgs84;u=10", (-33.8688, 151.2093)),
    ("geo:90,-180", (90.0, -180.0)),
    ("geo:0,0", (0.0, 0.0)),
])
def test_a_geo_uri_gives_latitude_and_longitude(uri, point):
    assert parse_geo(uri) == point


@pytest.mark.parametrize("uri", [
    None, 42, "", "geo:", "geo:36.06", "geo:36.06;103.83", "geo:91,0", "geo:0,181", "geo:-90.5,0",
    "geo:abc,def", "geo:1e3,5", "geo:nan,nan", "geo:inf,0", "36.06,103.83", "http://geo:1,2",
    "geo:1,2;crs=moon", "geo:1,2 ; u=3", "geo:1,2\nX", "geo:1," + "1" * 300, "geo:1,2;u",
])
def test_a_malformed_geo_uri_is_none(uri):
    assert parse_geo(uri) is None


def test_an_image_is_a_photo_attachment_with_its_mxc_uri_and_caption():
    image = {"msgtype": "m.image", "body": "wall.png", "url": "mxc://linju.test/AbC_12-x"}
    assert media(image) == Media(None, [{"type": "photo", "file_id": "mxc://linju.test/AbC_12-x"}])
    # A body that differs from the file name is the caption (Matrix 1.10), like a Telegram caption.
    captioned = {**image, "filename": "wall.png", "body": "墙皮掉了"}
    assert media(captioned).text == "墙皮掉了"
    assert media({**image, "filename": "wall.png"}).text is None
    assert media({**image, "url": "mxc://[::1]:8448/abc"}).attachments == [{"type": "photo",
                                                                            "file_id": "mxc://[::1]:8448/abc"}]


@pytest.mark.parametrize("content", [
    {"msgtype": "m.image", "body": "x.png"},                                            # no url
    {"msgtype": "m.image", "body": "x.png", "url": None},
    {"msgtype": "m.image", "body": "x.png", "url": 7},
    {"msgtype": "m.image", "body": "x.png", "url": "https://example.org/x.png"},
    {"msgtype": "m.image", "body": "x.png", "url": "mxc://linju.test/a/../b"},
    {"msgtype": "m.image", "body": "x.png", "url": "mxc://linju.test/" + "a" * 300},
    {"msgtype": "m.image", "body": "x.png", "file": {"url": "mxc://linju.test/enc"}},   # encrypted media
])
def test_an_image_without_a_usable_url_is_refused(content):
    assert media(content) == Media(problem="matrix.bad_image")


def test_a_location_is_latitude_and_longitude_and_its_body_is_not_text():
    location = {"msgtype": "m.location", "body": "Location at 36.06, 103.83", "geo_uri": "geo:36.06,103.83"}
    assert media(location) == Media(None, [{"type": "location", "latitude": 36.06, "longitude": 103.83}])
    assert media({**location, "geo_uri": "geo:360,103"}) == Media(problem="matrix.bad_location")
    assert media({"msgtype": "m.location", "body": "here"}) == Media(problem="matrix.bad_location")
