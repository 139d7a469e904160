"""The unit tier: middlewares, pipelines, the ledger, the query builder and the API helpers, in-process.

Each component is built the way Scrapy builds it (``get_crawler`` and the component's
``from_crawler``) and called directly: no server, no subprocess, a fraction of a second each.
The end-to-end tests (marked ``slow``) check the same components together, over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scrapy import Spider, signals
from scrapy.exceptions import DropItem, IgnoreRequest
from scrapy.http import JsonResponse, Request, Response
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from tests.conftest import settings_for
from tiktok_spiders import api, clock, staging, tables
from tiktok_spiders.config import ConfigError, check_settings
from tiktok_spiders.items import Comment, Video
from tiktok_spiders.ledger import DONE, FAILED, OPEN, Ledger
from tiktok_spiders.middlewares.quota import DailyQuotaMiddleware
from tiktok_spiders.middlewares.retry import ApiRetryMiddleware
from tiktok_spiders.pipelines.store import LedgerPipeline
from tiktok_spiders.pipelines.validate import ValidationPipeline
from tiktok_spiders.query import Query, QueryError
from tiktok_spiders.settings import ITEM_PIPELINES
from tiktok_spiders.spiders.pages import process_items
from tiktok_spiders.token import TOKEN_REQUEST


class NoServer:
    """Settings point here; nothing is ever sent."""

    base_url = "http://127.0.0.1:9"


def crawler_for(tmp_path: Path, spider: str = "units", **overrides: Any):
    crawler = get_crawler(Spider, settings_for(NoServer(), tmp_path / "data", **overrides))
    crawler.spider = crawler._create_spider(spider)
    crawler.engine = crawler._create_engine()  # not started: stopping the crawl only marks it
    crawler.crawling = True  # as during a crawl: the components check it before each request
    return crawler


def api_request(path: str = api.USER_INFO_PATH, **meta: Any) -> Request:
    return Request(api.endpoint_url(NoServer.base_url, path), method="POST", meta=meta)


def answer(request: Request, status: int, error: dict[str, str] | None = None, data: Any = None, **headers: str):
    body = json.dumps({"data": data or {}, "error": error or {"code": "ok", "message": ""}}).encode()
    return JsonResponse(
        request.url, status=status, headers={"Content-Type": "application/json", **headers}, body=body, request=request
    )


# -- retries ---------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_a_5xx_is_retried_until_the_retries_are_spent_then_given_back(tmp_path: Path) -> None:
    crawler = crawler_for(tmp_path, TIKTOK_RETRY_TIMES=2, TIKTOK_RETRY_BACKOFF_BASE=0)
    retry = build_from_crawler(ApiRetryMiddleware, crawler)
    request = api_request()
    for attempt in (1, 2):
        request = await retry.process_response(request, answer(request, 500, {"code": "internal_error"}))
        assert isinstance(request, Request) and request.meta["retry_times"] == attempt
    last = answer(request, 503)
    assert await retry.process_response(request, last) is last, "retries spent: the answer goes to the spider"
    assert crawler.stats.get_value("tiktok/api_error/internal_error") == 2
    assert crawler.stats.get_value("tiktok/retry/count") == 2
    assert crawler.stats.get_value("tiktok/retry/max_reached") == 1


@deferred_f_from_coro_f
async def test_what_is_not_retried(tmp_path: Path) -> None:
    retry = build_from_crawler(ApiRetryMiddleware, crawler_for(tmp_path, TIKTOK_RETRY_BACKOFF_BASE=0))
    playlist = api_request(api.PLAYLIST_INFO_PATH, **{api.MAY_SUCCEED_WITH_500: True})
    with_data = answer(playlist, 500, {"code": "internal_error"}, data={"playlist_id": 1})
    assert await retry.process_response(playlist, with_data) is with_data, "a 500 that carries its data"
    without_data = answer(playlist, 500, {"code": "internal_error"})
    assert isinstance(await retry.process_response(playlist, without_data), Request)

    expired = {"code": "invalid_params", "message": "Search Id 7350000000000000000 is invalid or expired"}
    fresh = api_request(api.VIDEO_QUERY_PATH)
    assert isinstance(await retry.process_response(fresh, answer(fresh, 400, expired)), Request)
    resumed = api_request(api.VIDEO_QUERY_PATH, **{api.RESUMED_SEARCH: True})
    stale = answer(resumed, 400, expired)
    assert await retry.process_response(resumed, stale) is stale, "an old run's search id: the spider starts afresh"

    bad = answer(fresh, 400, {"code": "invalid_params", "message": "Invalid field name"})
    assert await retry.process_response(fresh, bad) is bad, "a wrong request stays wrong"
    elsewhere = Request("http://127.0.0.1:1/v2/research/user/info/", method="POST")
    outage = answer(elsewhere, 500)
    assert await retry.process_response(elsewhere, outage) is outage, "not the API: not ours to retry"


# -- pace ------------------------------------------------------------------------------------


class Clock:
    """A clock a test moves: the pace middleware's ``now``."""

    def __init__(self) -> None:
        self.time = 1000.0

    def __call__(self) -> float:
        return self.time


