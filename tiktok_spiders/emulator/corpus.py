"""A deterministic corpus that looks like the Research API's data.

Everything is derived from one seed: the same flags give the same videos, users,
comments and lists, in this process or in another one.  Per-video and per-user
lists (comments, followers, likes, ...) are made lazily from a sub-seed, so a
big corpus starts fast.  The ``expected_*`` methods are the ground truth a
complete crawl must reproduce.
"""

from __future__ import annotations

import bisect
import copy
import functools
import random
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tiktok_spiders.emulator.query import Query, matches

HASHTAGS = (
    "climate",
    "vote",
    "election",
    "cats",
    "fyp",
    "foryou",
    "news",
    "dance",
    "food",
    "travel",
    "football",
    "music",
    "comedy",
    "science",
    "fashion",
    "art",
    "books",
    "gaming",
    "fitness",
    "protest",
    "energy",
    "heatwave",
    "flood",
    "democracy",
    "debate",
    "recipe",
    "pets",
    "dogs",
    "makeup",
    "diy",
    "history",
    "learnontiktok",
    "stem",
    "nature",
    "ocean",
    "garden",
    "catsoftiktok",
    "viral",
    "duet",
    "Ramadan",
    "café",
    "pride",
)
WORDS = (
    "the",
    "a",
    "today",
    "new",
    "my",
    "this",
    "is",
    "so",
    "why",
    "how",
    "we",
    "you",
    "climate",
    "change",
    "vote",
    "election",
    "cat",
    "summer",
    "storm",
    "rain",
    "policy",
    "school",
    "friends",
    "recipe",
    "video",
    "live",
    "tutorial",
    "story",
    "reaction",
    "update",
    "power",
    "city",
    "night",
)
EMOJI = ("🥰", "😂", "🔥", "🌍", "🗳️", "🐱", "💧", "👑", "🇺🇸", "❤️", "✨", "🙏")
SYLLABLES = ("ka", "mi", "lo", "ra", "tu", "sen", "jo", "an", "el", "vi", "no", "sha", "ber", "li")
UNICODE_NAMES = ("müller", "حمودي", "josé", "łukasz", "yūki", "zoë", "søren", "naïma")
REGIONS = ("US", "US", "US", "GB", "GB", "DE", "FR", "BR", "IN", "JP", "MX", "ES", "IT", "NG", "ID", "CA")
COMMENT_TEXTS = (
    "OMG so cute",
    "heart melting",
    "",
    'This is "exactly" right',
    "no, just no",
    "first!!",
    "where is this?\nasking for a friend",
    "100% agree, well said",
    "call me 40******30",
    "mail a*******@******************** about it",
    "search up ****6471",
    "😂😂😂",
    "Can't stop watching",
    "source: trust me",
    "lol, the ending",
    "AWEEEEEE 🥰🥰🥰",
)


@dataclass(frozen=True)
class CorpusConfig:
    """The size and shape of a corpus; the same config always gives the same corpus."""

    seed: int = 1
    videos: int = 12_000
    users: int = 3_000
    start_date: date = date(2024, 1, 1)
    days: int = 182
    hidden_video_rate: float = 0.06
    hidden_comment_rate: float = 0.03
    private_user_rate: float = 0.05
    missing_user_rate: float = 0.03
    #: Share of videos with more than the API's 1,000-comment cap.
    big_thread_rate: float = 0.002
    max_follow_list: int = 400


def snowflake(rng: random.Random, at: int) -> int:
    """An int64 id whose high 32 bits are a unix time shortly before ``at``."""
    return ((at - rng.randint(20, 80)) << 32) | rng.getrandbits(32)


def video_mark(video_id: int) -> int:
    """16 bits derived from a video id, which its comments' ids carry (bits 16-31), so any
    process finds a comment's video without generating every video's comments."""
    return zlib.crc32(video_id.to_bytes(8, "big")) & 0xFFFF


