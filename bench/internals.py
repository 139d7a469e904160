"""What each place that steps around Scrapy's defaults saves, measured against Scrapy's own way.

    python bench/internals.py

docs/scrapy-internals.md lists these places and why each is kept; this measures them,
each beside Scrapy's default in the same run (no network, about a minute):

- items: a page's items through ``spiders.pages.process_items`` against Scrapy's
  ``Scraper.start_itemproc_async`` (the path of items a callback yields), per item;
- stats: ``inc_value`` on ``tiktok_spiders.stats.StatsCollector`` against Scrapy's
  ``MemoryStatsCollector``;
- start-up: importing the two components the base settings leave out
  (remote control, cookies), in a fresh interpreter;
- exit: the interpreter's final garbage collection after a crawl's worth of objects,
  with ``gc.freeze()`` and without.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ITEMS = 20_000


def item_paths() -> tuple[float, float]:
    """Microseconds per item: ``process_items`` and Scrapy's scraper, with the project's pipelines."""
    from scrapy.http import JsonResponse, Request
    from scrapy.utils.test import get_crawler

    from tiktok_spiders import settings as project
    from tiktok_spiders.items import Comment
    from tiktok_spiders.spiders.comments import CommentsSpider
    from tiktok_spiders.spiders.pages import process_items

    values = {name: getattr(project, name) for name in dir(project) if name.isupper()}

    async def run(directory: Path) -> tuple[float, float]:
        values.update(TIKTOK_DATA_DIR=str(directory), TIKTOK_API_BASE_URL="http://127.0.0.1:9")
        values.update(TIKTOK_CLIENT_KEY="bench", TIKTOK_QUOTA_FILE=str(directory / "q"))
        values.update(TIKTOK_CLIENT_SECRET="bench")  # noqa: S106 - a placeholder: nothing is sent
        crawler = get_crawler(CommentsSpider, values)
        crawler.spider = spider = crawler._create_spider(video_ids="7")
        crawler.engine = engine = crawler._create_engine()
        engine.scraper.slot = type("Slot", (), {"itemproc_size": 0})()  # what open_spider sets
        response = JsonResponse("http://127.0.0.1:9/", request=Request("http://127.0.0.1:9/"), body=b"{}")
        started = time.perf_counter()
        await process_items(spider, (Comment(id=n, video_id=7, text="so true") for n in range(ITEMS)), response)
        ours = time.perf_counter() - started
        started = time.perf_counter()
        for n in range(ITEMS, 2 * ITEMS):
            await engine.scraper.start_itemproc_async(Comment(id=n, video_id=7, text="so true"), response=response)
        scrapys = time.perf_counter() - started
        spider.ledger.close()
        return ours / ITEMS * 1e6, scrapys / ITEMS * 1e6

    with tempfile.TemporaryDirectory() as directory:
        return asyncio.run(run(Path(directory)))


def stats_calls() -> tuple[float, float]:
    """Microseconds per ``inc_value``: ours and Scrapy's."""
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    from tiktok_spiders.stats import StatsCollector

    crawler = get_crawler()
    timings = []
    for cls in (StatsCollector, MemoryStatsCollector):
        stats = cls(crawler)
        calls = 200_000
        timings.append(timeit.timeit(lambda s=stats: s.inc_value("tiktok/requests"), number=calls) / calls * 1e6)
    return timings[0], timings[1]


def left_out_imports() -> float:
    """Seconds to import the remote-control extension and the cookies middleware after Scrapy."""
    code = (
        "import time, scrapy.crawler, scrapy.extensions.telnet; t = time.perf_counter(); "
        "import scrapy.extensions.remote_control, scrapy.downloadermiddlewares.cookies; "
        "print(time.perf_counter() - t)"
    )
    runs = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(5)]
    return sorted(runs)[len(runs) // 2]


def final_collection() -> tuple[float, float]:
    """Seconds of a full collection over a crawl's objects (Scrapy, Twisted, pandas loaded;
    a million small records' worth of dicts alive): after ``gc.freeze()`` and without."""
    code = (
        "import gc, time, scrapy.crawler, pandas, twisted.internet.asyncioreactor\n"
        "from tiktok_spiders.spiders import base\n"
        "kept = [{'id': n, 'text': 'so true', 'n': [n]} for n in range(1_000_000)]\n"
        "{freeze}t = time.perf_counter(); gc.collect(); print(time.perf_counter() - t)\n"
    )
    timings = []
    for freeze in ("gc.freeze(); ", ""):
        output = subprocess.check_output([sys.executable, "-c", code.replace("{freeze}", freeze)], text=True)
        timings.append(float(output))
    return timings[0], timings[1]


def main() -> None:
    ours, scrapys = item_paths()
    print(f"items: process_items {ours:.0f} µs/item, Scrapy's scraper {scrapys:.0f} µs/item = {scrapys / ours:.1f}x")
    ours, scrapys = stats_calls()
    print(f"stats: inc_value {ours:.2f} µs, Scrapy's MemoryStatsCollector {scrapys:.2f} µs = {scrapys / ours:.1f}x")
    print(f"start-up: importing the two left-out components {left_out_imports() * 1000:.0f} ms per crawl process")
    frozen, unfrozen = final_collection()
    print(f"exit: final collection {frozen * 1000:.0f} ms after gc.freeze(), {unfrozen * 1000:.0f} ms without")
    gc.collect()


if __name__ == "__main__":
    main()
