"""Progress while a spider runs and a summary when it closes.

On a terminal (and unless ``--verbose``) progress is a bar: seeds done of the
total where it is known, records, rate, time left and today's quota left;
elsewhere (CI, nohup, a log file) a line every ``TIKTOK_PROGRESS_INTERVAL``
seconds.  The summary says what was collected, what was skipped as already
done, what failed and why (read back from the ledger), and how to continue.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.utils.asyncio import create_looping_call

from tiktok_spiders import pilot
from tiktok_spiders.kinds import FOLLOW
from tiktok_spiders.ledger import Ledger
from tiktok_spiders.terminal import TerminalHandler

if TYPE_CHECKING:
    from typing import Any

    from scrapy.crawler import Crawler

    from tiktok_spiders.spiders.base import ApiSpider as Spider

logger = logging.getLogger(__name__)

NEXT_STEP = {
    "finished": "complete.",
    "incomplete": "INCOMPLETE: run the same command again to retry what failed.",
    "daily_quota_exhausted": "STOPPED: the daily quota is spent; run the same command after 00:00 UTC to continue.",
    "invalid_credentials": "STOPPED: the API refused the client key and secret.",
    "shutdown": "INTERRUPTED: run the same command again to continue where it stopped.",
    "token_unavailable": "STOPPED: no access token (see the error above); check TIKTOK_API_BASE_URL and the "
    "network, then run the same command again.",
    "write_failed": "STOPPED: a file could not be written (see the error above); what was collected is safe in "
    "the ledger: fix it and run the same command again.",
    "purge_held": "HELD: nothing was purged (see the error above): confirm the purge, or check again.",
    "pilot_spent": "the plan's pilot has spent its requests; the study goes on from here.",
    "api_asked_to_wait": "STOPPED: the API asked to wait longer than TIKTOK_MAX_RETRY_AFTER (see the error "
    "above); run the same command again later to continue.",
}


def _clock(seconds: float) -> str:
    """``1:05:00``, ``4:07`` (h:mm:ss, m:ss), as the bar writes time."""
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def seed_line(tally: dict[str, int]) -> str:
    """The one way seeds are counted, in every summary."""
    return f"{tally['done']} done, {tally['failed']} failed, {tally['begun']} begun, {tally['not_started']} not started"


class Progress:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.interval = crawler.settings.getfloat("TIKTOK_PROGRESS_INTERVAL")
        self.task: Any = None
        self.bar: Any = None
        self.total: int | None = None
        self.started = time.monotonic()
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Progress:
        return cls(crawler)

    def spider_opened(self, spider: Spider) -> None:
        self.started = time.monotonic()
        self.total, self.bar, self.earlier = None, None, 0
        if not hasattr(spider, "progress"):
            return
        if self._draws_a_bar():
            from tqdm import tqdm

            self._count(spider)
            # initial: the seeds done by earlier runs are not this run's speed (the time left after a resume)
            self.bar = tqdm(
                total=self.total,
                initial=self.earlier,
                desc=spider.name,
                unit=spider.seed_noun,
                file=sys.stderr,
                dynamic_ncols=True,
            )
            self.task = create_looping_call(self.update_bar, spider)
            self.task.start(1.0, now=False)
        elif self.interval > 0:
            self._count(spider)
            self.task = create_looping_call(self.log_progress, spider)
            self.task.start(self.interval, now=False)

    def _count(self, spider: Spider) -> None:
        """The seeds of the crawl, and those an earlier run finished (when they can be counted cheaply)."""
        self.total = spider.seed_total()
        if self.total is not None:
            self.earlier = spider.tally()["done"]

    def _quota_left(self) -> str:
        stats = self.crawler.stats
        left = stats.get_value("tiktok/quota_left_today")
        if left is None:
            return ""
        which = "followers/following requests" if stats.get_value("tiktok/quota_bucket") == FOLLOW else "requests"
        return f"{left:,} {which} left today"

    def _time_left(self, spider: Spider) -> str:
        """At this run's own pace: seeds done and failed in it, over the time it has taken."""
        progress = spider.progress
        finished = progress["done"] + progress["failed"]
        elapsed = time.monotonic() - self.started
        if self.total is None or not finished or elapsed <= 0:
            return ""
        left = max(0, self.total - self.earlier - finished)
        seconds = left / (finished / elapsed)
        return f"about {_clock(seconds)} left" if left else ""

    @staticmethod
    def _draws_a_bar() -> bool:
        """A bar only where someone watches: a terminal, with the quiet logging of terminal.py."""
        quiet = any(isinstance(handler, TerminalHandler) for handler in logging.getLogger().handlers)
        return quiet and sys.stderr.isatty()

    def update_bar(self, spider: Spider) -> None:
        progress, stats = spider.progress, self.crawler.stats
        self.bar.n = max(self.earlier, progress["skipped"]) + progress["done"] + progress["failed"]
        records = sum(stats.get_value(f"tiktok/records/{kind.feed}", 0) for kind in spider.kinds)
        left = self._quota_left()
        self.bar.set_postfix_str(
            f"{records:,} records, {stats.get_value('tiktok/requests', 0):,} requests" + (f", {left}" if left else ""),
            refresh=False,
        )
        self.bar.refresh()

    def _records(self, spider: Spider) -> str:
        stats = self.crawler.stats
        parts = []
        for kind in getattr(spider, "kinds", ()):
            new = stats.get_value(f"tiktok/records/{kind.feed}", 0)
            duplicates = stats.get_value(f"tiktok/duplicates/{kind.feed}", 0)
            parts.append(f"{new} new {kind.feed}" + (f" (+{duplicates} duplicates)" if duplicates else ""))
        return ", ".join(parts)

    def log_progress(self, spider: Spider) -> None:
        progress = getattr(spider, "progress", None)
        if progress is None:
            return
        minutes = (time.monotonic() - self.started) / 60
        requests = self.crawler.stats.get_value("tiktok/requests", 0)
        of_total = f" of {self.total}" if self.total is not None else ""
        after = "; ".join(part for part in (self._time_left(spider), self._quota_left()) if part)
        logger.info(
            "Progress: %d%s %ss done (%d earlier), %d in progress, %d failed; %d requests (%.0f/min), %s%s",
            progress["done"] + max(self.earlier, progress["skipped"]),
            of_total,
            spider.seed_noun,
            max(self.earlier, progress["skipped"]),
            progress["scheduled"] - progress["done"] - progress["failed"],
            progress["failed"],
            requests,
            requests / minutes if minutes else 0,
            self._records(spider),
            f"; {after}" if after else "",
        )

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        if self.bar is not None:
            self.update_bar(spider)
            self.bar.close()
        progress = getattr(spider, "progress", None)
        if progress is None or pilot.of(self.crawler):  # a plan's pilot: the plan says what it did
            return
        stats = self.crawler.stats
        ledger = Ledger.for_crawler(self.crawler)
        noun = spider.seed_noun
        tally = spider.final_tally()
        if stats.get_value("tiktok/write_failed"):
            reason = "write_failed"
        elif stats.get_value("tiktok/purge_held"):
            reason = "purge_held"
        lines = [
            f"Summary of {spider.name}: {NEXT_STEP.get(reason, reason)}",
            f"  {noun}s: {seed_line(tally)} ({progress['done']} done and {progress['failed']} failed in this run)",
            f"  requests: {stats.get_value('tiktok/requests', 0)} ({stats.get_value('tiktok/retry/count', 0)} retries)",
        ]
        if spider.kinds:
            lines.append(
                f"  records: {self._records(spider)}; dropped as invalid: {stats.get_value('tiktok/dropped', 0)}"
            )
        lines += spider.summary_lines()
        for kind in spider.kinds:
            lines.append(f"  {kind.feed} in the ledger: {ledger.count_records(kind.feed)}")
        malformed = stats.get_value("tiktok/seeds/malformed", 0)
        few = stats.get_value("tiktok/seeds/below_minimum", 0)
        if malformed or few:
            skipped = [f"{malformed} malformed lines"] if malformed else []
            skipped += [f"{few} {noun}s below {getattr(spider, 'minimum_argument', 'the minimum')}"] if few else []
            lines.append(f"  seed feed: {' and '.join(skipped)} skipped")
        capped = stats.get_value(f"tiktok/{spider.name}/lists_at_cap", 0)
        if capped:
            lines.append(
                f"  {capped} {noun}s have more {spider.name} than the {getattr(spider, 'cap', 0):,} the API serves "
                "(TIKTOK_COMMENT_CAP): the rest cannot be collected"
            )
        rejected = stats.get_value("tiktok/fields_rejected", 0)
        if rejected:
            lines.append(f"  fields the API rejected and that were left out: {rejected} (see the warning above)")
        unavailable = {
            key.rsplit("/", 1)[1]: value
            for key, value in stats.get_stats().items()
            if key.startswith(f"tiktok/{spider.name}_unavailable/")
        }
        if unavailable:
            lines.append("  unavailable users: " + ", ".join(f"{n} {why}" for why, n in sorted(unavailable.items())))
        failed = ledger.failed_seeds(spider.name)
        if failed:
            lines.append(f"  failed {noun}s (first {len(failed)}):")
            lines.extend(f"    {seed}: {why}" for seed, why in failed)
        left = tally["failed"] + tally["begun"] + tally["not_started"]
        if left and reason != "finished":
            when = "after 00:00 UTC" if reason == "daily_quota_exhausted" else "again"
            lines.append(f"  left: {left} {noun}s, at least {left} requests; next step: run the same command {when}")
        logger.info("\n".join(lines))
