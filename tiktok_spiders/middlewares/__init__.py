"""Downloader middlewares: access token, retries with backoff, pace, daily quota."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlparse

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
