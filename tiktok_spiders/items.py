"""One dataclass per API entity, fields named and ordered as the API names them.

How each is stored, and what it stands on, is declared in ``kinds.py``.

Every field is optional because the API omits fields that have no value
(sparse objects).  ``tests/test_parsing.py`` keeps these in step with ``api.py``.
``collected_at`` (UTC, when the record's page was fetched) is the project's, not the API's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any

from tiktok_spiders.api import FIELD_SPELLINGS


@dataclass
class Video:
    id: int | None = None
    create_time: int | None = None
    username: str | None = None
    region_code: str | None = None
    video_description: str | None = None
    music_id: int | None = None
    like_count: int | None = None
    comment_count: int | None = None
    share_count: int | None = None
    view_count: int | None = None
    effect_ids: list[str] | None = None
    hashtag_names: list[str] | None = None
    playlist_id: int | None = None
    voice_to_text: str | None = None
    is_stem_verified: bool | None = None
    favorites_count: int | None = None
    video_duration: int | None = None
    hashtag_info_list: list[dict[str, Any]] | None = None
    sticker_info_list: list[dict[str, Any]] | None = None
    effect_info_list: list[dict[str, Any]] | None = None
    video_mention_list: list[str] | None = None
    video_label: dict[str, Any] | None = None
    #: One object or a list of them; keys ``type``/``number`` or ``video_tag_type``/``video_tag_number``
    #: as the API sends them (its pages disagree).
    video_tag: dict[str, Any] | list[dict[str, Any]] | None = None
    collected_at: str | None = None


@dataclass
class Comment:
    id: int | None = None
    video_id: int | None = None
    text: str | None = None
    like_count: int | None = None
    reply_count: int | None = None
    parent_comment_id: int | None = None
    create_time: int | None = None
    display_name: str | None = None
    collected_at: str | None = None


@dataclass
class Reply:
    """A reply to a comment.  The API sends it without ``video_id``: that is its parent
    comment's (from the comments feed), and ``parent_comment_id`` is the comment asked."""

    id: int | None = None
    video_id: int | None = None
    parent_comment_id: int | None = None
    text: str | None = None
    like_count: int | None = None
    reply_count: int | None = None
    create_time: int | None = None
    display_name: str | None = None
    collected_at: str | None = None


@dataclass
class User:
    """A profile; ``username`` is the one asked for (the API does not echo it)."""

    username: str | None = None
    display_name: str | None = None
    bio_description: str | None = None
    avatar_url: str | None = None
    is_verified: bool | None = None
    follower_count: int | None = None
    following_count: int | None = None
    likes_count: int | None = None
    video_count: int | None = None
    bio_url: str | None = None
    collected_at: str | None = None


@dataclass
class UnavailableUser:
    """A user the API would not return: ``not_found`` or ``refused``, with its message."""

    username: str | None = None
    reason: str | None = None
    message: str | None = None
    collected_at: str | None = None


@dataclass
class UserVideo(Video):
    """A video in a user's list; ``seed_username`` is the user it was collected for."""

    seed_username: str | None = None


@dataclass
class LikedVideo(UserVideo):
    pass


@dataclass
class PinnedVideo(UserVideo):
    pass


@dataclass
class RepostedVideo(UserVideo):
    pass


@dataclass
class Follower:
    """An account following ``seed_username``."""

    seed_username: str | None = None
    username: str | None = None
    display_name: str | None = None
    collected_at: str | None = None


@dataclass
class Following:
    """An account ``seed_username`` follows."""

    seed_username: str | None = None
    username: str | None = None
    display_name: str | None = None
    collected_at: str | None = None


@dataclass
class Playlist:
    playlist_id: int | None = None
    playlist_name: str | None = None
    playlist_item_total: int | None = None
    playlist_last_updated: int | None = None
    collected_at: str | None = None


@dataclass
class PlaylistVideo:
    """One video of a playlist, at its position (the API pages through ``playlist_video_ids``)."""

    playlist_id: int | None = None
    position: int | None = None
    video_id: int | None = None
    collected_at: str | None = None


@functools.cache
def field_names(item_class: type) -> frozenset[str]:
    return frozenset(field.name for field in fields(item_class))


def known_fields(item_class: type, record: dict[str, Any]) -> dict[str, Any]:
    """The record's values for the item's fields (the API may add fields we do not know),
    a field sent under another spelling (``favourites_count``) under the item's name."""
    names = field_names(item_class)
    known = {key: value for key, value in record.items() if key in names}
    for spelling, name in FIELD_SPELLINGS.items():
        if spelling in record and known.get(name) is None and name in names:
            known[name] = record[spelling]
    return known
