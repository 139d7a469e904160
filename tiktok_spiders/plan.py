"""A study's plan: the requests each stage needs and the days of quota they make, before any is spent.

Quota days are what a study costs.  Each stage is estimated from what is known
now: its windows (videos), or the feed it reads its seeds from, record by record
— a video's ``comment_count`` (capped as the API caps it, 100 per page), a
comment's ``reply_count``, the unique authors — skipping what the ledger says is
done.  A figure is *exact* when the feed's counts say how many pages each seed
takes, and *at least* when a seed may take more pages than one (a window with
over 100 videos, a long followers list); a stage whose seed feed an earlier stage
has still to write is *unknown* until then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiktok_spiders.feeds import read_records
from tiktok_spiders.ledger import DONE, Ledger
from tiktok_spiders.spiders.base import SeedFeedSpider

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

FOLLOW_STAGES = frozenset({"followers", "following"})


@dataclass
class StageEstimate:
    stage: str
    seeds: int | None = None  # None: unknown until an earlier stage has run
    noun: str = "seed"
    requests: int = 0
    exact: bool = True
    note: str = ""

    @property
    def line(self) -> str:
        if self.seeds is None:
            return f"  {self.stage:<16} unknown until {self.note} is collected"
        if self.seeds == 0:
            return f"  {self.stage:<16} done"
        bound = "" if self.exact else "at least "
        seeds = f"{self.seeds:,} {self.noun}{'' if self.seeds == 1 else 's'}"
        return f"  {self.stage:<16} {bound}{self.requests:,} requests for {seeds} left {self.note}".rstrip()


def estimate(stage: str, spider: Any, ledger: Ledger | None, settings: BaseSettings) -> StageEstimate:
    """The requests ``spider`` still needs, seed by seed, given what ``ledger`` says is done."""
    if stage == "refresh":
        return _refresh(ledger)
    if not isinstance(spider, SeedFeedSpider):
        return _seeds_alone(stage, spider, ledger, settings)
    if spider.seed_values is None and (spider.seed_path is None or not Path(spider.seed_path).is_file()):
        return StageEstimate(stage, note=f"its seed feed ({spider.seed_feeds[0]})")
    result = StageEstimate(stage, seeds=0, noun=spider.seed_noun, exact=hasattr(spider, "pages_for"))
    seeds = 0
    seen: set[Any] = set()
    for value, record in _seed_records(spider):
        if value in seen:
            continue
        seen.add(value)
        state = ledger.seed(spider.name, str(value)) if ledger else None
        if state is not None and state.status == DONE:
            continue
        pages = spider.pages_for(record) if record is not None and hasattr(spider, "pages_for") else 1
        if record is None:
            result.exact = False
        seeds += 1
        result.requests += max(1, pages - (state.pages if state else 0))
    result.seeds = seeds
    if spider.seed_path is not None and spider.seed_values is None:
        result.note = f"(from {Path(spider.seed_path).name})"
    return result


def _seed_records(spider: SeedFeedSpider) -> Any:
    """``(seed value, feed record or None)`` for every seed the spider would ask."""
    if spider.seed_values is not None:
        for value in spider.seed_values:
            yield (value[0] if isinstance(value, tuple) else value), None
        return

    def malformed() -> None:
        pass

    assert spider.seed_path is not None
    for record in read_records(Path(spider.seed_path), malformed):
        if spider.keep_record is not None and not spider.keep_record(record):
            continue
        raw = record.get(spider.seed_column)
        if spider.seed_optional and raw in (None, ""):
            continue
        value = spider.convert(raw)
        if value is not None:
            yield value, record


def _seeds_alone(stage: str, spider: Any, ledger: Ledger | None, settings: BaseSettings) -> StageEstimate:
    """A spider whose seeds need no feed (videos: its windows), one request at least each."""
    result = StageEstimate(
        stage, seeds=0, noun=spider.seed_noun, exact=False, note="(one each; more where a window has over 100 videos)"
    )
    seeds = 0
    for seed, *_ in spider.seeds():
        state = ledger.seed(spider.name, seed) if ledger else None
        if state is None or state.status != DONE:
            seeds += 1
    result.seeds = result.requests = seeds
    return result


def _refresh(ledger: Ledger | None) -> StageEstimate:
    """Five requests per compliance task (create, about three polls, download) and one per profile."""
    if ledger is None:
        return StageEstimate("refresh", note="anything")
    db = ledger.connection
    videos = db.execute(
        "SELECT COUNT(*) FROM records WHERE kind IN ('videos', 'liked_videos', 'pinned_videos', 'reposted_videos')"
    ).fetchone()[0]
    comments = db.execute("SELECT COUNT(*) FROM records WHERE kind IN ('comments', 'replies')").fetchone()[0]
    users = ledger.count_records("users")
    tasks = math.ceil(videos / 10_000) + math.ceil(comments / 10_000)
    return StageEstimate(
        "refresh",
        seeds=tasks + users,
        noun="check",
        requests=5 * tasks + users,
        exact=False,
        note="(polls depend on TikTok)",
    )


def days(requests: int, per_day: int) -> str:
    count = math.ceil(requests / per_day) if requests else 0
    return f"{count} day{'' if count == 1 else 's'}"


def summary(estimates: list[StageEstimate], settings: BaseSettings) -> str:
    """The plan as the terminal shows it."""
    research = sum(e.requests for e in estimates if e.seeds is not None and e.stage not in FOLLOW_STAGES)
    follow = sum(e.requests for e in estimates if e.seeds is not None and e.stage in FOLLOW_STAGES)
    exact = all(e.exact and e.seeds is not None for e in estimates)
    limit = settings.getint("TIKTOK_DAILY_REQUEST_LIMIT")
    follow_limit = settings.getint("TIKTOK_DAILY_FOLLOW_REQUEST_LIMIT")
    lines = ["Plan (requests still to spend, stage by stage):", *(e.line for e in estimates)]
    bound = "" if exact else "at least "
    per_day = f"{limit:,} a day (TIKTOK_DAILY_REQUEST_LIMIT)"
    lines.append(f"  total: {bound}{research:,} requests: {days(research, limit)} at {per_day}")
    if follow:
        lines.append(f"  and {follow:,} followers/following requests: {days(follow, follow_limit)} at {follow_limit:,}")
    if any(e.seeds is None for e in estimates):
        lines.append("  stages marked unknown are estimated again when the study reaches them")
    return "\n".join(lines)
