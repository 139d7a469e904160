"""The codebook: every column of every feed and table, what it means, and who sent it.

Generated from the items (names, order, types) and the meanings below; a test
fails when an item gains a field without an entry, and when ``docs/codebook.md``
is not what :func:`markdown` writes.  ``scrapy tables`` writes it beside the tables.

    python -m tiktok_spiders.codebook > docs/codebook.md
"""

from __future__ import annotations

import sys
from dataclasses import fields

from tiktok_spiders.kinds import KINDS
from tiktok_spiders.tables import FIELD_TYPES

API, PROJECT = "API", "project"

#: Meaning and source of each field, by name; ``(feed, name)`` where a feed means something else by it.
MEANINGS: dict[str | tuple[str, str], tuple[str, str]] = {
    "id": (API, "the record's id (int64; a video's is also called item_id)"),
    ("comments", "id"): (API, "the comment's id (int64)"),
    ("replies", "id"): (API, "the reply's id (int64)"),
    "create_time": (API, "when it was posted, UTC (unix seconds in the feeds, a UTC datetime in the tables)"),
    "username": (API, "the author's username"),
    ("users", "username"): (PROJECT, "the username that was asked for (the API does not echo it)"),
    ("users_unavailable", "username"): (PROJECT, "the username that was asked for"),
    ("followers", "username"): (API, "a follower's username"),
    ("following", "username"): (API, "the username of an account followed"),
    "region_code": (API, "two-letter code of the country where the creator registered the account"),
    "video_description": (API, "the video's description (title), with its hashtags"),
    "music_id": (API, "the id of the video's sound (int64)"),
    "like_count": (API, "likes (the video query's counts are archived and can lag the app by days)"),
    "comment_count": (API, "comments, as the video query counts them (the API serves at most the top 1,000)"),
    "share_count": (API, "shares"),
    "view_count": (API, "views"),
    "effect_ids": (API, "ids of the effects used (a list of text ids)"),
    "hashtag_names": (API, "hashtags, lower-cased, without #"),
    "playlist_id": (API, "the playlist the video belongs to (int64; missing for most videos)"),
    "voice_to_text": (API, "the transcript of the video's speech, when TikTok made one"),
    "is_stem_verified": (API, "whether the video is verified as STEM content"),
    "favorites_count": (
        API,
        "how often the video was saved as a favourite (returned since 2026-05-21; "
        "also read when sent as favourites_count)",
    ),
    "video_duration": (API, "length in seconds"),
    "hashtag_info_list": (API, "per hashtag: hashtag_id, hashtag_name (original case), hashtag_description"),
    "sticker_info_list": (API, "interactive stickers: sticker_id, sticker_name"),
    "effect_info_list": (API, "effects: effect_id, effect_name, effect_photo_url"),
    "video_mention_list": (API, "accounts tagged in the video (display names)"),
    "video_label": (API, "labels TikTok attached (e.g. election information): content, type, vote, warn, sink"),
    "video_tag": (
        API,
        "AI-generated or branded-content tag, as sent: an object or a list of them, keys type and number "
        "(or video_tag_type and video_tag_number); the docs disagree on what the numbers mean",
    ),
    "video_id": (API, "the video the comment belongs to (int64)"),
    ("comments", "video_id"): (
        PROJECT,
        "the video whose comments were asked (the API's own video_id when it sends one; int64)",
    ),
    ("replies", "video_id"): (
        PROJECT,
        "the video of the comment replied to, from the comments feed (the API sends replies without it; "
        "its own value when it sends one; empty when the parent comment was not collected; int64)",
    ),
    ("playlist_videos", "video_id"): (API, "a video of the playlist (int64)"),
    "text": (API, "the comment's text; personal data is masked with * by TikTok (e.g. 40******30)"),
    "reply_count": (API, "replies to the comment"),
    "parent_comment_id": (
        API,
        "the comment replied to; equal to video_id for a top-level comment (int64)",
    ),
    ("replies", "parent_comment_id"): (
        API,
        "the comment replied to: the one asked for (filled in from the request when the API leaves it out; int64)",
    ),
    "display_name": (API, "the profile's display name (not the @username)"),
    ("comments", "display_name"): (
        API,
        "the commenter's display name (not the @username; sent by the API since 2025, empty when it did not)",
    ),
    ("replies", "display_name"): (API, "the replier's display name (not the @username; empty when not sent)"),
    "bio_description": (API, "the profile's bio"),
    "avatar_url": (API, "the profile picture's URL (expires after a while)"),
    "is_verified": (API, "whether the account is verified"),
    "follower_count": (API, "followers (live, unlike the video query's archived counts)"),
    "following_count": (API, "accounts followed"),
    "likes_count": (API, "likes the account's videos received"),
    "video_count": (API, "videos the account posted"),
    "bio_url": (API, "the link in the profile's bio, when shared (returned since 2024-11-04)"),
    "reason": (PROJECT, "why the API would not serve the user or list: not_found or refused"),
    "message": (API, "the API's error message for that user"),
    "seed_username": (PROJECT, "the user this record was collected for"),
    "playlist_name": (API, "the playlist's name"),
    "playlist_item_total": (API, "videos in the playlist"),
    "playlist_last_updated": (API, "when the playlist last changed, UTC"),
    ("playlist_videos", "playlist_id"): (API, "the playlist (int64)"),
    "position": (PROJECT, "the video's place in the playlist, from 0, in the order the API lists them"),
    "collected_at": (
        PROJECT,
        "when the page holding this record was fetched, UTC (ISO 8601 in the feeds); TikTok widened the "
        "API's coverage on 2026-02-26 to videos not eligible for the For You feed, so counts collected "
        "before and after that day are not comparable",
    ),
}
#: Columns the tables add to the feeds.
TABLE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "videos": [
        ("url", "https://www.tiktok.com/@<username>/video/<id>"),
        (
            "author_*",
            "the author's profile from the users feed (missing when the user was not collected or unavailable)",
        ),
    ],
    "comments": [
        ("video_url", "the URL of the comment's video"),
        ("video_username", "the author of the comment's video"),
        ("video_create_time", "when the comment's video was posted, UTC"),
    ],
    "replies": [
        ("parent_text", "the text of the comment replied to (from the comments feed)"),
        ("parent_display_name", "the display name of the comment's author"),
        ("parent_like_count", "the likes of the comment replied to"),
        ("parent_create_time", "when the comment replied to was posted, UTC"),
        ("video_url", "the URL of the reply's video"),
        ("video_username", "the author of the reply's video"),
        ("video_create_time", "when the reply's video was posted, UTC"),
    ],
}
TYPES = {"int": "int64 (Int64 in pandas)", "time": "UTC datetime", "bool": "boolean", "json": "list or object"}


