"""Scrapy's in-memory stats, without the cost of its deprecation shim.

In Scrapy 2.19 ``StatsCollector.__getattribute__`` wraps every stats method to
warn when it is passed a ``spider`` argument, and on every other attribute it
reads (``self._stats`` inside each ``inc_value``) it first looks for a cached
wrapper and catches the ``AttributeError``.  That makes one ``inc_value`` about
5 µs instead of 0.3 µs; a crawl calls it twice per record and some ten times per
request (Scrapy's core stats and downloader stats, ours), which measured 8% of the
comments stage's CPU (py-spy).  Nothing in this project passes ``spider``, and a
third-party caller that did would still work, only without the warning.
"""

from __future__ import annotations

from scrapy.statscollectors import MemoryStatsCollector


class StatsCollector(MemoryStatsCollector):
    __getattribute__ = object.__getattribute__
