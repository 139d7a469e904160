"""Downloader middlewares: access token, retries with backoff, daily quota."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


def is_api_request(crawler: Crawler, request: Request) -> bool:
    """Whether a request goes to the configured API host (compared with its port)."""
    return urlparse(request.url).netloc == urlparse(crawler.settings["TIKTOK_API_BASE_URL"]).netloc


def stop_crawl(crawler: Crawler, reason: str) -> None:
    """Close the spider with ``reason`` without waiting for it (safe inside a download)."""
    engine = crawler.engine
    if engine is not None and engine.spider is not None:
        crawler.stats.set_value("tiktok/stop_reason", reason)
        asyncio.ensure_future(engine.close_spider_async(reason=reason))
