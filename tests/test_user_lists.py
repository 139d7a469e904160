"""The user-list and playlist spiders against the emulator's ground truth."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.conftest import crawl, read_jsonl, settings_for
from tiktok_spiders.emulator import Emulator
from tiktok_spiders.spiders.followers import FollowersSpider
from tiktok_spiders.spiders.following import FollowingSpider
from tiktok_spiders.spiders.liked_videos import LikedVideosSpider
from tiktok_spiders.spiders.pinned_videos import PinnedVideosSpider
from tiktok_spiders.spiders.playlists import PlaylistsSpider
from tiktok_spiders.spiders.reposted_videos import RepostedVideosSpider

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end

SPIDERS = [
    (FollowersSpider, "followers", "username"),
    (FollowingSpider, "following", "username"),
    (LikedVideosSpider, "liked", "id"),
    (RepostedVideosSpider, "reposted", "id"),
    (PinnedVideosSpider, "pinned", "id"),
]


def sample_users(emulator: Emulator) -> list[str]:
    """Authors with and without public lists, plus private and missing accounts."""
    corpus = emulator.corpus
    names = list(corpus.users)[:40]
    names += [name for name, status in corpus.user_status.items() if status == "private"][:3]
    names += [name for name, status in corpus.user_status.items() if status == "missing"][:3]
    return names


@pytest.mark.parametrize(("spidercls", "kind", "identity"), SPIDERS)
@deferred_f_from_coro_f
async def test_user_list_spiders_collect_exactly_the_ground_truth(
    emulator: Emulator, tmp_path, spidercls, kind: str, identity: str
) -> None:
    usernames = sample_users(emulator)
    crawler = await crawl(spidercls, settings_for(emulator, tmp_path), usernames=",".join(usernames))
    assert crawler.stats.get_value("finish_reason") == "finished"
    lists, unavailable = emulator.corpus.expected_user_lists(kind, usernames)
    assert sum(map(len, lists.values())) > 20 and unavailable
    rows = read_jsonl(tmp_path / f"{spidercls.name}.jsonl")
    got = Counter((row["seed_username"], row[identity]) for row in rows)
    assert max(got.values()) == 1, "duplicates"
    assert set(got) == {(user, entry[identity]) for user, entries in lists.items() for entry in entries}
    missing = read_jsonl(tmp_path / f"{spidercls.name}_unavailable.jsonl")
    assert {row["username"]: row["reason"] for row in missing} == unavailable
    if identity == "id":
        first = next(entry for entries in lists.values() for entry in entries)
        stored = next(row for row in rows if row["id"] == first["id"])
        assert stored["create_time"] == first["create_time"] and stored["video_description"] == first[
            "video_description"
        ].replace("\x00", "")


@deferred_f_from_coro_f
async def test_playlists_from_the_video_feed_despite_500_answers(emulator: Emulator, tmp_path) -> None:
    corpus = emulator.corpus
    with (tmp_path / "videos.jsonl").open("w") as feed:
        for video in corpus.videos[:1500]:
            feed.write(json.dumps({"id": video["id"], "playlist_id": video.get("playlist_id")}) + "\n")
    wanted = {video["playlist_id"] for video in corpus.videos[:1500] if "playlist_id" in video}
    crawler = await crawl(PlaylistsSpider, settings_for(emulator, tmp_path))
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert crawler.stats.get_value("tiktok/seeds/malformed") is None, "videos without a playlist are not malformed"
    playlists = read_jsonl(tmp_path / "playlists.jsonl")
    assert {row["playlist_id"] for row in playlists} == wanted
    assert all(row["playlist_item_total"] == len(corpus.playlists[row["playlist_id"]]) for row in playlists)
    videos = read_jsonl(tmp_path / "playlist_videos.jsonl")
    by_playlist: dict[int, list] = {}
    for row in sorted(videos, key=lambda row: (row["playlist_id"], row["position"])):
        by_playlist.setdefault(row["playlist_id"], []).append(row["video_id"])
    assert by_playlist == {playlist_id: corpus.playlists[playlist_id] for playlist_id in wanted}


def test_a_playlist_is_done_once_its_total_is_in_whatever_has_more_says() -> None:
    spider = PlaylistsSpider(playlist_ids="1")
    whole = {"playlist_id": 1, "playlist_item_total": 3, "playlist_video_ids": [7, 8, 9], "cursor": 3, "has_more": True}
    assert spider.next_body(whole, {"playlist_id": 1, "cursor": 0, "max_count": 100}) is None
    first = {**whole, "playlist_item_total": 5}
    assert spider.next_body(first, {"playlist_id": 1, "cursor": 0, "max_count": 100})["cursor"] == 3
    last = {**first, "playlist_video_ids": [10, 11], "cursor": 5}
    assert spider.next_body(last, {"playlist_id": 1, "cursor": 3, "max_count": 100}) is None
