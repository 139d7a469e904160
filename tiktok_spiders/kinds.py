"""Every kind of record a study holds, declared once.

A kind says how its records are stored (its feed, item class and key), and what
they stand on: the video, comment or account each one *is*, is *part of*, or is
*listed for*.  The refresh's checks, the purge's cascade, the feed lists, the
manifest, the plan and the codebook are all read from here, so a new endpoint is
one declaration, and a kind the purge would not cover fails a test
(``tests/unit/test_kinds.py``) instead of surviving a refresh that TikTok's terms require.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiktok_spiders.items import (
    Comment,
    Follower,
    Following,
    LikedVideo,
    PinnedVideo,
    Playlist,
    PlaylistVideo,
    Reply,
    RepostedVideo,
    UnavailableUser,
    User,
    Video,
)

#: What TikTok can say is gone: a video or a comment (the Batch Compliance API), an account (user info).
VIDEO, COMMENT, USER = "video", "comment", "user"
#: The daily quotas requests are counted in: the research APIs', and followers/following's own.
RESEARCH, FOLLOW = "research", "follow"


@dataclass(frozen=True)
class Ref:
    """A field of a record that names a video, a comment or an account."""

    field: str
    category: str


@dataclass(frozen=True)
class RecordKind:
    """How a kind of record is stored, and what it stands on."""

    feed: str
    item_class: type
    key_fields: tuple[str, ...]
    #: Fields that must be present; a record without one is dropped and counted.
    required: tuple[str, ...]
    #: Fields that hold integer ids (checked and kept exact).
    id_fields: tuple[str, ...] = ()
    #: What the record is, when TikTok can say it is gone (a video, a comment, a profile).
    identity: Ref | None = None
    #: What it is part of: when that is gone, so is the record, and what the record is, too
    #: (an account takes its videos, a video its comments, a comment its replies).
    part_of: tuple[Ref, ...] = ()
    #: What it is listed for or points at: when that is gone the record goes, but what it points
    #: at stays (a liked video in a gone account's list, a follower of a gone account).
    listed_for: tuple[Ref, ...] = ()
    #: The fields a refresh asks TikTok about: compliance tasks for videos and comments, user info for accounts.
    checked: tuple[Ref, ...] = ()
    #: A container, gone when every one of its members is: ``(member feed, the member's field naming it)``.
    members: tuple[str, str] | None = None
    #: The spider that stores it, and the daily quota its requests count in.
    spider: str = ""
    quota: str = RESEARCH

    def key(self, record: dict[str, Any]) -> str:
        return "/".join(str(record[name]) for name in self.key_fields)

    @property
    def refs(self) -> tuple[Ref, ...]:
        """Everything whose loss takes the record with it."""
        return ((self.identity,) if self.identity else ()) + self.part_of + self.listed_for


def _video_kind(feed: str, item_class: type, spider: str, seeded: bool = False) -> RecordKind:
    """A kind whose records are videos: ``seeded``, a list collected for an account (``seed_username``)."""
    key = ("seed_username", "id") if seeded else ("id",)
    return RecordKind(
        feed,
        item_class,
        key,
        key,
        VIDEO_IDS,
        identity=Ref("id", VIDEO),
        part_of=(Ref("username", USER),),
        listed_for=(Ref("seed_username", USER),) if seeded else (),
        checked=(Ref("id", VIDEO),),
        spider=spider,
    )


def _comment_kind(feed: str, item_class: type, required: tuple[str, ...]) -> RecordKind:
    return RecordKind(
        feed,
        item_class,
        ("id",),
        required,
        ("id", "video_id", "parent_comment_id"),
        identity=Ref("id", COMMENT),
        part_of=(Ref("video_id", VIDEO), Ref("parent_comment_id", COMMENT)),
        checked=(Ref("id", COMMENT),),
        spider=feed,
    )


def unavailable_kind(spider: str) -> RecordKind:
    """Where a spider puts the accounts whose profile or list the API will not serve."""
    return RecordKind(
        f"{spider}_unavailable",
        UnavailableUser,
        ("username",),
        ("username", "reason"),
        listed_for=(Ref("username", USER),),
        spider=spider,
        quota=FOLLOW if spider in ("followers", "following") else RESEARCH,
    )


def _account_list(feed: str, item_class: type) -> RecordKind:
    """Followers or following of an account: entries that name two accounts, either of which may go."""
    return RecordKind(
        feed,
        item_class,
        ("seed_username", "username"),
        ("seed_username", "username"),
        listed_for=(Ref("seed_username", USER), Ref("username", USER)),
        spider=feed,
        quota=FOLLOW,
    )


VIDEO_IDS = ("id", "music_id", "playlist_id")
VIDEOS = _video_kind("videos", Video, "videos")
COMMENTS = _comment_kind("comments", Comment, ("id", "video_id"))
REPLIES = _comment_kind("replies", Reply, ("id", "parent_comment_id"))
USERS = RecordKind(
    "users",
    User,
    ("username",),
    ("username",),
    identity=Ref("username", USER),
    checked=(Ref("username", USER),),
    spider="users",
)
USERS_UNAVAILABLE = unavailable_kind("users")
LIKED_VIDEOS = _video_kind("liked_videos", LikedVideo, "liked_videos", seeded=True)
PINNED_VIDEOS = _video_kind("pinned_videos", PinnedVideo, "pinned_videos", seeded=True)
REPOSTED_VIDEOS = _video_kind("reposted_videos", RepostedVideo, "reposted_videos", seeded=True)
FOLLOWERS = _account_list("followers", Follower)
FOLLOWING = _account_list("following", Following)
PLAYLIST_VIDEOS = RecordKind(
    "playlist_videos",
    PlaylistVideo,
    ("playlist_id", "position"),
    ("playlist_id", "video_id"),
    ("playlist_id", "video_id"),
    listed_for=(Ref("video_id", VIDEO),),
    checked=(Ref("video_id", VIDEO),),
    spider="playlists",
)
PLAYLISTS = RecordKind(
    "playlists",
    Playlist,
    ("playlist_id",),
    ("playlist_id",),
    ("playlist_id",),
    members=("playlist_videos", "playlist_id"),
    spider="playlists",
)

#: Every kind, by feed, in the order a study writes them (and the codebook lists them).
KINDS: dict[str, RecordKind] = {
    kind.feed: kind
    for kind in (
        VIDEOS,
        COMMENTS,
        REPLIES,
        USERS,
        USERS_UNAVAILABLE,
        LIKED_VIDEOS,
        PINNED_VIDEOS,
        REPOSTED_VIDEOS,
        FOLLOWERS,
        FOLLOWING,
        PLAYLISTS,
        PLAYLIST_VIDEOS,
        *(unavailable_kind(spider) for spider in ("followers", "following", "liked_videos", "pinned_videos")),
        unavailable_kind("reposted_videos"),
    )
}
_BY_CLASS = {kind.item_class: kind for kind in KINDS.values() if kind.item_class is not UnavailableUser}


def kinds_of(spider: str) -> tuple[RecordKind, ...]:
    """What a spider stores."""
    return tuple(kind for kind in KINDS.values() if kind.spider == spider)


def kind_of(item: Any, spider_name: str | None) -> RecordKind | None:
    """How ``item`` is stored when ``spider_name`` collected it (None: not a record)."""
    if isinstance(item, UnavailableUser):
        return KINDS.get(f"{spider_name}_unavailable") if spider_name else None
    return _BY_CLASS.get(type(item))


def quota_of(spider: str) -> str:
    """The daily quota a spider's requests count in (the refresh's: the research APIs')."""
    return next((kind.quota for kind in kinds_of(spider)), RESEARCH)


def checked_fields(category: str) -> list[tuple[RecordKind, str]]:
    """``(kind, field)`` of every stored value a refresh asks TikTok about in ``category``."""
    return [(kind, ref.field) for kind in KINDS.values() for ref in kind.checked if ref.category == category]