def comment_snowflake(rng: random.Random, at: int, video_id: int) -> int:
    return ((at - rng.randint(20, 80)) << 32) | (video_mark(video_id) << 16) | rng.getrandbits(16)


def _shuffled(rng: random.Random, record: dict[str, Any]) -> dict[str, Any]:
    """The record with its keys in a random order, as the API sends them."""
    keys = list(record)
    rng.shuffle(keys)
    return {key: record[key] for key in keys}


class Corpus:
    """Videos, users and their lists, and the ground truth a complete crawl must collect."""

    def __init__(self, config: CorpusConfig | None = None) -> None:
        self.config = config or CorpusConfig()
        rng = random.Random(self.config.seed)
        self.users: dict[str, dict[str, Any]] = {}
        #: username -> "private" | "missing" for users the API will not return.
        self.user_status: dict[str, str] = {}
        self._make_users(rng)
        self.videos: list[dict[str, Any]] = []  # sorted by create_time
        #: Videos never served: removed before collection, or deleted since (see :meth:`delete`).
        self.hidden: set[int] = set()
        #: Comments and accounts deleted (or made private) since they were created.
        self.deleted_comments: set[int] = set()
        self.deleted_users: set[str] = set()
        self._forget_share = 0.0
        #: id -> the username as served (real responses sometimes pad it with NUL bytes).
        self._make_videos(rng)
        self.video_by_id = {video["id"]: video for video in self.videos}
        self._times = [video["create_time"] for video in self.videos]
        self.videos_by_user: dict[str, list[int]] = {}
        for video in self.videos:
            self.videos_by_user.setdefault(self.real_username(video), []).append(video["id"])
        self.playlists: dict[int, list[int]] = {}
        for video in self.videos:
            if "playlist_id" in video:
                self.playlists.setdefault(video["playlist_id"], []).append(video["id"])
        self._videos_by_mark: dict[int, list[int]] = {}
        for video in self.videos:
            self._videos_by_mark.setdefault(video_mark(video["id"]), []).append(video["id"])
        self._display_names = [profile["display_name"] for profile in self.users.values()]

    def copy(self) -> Corpus:
        """The same content and deletions so far, deleted from independently after: a server of
        its own without generating the content again (a third of a second; tests start a hundred).
        Content is never changed once made, so it is shared; only what :meth:`delete` changes is
        copied, and comments, made lazily, are made again for the copy."""
        twin = copy.copy(self)
        twin.hidden = set(self.hidden)
        twin.deleted_comments = set(self.deleted_comments)
        twin.deleted_users = set(self.deleted_users)
        return twin

    # -- generation -------------------------------------------------------

    def _make_users(self, rng: random.Random) -> None:
        cfg = self.config
        while len(self.users) < cfg.users:
            if rng.random() < 0.05:
                base = rng.choice(UNICODE_NAMES)
            else:
                base = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
            username = base + rng.choice(("", "_", ".", "__")) + str(rng.randint(0, 9999))
            if username in self.users:
                continue
            roll = rng.random()
            if roll < cfg.private_user_rate:
                self.user_status[username] = "private"
            elif roll < cfg.private_user_rate + cfg.missing_user_rate:
                self.user_status[username] = "missing"
            profile: dict[str, Any] = {
                "display_name": base.title() + rng.choice(("", " ✨", " 🌍", ' "official"')),
                "bio_description": rng.choice(("", "news, views & cats", "line one\nline two", "🗳️ vote!")),
                "avatar_url": f"https://p16-common-sign-va.tiktokcdn-us.com/tos-maliva-avt-0068/{rng.getrandbits(64):x}~tplv-tiktokx-cropcenter:168:168.jpeg",
                "is_verified": rng.random() < 0.03,
                "follower_count": int(rng.paretovariate(1.2) * 50),
                "following_count": rng.randint(0, 2000),
                "likes_count": int(rng.paretovariate(1.1) * 300),
                "video_count": rng.randint(0, 500),
            }
            if rng.random() < 0.15:
                profile["bio_url"] = f"https://example.org/{username}"
            self.users[username] = _shuffled(rng, profile)
            self.users[username]["_region"] = rng.choice(REGIONS)

    def _make_videos(self, rng: random.Random) -> None:
        cfg = self.config
        start = int(datetime(cfg.start_date.year, cfg.start_date.month, cfg.start_date.day, tzinfo=UTC).timestamp())
        span = cfg.days * 86400
        names = list(self.users)
        weights = [1.0 / (rank + 1) ** 0.6 for rank in range(len(names))]
        authors = rng.choices(names, weights=weights, k=cfg.videos)
        seen: set[int] = set()
        playlist_ids: list[int] = []
        for author in authors:
            created = start + rng.randrange(span)
            video_id = snowflake(rng, created)
            while video_id in seen:
                video_id = snowflake(rng, created)
            seen.add(video_id)
            tags = rng.sample(HASHTAGS, rng.randint(0, 5))
            words = rng.choices(WORDS, k=rng.randint(2, 10))
            description = " ".join(words).capitalize()
            if rng.random() < 0.3:
                description += " " + rng.choice(EMOJI)
            if rng.random() < 0.1:
                description += '\nsecond line, with "quotes", commas'
            description += "".join(f" #{tag}" for tag in tags) + " "
            duration = rng.choice(
                (rng.randint(3, 14), rng.randint(15, 60), rng.randint(61, 300), rng.randint(301, 900))
            )
            served_name = author
            if rng.random() < 0.01:
                served_name = author + "\u0000" * rng.randint(1, 6)
            video: dict[str, Any] = {
                "id": video_id,
                "create_time": created,
                "username": served_name,
                "region_code": self.users[author]["_region"],
                "video_description": description,
                "music_id": snowflake(rng, created - rng.randrange(10**7)),
                "like_count": int(rng.paretovariate(1.3) * 5) - 5,
                "comment_count": self._comment_count(rng),
                "share_count": rng.randint(0, 50),
                "view_count": int(rng.paretovariate(1.1) * 20) - 20,
                "hashtag_names": sorted({tag.lower() for tag in tags}, key=lambda _: rng.random()),
                "video_duration": duration,
                "is_stem_verified": rng.random() < 0.02,
                "favorites_count": rng.randint(0, 40),
                "video_label": {"content": "", "sink": False, "type": 0, "vote": False, "warn": False},
                "video_mention_list": [],
                "hashtag_info_list": [
                    {
                        "hashtag_name": tag,
                        "hashtag_id": rng.getrandbits(31),
                        "hashtag_description": rng.choice(("", f"All about #{tag}, ")),
                    }
                    for tag in tags
                ],
            }
            if rng.random() < 0.15:
                video["effect_ids"] = [str(rng.randint(10**7, 10**8))]
                video["effect_info_list"] = [
                    {
                        "effect_id": video["effect_ids"][0],
                        "effect_name": "Green Screen",
                        "effect_photo_url": "https://example.org/e.png",
                    }
                ]
            if rng.random() < 0.2:
                video["voice_to_text"] = "so today, we're talking about " + " ".join(rng.choices(WORDS, k=8)) + "\n"
            if rng.random() < 0.05:
                video["video_mention_list"] = [rng.choice(names).title()]
            if rng.random() < 0.05:
                video["sticker_info_list"] = [{"sticker_id": str(rng.getrandbits(40)), "sticker_name": "poll"}]
            if rng.random() < 0.03:
                video["video_tag"] = {"type": rng.choice(("AIGC", "Branded")), "number": 1}
            elif rng.random() < 0.01:  # the docs allow a list of tags too
                video["video_tag"] = [{"type": "AIGC", "number": 2}, {"type": "Branded", "number": 7}]
            if rng.random() < 0.02:
                video["video_label"] = {
                    "content": "Get info on the election",
                    "sink": False,
                    "type": 1,
                    "vote": True,
                    "warn": False,
                }
            if rng.random() < 0.04:
                if not playlist_ids or rng.random() < 0.3:
                    playlist_ids.append(snowflake(rng, created))
                video["playlist_id"] = rng.choice(playlist_ids)
            if rng.random() < 0.01:
                del video["like_count"]  # sparse: real pages miss counts now and then
            if rng.random() < cfg.hidden_video_rate:
                self.hidden.add(video_id)
            self.videos.append(_shuffled(rng, video))
        self.videos.sort(key=lambda video: (video["create_time"], video["id"]))

    def _comment_count(self, rng: random.Random) -> int:
        roll = rng.random()
        if roll < self.config.big_thread_rate:
            return rng.randint(1001, 1400)
        if roll < 0.45:
            return 0
        if roll < 0.87:
            return rng.randint(1, 20)
        if roll < 0.98:
            return rng.randint(21, 250)
        return rng.randint(251, 900)

    def _rng(self, *parts: Any) -> random.Random:
        # A string seed is hashed with SHA-512, the same in every process
        # (unlike hash(), which PYTHONHASHSEED salts).
        return random.Random(repr((self.config.seed, *parts)))

    # -- lookups used by the server -----------------------------------------

    def real_username(self, video: dict[str, Any]) -> str:
        return video["username"].replace("\u0000", "")

    def window(self, start: date, end_inclusive: date) -> list[dict[str, Any]]:
        """Videos created on the days ``start``..``end_inclusive`` (UTC), oldest first."""
        lo = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
        after = end_inclusive + timedelta(days=1)
        hi = int(datetime(after.year, after.month, after.day, tzinfo=UTC).timestamp())
        return self.videos[bisect.bisect_left(self._times, lo) : bisect.bisect_left(self._times, hi)]

    def search(self, query: Query, start: date, end_inclusive: date) -> list[int]:
        """Ids of every match, visible or not, newest id first: what a cursor counts."""
        return sorted(
            (video["id"] for video in self.window(start, end_inclusive) if matches(query, video, self)),
            reverse=True,
        )

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - the corpus lives as long as the server
    def comments(self, video_id: int) -> tuple[dict[str, Any], ...]:
        """All comments of a video, as the API orders them: by like count, replies mixed in
        (as real lists show).  Each carries its commenter's ``display_name``."""
        video = self.video_by_id.get(video_id)
        if video is None:
            return ()
        rng = self._rng("comments", video_id)
        total = video["comment_count"]
        comments: list[dict[str, Any]] = []
        top_level: list[dict[str, Any]] = []
        for _ in range(total):
            created = video["create_time"] + rng.randint(60, 30 * 86400)
            parent = video_id
            if top_level and rng.random() < 0.25:
                parent_comment = rng.choice(top_level)
                parent = parent_comment["id"]
                parent_comment["reply_count"] += 1
            text = rng.choice(COMMENT_TEXTS)
            if rng.random() < 0.3:  # many texts are common, some are one of a kind
                text += f" ({rng.choice(WORDS)} {rng.randint(0, 99_999)})"
            if rng.random() < 0.02:
                text += "\u0000"
            comment = {
                "id": comment_snowflake(rng, created, video_id),
                "video_id": video_id,
                "text": text,
                "like_count": int(rng.paretovariate(1.5)) - 1,
                "reply_count": 0,
                "parent_comment_id": parent,
                "create_time": created,
                "display_name": rng.choice(self._display_names),
            }
            if parent == video_id:
                top_level.append(comment)
            comments.append(comment)
        comments.sort(key=lambda comment: (-comment["like_count"], -comment["id"]))
        return tuple(
            _shuffled(rng, comment) | {"_hidden": rng.random() < self.config.hidden_comment_rate}
            for comment in comments
        )

    # -- deletion: what a refresh must find gone --------------------------------

    def delete(self, videos: Any = (), comments: Any = (), users: Any = ()) -> None:
        """Content deleted or made private since collection, consistently everywhere: an
        account takes its videos, a video its comments, a comment its replies."""
        self.hidden.update(int(video_id) for video_id in videos)
        self.deleted_comments.update(int(comment_id) for comment_id in comments)
        for username in users:
            self.deleted_users.add(username)
            self.hidden.update(self.videos_by_user.get(username, ()))

    def forget(self, share: float, seed: int = 0) -> None:
        """Delete a deterministic ``share`` of the videos, users and comments (``--deleted-share``)."""
        rng = random.Random(repr(("forget", self.config.seed, seed)))
        self.delete(
            videos=[video["id"] for video in self.videos if rng.random() < share],
            users=[name for name in self.users if rng.random() < share],
        )
        self._forget_share = share  # comments are made lazily: comment_gone draws for each

    def comment_gone(self, comment: dict[str, Any]) -> bool:
        """Whether a comment is not served: hidden, deleted, or of a deleted video or comment."""
        if comment["_hidden"] or comment["video_id"] in self.hidden:
            return True
        ids = [comment["id"]]
        if comment["parent_comment_id"] != comment["video_id"]:
            ids.append(comment["parent_comment_id"])  # a reply goes with the comment it answers
        share = self._forget_share
        if share and any(random.Random(repr(("forget", i))).random() < share for i in ids):
            return True
        return any(i in self.deleted_comments for i in ids)

    def video_valid(self, video_id: int) -> bool:
        return video_id in self.video_by_id and video_id not in self.hidden

    def comment_valid(self, comment_id: int) -> bool:
        home = self.comment_home(comment_id)
        if home is None:
            return False
        comment = next(comment for comment in self.comments(home) if comment["id"] == comment_id)
        return not self.comment_gone(comment)

    def comment_home(self, comment_id: int) -> int | None:
        """The video a comment (or reply) belongs to, or None when there is no such comment."""
        for video_id in self._videos_by_mark.get((comment_id >> 16) & 0xFFFF, ()):
            if any(comment["id"] == comment_id for comment in self.comments(video_id)):
                return video_id
        return None

    def replies(self, comment_id: int) -> tuple[dict[str, Any], ...]:
        """The replies to a comment, in the order of its video's list (by like count)."""
        home = self.comment_home(comment_id)
        if home is None:
            return ()
        return tuple(comment for comment in self.comments(home) if comment["parent_comment_id"] == comment_id)

    def user_list(self, kind: str, username: str) -> list[dict[str, Any]]:
        """A user's followers, following, liked or reposted list, newest first, without what
        was deleted since.

        Each entry carries ``_time`` (when it was followed / liked), which is what
        the timestamp cursors of these endpoints count.
        """
        return [
            entry
            for entry in self._user_list(kind, username)
            if entry.get("id") not in self.hidden and entry.get("username") not in self.deleted_users
        ]

    @functools.lru_cache(maxsize=4096)  # noqa: B019
    def _user_list(self, kind: str, username: str) -> tuple[dict[str, Any], ...]:
        profile = self.users.get(username)
        if profile is None:
            return ()
        rng = self._rng(kind, username)
        cfg = self.config
        end = (
            int(datetime(cfg.start_date.year, cfg.start_date.month, cfg.start_date.day, tzinfo=UTC).timestamp())
            + cfg.days * 86400
        )
        names = list(self.users)
        if kind in ("followers", "following"):
            count = profile["follower_count" if kind == "followers" else "following_count"]
            size = min(count, cfg.max_follow_list, len(names) - 1)
            others = [name for name in rng.sample(names, size + 1) if name != username][:size]
            entries = [{"username": name, "display_name": self.users[name]["display_name"]} for name in others]
        else:
            size = rng.randint(0, 150) if kind == "liked" else rng.randint(0, 80)
            picked = rng.sample(self.videos, min(size, len(self.videos)))
            entries = [dict(video) for video in picked if video["id"] not in self.hidden]
        times = sorted(rng.sample(range(end - 400 * 86400, end), len(entries)), reverse=True)
        return tuple(_shuffled(rng, entry) | {"_time": at} for entry, at in zip(entries, times, strict=True))

    def pinned(self, username: str) -> list[dict[str, Any]]:
        own = [vid for vid in self.videos_by_user.get(username, ()) if vid not in self.hidden]
        rng = self._rng("pinned", username)
        return [self.video_by_id[vid] for vid in own[: rng.randint(0, min(3, len(own)))]]

    def list_is_public(self, kind: str, username: str) -> bool:
        """Most users keep likes private; many keep their following list private."""
        share = {"liked": 0.3, "following": 0.7, "followers": 1.0, "reposted": 0.9}[kind]
        return self._rng("public", kind, username).random() < share

    # -- ground truth ---------------------------------------------------------

    def expected_videos(self, query: Query | dict, start: date, end: date) -> list[dict[str, Any]]:
        """Every video a complete crawl of ``query`` over ``start``..``end`` (inclusive) collects."""
        if not isinstance(query, Query):
            query = Query.parse(query)
        return [
            video for video in self.window(start, end) if video["id"] not in self.hidden and matches(query, video, self)
        ]

    def expected_comments(self, video_ids: Any, cap: int = 1000) -> list[dict[str, Any]]:
        """Every comment the API serves for these videos (the top ``cap`` positions of each)."""
        return [
            _public(comment)
            for video_id in video_ids
            for comment in self.comments(int(video_id))[:cap]
            if not self.comment_gone(comment)
        ]

    def expected_replies(self, comment_ids: Any, cap: int = 1000) -> list[dict[str, Any]]:
        """Every reply the API serves for these comments, as served: without ``video_id``."""
        return [
            {key: value for key, value in _public(reply).items() if key != "video_id"}
            for comment_id in comment_ids
            for reply in self.replies(int(comment_id))[:cap]
            if not self.comment_gone(reply)
        ]

    def unavailable_reason(self, username: str) -> str | None:
        """Why user info is refused: ``not_found``, ``refused``, or None when it is served."""
        status = self.user_status.get(username)
        if username not in self.users or status == "missing" or username in self.deleted_users:
            return "not_found"
        if status == "private":
            return "refused"
        return None

    def expected_user_lists(self, kind: str, usernames: Any) -> tuple[dict[str, list[dict]], dict[str, str]]:
        """``(lists, unavailable)`` for ``followers``, ``following``, ``liked``, ``reposted`` or
        ``pinned``: every entry served per available user, and why the others are not."""
        lists: dict[str, list[dict]] = {}
        unavailable: dict[str, str] = {}
        for username in usernames:
            reason = self.unavailable_reason(username)
            if reason is None and kind != "pinned" and not self.list_is_public(kind, username):
                reason = "refused"
            if reason:
                unavailable[username] = reason
            elif kind == "pinned":
                lists[username] = [_public(video) for video in self.pinned(username)]
            else:
                lists[username] = [_public(entry) for entry in self.user_list(kind, username)]
        return lists, unavailable

    def expected_users(self, usernames: Any) -> tuple[dict[str, dict], dict[str, str]]:
        """``(available, unavailable)``: profiles by username, and reasons by username."""
        available: dict[str, dict] = {}
        unavailable: dict[str, str] = {}
        for username in usernames:
            reason = self.unavailable_reason(username)
            if reason:
                unavailable[username] = reason
            else:
                available[username] = _public(self.users[username])
        return available, unavailable


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """The record without the emulator's private bookkeeping keys."""
    return {key: value for key, value in record.items() if not key.startswith("_")}
