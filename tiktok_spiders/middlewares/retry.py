"""Retries with exponential backoff and jitter, for the failures the API is known for.

Retried: 500/502/503/504 (a 504 may be an HTML page; a ``Retry-After`` is
honoured), timeouts and dropped connections, and the API's own transient 400s —
"Search Id … is invalid or expired" and "Invalid count or cursor" — which
succeed when the same page is asked again a little later.  When the retries run
out the response (or exception) reaches the spider's errback, which records the
seed as failed: nothing is skipped silently.  429 ``rate_limit_exceeded`` is the
pace middleware's: it slows the whole crawl down.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.utils.misc import load_object

from tiktok_spiders import api
from tiktok_spiders.middlewares import is_api_request
from tiktok_spiders.stopping import check_retry_after, wait_unless_stopping

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({500, 502, 503, 504, 408, 522, 524})


class ApiRetryMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.max_retry_times = settings.getint("TIKTOK_RETRY_TIMES")
        self.backoff_base = settings.getfloat("TIKTOK_RETRY_BACKOFF_BASE")
        self.backoff_max = settings.getfloat("TIKTOK_RETRY_BACKOFF_MAX")
        self.exceptions = tuple(
            load_object(path) if isinstance(path, str) else path for path in settings.getlist("RETRY_EXCEPTIONS")
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ApiRetryMiddleware:
        return cls(crawler)

    def retry_reason(self, request: Request, response: Response, code: str, message: str) -> str | None:
        """Why this answer (with its error ``code`` and ``message``) deserves another try, or None."""
        if response.status in RETRY_STATUSES:
            if response.status == 500 and request.meta.get(api.MAY_SUCCEED_WITH_500) and _has_data(response):
                return None
            return f"http_{response.status}" + (f"_{code}" if code else "")
        if response.status == 400 and api.is_retryable_bug(message):
            if api.SEARCH_ID_INVALID.search(message):
                return None if request.meta.get(api.RESUMED_SEARCH) else "search_id_invalid"
            return "invalid_cursor"
        return None

    def backoff(self, request: Request, response: Response | None = None) -> float:
        if response is not None and (wait := api.retry_after(response)) is not None:
            check_retry_after(self.crawler, wait)  # past TIKTOK_MAX_RETRY_AFTER: the crawl stops
            return wait
        attempt = request.meta.get("retry_times", 0)
        return api.backoff(attempt, self.backoff_base, self.backoff_max)

    async def _retry_later(self, request: Request, reason: str, response: Response | None = None) -> Request | None:
        assert self.crawler.spider is not None
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=reason,
            max_retry_times=request.meta.get("max_retry_times", self.max_retry_times),
            stats_base_key="tiktok/retry",
        )
        if retry is not None:
            why = f"the API answered {reason.replace('_', ' ')}; trying again (retry {retry.meta['retry_times']})"
            await wait_unless_stopping(self.crawler, self.backoff(request, response), why)
        return retry

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry") or not is_api_request(self.crawler, request):
            return response
        if response.status == 200:
            return response
        code, message = api.json_error(response)
        self.crawler.stats.inc_value(f"tiktok/api_error/{code or f'http_{response.status}'}")
        reason = self.retry_reason(request, response, code, message)
        if reason is None:
            return response
        return await self._retry_later(request, reason, response) or response

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if request.meta.get("dont_retry") or not isinstance(exception, self.exceptions):
            return None
        return await self._retry_later(request, type(exception).__name__)


def _has_data(response: Response) -> bool:
    try:
        payload = api.answer_json(response)
    except ValueError:
        return False
    return isinstance(payload, dict) and bool(payload.get("data"))
