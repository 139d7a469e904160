"""A whole study against the emulator: videos -> comments -> users, checked against ground truth.

The tests share one data directory, as the stages of a study do: in file order each
stage's test collects its stage there, seeded from the feed the test before wrote; a
test run alone (or in another order) has the stages it stands on collected first
(:func:`collected`), and collects its own stage into a directory of its own.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from tests.conftest import STUDY_ARGS, STUDY_DATES, STUDY_QUERY, crawl, read_jsonl, request_log, settings_for
from tiktok_spiders import api
from tiktok_spiders.emulator import Emulator
from tiktok_spiders.feeds import heaviest_first
from tiktok_spiders.spiders.comments import CommentsSpider
from tiktok_spiders.spiders.users import UsersSpider
from tiktok_spiders.spiders.videos import VideosSpider

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end


def without_nul(record: dict) -> dict:
    return {key: value.replace("\x00", "") if isinstance(value, str) else value for key, value in record.items()}


def assert_same_records(got: list[dict], expected: list[dict], key: str = "id") -> None:
    """Each expected record exactly once, with every served value (NUL bytes stripped)."""
    counts = Counter(record[key] for record in got)
    assert not [k for k, n in counts.items() if n > 1], "duplicates in the feed"
    assert set(counts) == {record[key] for record in expected}
    by_key = {record[key]: record for record in got}
    for record in expected:
        stored = by_key[record[key]]
        for name, value in without_nul(record).items():
            assert stored[name] == value, (record[key], name)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("study")


#: The study's stages, in order: the spider and its arguments.
STAGES = {"videos": (VideosSpider, STUDY_ARGS), "comments": (CommentsSpider, {}), "users": (UsersSpider, {})}


async def collected(emulator: Emulator, data_dir: Path, *stages: str) -> Path:
    """The study's directory with ``stages`` collected: by the tests before, or now."""
    for stage in stages:
        if not (data_dir / f"{stage}.jsonl").exists():
            spider, arguments = STAGES[stage]
            crawler = await crawl(spider, settings_for(emulator, data_dir), **arguments)
            assert crawler.stats.get_value("finish_reason") == "finished"
    return data_dir


def stage_dir(data_dir: Path, tmp_path: Path, stage: str, *seeds: str) -> Path:
    """Where a stage's test collects: the study's directory, unless the stage is there already
    (then a directory of its own, with the feeds it is seeded from)."""
    if not (data_dir / f"{stage}.jsonl").exists():
        return data_dir
    for feed in seeds:
        (tmp_path / f"{feed}.jsonl").write_bytes((data_dir / f"{feed}.jsonl").read_bytes())
    return tmp_path


@deferred_f_from_coro_f
async def test_videos_collects_exactly_the_ground_truth(emulator: Emulator, data_dir: Path, tmp_path: Path) -> None:
    log_start = len(request_log(emulator))
    data_dir = stage_dir(data_dir, tmp_path, "videos")
    crawler = await crawl(VideosSpider, settings_for(emulator, data_dir), **STUDY_ARGS)
    assert crawler.stats.get_value("finish_reason") == "finished"
    expected = emulator.corpus.expected_videos(STUDY_QUERY, *STUDY_DATES)
    assert len(expected) > 300  # enough that windows span several pages
    assert_same_records(read_jsonl(data_dir / "videos.jsonl"), expected)

    queries = [entry for entry in request_log(emulator)[log_start:] if entry["path"] == api.VIDEO_QUERY_PATH]
    assert all(entry["body"]["max_count"] == 100 for entry in queries)
    pages = [json.dumps(entry["body"], sort_keys=True) for entry in queries]
    assert len(pages) == len(set(pages)), "a page was fetched twice"
    windows = {(entry["body"]["start_date"], entry["body"]["end_date"]) for entry in queries}
    assert len(windows) == 3  # 90 days in windows of 30
    assert len(queries) > len(windows), "windows span several pages"
    assert crawler.stats.get_value("tiktok/requests") == len(queries)
    assert crawler.stats.get_value("tiktok/token/fetched") == 1, "concurrent requests share one token fetch"


@deferred_f_from_coro_f
async def test_comments_from_the_feed_are_every_served_comment(
    emulator: Emulator, data_dir: Path, tmp_path: Path
) -> None:
    data_dir = stage_dir(await collected(emulator, data_dir, "videos"), tmp_path, "comments", "videos")
    videos = read_jsonl(data_dir / "videos.jsonl")
    crawler = await crawl(CommentsSpider, settings_for(emulator, data_dir))
    assert crawler.stats.get_value("finish_reason") == "finished"
    expected = emulator.corpus.expected_comments(video["id"] for video in videos)
    assert len(expected) > 1000
    assert_same_records(read_jsonl(data_dir / "comments.jsonl"), expected)


