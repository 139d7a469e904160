"""Answers no larger than the API's pages can be: a broken or hostile server cannot fill memory.

Every API request gets its endpoint's bound (``api.ANSWER_MAX_BYTES``) as Scrapy's
``download_maxsize``, which Scrapy applies while the answer arrives and again while a
compressed one is inflated (1 MB of gzip can inflate to 1 GiB): a larger answer is
dropped unread and its page is a failure with the reason, asked again by the next run.
Scrapy's own default, ``DOWNLOAD_MAXSIZE``, is 1 GiB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.utils.httpobj import urlparse_cached

from tiktok_spiders import api
from tiktok_spiders.middlewares import is_api_request

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


class AnswerSizeMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.default = crawler.settings.getint("DOWNLOAD_MAXSIZE")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AnswerSizeMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        if "download_maxsize" in request.meta or not is_api_request(self.crawler, request):
            return
        bound = api.ANSWER_MAX_BYTES.get(urlparse_cached(request).path, self.default)
        request.meta["download_maxsize"] = bound
        request.meta["download_warnsize"] = bound // 2
