"""The daily quota middleware: reserved before each request, per bucket, in the ledger and the key's file."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.misc import build_from_crawler

from tests.conftest import api_request, crawler_for
from tiktok_spiders import api, clock
from tiktok_spiders.middlewares.quota import DailyQuotaMiddleware
from tiktok_spiders.token import TOKEN_REQUEST


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