@deferred_f_from_coro_f
async def test_the_rate_halves_on_a_429_and_comes_back_a_step_each_calm_minute(tmp_path: Path) -> None:
    from tiktok_spiders.middlewares import pace

    crawler = crawler_for(tmp_path, TIKTOK_MAX_REQUESTS_PER_SECOND=10, TIKTOK_RETRY_BACKOFF_MAX=60)
    middleware = build_from_crawler(pace.PaceMiddleware, crawler)
    middleware.now = clock = Clock()

    def sent() -> Request:
        return api_request(**{pace.SENT_AT: clock.time})

    request = sent()
    limited = answer(request, 429, {"code": api.RATE_LIMIT_EXCEEDED}, **{"Retry-After": "1"})
    assert isinstance(await middleware.process_response(request, limited), Request), "asked again"
    assert middleware.interval == 0.2, "10 a second, halved"
    rates = []
    for _ in range(12):  # a calm hour: a success every 10 s
        for _ in range(6):
            clock.time += 10
            request = sent()
            await middleware.process_response(request, answer(request, 200))
        rates.append(round(1 / middleware.interval, 2))
    assert rates[:4] == [6.25, 7.81, 9.77, 10.0], "a quarter more a calm minute, never past the cap set"
    assert rates[-1] == 10.0 and crawler.stats.get_value("tiktok/rate_limit/max_requests_per_second") == 10.0

    clock.time += 1
    request = sent()
    await middleware.process_response(request, answer(request, 429, {"code": api.RATE_LIMIT_EXCEEDED}))
    clock.time += 30
    request = sent()
    await middleware.process_response(request, answer(request, 200))
    assert middleware.interval == 0.2, "half a minute of calm is not a minute"


@deferred_f_from_coro_f
async def test_without_a_cap_set_the_rate_comes_back_to_no_cap(tmp_path: Path) -> None:
    from tiktok_spiders.middlewares import pace

    crawler = crawler_for(tmp_path, TIKTOK_MAX_REQUESTS_PER_SECOND=0, TIKTOK_RETRY_BACKOFF_MAX=60)
    middleware = build_from_crawler(pace.PaceMiddleware, crawler)
    middleware.now = clock = Clock()
    for sent_at in range(1, 41):  # 40 requests in the second before the 429
        middleware.recently_sent.append(clock.time - 1 + sent_at / 40)
    request = api_request(**{pace.SENT_AT: clock.time})
    await middleware.process_response(request, answer(request, 429, {"code": api.RATE_LIMIT_EXCEEDED}))
    assert middleware.interval == 0.05, "half of what went through"
    for _ in range(30):
        clock.time += 61
        request = api_request(**{pace.SENT_AT: clock.time})
        await middleware.process_response(request, answer(request, 200))
    assert middleware.interval == 0.0
    assert crawler.stats.get_value("tiktok/rate_limit/max_requests_per_second") == 0


