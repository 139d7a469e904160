"""The retry middleware and the one backoff: what is retried, how long it waits, what is given back."""

from __future__ import annotations

from pathlib import Path

from scrapy.http import Request, Response
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler

from tests.conftest import answer, api_request, crawler_for
from tiktok_spiders import api
from tiktok_spiders.middlewares.retry import ApiRetryMiddleware


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


def test_the_backoff_grows_is_capped_and_honours_retry_after(tmp_path: Path) -> None:
    for attempt in range(12):
        cap = min(60.0, 1.0 * 2**attempt)
        assert all(cap / 2 <= api.backoff(attempt, 1.0, 60.0) <= cap for _ in range(50))
    retry = build_from_crawler(ApiRetryMiddleware, crawler_for(tmp_path))
    request = api_request()
    assert retry.backoff(request, answer(request, 429, **{"Retry-After": "7"})) == 7, "the server's word, uncapped"
    assert api.retry_after(answer(request, 429, **{"Retry-After": "soon"})) is None
    assert api.json_error(Response(request.url, status=502, body=b"<html>Bad gateway</html>")) == ("", "")
