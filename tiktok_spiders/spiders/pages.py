"""A page stored exactly once: its items through the pipelines, then its cursor, in one commit.

The pipelines stage a page's records in the ledger (``pipelines/store.py``); the
page is committed with the next cursor only once every item has gone through, so
a crash or a failed write loses the whole page or none of it, and the next run
asks it again.  Records are counted only once committed: a summary never counts
what was lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DropItem
from scrapy.utils.log import logformatter_adapter
from twisted.python.failure import Failure

from tiktok_spiders import clock
from tiktok_spiders.kinds import kind_of
from tiktok_spiders.ledger import LedgerWriteError

if TYPE_CHECKING:
    from scrapy.http import Response

    from tiktok_spiders.spiders.base import ApiSpider


def collection_time() -> str:
    """When a page was fetched: UTC, to the second, ISO 8601 (``collected_at``)."""
    return clock.stamp()


async def commit_page(
    spider: ApiSpider, seed: str, items: list[Any], response: Response, follow: dict[str, Any] | None
) -> None:
    """Store a page's items, then its seed's next cursor (``follow``; None: the seed is done).

    Raises :class:`LedgerWriteError` when the ledger cannot be written: the page stays open.
    """
    stored = await process_items(spider, items, response)
    spider.ledger.finish_page(
        spider.name,
        seed,
        cursor=follow.get("cursor") if follow else None,
        search_id=follow.get("search_id") if follow else None,
        has_more=follow is not None,
    )
    stats = spider.crawler.stats
    for item in stored:
        kind = kind_of(item, spider.name)
        if kind is not None:
            stats.inc_value(f"tiktok/records/{kind.feed}")


async def process_items(spider: ApiSpider, items: Iterable[Any], response: Response) -> list[Any]:
    """Send a page's items through the item pipelines, one after the other; the items kept.

    This is Scrapy's ``Scraper.start_itemproc_async`` (2.19) item by item, in the
    callback: the same log formatter calls and the same signals (``item_scraped``,
    ``item_dropped``, ``item_error``), sent synchronously.  Scrapy's asynchronous
    signal dispatch per item measured half of the crawl's time
    (``docs/scrapy-internals.md``).  An error other than a drop is said and
    signalled as Scrapy does, then raised: the page is not committed.
    """
    crawler = spider.crawler
    assert crawler.engine is not None
    itemproc = crawler.engine.scraper.itemproc
    formatter = crawler.logformatter
    signals_ = crawler.signals
    logger = spider.logger
    stored = []
    for item in items:
        try:
            kept = await itemproc.process_item_async(item)
        except DropItem as drop:
            if (said := formatter.dropped(item, drop, response, spider)) is not None:
                logger.log(*logformatter_adapter(said), extra={"spider": spider, "item": item})
            signals_.send_catch_log(signals.item_dropped, item=item, response=response, spider=spider, exception=drop)
            continue
        except LedgerWriteError:
            raise  # said in one line by the spider, which stops the crawl
        except Exception as error:
            said = formatter.item_error(item, error, response, spider)
            logger.log(*logformatter_adapter(said), extra={"spider": spider, "item": item}, exc_info=True)
            signals_.send_catch_log(signals.item_error, item=item, response=response, spider=spider, failure=Failure())
            raise
        if (said := formatter.scraped(kept, response, spider)) is not None:
            logger.log(*logformatter_adapter(said), extra={"spider": spider, "item": kept})
        stored.append(kept)
        signals_.send_catch_log(signals.item_scraped, item=kept, response=response, spider=spider)
    return stored