def test_the_backoff_grows_is_capped_and_honours_retry_after(tmp_path: Path) -> None:
    for attempt in range(12):
        cap = min(60.0, 1.0 * 2**attempt)
        assert all(cap / 2 <= api.backoff(attempt, 1.0, 60.0) <= cap for _ in range(50))
    retry = build_from_crawler(ApiRetryMiddleware, crawler_for(tmp_path))
    request = api_request()
    assert retry.backoff(request, answer(request, 429, **{"Retry-After": "7"})) == 7, "the server's word, uncapped"
    assert api.retry_after(answer(request, 429, **{"Retry-After": "soon"})) is None
    assert api.json_error(Response(request.url, status=502, body=b"<html>Bad gateway</html>")) == ("", "")


# -- the daily quota -------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_the_quota_is_reserved_before_each_request_and_stops_the_crawl_when_spent(tmp_path: Path) -> None:
    crawler = crawler_for(tmp_path, TIKTOK_DAILY_REQUEST_LIMIT=2, TIKTOK_DAILY_FOLLOW_REQUEST_LIMIT=1)
    quota = build_from_crawler(DailyQuotaMiddleware, crawler)
    assert await quota.process_request(api_request(**{TOKEN_REQUEST: True})) is None  # the token is free
    for _ in range(2):
        await quota.process_request(api_request())
    assert crawler.stats.get_value("tiktok/quota_left_today") == 0
    with pytest.raises(IgnoreRequest):
        await quota.process_request(api_request())
    assert crawler.stats.get_value("tiktok/requests") == 2
    quota.ledger.commit()
    quota.ledger.close()
    # the followers spider: a quota of its own (kinds.py), counted in the same ledger and quota file
    followers = crawler_for(tmp_path, "followers", TIKTOK_DAILY_REQUEST_LIMIT=2, TIKTOK_DAILY_FOLLOW_REQUEST_LIMIT=1)
    follow_quota = build_from_crawler(DailyQuotaMiddleware, followers)
    await follow_quota.process_request(api_request(api.FOLLOWERS_PATH))
    with pytest.raises(IgnoreRequest):
        await follow_quota.process_request(api_request(api.FOLLOWERS_PATH))
    assert followers.stats.get_value("tiktok/quota_bucket") == "follow"
    today = clock.today().isoformat()
    assert follow_quota.ledger.requests_per_day() == {today: 2, f"{today}/follow": 1}, "counted in the study's ledger"
    assert follow_quota.quota.spent(clock.today()) == 2, "and in the key's quota file, shared by every study"


# -- pipelines and the ledger -----------------------------------------------------------------


def test_validation_keeps_ids_exact_and_cleans_text_it_counts(tmp_path: Path) -> None:
    crawler = crawler_for(tmp_path)
    validate = build_from_crawler(ValidationPipeline, crawler)
    comment = validate.process_item(Comment(id="7300000000000000001", video_id=7, text="a\x00b \ud83d"))
    assert comment.id == 7300000000000000001 and comment.text == "ab \ufffd"
    assert crawler.stats.get_value("tiktok/validation/text/nul_stripped") == 1
    assert crawler.stats.get_value("tiktok/validation/text/surrogate_replaced") == 1
    for bad, problem in ((Comment(id=1.5, video_id=7), "id/not_an_integer"), (Comment(id=1), "video_id/missing")):
        with pytest.raises(DropItem):
            validate.process_item(bad)
        assert crawler.stats.get_value(f"tiktok/validation/{problem}") == 1
    with pytest.raises(DropItem):
        validate.process_item(Video(id=2**63))
    assert crawler.stats.get_value("tiktok/dropped") == 3


def test_the_ledger_stores_each_record_once(tmp_path: Path) -> None:
    crawler = crawler_for(tmp_path)
    store = build_from_crawler(LedgerPipeline, crawler)
    store.process_item(Video(id=1, username="a"))
    with pytest.raises(DropItem):
        store.process_item(Video(id=1, username="a, again"))
    store.ledger.finish_page("units", "seed", cursor=None, search_id=None, has_more=False)
    assert [json.loads(line)["username"] for line in store.ledger.record_lines("videos")] == ["a"]
    assert crawler.stats.get_value("tiktok/duplicates/videos") == 1
    store.ledger.close()


