"""Replies: whole comment threads, each reply once, with its video, through faults and quota stops."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from tests.conftest import (
    EVERY_FAULT_SETTINGS,
    assert_exactly,
    cli_env,
    crawl,
    every_fault,
    read_jsonl,
    request_log,
    scrapy_cli,
    settings_for,
    spider_args,
)
from tiktok_spiders import api, tables
from tiktok_spiders.emulator import Emulator
from tiktok_spiders.spiders.comments import CommentsSpider
from tiktok_spiders.spiders.replies import RepliesSpider

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end


def some_videos(emulator: Emulator, count: int = 25) -> list[int]:
    corpus = emulator.corpus
    return [v["id"] for v in corpus.videos if 20 < v["comment_count"] < 300 and v["id"] not in corpus.hidden][:count]


def replied_to(data_dir: Path) -> list[dict]:
    return [comment for comment in read_jsonl(data_dir / "comments.jsonl") if comment["reply_count"]]


def reply_pages(emulator: Emulator) -> list[str]:
    """The reply pages the emulator answered with data."""
    return [
        json.dumps(entry["body"], sort_keys=True)
        for entry in request_log(emulator)
        if entry["path"] == api.COMMENT_LIST_PATH and "comment_id" in entry.get("body", {}) and entry["status"] == 200
    ]


@deferred_f_from_coro_f
async def test_replies_under_every_fault_are_the_truth_with_their_video(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    fresh_emulator.faults = every_fault()
    settings = settings_for(fresh_emulator, tmp_path, **EVERY_FAULT_SETTINGS)
    comments = await crawl(CommentsSpider, settings, video_ids=",".join(map(str, some_videos(fresh_emulator))))
    assert comments.stats.get_value("finish_reason") == "finished"
    before = len(request_log(fresh_emulator))

    replies = await crawl(RepliesSpider, settings)
    assert replies.stats.get_value("finish_reason") == "finished"
    parents = replied_to(tmp_path)
    assert len(parents) > 20
    truth = fresh_emulator.corpus.expected_replies(parent["id"] for parent in parents)
    got = read_jsonl(tmp_path / "replies.jsonl")
    assert_exactly([reply["id"] for reply in got], [reply["id"] for reply in truth])
    video_of = {parent["id"]: parent["video_id"] for parent in parents}
    # as the API sent it, but for the NUL bytes every feed drops (pipelines/validate.py)
    sent = {reply["id"]: {**reply, "text": reply["text"].replace("\x00", "")} for reply in truth}
    for reply in got:
        assert reply.pop("video_id") == video_of[reply["parent_comment_id"]]
        assert reply.pop("collected_at")
        assert reply == sent[reply["id"]]
    # one first request per comment with replies, none for the others
    asked = Counter(
        entry["body"]["comment_id"]
        for entry in request_log(fresh_emulator)[before:]
        if entry.get("body", {}).get("cursor") == 0 and entry["status"] == 200
    )
    assert set(asked) == set(video_of)
    statuses = Counter(entry["status"] for entry in request_log(fresh_emulator)[before:])
    assert statuses[500] and statuses[429] and statuses[0], "the faults happened"


@deferred_f_from_coro_f
async def test_a_quota_stop_resumes_the_next_day_and_pays_no_reply_page_twice(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    settings = settings_for(fresh_emulator, tmp_path)
    await crawl(CommentsSpider, settings, video_ids=",".join(map(str, some_videos(fresh_emulator, 10))))
    parents = replied_to(tmp_path)
    fresh_emulator.faults.daily_requests = 12
    fresh_emulator.advance_days(1)
    reasons = []
    for _ in range(30):
        crawler = await crawl(RepliesSpider, settings)
        reasons.append(crawler.stats.get_value("finish_reason"))
        if reasons[-1] == "finished":
            break
        fresh_emulator.advance_days(1)
    assert len(reasons) > 2 and set(reasons[:-1]) == {"daily_quota_exhausted"} and reasons[-1] == "finished"
    truth = fresh_emulator.corpus.expected_replies(parent["id"] for parent in parents)
    assert_exactly([reply["id"] for reply in read_jsonl(tmp_path / "replies.jsonl")], [r["id"] for r in truth])
    pages = reply_pages(fresh_emulator)
    assert len(pages) == len(set(pages)), "a stored reply page was requested again"


def test_comment_ids_take_their_video_from_the_ledger_and_bad_ones_are_one_line(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = cli_env(emulator, tmp_path)
    video_ids = ",".join(map(str, some_videos(emulator, 5)))
    assert scrapy_cli(tmp_path, env, "crawl", "comments", "-a", f"video_ids={video_ids}").returncode == 0
    parent = max(replied_to(tmp_path), key=lambda comment: comment["reply_count"])
    stranger = next(
        c for c in emulator.corpus.comments(some_videos(emulator, 30)[-1]) if c["reply_count"] and not c["_hidden"]
    )
    asked = f"comment_ids={parent['id']},{stranger['id']}"
    done = scrapy_cli(tmp_path, env, "crawl", "replies", "-a", asked, "-a", "min_replies=5")
    assert done.returncode == 0, done.stderr[-2000:]
    replies = read_jsonl(tmp_path / "replies.jsonl")
    assert {reply["video_id"] for reply in replies if reply["parent_comment_id"] == parent["id"]} == {
        parent["video_id"]
    }
    # a comment this data directory never collected: its replies, with the video left empty
    assert {reply["video_id"] for reply in replies if reply["parent_comment_id"] == stranger["id"]} == {None}

    for arguments, message in (
        ({"comment_ids": "12,abc"}, "comment_ids must be numbers, not '12,abc'"),
        ({"min_replies": "-1"}, "min_replies must be 0 or more"),
        ({"min_replies": "many"}, "min_replies must be a whole number"),
    ):
        done = scrapy_cli(tmp_path, env, "crawl", "replies", *spider_args(arguments))
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


@deferred_f_from_coro_f
async def test_display_name_is_kept_asked_on_request_and_dropped_if_refused(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    video_ids = ",".join(map(str, some_videos(fresh_emulator, 3)))
    await crawl(CommentsSpider, settings_for(fresh_emulator, tmp_path / "default"), video_ids=video_ids)
    log = request_log(fresh_emulator)
    assert all("display_name" not in entry["fields"] for entry in log if entry["path"] == api.COMMENT_LIST_PATH)
    assert all(comment["display_name"] for comment in read_jsonl(tmp_path / "default" / "comments.jsonl"))

    fresh_emulator.faults.strict_comment_fields = True
    asked = settings_for(fresh_emulator, tmp_path / "asked", TIKTOK_ASK_DISPLAY_NAME="true")
    crawler = await crawl(CommentsSpider, asked, video_ids=video_ids)
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert crawler.stats.get_value("tiktok/fields_rejected") == 1
    refused = [entry for entry in request_log(fresh_emulator)[len(log) :] if entry["status"] == 400]
    assert refused and all("display_name" in entry["fields"] for entry in refused)

    # the strict server still sends it unasked: kept, every value as in the default crawl
    def by_id(name: str) -> dict:
        return {c.pop("id"): c | {"collected_at": None} for c in read_jsonl(tmp_path / name / "comments.jsonl")}

    assert by_id("asked") == by_id("default")


@deferred_f_from_coro_f
async def test_the_replies_table_joins_each_reply_to_its_comment_and_video(emulator: Emulator, tmp_path: Path) -> None:
    from tiktok_spiders.spiders.videos import VideosSpider

    settings = settings_for(emulator, tmp_path)
    await crawl(VideosSpider, settings, hashtags="climate", start_date="2024-01-01", end_date="2024-01-31")
    await crawl(CommentsSpider, settings)
    await crawl(RepliesSpider, settings)
    study = tables.study_tables(tmp_path)
    replies, comments, videos = study["replies"], study["comments"], study["videos"]
    assert len(replies) == len(read_jsonl(tmp_path / "replies.jsonl")) > 0
    parent = comments.set_index("id").loc[replies["parent_comment_id"]]
    assert list(replies["parent_text"]) == list(parent["text"])
    assert list(replies["parent_like_count"]) == list(parent["like_count"])
    video = videos.set_index("id").loc[replies["video_id"]]
    assert list(replies["video_url"]) == list(video["url"])
    assert list(replies["video_id"]) == list(parent["video_id"])
    for fmt in ("parquet", "csv"):
        path = tables.export(replies, tmp_path / f"replies.{fmt}")
        back = tables.read_table(path)
        assert list(back["id"]) == list(replies["id"]) and str(back["id"].dtype) == "Int64"
