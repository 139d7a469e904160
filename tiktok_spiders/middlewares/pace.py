"""How fast requests go: a request-rate cap, and slowing down when the API says so.

A 429 ``rate_limit_exceeded`` (or any 429 but the daily quota's) says nothing
about the page, only that the crawl goes too fast — and every request sent into
the limit costs quota.  So the whole crawl slows down: every API request waits
(``Retry-After``, else a backoff that grows while 429s keep coming right after
the pause), the request rate is halved each time a 429 follows a success, and
the refused page is asked again with a budget of its own, so a busy minute
cannot use up the retries meant for real failures (those are the retry
middleware's).  A limit is often a busy minute, not the crawl's pace for good:
after :data:`CALM_SECONDS` without a 429 the rate goes up a quarter, a step a
calm spell, back to where it started (a day's crawl is not held at half speed
by one burst at its start).

Requests wait here, before the access token is put in, so a long wait never
sends a token that expired in the meantime.  ``TIKTOK_MAX_REQUESTS_PER_SECOND``
sets a cap from the start (0: none until the API asks for one).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from tiktok_spiders import api
from tiktok_spiders.middlewares import is_api_request
from tiktok_spiders.stopping import check_retry_after, wait_unless_stopping

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

#: How often a request was refused by the rate limit, and when it was last sent.
RATE_LIMITED_TIMES = "tiktok_rate_limited_times"
SENT_AT = "tiktok_sent_at"
#: Seconds without a 429 after which the rate goes up a step, and the step (the interval times 0.8).
CALM_SECONDS = 60.0
SPEED_UP = 0.8
#: An interval below this, when no cap was set: no cap again.
UNCAPPED_BELOW = 0.01


class PaceMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        rate = settings.getfloat("TIKTOK_MAX_REQUESTS_PER_SECOND")
        self.interval = self.configured_interval = 1 / rate if rate > 0 else 0.0
        self.max_retry_times = settings.getint("TIKTOK_RETRY_TIMES")
        self.backoff_base = settings.getfloat("TIKTOK_RETRY_BACKOFF_BASE")
        self.backoff_max = settings.getfloat("TIKTOK_RETRY_BACKOFF_MAX")
        # event-loop clock times
        self.last_sent_at = float("-inf")
        self.paused_at = float("-inf")
        self.resume_at = 0.0
        self.streak = 0  # 429s in a row, each after the pause the one before caused
        self.recently_sent: deque[float] = deque(maxlen=10_000)
        self.calm_since = float("-inf")  # the last 429, or the last step up since

    @staticmethod
    def now() -> float:
        """The event loop's clock (a test moves its own)."""
        return asyncio.get_running_loop().time()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PaceMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        """Wait for this request's turn: after any pause, one per ``interval``."""
        if not is_api_request(self.crawler, request):
            return
        # re-checked after every sleep: the pause or the rate may have changed meanwhile
        while (wait := max(self.resume_at, self.last_sent_at + self.interval) - self.now()) > 0:
            await wait_unless_stopping(self.crawler, wait, "the API's rate limit was reached")
        self.last_sent_at = request.meta[SENT_AT] = self.now()
        self.recently_sent.append(self.last_sent_at)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if not is_api_request(self.crawler, request):
            return response
        if response.status == 200:
            if request.meta.get(SENT_AT, 0.0) >= self.paused_at:
                self.streak = 0
            if self.interval > self.configured_interval:
                self._speed_up()
            return response
        code = api.json_error(response)[0] if response.status == 429 else None
        if code is None or code == api.DAILY_QUOTA_EXCEEDED:  # the quota is the quota middleware's
            return response
        # rate_limit_exceeded, or a 429 without the API's envelope (a gateway's page): too fast
        self.crawler.stats.inc_value(f"tiktok/api_error/{code or 'http_429'}")
        self._slow_down(request, response)
        times = request.meta.get(RATE_LIMITED_TIMES, 0) + 1
        if request.meta.get("dont_retry") or times > request.meta.get("max_retry_times", self.max_retry_times):
            logger.error("Gave up on %s: refused by the API's rate limit %d times.", request, times)
            self.crawler.stats.inc_value("tiktok/retry/max_reached")
            return response
        self.crawler.stats.inc_value(f"tiktok/retry/reason_count/{api.RATE_LIMIT_EXCEEDED}")
        retry = request.replace(dont_filter=True)
        retry.meta[RATE_LIMITED_TIMES] = times
        return retry

    def _slow_down(self, request: Request, response: Response) -> None:
        """Pause every request, and halve the rate if all went well until now.

        The 429s of one burst count once.  A 429 right after a pause means the
        pause was too short (the next one is longer), not that the rate is too high.
        """
        now = self.now()
        if request.meta.get(SENT_AT, now) < self.paused_at:
            return  # sent before we slowed down: already accounted for
        if self.streak == 0:
            sent_last_second = sum(1 for sent in self.recently_sent if sent > now - 1.0)
            halved = 2 * self.interval if self.interval else 2 / max(sent_last_second, 1)
            self.interval = min(self.backoff_max, halved)
        self.streak += 1
        pause = api.retry_after(response)
        if pause is not None:
            check_retry_after(self.crawler, pause)  # past TIKTOK_MAX_RETRY_AFTER: the crawl stops
        if pause is None:
            pause = api.backoff(self.streak - 1, self.backoff_base, self.backoff_max)
        self.paused_at, self.resume_at = now, max(self.resume_at, now + pause)
        self.calm_since = now
        self.crawler.stats.inc_value("tiktok/rate_limit/pauses")
        self.crawler.stats.set_value("tiktok/rate_limit/max_requests_per_second", round(1 / self.interval, 2))
        logger.info(
            "The API's rate limit was reached: pausing %.1f s, then at most %.1f requests a second.",
            pause,
            1 / self.interval,
        )

    def _speed_up(self) -> None:
        """A step back towards the rate the crawl began with, once the API has been calm a while."""
        now = self.now()
        if now - self.calm_since < CALM_SECONDS:
            return
        self.calm_since = now
        self.interval = max(self.configured_interval, self.interval * SPEED_UP)
        if not self.configured_interval and self.interval < UNCAPPED_BELOW:
            self.interval = 0.0
        rate = round(1 / self.interval, 2) if self.interval else 0  # 0: no cap, as the setting says it
        self.crawler.stats.set_value("tiktok/rate_limit/max_requests_per_second", rate)
        logger.info(
            "No rate limit for %.0f s: now at most %s requests a second.",
            CALM_SECONDS,
            f"{rate:.1f}" if rate else "as many",
        )