def test_a_seed_goes_on_from_its_last_committed_page(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.finish_page("videos", "window-1", cursor=100, search_id="s1", has_more=True)
    ledger.finish_page("videos", "window-1", cursor=200, search_id="s1", has_more=True)
    state = ledger.seed("videos", "window-1")
    assert state is not None and (state.status, state.cursor, state.search_id, state.pages) == (OPEN, 200, "s1", 2)
    ledger.finish_page("videos", "window-1", cursor=None, search_id="s1", has_more=False)
    ledger.fail_seed("videos", "window-2", "http_500 after 8 retries")
    assert ledger.seed_counts("videos") == {DONE: 1, FAILED: 1}
    assert ledger.failed_seeds("videos") == [("window-2", "http_500 after 8 retries")]
    ledger.close()
    reopened = Ledger(tmp_path)
    assert reopened.seed("videos", "window-1") is not None, "committed: it outlives the process"
    reopened.close()


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("TIKTOK_RETRY_TIMES", "abc", "TIKTOK_RETRY_TIMES must be a whole number, not 'abc'"),
        ("TIKTOK_RETRY_TIMES", "-1", "TIKTOK_RETRY_TIMES must be at least 0"),
        ("TIKTOK_RETRY_BACKOFF_BASE", "-2", "TIKTOK_RETRY_BACKOFF_BASE must be at least 0"),
        ("TIKTOK_DAILY_REQUEST_LIMIT", "1k", "TIKTOK_DAILY_REQUEST_LIMIT must be a whole number"),
        ("TIKTOK_TABLES_MEMORY_MB", "10", "TIKTOK_TABLES_MEMORY_MB must be at least 64, not '10'"),
        ("TIKTOK_WAIT_FOR_QUOTA_RESET", "yes please", "TIKTOK_WAIT_FOR_QUOTA_RESET must be true or false"),
        ("TIKTOK_FEED_FORMATS", "jsonl,xml", "TIKTOK_FEED_FORMATS: unknown format 'xml'"),
        ("TIKTOK_API_BASE_URL", "open.tiktokapis.com", "TIKTOK_API_BASE_URL must be an http(s) URL"),
    ],
)
def test_a_bad_setting_is_named_in_one_sentence(tmp_path: Path, setting: str, value: str, message: str) -> None:
    settings = Settings(settings_for(NoServer(), tmp_path, **{setting: value}))
    with pytest.raises(ConfigError) as error:
        check_settings(settings)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


# -- the query builder -----------------------------------------------------------------------


def test_a_query_is_checked_as_the_api_checks_it_and_sent_as_given() -> None:
    raw = {
        "and": [{"field_name": "hashtag_name", "operation": "IN", "field_values": ["climate", "vote"]}],
        "not": [{"field_name": "region_code", "operation": "EQ", "field_values": ["US"]}],
    }
    assert Query.parse(raw).as_json() == raw
    for wrong, said in (
        ({}, "at least one"),
        ({"and": [{"field_name": "region_code", "operation": "EQ", "field_values": ["UK"]}]}, "use GB"),
        ({"and": [{"field_name": "view_count", "operation": "GT", "field_values": ["many"]}]}, "must be a number"),
        ({"and": [{"field_name": "keyword", "operation": "EQ", "field_values": ["a", "b"]}]}, "one field value"),
        ({"and": [{"field_name": "keyword", "operation": "GT", "field_values": ["a"]}]}, "not supported"),
        ({"or": [{"field_name": "hashtag", "operation": "IN", "field_values": ["a"]}]}, "unknown field_name"),
        ({"maybe": []}, "unknown query key"),
    ):
        with pytest.raises(QueryError, match=said):
            Query.parse(wrong)


def test_a_time_without_its_utc_offset_is_an_error_not_a_guess() -> None:
    kept = tables.typed(pd.DataFrame({"collected_at": ["2026-12-01T10:00:00Z", "2026-12-01 12:00:00+02:00", ""]}))
    assert kept["collected_at"].tolist()[:2] == [pd.Timestamp("2026-12-01 10:00", tz="UTC")] * 2
    for text in ("2026-12-01 10:00:00", "2026-12-01", "01/12/2026 10:00"):  # as a spreadsheet may save them
        with pytest.raises(ValueError, match="does not say its UTC offset"):
            tables.typed(pd.DataFrame({"collected_at": [text]}, dtype=object))


