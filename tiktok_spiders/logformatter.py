"""Log formatting: no log line per scraped item, one short line per dropped one.

Scrapy logs every scraped item at DEBUG, and builds the log record even when
DEBUG is filtered out.  Our items are in the ledger and the feeds; a line per
record would flood DEBUG logs of a 100,000-record study and cost a large share
of the per-record processing time (measured with bench/run.py).  A dropped item
is said in one line (which field, what was wrong), not with the whole record.
``spiders.pages.process_items`` calls these as Scrapy's scraper does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.logformatter import LogFormatter

if TYPE_CHECKING:
    from scrapy.logformatter import LogFormatterResult


class QuietLogFormatter(LogFormatter):
    def scraped(self, item: Any, response: Any, spider: Any) -> None:  # type: ignore[override]
        return None

    def dropped(self, item: Any, exception: BaseException, response: Any, spider: Any) -> LogFormatterResult:
        said = super().dropped(item, exception, response, spider)  # the level: the drop's own, or the setting's
        return {
            **said,
            "msg": "Dropped a %(kind)s: %(exception)s",
            "args": {"kind": type(item).__name__, "exception": exception},
        }