@deferred_f_from_coro_f
async def test_users_from_the_feed_are_every_available_author(
    emulator: Emulator, data_dir: Path, tmp_path: Path
) -> None:
    data_dir = stage_dir(await collected(emulator, data_dir, "videos"), tmp_path, "users", "videos")
    usernames = {video["username"] for video in read_jsonl(data_dir / "videos.jsonl")}
    crawler = await crawl(UsersSpider, settings_for(emulator, data_dir))
    assert crawler.stats.get_value("finish_reason") == "finished"
    available, unavailable = emulator.corpus.expected_users(usernames)
    assert available and unavailable
    users = read_jsonl(data_dir / "users.jsonl")
    assert_same_records(users, [{"username": name, **profile} for name, profile in available.items()], key="username")
    missing = read_jsonl(data_dir / "users_unavailable.jsonl")
    assert {row["username"]: row["reason"] for row in missing} == unavailable
    assert crawler.stats.get_value("tiktok/requests") == len(usernames)


@deferred_f_from_coro_f
async def test_csv_feeds_read_back_with_pandas_equal_the_jsonl(emulator: Emulator, data_dir: Path) -> None:
    await collected(emulator, data_dir, "videos", "comments")
    for feed, ids in (("videos", ["id", "music_id"]), ("comments", ["id", "video_id", "parent_comment_id"])):
        records = read_jsonl(data_dir / f"{feed}.jsonl")
        table = pd.read_csv(
            data_dir / f"{feed}.csv",
            dtype={name: "Int64" for name in ids},
            keep_default_na=False,
            na_values={name: [""] for name in ids},
        )
        assert len(table) == len(records)
        assert table["id"].tolist() == [record["id"] for record in records]
        for name in ids:
            assert [None if pd.isna(v) else int(v) for v in table[name]] == [r[name] for r in records]
        text = "video_description" if feed == "videos" else "text"
        assert table[text].tolist() == [record[text] or "" for record in records]
        assert any("\n" in value for value in table[text]) and any('"' in value for value in table[text])
    videos = read_jsonl(data_dir / "videos.jsonl")
    table = pd.read_csv(data_dir / "videos.csv", dtype={"id": "int64"})
    assert [json.loads(cell) for cell in table["hashtag_names"]] == [video["hashtag_names"] for video in videos]
    assert any(any(ord(char) > 0xFFFF for char in text) for text in table["video_description"]), "emoji survive"
    with (data_dir / "videos.csv").open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert header == [*api.VIDEO_FIELDS, "collected_at"]


@deferred_f_from_coro_f
async def test_a_second_run_spends_nothing_and_rewrites_the_same_feeds(emulator: Emulator, data_dir: Path) -> None:
    await collected(emulator, data_dir, "videos")
    before = (data_dir / "videos.jsonl").read_bytes()
    log_start = len(request_log(emulator))
    crawler = await crawl(VideosSpider, settings_for(emulator, data_dir), **STUDY_ARGS)
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert crawler.stats.get_value("tiktok/requests") is None
    assert request_log(emulator)[log_start:] == []
    assert (data_dir / "videos.jsonl").read_bytes() == before


@deferred_f_from_coro_f
async def test_min_comments_skips_uncommented_videos_and_saves_their_requests(
    emulator: Emulator, data_dir: Path, tmp_path: Path
) -> None:
    await collected(emulator, data_dir, "videos", "comments")
    videos = read_jsonl(data_dir / "videos.jsonl")
    (tmp_path / "videos.jsonl").write_bytes((data_dir / "videos.jsonl").read_bytes())
    crawler = await crawl(CommentsSpider, settings_for(emulator, tmp_path), min_comments="1")
    assert crawler.stats.get_value("finish_reason") == "finished"
    uncommented = sum(1 for video in videos if video.get("comment_count") == 0)
    assert uncommented > 50
    assert crawler.stats.get_value("tiktok/seeds/below_minimum") == uncommented
    full = read_jsonl(data_dir / "comments.jsonl")
    assert sorted(row["id"] for row in read_jsonl(tmp_path / "comments.jsonl")) == sorted(row["id"] for row in full)


def test_the_heaviest_seed_of_the_next_few_goes_first_and_the_feed_still_streams() -> None:
    read: list[str] = []

    def feed() -> Any:
        for weight, value in [(1, "a"), (5, "b"), (3, "c"), (9, "d"), (0, "e"), (2, "f")]:
            read.append(value)
            yield weight, value

    seeds = heaviest_first(feed(), 3)
    assert next(seeds) == "b"
    assert read == ["a", "b", "c"]  # no further ahead than the look-ahead
    assert list(seeds) == ["d", "c", "f", "a", "e"]
    assert list(heaviest_first([(0, "x"), (0, "y"), (0, "z")], 3)) == ["x", "y", "z"]  # ties keep feed order