def feeds() -> list[tuple[str, type]]:
    """Every feed and its item class, in the order a study writes them."""
    return [(kind.feed, kind.item_class) for kind in KINDS.values()]


#: What each table is, for the data package.
TABLE_DESCRIPTIONS = {
    "videos": "videos matching the study's query, with their URL and their author's profile (author_*)",
    "comments": "the comments of the study's videos, with their video's URL, author and time (video_*)",
    "replies": "the replies to the study's comments, with the comment replied to (parent_*) and its video (video_*)",
    "users": "the profiles of the study's authors",
    "playlists": "the playlists of the study's videos",
    "playlist_videos": "the videos of those playlists, in order",
}


def describe(table: str, column: str) -> str | None:
    """What ``column`` of ``table`` means (None: the codebook does not say)."""
    try:
        return meaning(table, column)[1]
    except KeyError:
        pass
    for added, text in TABLE_COLUMNS.get(table, []):
        if added == column or (added.endswith("*") and column.startswith(added[:-1])):
            return text
    return None


def documents(table: str, column: str) -> bool:
    """Whether the codebook says what ``column`` of ``table`` (a feed, or the table ``tables`` writes) means."""
    return describe(table, column) is not None


def _pseudonymised(column: str) -> str:
    from tiktok_spiders.publish import WORDS, policy

    if column == "author_*":
        return "as the same column of users"
    rule = policy(column)
    return WORDS[rule] if rule else ""


def meaning(feed: str, name: str) -> tuple[str, str]:
    """``(source, meaning)`` of a field of a feed; KeyError when the codebook lacks it."""
    if (feed, name) in MEANINGS:
        return MEANINGS[(feed, name)]
    if feed.endswith("_unavailable") and ("users_unavailable", name) in MEANINGS:
        return MEANINGS[("users_unavailable", name)]
    return MEANINGS[name]


def markdown() -> str:
    lines = [
        "# Codebook",
        "",
        "Every column of every feed (`<data dir>/<feed>.jsonl` and `.csv`) and table (`scrapy tables`).",
        "*Source* says whether the API sent the value or this project added it. Fields the API left out are",
        "empty (`null` in JSON Lines, an empty cell in CSV, missing in the tables). Lists and objects are",
        "JSON text in CSV; in Parquet they are lists and structs, except a column whose rows mix lists and",
        "objects (`video_tag` may be either), which is JSON text there too. Generated by",
        "`python -m tiktok_spiders.codebook` from the items.",
    ]
    lines += [
        "",
        "The last column says what `tiktok-spiders tables --pseudonymize` does to the column (empty: kept).",
    ]
    for feed, item_class in feeds():
        lines += ["", f"## {feed}", "", "| column | type | source | meaning | pseudonymised |", "|---|---|---|---|---|"]
        for field in fields(item_class):
            source, text = meaning(feed, field.name)
            kind = TYPES.get(FIELD_TYPES.get(field.name, ""), "text")
            lines.append(f"| `{field.name}` | {kind} | {source} | {text} | {_pseudonymised(field.name)} |")
        for column, text in TABLE_COLUMNS.get(feed, []):
            lines.append(f"| `{column}` | | project (tables only) | {text} | {_pseudonymised(column)} |")
    from tiktok_spiders.staging import DUCKDB_VIEWS

    lines += [
        "",
        "## Views of `study.duckdb`",
        "",
        "`tiktok-spiders tables --format duckdb` writes every feed as a table of the same name, unjoined, and",
        "these views, each the joined table exactly as the Parquet and CSV files hold it (the same columns, in",
        "the same order: the feed's, then those the tables add, above):",
        "",
        "| view | is |",
        "|---|---|",
    ]
    lines += [f"| `{view}` | `{table}` joined, as `{table}.parquet` |" for view, table in DUCKDB_VIEWS.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
