"""Stopping a crawl from inside it: one reason, said once, no one left waiting, an honest exit status.

Middlewares stop the crawl (the quota, rejected credentials), spiders and middlewares
sleep without holding up Ctrl-C; both use these.  :func:`exit_status` says what came of it:

- 0: finished, everything collected and written;
- 1: incomplete — something failed, the quota ran out, the crawl was interrupted, a
  file could not be written or a purge was held; running the same command again
  continues (after fixing what the error line names);
- 2: bad input or configuration (including credentials the API refuses).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest

from tiktok_spiders.terminal import note

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)
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


#: Waits at least this long are said on the terminal (a crawl that seems stuck is worse than a line).
SAID_WAIT = 10.0
_said: dict[str, float] = {}


async def wait_unless_stopping(crawler: Crawler, seconds: float, why: str | None = None) -> None:
    """Sleep, but raise :class:`CrawlStopping` as soon as the crawl is being stopped.

    Scrapy's graceful shutdown waits for every request in the downloader, so a
    request sleeping out a backoff — or the hours to the next UTC midnight —
    would keep Ctrl-C waiting that long.  A wait of :data:`SAID_WAIT` seconds or more
    is said on the terminal with ``why`` (once per ``why`` while such waits go on).
    """
    loop = asyncio.get_running_loop()
    if why and seconds >= SAID_WAIT and _said.get(why, 0.0) <= loop.time():
        _said[why] = loop.time() + seconds
        note(f"waiting {_duration(seconds)}: {why}")
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        if is_stopping(crawler):
            raise CrawlStopping("the crawl is stopping")
        await asyncio.sleep(min(left, 0.25))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def check_retry_after(crawler: Crawler, seconds: float) -> None:
    """A ``Retry-After`` longer than ``TIKTOK_MAX_RETRY_AFTER`` stops the crawl (its pages stay
    open for the next run) with one line saying what the API asked, rather than sleep for days."""
    cap = crawler.settings.getfloat("TIKTOK_MAX_RETRY_AFTER")
    if seconds <= cap:
        return
    if crawler.stats.get_value("tiktok/stop_reason") is None:
        logger.error(
            "The API asked to wait %s before the next request (Retry-After), more than TIKTOK_MAX_RETRY_AFTER "
            "(%s): stopping. Run the same command again later to continue.",
            _duration(seconds),
            _duration(cap),
        )
    stop_crawl(crawler, "api_asked_to_wait")
    raise CrawlStopping("the API asked to wait too long")


BAD_INPUT_REASONS = frozenset({"invalid_credentials"})


def exit_status(crawler: Crawler) -> int:
    """0 complete, 1 incomplete (run again), 2 bad input; a failed write or a held purge is never complete."""
    if crawler.stats.get_value("tiktok/write_failed") or crawler.stats.get_value("tiktok/purge_held"):
        return 1
    finish_reason = crawler.stats.get_value("finish_reason")
    if finish_reason == "finished":
        return 0
    return 2 if finish_reason in BAD_INPUT_REASONS else 1
