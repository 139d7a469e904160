"""The pace middleware: the rate halves on a 429 and comes back with calm, on an injected clock."""

from __future__ import annotations

from pathlib import Path

from scrapy.http import Request
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler

from tests.conftest import Clock, answer, api_request, crawler_for
from tiktok_spiders import api


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
