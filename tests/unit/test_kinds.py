"""The record-kind registry: every kind a spider stores is declared, purged with what it stands on,
and in the codebook; the purge's cascade, read from it, on a real ledger."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from scrapy.settings import Settings
from scrapy.spiderloader import SpiderLoader

import tiktok_spiders.settings as project_settings
from tiktok_spiders import codebook
from tiktok_spiders.kinds import COMMENT, KINDS, USER, VIDEO, RecordKind, kind_of
from tiktok_spiders.ledger import Ledger
from tiktok_spiders.purge import Purge, PurgeHeld

#: The fields that name a video, a comment or an account wherever they are: each must be covered.
NAMING_FIELDS = {"username": USER, "seed_username": USER, "video_id": VIDEO, "parent_comment_id": COMMENT}


def spiders() -> dict[str, Any]:
    loader = SpiderLoader.from_settings(Settings({"SPIDER_MODULES": project_settings.SPIDER_MODULES}))
    return {name: loader.load(name) for name in loader.list()}


def stored_kinds() -> list[tuple[str, RecordKind]]:
    return [(name, kind) for name, spider in spiders().items() for kind in getattr(spider, "kinds", ())]


def test_every_kind_a_spider_stores_is_declared_once() -> None:
    for name, kind in stored_kinds():
        assert KINDS.get(kind.feed) is kind, f"{name} stores {kind.feed}, which kinds.KINDS does not declare"
        assert kind.spider == name, f"{kind.feed} says it is stored by {kind.spider!r}, not {name!r}"
    declared = {kind.feed for _, kind in stored_kinds()}
    assert declared == set(KINDS), "a declared kind no spider stores"


@pytest.mark.parametrize(("spider", "kind"), stored_kinds(), ids=lambda value: getattr(value, "feed", value))
def test_every_kind_a_spider_stores_is_purged_with_its_video_comment_or_account(spider: str, kind: RecordKind) -> None:
    names = {field.name for field in fields(kind.item_class)}
    assert kind.refs or kind.members, f"{kind.feed}: nothing it stands on is declared, a purge would never touch it"
    for ref in (*kind.refs, *kind.checked):
        assert ref.field in names, f"{kind.feed}: declared field {ref.field} is not a field of its records"
    covered = {(ref.field, ref.category) for ref in kind.refs}
    for field, category in NAMING_FIELDS.items():
        if field in names:
            assert (field, category) in covered, f"{kind.feed}.{field} names a {category} the purge would not follow"
    if kind.identity is not None:
        assert kind.identity in kind.checked or kind.identity.category == USER or kind.part_of, (
            f"{kind.feed}: what it is is never checked by a refresh"
        )
    if kind.members is not None:
        member, field = kind.members
        assert member in KINDS and field in {f.name for f in fields(KINDS[member].item_class)}


def test_every_feed_any_spider_writes_is_in_the_codebook() -> None:
    documented = dict(codebook.feeds())
    for _, kind in stored_kinds():
        assert documented.get(kind.feed) is kind.item_class, f"the codebook has no {kind.feed}"
        for field in fields(kind.item_class):
            codebook.meaning(kind.feed, field.name)  # KeyError when the codebook lacks it
    assert (Path(__file__).parents[2] / "docs" / "codebook.md").read_text(encoding="utf-8") == codebook.markdown()


def test_an_unavailable_user_is_stored_in_its_spiders_feed() -> None:
    from tiktok_spiders.items import UnavailableUser, Video

    assert kind_of(UnavailableUser(username="a"), "pinned_videos").feed == "pinned_videos_unavailable"
    assert kind_of(Video(id=1), "videos").feed == "videos"
    assert kind_of(object(), "videos") is None


# -- the cascade, on a ledger on disk --------------------------------------------------------

VIDEO_A, VIDEO_B, VIDEO_C = 7_300_000_000_000_000_001, 7_300_000_000_000_000_002, 7_300_000_000_000_000_003


def study(data_dir: Path) -> Ledger:
    """A small study of every kind: alice's videos A and B (B in a playlist with C), bob's C;
    comments and a reply; alice's followers and liked videos; bob follows alice."""
    ledger = Ledger(data_dir)
    records: list[tuple[str, dict[str, Any]]] = [
        ("videos", {"id": VIDEO_A, "username": "alice"}),
        ("videos", {"id": VIDEO_B, "username": "alice"}),
        ("videos", {"id": VIDEO_C, "username": "bob"}),
        ("comments", {"id": 11, "video_id": VIDEO_A, "parent_comment_id": VIDEO_A, "text": "on A"}),
        ("comments", {"id": 12, "video_id": VIDEO_C, "parent_comment_id": VIDEO_C, "text": "on C"}),
        ("replies", {"id": 21, "video_id": VIDEO_A, "parent_comment_id": 11, "text": "reply on A"}),
        ("replies", {"id": 22, "video_id": None, "parent_comment_id": 12, "text": "reply on C"}),
        ("users", {"username": "alice"}),
        ("users", {"username": "bob"}),
        ("followers", {"seed_username": "alice", "username": "carol"}),
        ("followers", {"seed_username": "bob", "username": "alice"}),
        ("following", {"seed_username": "bob", "username": "dave"}),
        ("liked_videos", {"seed_username": "alice", "id": VIDEO_C, "username": "bob"}),
        ("liked_videos", {"seed_username": "bob", "id": VIDEO_B, "username": "alice"}),
        ("liked_videos_unavailable", {"username": "alice", "reason": "refused"}),
        ("playlists", {"playlist_id": 5, "playlist_name": "alice's list"}),
        ("playlist_videos", {"playlist_id": 5, "position": 0, "video_id": VIDEO_B}),
        ("playlists", {"playlist_id": 6, "playlist_name": "mixed"}),
        ("playlist_videos", {"playlist_id": 6, "position": 0, "video_id": VIDEO_B}),
        ("playlist_videos", {"playlist_id": 6, "position": 1, "video_id": VIDEO_C}),
    ]
    for feed, record in records:
        ledger.add_record(feed, KINDS[feed].key(record), record)
    ledger.connection.executemany(
        "INSERT INTO seeds (spider, seed, status, updated) VALUES (?, ?, ?, 'x')",
        [("users", "alice", "failed"), ("comments", str(VIDEO_A), "done"), ("comments", str(VIDEO_C), "done")],
    )
    run = {"arguments": {"usernames": "alice,bob", "query": json.dumps({"and": [{"field_values": ["alice"]}]})}}
    ledger.connection.execute("INSERT INTO runs VALUES ('users', 's', 'f', ?)", (json.dumps(run),))
    ledger.commit()
    return ledger


