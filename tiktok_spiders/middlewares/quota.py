"""The daily request quota: the client key's, per UTC day, never overspent.

Every API request is reserved in the key's quota file (shared by every data
directory and process of this user) before it is sent, in one atomic step, so a
crash cannot make us forget what we spent and two crawls cannot overspend
together; the data directory's ledger keeps the study's own share.  At
``TIKTOK_DAILY_REQUEST_LIMIT``, or when the API answers 429
``daily_quota_limit_exceeded``, the crawl stops cleanly (its open pages stay
open for the next run) — or, with ``TIKTOK_WAIT_FOR_QUOTA_RESET``, sleeps until
the next UTC midnight and goes on.  A request is also never sent when the data
directory's disk has no room left to store its answer.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from scrapy import signals

from tiktok_spiders import api, clock, pilot
from tiktok_spiders.kinds import FOLLOW, RESEARCH, quota_of
from tiktok_spiders.ledger import Ledger
from tiktok_spiders.middlewares import is_api_request
from tiktok_spiders.quota_file import QuotaFile
from tiktok_spiders.stopping import CrawlStopping, is_stopping, stop_crawl, wait_unless_stopping
from tiktok_spiders.token import TOKEN_REQUEST

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)


class QuotaExhausted(CrawlStopping):
    """Not sent (or refused) because today's quota is spent; the page stays open."""


class NoRoomToStore(CrawlStopping):
    """Not sent: the data directory's disk is (nearly) full; the page stays open."""


def seconds_to_utc_midnight() -> float:
    now = clock.now()
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return (midnight - now).total_seconds() + 1


class DailyQuotaMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.limit = crawler.settings.getint("TIKTOK_DAILY_REQUEST_LIMIT")
        self.follow_limit = crawler.settings.getint("TIKTOK_DAILY_FOLLOW_REQUEST_LIMIT")
        self.wait = crawler.settings.getbool("TIKTOK_WAIT_FOR_QUOTA_RESET")
        self.waiting_until = 0.0  # monotonic time of the next UTC midnight while we wait for it
        self.min_free_bytes = crawler.settings.getfloat("TIKTOK_MIN_FREE_SPACE_MB") * 1e6
        self.ledger = Ledger.for_crawler(crawler)
        self.quota = QuotaFile(crawler.settings["TIKTOK_QUOTA_FILE"], crawler.settings["TIKTOK_CLIENT_KEY"])
        crawler.signals.connect(self.quota.close, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DailyQuotaMiddleware:
        return cls(crawler)

    def _counts(self, request: Request) -> bool:
        return not request.meta.get(TOKEN_REQUEST) and is_api_request(self.crawler, request)

    async def _quota_spent(self, why: str) -> None:
        """Wait for tomorrow's quota (said once, however many requests wait), or stop the crawl."""
        if self.wait:
            now = time.monotonic()
            if self.waiting_until <= now:
                self.waiting_until = now + seconds_to_utc_midnight()
                logger.warning("%s; waiting %.0f minutes for the next UTC day.", why, (self.waiting_until - now) / 60)
            await wait_unless_stopping(self.crawler, self.waiting_until - now)
            return
        if self.crawler.stats.get_value("tiktok/stop_reason") is None:
            logger.warning("%s; stopping. Run the same command again after 00:00 UTC to continue.", why)
        stop_crawl(self.crawler, "daily_quota_exhausted")
        raise QuotaExhausted(why)

    async def process_request(self, request: Request) -> None:
        if not self._counts(request):
            return
        # followers and following have a quota of their own (20,000 calls a day): kinds.py says whose
        spider = self.crawler.spider
        bucket = quota_of(spider.name) if spider is not None else RESEARCH
        limit, name = (
            (self.follow_limit, "TIKTOK_DAILY_FOLLOW_REQUEST_LIMIT")
            if bucket == FOLLOW
            else (self.limit, "TIKTOK_DAILY_REQUEST_LIMIT")
        )
        if is_stopping(self.crawler):  # the last gate before a request is paid for
            raise CrawlStopping("the crawl is stopping")
        budget = pilot.of(self.crawler)
        if budget is not None and self.crawler.stats.get_value("tiktok/requests", 0) >= budget.requests:
            stop_crawl(self.crawler, "pilot_spent")  # a plan's pilot spends a few requests, no more
            raise CrawlStopping("the pilot's requests are spent")
        self._check_room()
        while (spent := self.quota.reserve(clock.today(), bucket, limit)) is None:
            await self._quota_spent(f"Today's {limit} requests of this client key ({name}) are spent")
        self.ledger.count_request(clock.today(), bucket)
        self.crawler.stats.inc_value("tiktok/requests")
        # for the progress bar: the quota this crawl spends (followers/following have their own)
        self.crawler.stats.set_value("tiktok/quota_left_today", limit - spent)
        self.crawler.stats.set_value("tiktok/quota_bucket", bucket)

    def _check_room(self) -> None:
        """Stop before paying for a page that could not be stored."""
        free = shutil.disk_usage(self.ledger.path.parent).free
        if free >= self.min_free_bytes:
            return
        if self.crawler.stats.get_value("tiktok/stop_reason") is None:
            message = (
                f"{self.ledger.path.parent} has {free / 1e6:.0f} MB free, less than TIKTOK_MIN_FREE_SPACE_MB "
                f"({self.min_free_bytes / 1e6:g}): stopping before the next request. Free some space and run "
                "the same command again"
            )
            self.crawler.stats.set_value("tiktok/write_failed", message)
            logger.error(message)
        stop_crawl(self.crawler, "write_failed")
        raise NoRoomToStore("no room to store the answer")

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status != 429 or not self._counts(request):
            return response
        code, _ = api.json_error(response)
        if code != api.DAILY_QUOTA_EXCEEDED:
            return response
        self.crawler.stats.inc_value(f"tiktok/api_error/{code}")
        await self._quota_spent("The API says the daily quota is exceeded")
        retry = request.copy()
        retry.dont_filter = True
        return retry
