"""Nothing lost, nothing paid twice: faults, token expiry, quota, interruption, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from scrapy import signals
from scrapy.utils.defer import deferred_f_from_coro_f

import tiktok_spiders.settings as project_settings
from tests.conftest import (
    EVERY_FAULT_SETTINGS,
    MONTH_ARGS,
    STUDY_ARGS,
    STUDY_DATES,
    STUDY_QUERY,
    assert_exactly,
    cli_env,
    crawl,
    every_fault,
    read_jsonl,
    request_log,
    scrapy_cli,
    scrapy_env,
    settings_for,
    spider_args,
)
from tiktok_spiders import api, clock
from tiktok_spiders.emulator import Emulator
from tiktok_spiders.ledger import Ledger
from tiktok_spiders.spiders.comments import CommentsSpider
from tiktok_spiders.spiders.users import UsersSpider
from tiktok_spiders.spiders.videos import VideosSpider

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end


def ids(path: Path, key: str = "id") -> list:
    return [record[key] for record in read_jsonl(path)]


def served_pages(api_emulator: Emulator, path: str = api.VIDEO_QUERY_PATH) -> list[str]:
    """Bodies of the pages the emulator answered with data (status 200)."""
    return [
        json.dumps(entry["body"], sort_keys=True)
        for entry in request_log(api_emulator)
        if entry["path"] == path and entry["status"] == 200
    ]


@deferred_f_from_coro_f
async def test_a_study_with_every_fault_switched_on_collects_the_ground_truth(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    fresh_emulator.faults = every_fault()
    settings = settings_for(fresh_emulator, tmp_path, **EVERY_FAULT_SETTINGS)
    corpus = fresh_emulator.corpus

    videos = await crawl(VideosSpider, settings, **STUDY_ARGS)
    assert videos.stats.get_value("finish_reason") == "finished"
    expected_videos = corpus.expected_videos(STUDY_QUERY, *STUDY_DATES)
    assert_exactly(ids(tmp_path / "videos.jsonl"), [video["id"] for video in expected_videos])

    comments = await crawl(CommentsSpider, settings)
    assert comments.stats.get_value("finish_reason") == "finished"
    expected_comments = corpus.expected_comments(video["id"] for video in expected_videos)
    assert_exactly(ids(tmp_path / "comments.jsonl"), [comment["id"] for comment in expected_comments])

    users = await crawl(UsersSpider, settings)
    assert users.stats.get_value("finish_reason") == "finished"
    available, unavailable = corpus.expected_users({corpus.real_username(video) for video in expected_videos})
    assert_exactly(ids(tmp_path / "users.jsonl", "username"), list(available))
    assert_exactly(ids(tmp_path / "users_unavailable.jsonl", "username"), list(unavailable))

    log = request_log(fresh_emulator)
    statuses = Counter(entry["status"] for entry in log)
    for status in (0, 429, 500, 504):  # 401s: see the revoked-token test
        assert statuses[status], f"fault {status} never happened: the test proves nothing about it"
    errors = Counter(entry.get("error") for entry in log)
    assert errors["invalid_params"] > 0  # rejected search ids and cursors
    stats = {**videos.stats.get_stats(), **comments.stats.get_stats()}
    assert stats["tiktok/retry/reason_count/search_id_invalid"] and stats["tiktok/retry/reason_count/invalid_cursor"]
    assert len(fresh_emulator.issued_tokens) > 1, "short-lived tokens were renewed"


@deferred_f_from_coro_f
async def test_a_revoked_token_is_refreshed_and_the_request_sent_again(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    crawler_box = {}

    def revoke_once(response, request, spider) -> None:
        if crawler_box.setdefault("responses", 0) == 3:
            fresh_emulator.revoke_tokens()
        crawler_box["responses"] += 1

    from scrapy.utils.test import get_crawler

    crawler = get_crawler(CommentsSpider, settings_for(fresh_emulator, tmp_path))
    crawler.signals.connect(revoke_once, signal=signals.response_received)
    video_ids = [video["id"] for video in fresh_emulator.corpus.videos[:40]]
    await crawler.crawl_async(video_ids=",".join(map(str, video_ids)))
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert crawler.stats.get_value("tiktok/token/rejected") >= 1
    assert crawler.stats.get_value("tiktok/token/fetched") == 2
    assert_exactly(
        ids(tmp_path / "comments.jsonl"), [c["id"] for c in fresh_emulator.corpus.expected_comments(video_ids)]
    )


@deferred_f_from_coro_f
async def test_failures_are_recorded_reported_and_resumed(fresh_emulator: Emulator, tmp_path: Path) -> None:
    fresh_emulator.faults.internal_error_rate = 1.0
    settings = settings_for(fresh_emulator, tmp_path, TIKTOK_RETRY_TIMES=2)
    crawler = await crawl(VideosSpider, settings, **STUDY_ARGS)
    assert crawler.stats.get_value("finish_reason") == "incomplete"
    ledger = Ledger(tmp_path)
    failed = ledger.failed_seeds("videos")
    assert len(failed) == 3 and all("HTTP 500 internal_error" in reason for _, reason in failed)
    ledger.close()
    assert read_jsonl(tmp_path / "videos.jsonl") == []

    fresh_emulator.faults.internal_error_rate = 0.0
    crawler = await crawl(VideosSpider, settings, **STUDY_ARGS)
    assert crawler.stats.get_value("finish_reason") == "finished"
    expected = fresh_emulator.corpus.expected_videos(STUDY_QUERY, *STUDY_DATES)
    assert_exactly(ids(tmp_path / "videos.jsonl"), [video["id"] for video in expected])


def stage_truth(corpus, stage: str, data_dir: Path, min_replies: int = 1) -> list:
    """The ids a complete ``comments`` or ``replies`` stage collects from the feed before it."""
    if stage == "comments":
        return [c["id"] for c in corpus.expected_comments(v["id"] for v in read_jsonl(data_dir / "videos.jsonl"))]
    parents = [c["id"] for c in read_jsonl(data_dir / "comments.jsonl") if c["reply_count"] >= min_replies]
    return [reply["id"] for reply in corpus.expected_replies(parents)]


@pytest.mark.parametrize(
    ("stage", "seed_feed", "arguments"),
    [("comments", "videos", {}), ("replies", "comments", {"min_replies": "3"})],
)
def test_kill_9_in_the_middle_then_the_same_command_finishes_exactly(
    fresh_emulator: Emulator, tmp_path: Path, stage: str, seed_feed: str, arguments: dict
) -> None:
    fresh_emulator.faults.daily_requests = 100_000  # three runs of the stage
    env = cli_env(fresh_emulator, tmp_path, TIKTOK_DAILY_REQUEST_LIMIT="100000")
    assert scrapy_cli(tmp_path, env, "crawl", "videos", *spider_args(MONTH_ARGS)).returncode == 0
    if stage == "replies":
        assert scrapy_cli(tmp_path, env, "crawl", "comments").returncode == 0
    asks_by = "video_id" if stage == "comments" else "comment_id"

    def stage_requests(since: int) -> int:
        return sum(
            1
            for entry in request_log(fresh_emulator)[since:]
            if entry["path"] == api.COMMENT_LIST_PATH and asks_by in entry.get("body", {})
        )

    # an uninterrupted run elsewhere says what the stage costs
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / f"{seed_feed}.jsonl").write_bytes((tmp_path / f"{seed_feed}.jsonl").read_bytes())
    before = len(request_log(fresh_emulator))
    command = ("crawl", stage, *spider_args(arguments))
    reference_run = scrapy_cli(tmp_path, {**env, "TIKTOK_DATA_DIR": str(reference)}, *command)
    assert reference_run.returncode == 0, reference_run.stderr[-3000:]
    uninterrupted = stage_requests(before)

    fresh_emulator.faults.latency = 0.3  # API-like: answers slower than we process them
    before = len(request_log(fresh_emulator))
    process = subprocess.Popen(
        [sys.executable, "-m", "scrapy.cmdline", *command],
        cwd=tmp_path,
        env=scrapy_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while stage_requests(before) < uninterrupted // 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = stage_requests(before)
    assert 0 < first < uninterrupted, "the kill came in the middle"
    assert not (tmp_path / f"{stage}.jsonl").exists()

    fresh_emulator.faults.latency = 0.0
    done = scrapy_cli(tmp_path, env, *command)
    assert done.returncode == 0, done.stderr[-2000:]
    total = stage_requests(before)
    truth = stage_truth(fresh_emulator.corpus, stage, tmp_path, min_replies=int(arguments.get("min_replies", 1)))
    assert_exactly(ids(tmp_path / f"{stage}.jsonl"), truth)
    # only pages in flight (CONCURRENT_REQUESTS) or answered but not yet committed when
    # the process died are paid again
    in_flight = project_settings.CONCURRENT_REQUESTS
    assert uninterrupted <= total <= uninterrupted + 2 * in_flight, (uninterrupted, total)


def test_an_exhausted_quota_stops_cleanly_and_the_next_day_finishes(fresh_emulator: Emulator, tmp_path: Path) -> None:
    fresh_emulator.faults.daily_requests = 4
    env = cli_env(fresh_emulator, tmp_path)
    args = spider_args({**STUDY_ARGS, "window_days": "7"})
    runs = []
    for _ in range(12):
        done = scrapy_cli(tmp_path, env, "crawl", "videos", *args)
        runs.append(done)
        if done.returncode == 0:
            break
        assert done.returncode == 1
        assert "daily quota" in done.stderr and "Traceback" not in done.stderr
        fresh_emulator.advance_days(1)
    assert len(runs) > 2 and runs[-1].returncode == 0
    expected = fresh_emulator.corpus.expected_videos(STUDY_QUERY, *STUDY_DATES)
    assert_exactly(ids(tmp_path / "videos.jsonl"), [video["id"] for video in expected])
    pages = served_pages(fresh_emulator)
    assert len(pages) == len(set(pages)), "a stored page was requested again"


def test_the_client_stops_before_its_own_daily_limit(fresh_emulator: Emulator, tmp_path: Path) -> None:
    env = cli_env(fresh_emulator, tmp_path, TIKTOK_DAILY_REQUEST_LIMIT="5")
    args = spider_args({**STUDY_ARGS, "window_days": "7"})
    done = scrapy_cli(tmp_path, env, "crawl", "videos", *args)
    assert done.returncode == 1
    assert "TIKTOK_DAILY_REQUEST_LIMIT" in done.stderr and "after 00:00 UTC" in done.stderr
    sent = [entry for entry in request_log(fresh_emulator) if entry["path"] == api.VIDEO_QUERY_PATH]
    assert len(sent) == 5
    ledger = Ledger(tmp_path)
    assert ledger.requests_on(clock.today()) == 5
    ledger.close()
    again = scrapy_cli(tmp_path, env, "crawl", "videos", *args)
    assert again.returncode == 1
    assert len([entry for entry in request_log(fresh_emulator) if entry["path"] == api.VIDEO_QUERY_PATH]) == 5


@deferred_f_from_coro_f
async def test_an_expired_search_id_costs_one_request_on_resume(fresh_emulator: Emulator, tmp_path: Path) -> None:
    fresh_emulator.faults.daily_requests = 3  # the first page of each of the 3 windows
    settings = settings_for(fresh_emulator, tmp_path)
    crawler = await crawl(VideosSpider, settings, **STUDY_ARGS)
    assert crawler.stats.get_value("finish_reason") == "daily_quota_exhausted"
    half_done = [
        entry["body"]
        for entry in request_log(fresh_emulator)
        if entry["status"] == 200 and entry["path"] == api.VIDEO_QUERY_PATH
    ]
    assert len(half_done) == 3
    fresh_emulator.expire_searches()
    fresh_emulator.advance_days(1)
    fresh_emulator.faults.daily_requests = 1000
    before = len(request_log(fresh_emulator))
    crawler = await crawl(VideosSpider, settings, **STUDY_ARGS)
    assert crawler.stats.get_value("finish_reason") == "finished"
    expected = fresh_emulator.corpus.expected_videos(STUDY_QUERY, *STUDY_DATES)
    assert_exactly(ids(tmp_path / "videos.jsonl"), [video["id"] for video in expected])
    resumed = [entry for entry in request_log(fresh_emulator)[before:] if entry["path"] == api.VIDEO_QUERY_PATH]
    # the windows left open with a search id: usually all three, but a window whose first pages came
    # back before the others' were sent may have used up the three requests alone
    restarted = {e["body"]["start_date"] for e in resumed if e["status"] == 400 and e["body"].get("search_id")}
    assert restarted and restarted <= {page["start_date"] for page in half_done}
    assert crawler.stats.get_value("tiktok/search_restarted") == len(restarted)
    for start_date in restarted:
        window = [e for e in resumed if e["body"]["start_date"] == start_date]
        stored = window[0]["body"]["cursor"]
        assert window[0]["status"] == 400 and stored >= 100  # the stored, expired search id
        assert "search_id" not in window[1]["body"] and window[1]["status"] == 200  # one new search...
        assert window[2]["body"]["cursor"] == stored and window[2]["status"] == 200  # ...straight back to the cursor
        assert all(e["body"].get("cursor", 0) >= stored for e in window[2:])
    for page in half_done:  # a window the first run finished is not asked again
        if page["start_date"] not in restarted:
            assert not [e for e in resumed if e["body"]["start_date"] == page["start_date"]], page


@deferred_f_from_coro_f
async def test_a_rate_limited_crawl_slows_down_instead_of_paying_for_429s(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    fresh_emulator.faults.rate_limit_per_second = 40
    fresh_emulator.faults.rate_limit_retry_after = 1
    video_ids = [video["id"] for video in fresh_emulator.corpus.videos[:160]]
    crawler = await crawl(
        CommentsSpider, settings_for(fresh_emulator, tmp_path), video_ids=",".join(map(str, video_ids))
    )
    assert crawler.stats.get_value("finish_reason") == "finished"
    expected = fresh_emulator.corpus.expected_comments(video_ids)
    assert_exactly(ids(tmp_path / "comments.jsonl"), [comment["id"] for comment in expected])

    log = request_log(fresh_emulator)
    limited = [datetime.fromisoformat(entry["time"]) for entry in log if entry["status"] == 429]
    assert limited, "the crawl never reached the rate limit: the test proves nothing"
    assert len(limited) <= 0.05 * len(log), f"{len(limited)} of {len(log)} requests paid for a 429"
    # Retry-After: 1 is honoured by everyone: after the requests already on their way, none for a second
    first = limited[0]
    during_pause = [
        entry for entry in log if 0.3 < (datetime.fromisoformat(entry["time"]) - first).total_seconds() < 0.9
    ]
    assert not during_pause
    assert crawler.stats.get_value("tiktok/rate_limit/max_requests_per_second") < 40


@deferred_f_from_coro_f
async def test_a_429_without_the_apis_envelope_slows_down_too_and_the_daily_quota_is_left_alone(
    emulator: Emulator, tmp_path: Path
) -> None:
    from scrapy.http import JsonResponse, Request, Response
    from scrapy.utils.test import get_crawler

    from tiktok_spiders.middlewares.pace import RATE_LIMITED_TIMES, PaceMiddleware

    pace = PaceMiddleware(get_crawler(settings_dict=settings_for(emulator, tmp_path)))
    request = Request(api.endpoint_url(emulator.base_url, api.USER_INFO_PATH), method="POST")
    gateway = Response(request.url, status=429, headers={"Content-Type": "text/html"}, body=b"<html>Too many</html>")
    retry = await pace.process_response(request, gateway)
    assert isinstance(retry, Request) and retry.meta[RATE_LIMITED_TIMES] == 1
    assert pace.resume_at > 0, "every request pauses"

    quota = b'{"data":{},"error":{"code":"daily_quota_limit_exceeded","message":"The API daily quota limit exceeded."}}'
    spent = JsonResponse(request.url, status=429, headers={"Content-Type": "application/json"}, body=quota)
    assert await pace.process_response(request, spent) is spent


@deferred_f_from_coro_f
async def test_the_request_rate_cap_holds(fresh_emulator: Emulator, tmp_path: Path) -> None:
    users = list(fresh_emulator.corpus.users)[:30]
    started = time.monotonic()
    crawler = await crawl(
        UsersSpider,
        settings_for(fresh_emulator, tmp_path, TIKTOK_MAX_REQUESTS_PER_SECOND=20),
        usernames=",".join(users),
    )
    elapsed = time.monotonic() - started
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert elapsed >= 29 / 20, "30 requests at 20 per second take at least 1.45 s"


def test_ctrl_c_while_waiting_for_the_quota_stops_at_once_and_a_rerun_finishes(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    users = list(fresh_emulator.corpus.users)[:20]
    args = ["crawl", "users", "-a", f"usernames={','.join(users)}"]
    env = cli_env(fresh_emulator, tmp_path, TIKTOK_DAILY_REQUEST_LIMIT="3", TIKTOK_WAIT_FOR_QUOTA_RESET="true")
    with subprocess.Popen(
        [sys.executable, "-m", "scrapy.cmdline", *args],
        cwd=tmp_path,
        env=scrapy_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        said = []
        for line in process.stderr:  # the crawl says it waits for the next UTC day...
            said.append(line)
            if "waiting" in line and "next UTC day" in line:
                break
        process.send_signal(signal.SIGINT)  # ...and one Ctrl-C stops it, not midnight (hours away)
        said.append(process.communicate(timeout=60)[1])
        assert process.returncode == 1, "incomplete: the same command continues"
    log = "".join(said)
    assert sum("next UTC day" in line for line in log.splitlines()) == 1, "said once, not per waiting request"
    assert "Traceback" not in log and "unclean" not in log

    done = scrapy_cli(tmp_path, {**env, "TIKTOK_DAILY_REQUEST_LIMIT": "1000"}, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    available, unavailable = fresh_emulator.corpus.expected_users(set(users))
    assert_exactly(ids(tmp_path / "users.jsonl", "username"), list(available))
    assert_exactly(ids(tmp_path / "users_unavailable.jsonl", "username"), list(unavailable))
    served = [entry["body"]["username"] for entry in request_log(fresh_emulator) if entry["path"] == api.USER_INFO_PATH]
    assert len(served) == len(set(served)) == len(users), "no user was asked twice"


@deferred_f_from_coro_f
async def test_waiting_for_the_quota_reset_goes_on_by_itself(
    fresh_emulator: Emulator, tmp_path: Path, monkeypatch
) -> None:
    import threading

    from tiktok_spiders.middlewares import quota

    monkeypatch.setattr(quota, "seconds_to_utc_midnight", lambda: 0.3)  # "midnight" comes fast here
    fresh_emulator.faults.daily_requests = 2

    def next_day() -> None:  # ...and the API's day turns too, with a fresh quota
        fresh_emulator.faults.daily_requests = 1000
        fresh_emulator.advance_days(1)

    threading.Timer(1.0, next_day).start()
    crawler = await crawl(
        VideosSpider, settings_for(fresh_emulator, tmp_path, TIKTOK_WAIT_FOR_QUOTA_RESET=True), **STUDY_ARGS
    )
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert crawler.stats.get_value("tiktok/api_error/daily_quota_limit_exceeded") >= 1
    expected = fresh_emulator.corpus.expected_videos(STUDY_QUERY, *STUDY_DATES)
    assert_exactly(ids(tmp_path / "videos.jsonl"), [video["id"] for video in expected])


@deferred_f_from_coro_f
async def test_fields_the_api_rejects_are_dropped_not_the_collection(
    fresh_emulator: Emulator, tmp_path: Path, monkeypatch
) -> None:
    narrow = fresh_emulator._require_fields

    def without_two(fields, allowed):  # an API whose field list lacks two documented fields
        return narrow(fields, tuple(name for name in allowed if name not in ("video_tag", "favorites_count")))

    monkeypatch.setattr(fresh_emulator, "_require_fields", without_two)
    crawler = await crawl(VideosSpider, settings_for(fresh_emulator, tmp_path), **STUDY_ARGS)
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert crawler.stats.get_value("tiktok/fields_rejected") == 2
    expected = fresh_emulator.corpus.expected_videos(STUDY_QUERY, *STUDY_DATES)
    assert_exactly(ids(tmp_path / "videos.jsonl"), [video["id"] for video in expected])
    assert all(row["favorites_count"] is None for row in read_jsonl(tmp_path / "videos.jsonl"))