@deferred_f_from_coro_f
async def test_comments_start_with_the_videos_that_have_the_most(fresh_emulator: Emulator, tmp_path: Path) -> None:
    """Long chains of comment pages start first, so none trails the crawl alone."""
    videos = [video for video in fresh_emulator.corpus.videos[:400] if video["comment_count"] > 0]
    with (tmp_path / "videos.jsonl").open("w") as feed:
        feed.writelines(json.dumps({"id": v["id"], "comment_count": v["comment_count"]}) + "\n" for v in videos)
    crawler = await crawl(CommentsSpider, settings_for(fresh_emulator, tmp_path, CONCURRENT_REQUESTS=2))
    assert crawler.stats.get_value("finish_reason") == "finished"
    asked = [entry["body"] for entry in request_log(fresh_emulator) if entry["path"] == api.COMMENT_LIST_PATH]
    first_pages = [body["video_id"] for body in asked if body["cursor"] == 0]
    by_count = sorted(videos, key=lambda video: -min(video["comment_count"], api.COMMENT_CAP))
    assert sorted(first_pages[:2]) == sorted(video["id"] for video in by_count[:2])
    assert first_pages[:2] != [video["id"] for video in videos[:2]]  # not simply the feed's order
    assert len(first_pages) == len(videos)


@deferred_f_from_coro_f
async def test_seeds_are_read_as_slots_free_not_all_at_once(emulator: Emulator, tmp_path: Path) -> None:
    """A million-line seed feed must not become a million scheduled requests (2.8 GB measured)."""
    usernames = list(emulator.corpus.users)
    with (tmp_path / "videos.jsonl").open("w") as feed:
        feed.writelines(json.dumps({"id": number, "username": name}) + "\n" for number, name in enumerate(usernames))
    waiting: list[int] = []
    crawler = get_crawler(UsersSpider, settings_for(emulator, tmp_path, CONCURRENT_REQUESTS=4))

    def count_waiting(request: Any) -> None:
        if api.USER_INFO_PATH not in request.url:
            return  # the token
        stats = crawler.stats
        waiting.append(stats.get_value("scheduler/enqueued", 0) - stats.get_value("scheduler/dequeued", 0))

    crawler.signals.connect(count_waiting, signal=signals.response_received)
    await crawler.crawl_async()
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert len(waiting) == len(usernames) > 1000
    assert max(waiting) <= 4, "start requests were scheduled ahead of free slots"
    assert len(read_jsonl(tmp_path / "users.jsonl")) + len(read_jsonl(tmp_path / "users_unavailable.jsonl")) == len(
        usernames
    )


@deferred_f_from_coro_f
async def test_a_feed_grows_by_what_is_new_and_reads_as_a_whole_rewrite_would(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tiktok_spiders.feeds import write_feed
    from tiktok_spiders.kinds import COMMENTS
    from tiktok_spiders.ledger import Ledger

    caplog.set_level(logging.INFO, logger="tiktok_spiders.extensions.export")
    settings = settings_for(emulator, tmp_path)
    corpus = emulator.corpus
    videos = [str(v["id"]) for v in corpus.videos if v["comment_count"] and v["id"] not in corpus.hidden]
    await crawl(CommentsSpider, settings, video_ids=",".join(videos[:15]))
    before = {fmt: (tmp_path / f"comments.{fmt}").read_bytes() for fmt in ("jsonl", "csv")}
    caplog.clear()
    await crawl(CommentsSpider, settings, video_ids=",".join(videos[:30]))  # 15 new videos
    grew = [r.getMessage() for r in caplog.records if "added to the feed" in r.getMessage()]
    assert len(grew) == 2, "both feeds grew instead of being written whole"
    ledger = Ledger(tmp_path)
    for fmt in ("jsonl", "csv"):
        grown = (tmp_path / f"comments.{fmt}").read_bytes()
        assert grown.startswith(before[fmt]) and len(grown) > len(before[fmt])
        whole = tmp_path / "whole" / f"comments.{fmt}"
        whole.parent.mkdir(exist_ok=True)
        assert not write_feed(ledger, COMMENTS, whole, fmt).grown
        assert grown == whole.read_bytes(), "the same bytes as a whole rewrite"
    ledger.close()

    # a changed file, or records deleted since (fresh=true, a purge), is written whole again
    (tmp_path / "comments.csv").write_bytes(before["csv"])
    caplog.clear()
    await crawl(CommentsSpider, settings, video_ids=",".join(videos[:31]))
    written = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Wrote")]
    assert any(line.endswith("comments.csv (written whole)") for line in written), written
    assert any("comments.jsonl (" in line and line.endswith("added to the feed)") for line in written), written
    await crawl(CommentsSpider, settings, video_ids=",".join(videos[:5]), fresh="true")
    ids = [c["id"] for c in read_jsonl(tmp_path / "comments.jsonl")]
    assert sorted(ids) == sorted(c["id"] for c in emulator.corpus.expected_comments(videos[:5]))
