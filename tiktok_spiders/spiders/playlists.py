"""``playlists``: the playlists of the video feed — their names and every video in them.

Seeds: the ``playlist_id`` column of the videos feed (videos without one are
skipped), ``-a videos=PATH``, or ``-a playlist_ids=…``.  Each playlist becomes
one ``playlists`` record and one ``playlist_videos`` record per video, at its
position.  The endpoint is known to answer HTTP 500 *with* its data: an answer
that carries the playlist is a page like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tiktok_spiders import api
from tiktok_spiders.items import Playlist, PlaylistVideo, known_fields
from tiktok_spiders.kinds import kinds_of
from tiktok_spiders.spiders.arguments import BadArgument, comma_list
from tiktok_spiders.spiders.base import Note, ignore
from tiktok_spiders.spiders.seeded import SeedFeedSpider


class PlaylistsSpider(SeedFeedSpider):
    name = "playlists"
    path = api.PLAYLIST_INFO_PATH
    kinds = kinds_of("playlists")
    seed_noun = "playlist"
    seed_column = "playlist_id"
    seed_optional = True

    def __init__(self, *args: Any, videos: str | None = None, playlist_ids: str | None = None, **kwargs: Any) -> None:
        values = None
        if playlist_ids is not None:
            values = [api.as_int(value) for value in comma_list(playlist_ids)]
            if not values or None in values:
                raise BadArgument(f"playlist_ids must be numbers, not {playlist_ids!r}")
        super().__init__(*args, seed_values=values, seed_path=videos, **kwargs)

    def convert(self, value: Any) -> int | None:
        return api.as_int(value)

    def seeds(self, note: Note = ignore) -> Iterable[tuple[str, dict[str, Any]]]:
        for playlist_id in self.seed_stream(note):
            yield str(playlist_id), {"playlist_id": playlist_id, "cursor": 0, "max_count": api.MAX_COUNT}

    def api_request(self, seed: str, body: dict[str, Any], **context: Any) -> Any:
        request = super().api_request(seed, body, **context)
        # a 500 reaches the callback; the retry middleware retries it only when it holds no data
        request.meta.update({"handle_httpstatus_list": [500], api.MAY_SUCCEED_WITH_500: True})
        return request

    def page_error(self, response: Any, payload: Any) -> str | None:
        data = payload.get("data") if isinstance(payload, dict) else None
        if isinstance(data, dict) and data.get("playlist_id") is not None:
            return None
        return super().page_error(response, payload) or f"HTTP {response.status} without the playlist"

    def next_body(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> dict[str, Any] | None:
        """Stop once ``playlist_item_total`` videos are in, whatever ``has_more`` says: the
        cursor may not be implemented (traktok), and asking again would file the first
        videos a second time at later positions."""
        total = data.get("playlist_item_total")
        served = (body.get("cursor") or 0) + len(api.first_list(data, ("playlist_video_ids",)))
        if isinstance(total, int) and served >= total:
            return None
        return super().next_body(data, body)

    def parse_records(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> Iterable[Any]:
        start = body.get("cursor") or 0
        if start == 0:
            yield Playlist(**known_fields(Playlist, data))
        for offset, video_id in enumerate(api.first_list(data, ("playlist_video_ids",))):
            yield PlaylistVideo(playlist_id=data["playlist_id"], position=start + offset, video_id=video_id)