def kept(ledger: Ledger) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for kind, key in ledger.connection.execute("SELECT kind, key FROM records ORDER BY kind, key"):
        found.setdefault(kind, []).append(key)
    return found


def test_a_gone_account_takes_its_videos_their_comments_its_lists_and_a_playlist_left_empty(tmp_path: Path) -> None:
    ledger = study(tmp_path)
    ledger.connection.execute("INSERT INTO gone VALUES ('user', 'alice')")
    purge = Purge(ledger, tmp_path, Settings({"TIKTOK_PRIVATE_FILES": True}))
    purged = purge.delete(None, None)
    left = kept(ledger)
    assert left["videos"] == [str(VIDEO_C)] and left["users"] == ["bob"]
    assert left["comments"] == ["12"] and left["replies"] == ["22"], "A's comment and its reply go, C's stay"
    assert "followers" not in left, "alice's followers, and alice among bob's, go"
    assert left["following"] == ["bob/dave"]
    assert "liked_videos" not in left, "alice's list goes, and alice's video B in bob's list"
    assert "liked_videos_unavailable" not in left
    assert left["playlists"] == ["6"] and left["playlist_videos"] == ["6/1"], "playlist 5 had only B"
    assert set(left) == {"videos", "users", "comments", "replies", "following", "playlists", "playlist_videos"}
    assert purged["videos"] == 2 and purged["playlists"] == 1
    # no trace in the ledger's other tables
    assert ledger.connection.execute("SELECT seed FROM seeds ORDER BY seed").fetchall() == [(str(VIDEO_C),)]
    [(run,)] = ledger.connection.execute("SELECT run FROM runs").fetchall()
    assert "alice" not in run and "[purged],bob" in run
    tokens = {token for (token,) in ledger.connection.execute("SELECT token FROM purge_tokens")}
    assert {"alice", str(VIDEO_A), str(VIDEO_B), "11", "21", "5"} <= tokens and "bob" not in tokens
    assert purge.pending()[0] == "feeds"
    ledger.close()


def test_a_purge_past_the_brake_is_rolled_back_whole(tmp_path: Path) -> None:
    ledger = study(tmp_path)
    ledger.connection.execute("INSERT INTO gone VALUES ('video', ?)", (str(VIDEO_A),))
    ledger.commit()  # found: committed with the check's seed
    before = kept(ledger)
    purge = Purge(ledger, tmp_path, Settings({"TIKTOK_PRIVATE_FILES": True}))
    with pytest.raises(PurgeHeld, match=r"1 of 3 videos \(33%\)"):
        purge.delete(None, 0.2)
    assert kept(ledger) == before and purge.pending() == []
    assert ledger.connection.execute("SELECT COUNT(*) FROM gone").fetchone()[0] == 1, "still found, not purged"
    purged = purge.delete(None, 0.5)
    assert purged == {"videos": 1, "comments": 1, "replies": 1}
    ledger.close()
