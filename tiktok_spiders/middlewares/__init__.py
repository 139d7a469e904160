"""Downloader middlewares: access token, retries with backoff, daily quota."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


def is_api_request(crawler: Crawler, request: Request) -> bool:
    """Whether a request goes to the configured API host (compared with its port)."""
    return urlparse_cached(request).netloc == netloc(crawler.settings["TIKTOK_API_BASE_URL"])


@cache
def netloc(url: str) -> str:
    # asked by four middlewares for every request and response
    return urlparse(url).netloc


_closing: set[asyncio.Future] = set()


def stop_crawl(crawler: Crawler, reason: str) -> None:
    """Close the spider with ``reason`` without waiting for it (safe inside a download)."""
    engine = crawler.engine
    if engine is not None and engine.spider is not None:
        crawler.stats.set_value("tiktok/stop_reason", reason)
        # kept until it is done: the event loop holds tasks only weakly
        closing = asyncio.ensure_future(engine.close_spider_async(reason=reason))
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)


class CrawlStopping(IgnoreRequest):
    """Not sent: the crawl is stopping (Ctrl-C, SIGTERM, quota); the page stays open."""


def is_stopping(crawler: Crawler) -> bool:
    """Whether the crawl is being stopped: by a signal (``Crawler.stop``) or by :func:`stop_crawl`."""
    return not crawler.crawling or crawler.stats.get_value("tiktok/stop_reason") is not None


async def wait_unless_stopping(crawler: Crawler, seconds: float) -> None:
    """Sleep, but raise :class:`CrawlStopping` as soon as the crawl is being stopped.

    Scrapy's graceful shutdown waits for every request in the downloader, so a
    request sleeping out a backoff — or the hours to the next UTC midnight —
    would keep Ctrl-C waiting that long.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        if is_stopping(crawler):
            raise CrawlStopping("the crawl is stopping")
        await asyncio.sleep(min(left, 0.25))