def test_ids_are_exact_int64_or_nothing() -> None:
    assert api.as_int("7300000000000000001") == 7300000000000000001
    assert api.as_int(2**63 - 1) == 2**63 - 1
    assert [api.as_int(value) for value in (2**63, 1.0, True, "12a", None)] == [None] * 5


# -- a page's items through the pipelines ------------------------------------------------------


class BrokenPipeline:
    """A pipeline with a bug: Scrapy's item_error, then the page is not committed."""

    def process_item(self, item: Any) -> Any:
        if item.text == "boom":
            raise RuntimeError("a bug in a pipeline")
        return item


@deferred_f_from_coro_f
async def test_a_pages_items_go_through_the_pipelines_with_scrapys_signals_and_log_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tiktok_spiders.spiders.comments import CommentsSpider

    pipelines = {**ITEM_PIPELINES, "tests.test_units.BrokenPipeline": 50}
    crawler = get_crawler(CommentsSpider, settings_for(NoServer(), tmp_path / "data", ITEM_PIPELINES=pipelines))
    crawler.spider = spider = crawler._create_spider(video_ids="7")
    crawler.engine = crawler._create_engine()
    sent: dict[str, list[Any]] = {"scraped": [], "dropped": [], "error": []}
    receivers = [lambda item, name=name, **_: sent[name].append(item) for name in sent]  # held: weakly connected
    for name, receiver in zip(sent, receivers, strict=True):
        crawler.signals.connect(receiver, getattr(signals, f"item_{name}"))
    page = api_request(api.COMMENT_LIST_PATH)
    response = answer(page, 200)
    kept = Comment(id=1, video_id=7, text="first")
    stored = await process_items(spider, [kept, Comment(id=1, video_id=7, text="again"), Comment(id=2)], response)
    assert stored == [kept] and sent["scraped"] == [kept] and len(sent["dropped"]) == 2
    assert "Dropped a Comment: video_id is missing" in caplog.text and "again" not in caplog.text, "one line, no record"
    with pytest.raises(RuntimeError):
        await process_items(spider, [Comment(id=3, video_id=7, text="boom")], response)
    assert [item.id for item in sent["error"]] == [3]
    spider.ledger.close()


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the handler runs in here, at once


def _reported_as_duckdbs_own_error(tmp_path: Path) -> None:
    try:
        _ctrl_c()
    except KeyboardInterrupt as error:
        raise RuntimeError("Query interrupted") from error


def _dropped(tmp_path: Path) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        _ctrl_c()


def _pressed_while_duckdb_stages_chunks(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": range(100_000), "text": ["so true"] * 100_000})
    with staging.StudyDatabase(tmp_path / "staging") as study:
        study.connection.execute("CREATE TABLE t (id BIGINT, text VARCHAR)")
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            study.connection.register("incoming", frame)
            study.connection.execute("INSERT INTO t SELECT * FROM incoming")
            study.connection.unregister("incoming")


@pytest.mark.parametrize("work", [_reported_as_duckdbs_own_error, _dropped, _pressed_while_duckdb_stages_chunks])
def test_ctrl_c_ends_tables_and_report_as_ctrl_c_whatever_duckdb_makes_of_it(tmp_path: Path, work: Any) -> None:
    """DuckDB turns a KeyboardInterrupt into a RuntimeError "Query interrupted", an
    InvalidInputException, or nothing; ``tables`` and ``report`` must still say "interrupted"."""
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), staging.ctrl_c_stops():
        work(tmp_path)
    assert signal.getsignal(signal.SIGINT) is before
    assert not (tmp_path / "staging").exists()


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parent.parent / "examples").glob("*.toml")), ids=lambda p: p.name
)
def test_every_example_study_file_is_one_the_study_command_takes(path: Path) -> None:
    from scrapy.spiderloader import SpiderLoader

    from tiktok_spiders.commands.study import load_study

    loader = SpiderLoader.from_settings(Settings({"SPIDER_MODULES": ["tiktok_spiders.spiders"]}))
    stages, arguments, _ = load_study(path, loader.list())
    for stage in stages:
        loader.load(stage)(**arguments[stage])  # BadArgument on an argument the spider does not take
