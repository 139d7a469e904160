"""Log formatting: no log line per scraped item.

Scrapy logs every scraped item at DEBUG, and builds the log record even when
DEBUG is filtered out.  Our items are in the ledger and the feeds; a line per
record would flood DEBUG logs of a 100,000-record study and cost a large share
of the per-record processing time (measured with bench/run.py).
"""

from __future__ import annotations

from typing import Any

from scrapy.logformatter import LogFormatter


class QuietLogFormatter(LogFormatter):
    def scraped(self, item: Any, response: Any, spider: Any) -> None:  # type: ignore[override]
        return None
