"""The project's stats collector is Scrapy's in-memory one, minus a per-call cost."""

from __future__ import annotations

from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from tiktok_spiders import settings as project_settings
from tiktok_spiders.spiders.videos import VideosSpider
from tiktok_spiders.stats import StatsCollector


def exercise(stats: MemoryStatsCollector) -> dict:
    stats.open_spider()
    stats.set_value("start", 1)
    for _ in range(3):
        stats.inc_value("tiktok/records/videos")
    stats.inc_value("tiktok/records/videos", 5)
    stats.inc_value("counted/from", start=10)
    stats.max_value("peak", 4)
    stats.max_value("peak", 2)
    stats.min_value("low", 4)
    stats.min_value("low", 2)
    assert stats.get_value("missing", "default") == "default"
    snapshot = dict(stats.get_stats())
    stats.close_spider(reason="finished")
    return snapshot


def test_the_stats_collector_keeps_stats_as_scrapys_does() -> None:
    ours = get_crawler(VideosSpider, {"STATS_CLASS": project_settings.STATS_CLASS})
    scrapys = get_crawler(VideosSpider, {"STATS_CLASS": "scrapy.statscollectors.MemoryStatsCollector"})
    assert type(ours.stats) is StatsCollector
    expected = {"start": 1, "tiktok/records/videos": 8, "counted/from": 11, "peak": 4, "low": 2}
    assert exercise(ours.stats) == exercise(scrapys.stats) == expected
