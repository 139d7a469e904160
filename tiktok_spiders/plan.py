"""A study's plan: the requests each stage needs and the days of quota they make, before they are spent.

Quota days are what a study costs.  Each stage is estimated from what is known now,
skipping what the ledger says is done:

- the videos stage from its windows: a window whose videos were collected (by the
  study, or by a plan's pilot, ``pilot.py``) says how many videos a day the query finds,
  and the others are estimated at that rate, 100 a page, between the slowest and the
  busiest window seen;
- a stage that reads a feed, record by record — a video's ``comment_count`` (capped as
  the API caps it, 100 a page), a comment's ``reply_count``, the unique authors — and,
  while the stage before it is not finished, the records still to come at the same
  average;
- a stage whose feed is still to be written, from the stage before it at the average of
  the records collected so far (a pilot's), or *unknown* when there are none.

Each figure comes with a range (``low``, ``high``); a figure is *exact* when the
feeds' counts say how many pages every seed takes.  ``--plan --json`` prints the same.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiktok_spiders import api, clock
from tiktok_spiders.feeds import read_records, read_values
from tiktok_spiders.kinds import COMMENT, FOLLOW, USER, VIDEO, checked_fields, quota_of
from tiktok_spiders.ledger import DONE, Ledger
from tiktok_spiders.spiders.base import ignore
from tiktok_spiders.spiders.seeded import SeedFeedSpider

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


@dataclass
class Range:
    """A number of records or requests still to come: its estimate and its bounds (None: no bound known)."""

    mid: float = 0
    low: float = 0
    high: float | None = 0

    def __add__(self, other: Range) -> Range:
        high = None if self.high is None or other.high is None else self.high + other.high
        return Range(self.mid + other.mid, self.low + other.low, high)

    def times(self, factor: float) -> Range:
        return Range(self.mid * factor, self.low * factor, None if self.high is None else self.high * factor)


@dataclass
class StageEstimate:
    stage: str
    seeds: int | None = None  # None: unknown until an earlier stage has run
    noun: str = "seed"
    requests: int = 0
    low: int = 0
    high: int | None = None  # None: no upper bound known
    exact: bool = True
    note: str = ""
    #: The records this stage will have written, done and to come (what a later stage reads).
    records: Range = field(default_factory=Range)

    @property
    def known(self) -> bool:
        return self.seeds is not None

    def set_requests(self, requests: Range, exact: bool) -> None:
        self.requests = math.ceil(requests.mid)
        self.low = math.floor(requests.low)
        self.high = None if requests.high is None else math.ceil(requests.high)
        self.exact = exact and self.high == self.low

    @property
    def line(self) -> str:
        if self.seeds is None:
            return f"  {self.stage:<16} unknown until {self.note} is collected"
        if self.requests == 0 and self.exact:
            return f"  {self.stage:<16} done"
        if self.exact or self.low == self.high:
            figure = f"{self.requests:,} requests"
        elif self.high is None:
            figure = f"at least {self.low:,} requests (about {self.requests:,})"
        else:
            figure = f"about {self.requests:,} requests ({self.low:,} to {self.high:,})"
        seeds = f" for {self.seeds:,} {self.noun}{'' if self.seeds == 1 else 's'} left" if self.seeds else ""
        return f"  {self.stage:<16} {figure}{seeds} {self.note}".rstrip()

    def as_json(self, per_day: int) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "requests": self.requests if self.known else None,
            "low": self.low if self.known else None,
            "high": self.high if self.known else None,
            "days": math.ceil(self.requests / per_day) if self.known and self.requests else 0,
            "how": self.note.strip("()") or ("exact" if self.exact else "estimated"),
        }


def estimate(
    stage: str,
    spider: Any,
    ledger: Ledger | None,
    settings: BaseSettings,
    earlier: dict[str, StageEstimate] | None = None,
) -> StageEstimate:
    """The requests ``spider`` still needs, given what ``ledger`` says is done and what the
    ``earlier`` stages of the study (by name) will have written."""
    if stage == "refresh":
        return _refresh(ledger)
    if stage == "videos":
        return _windows(spider, ledger)
    if not isinstance(spider, SeedFeedSpider):
        return StageEstimate(stage, note="its seeds")
    earlier = earlier or {}
    source = next((earlier[feed] for feed in spider.seed_feeds if feed in earlier), None)
    if spider.seed_values is None and (spider.seed_path is None or not Path(spider.seed_path).is_file()):
        if source is not None and source.known:
            return _extrapolated(stage, spider, source, ledger)
        return StageEstimate(stage, note=f"its seed feed ({spider.seed_feeds[0]})")
    return _from_feed(stage, spider, ledger, source if spider.seed_values is None else None)


def _windows(spider: Any, ledger: Ledger | None) -> StageEstimate:
    """The videos stage: windows done cost nothing; the others are estimated at the daily rate
    the windows collected so far found (100 videos a page), between the slowest and the busiest."""
    if ledger is not None and getattr(spider, "ledger", None) is None:
        spider.ledger = ledger  # the windows it asked before are its windows still
    windows: list[tuple[int, int, int]] = []  # not done: (days, videos so far, pages so far)
    rates: list[float] = []  # done: videos a day
    collected = 0
    for seed, *_ in spider.seeds():
        first, last = (datetime.strptime(part, "%Y%m%d").date() for part in seed.split(":")[1].split("-"))
        state = ledger.seed(spider.name, seed) if ledger else None
        videos = ledger.count_videos_posted(first, last) if ledger else 0
        collected += videos
        if state is not None and state.status == DONE:
            rates.append(videos / ((last - first).days + 1))
        else:
            windows.append(((last - first).days + 1, videos, state.pages if state else 0))
    requests, to_come = Range(), Range()
    for length, so_far, pages_so_far in windows:
        if not rates:  # nothing known of the query yet: a page each, at least
            requests = requests + Range(1, 1, None)
            continue
        found = [max(so_far, rate * length) for rate in (sum(rates) / len(rates), min(rates), max(rates))]
        pages = [max(1.0, math.ceil(count / api.MAX_COUNT) - pages_so_far) for count in found]
        requests = requests + Range(pages[0], pages[1], pages[2])
        to_come = to_come + Range(found[0] - so_far, found[1] - so_far, found[2] - so_far)
    result = StageEstimate("videos", seeds=len(windows), noun="window")
    result.set_requests(requests, exact=not windows)
    result.records = Range(collected, collected, collected) + to_come
    if rates:
        result.note = (
            f"(at the rate of the {len(rates)} window{'s' * (len(rates) != 1)} collected: {_rate(rates)} a day)"
        )
    elif windows:
        result.note = "(one request at least per window; more where a window has over 100 videos)"
    return result


def _rate(rates: list[float]) -> str:
    mean = sum(rates) / len(rates)
    if min(rates) == max(rates):
        return f"{mean:,.1f} videos"
    return f"{mean:,.1f} videos ({min(rates):,.1f} to {max(rates):,.1f})"


def _rates(spider: SeedFeedSpider, records: Any) -> tuple[float, float, int]:
    """Per record of a seed feed: the requests the spider asks for it and the records that gives
    (its ``seed_weight``: a video's comments as the API caps them; 1 otherwise), each seed once; and
    how many records were read."""
    read = pages = 0
    written = 0.0
    seen: set[Any] = set()
    for record in records:
        read += 1
        if spider.passed_over is not None and spider.passed_over(record):
            continue
        raw = record.get(spider.seed_column)
        value = None if spider.seed_optional and raw in (None, "") else spider.convert(raw)
        if value is None or value in seen:
            continue
        seen.add(value)
        pages += spider.pages_for(record) if hasattr(spider, "pages_for") else 1
        written += spider.seed_weight(record) if spider.seed_weight is not None else 1
    return (pages / read, written / read, read) if read else (0.0, 0.0, 0)


def _extrapolated(stage: str, spider: Any, source: StageEstimate, ledger: Ledger | None) -> StageEstimate:
    """A stage whose feed is still to be written: the records of the stage that writes it, at the
    rate of those collected so far (a plan's pilot's, say)."""
    feed = source.stage
    sample = ledger.records(feed) if ledger is not None else iter(())
    requests_per, records_per, read = _rates(spider, sample)
    if not read:
        return StageEstimate(stage, note=f"its seed feed ({feed})")
    result = StageEstimate(stage, noun=spider.seed_noun)
    requests = source.records.times(requests_per)
    result.seeds = math.ceil(requests.mid)
    result.set_requests(requests, exact=False)
    result.records = source.records.times(records_per)
    noun = {"videos": "video", "comments": "comment", "users": "user"}.get(feed, "record")
    result.note = f"(at the rate of the {read:,} {feed} collected so far: {requests_per:.2f} requests a {noun})"
    return result


def _from_feed(
    stage: str, spider: SeedFeedSpider, ledger: Ledger | None, source: StageEstimate | None
) -> StageEstimate:
    """A stage whose seed feed is there: seed by seed, skipping what the ledger says is done; while the
    stage that writes the feed has more to write, its records still to come at the feed's rate."""
    result = StageEstimate(stage, seeds=0, noun=spider.seed_noun, exact=hasattr(spider, "pages_for"))
    requests = 0
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
        result.seeds = (result.seeds or 0) + 1
        requests += max(1, pages - (state.pages if state else 0))
    total = Range(requests, requests, requests if result.exact else None)
    written = Range(len(seen), len(seen), len(seen))
    if spider.seed_values is None and spider.seed_path is not None:
        requests_per, records_per, read = _rates(spider, read_records(Path(spider.seed_path), lambda: None))
        written = Range(records_per * read, records_per * read, records_per * read)
        if source is not None and source.records.mid > read:  # the stage that writes the feed has more to write
            high = None if source.records.high is None else max(0.0, source.records.high - read)
            more = Range(source.records.mid - read, max(0.0, source.records.low - read), high)
            total = total + more.times(requests_per)
            written = written + more.times(records_per)
            result.exact = False
        result.note = f"(from {Path(spider.seed_path).name}" + (
            ", and those still to come)" if not result.exact and source else ")"
        )
    result.set_requests(total, exact=result.exact)
    result.records = written
    return result


def _seed_records(spider: SeedFeedSpider) -> Any:
    """``(seed value, feed record or None)`` for every seed the spider would ask."""
    if spider.seed_values is not None:
        for value in spider.seed_values:
            yield (value[0] if isinstance(value, tuple) else value), None
        return

    assert spider.seed_path is not None
    yield from read_values(
        Path(spider.seed_path),
        spider.seed_column,
        spider.convert,
        ignore,
        spider.seed_optional,
        spider.passed_over,
        context=lambda record: record,
    )


def _refresh(ledger: Ledger | None) -> StageEstimate:
    """Five requests per compliance task (create, about three polls, download) and one per profile
    that has no video to prove it public."""
    if ledger is None:
        return StageEstimate("refresh", note="anything")
    tasks, unproven, _ = _refresh_cost(ledger)
    result = StageEstimate("refresh", seeds=tasks + unproven, noun="check", note="(polls depend on TikTok)")
    result.set_requests(Range(5 * tasks + unproven, 3 * tasks + unproven, None), exact=False)
    return result


def _stored(ledger: Ledger, category: str) -> int:
    """Records holding what a refresh checks in ``category`` (each kind's checked fields, ``kinds.py``)."""
    kinds = sorted({kind.feed for kind, _ in checked_fields(category)})
    marks = ", ".join("?" for _ in kinds)
    return ledger.connection.execute(f"SELECT COUNT(*) FROM records WHERE kind IN ({marks})", kinds).fetchone()[0]  # noqa: S608


def _refresh_cost(ledger: Ledger) -> tuple[int, int, int]:
    """``(compliance tasks, profiles without a video to prove them public, profiles)`` of a refresh now."""
    tasks = sum(math.ceil(_stored(ledger, category) / api.COMPLIANCE_MAX_IDS) for category in (VIDEO, COMMENT))
    unproven = ledger.connection.execute(
        "SELECT COUNT(*) FROM records u WHERE u.kind = 'users' AND NOT EXISTS (SELECT 1 FROM records v "
        "WHERE v.kind = 'videos' AND json_extract(v.data, '$.username') = u.key)"
    ).fetchone()[0]
    return tasks, unproven, _stored(ledger, USER)


def days(requests: int, per_day: int) -> str:
    count = math.ceil(requests / per_day) if requests else 0
    return f"{count} day{'' if count == 1 else 's'}"


def done_by(requests: int, left_today: int, per_day: int) -> str:
    """The UTC day the requests will have been spent by: today's quota left first, then a day's each day."""
    if requests <= left_today:
        return f"today ({clock.today()})"
    extra = math.ceil((requests - left_today) / per_day)
    return str(clock.today() + timedelta(days=extra))


def refresh_duty(ledger: Ledger, settings: BaseSettings) -> str | None:
    """What the refresh costs every ``TIKTOK_REFRESH_DAYS``, against the quota of those days: a
    compliance task per 10,000 ids (about five requests) and a request per profile that has no
    video of its own to prove it public.  A warning, when the duty cannot be met at the quota."""
    tasks, unproven, profiles = _refresh_cost(ledger)
    if not tasks and not profiles:
        return None
    every = settings.getint("TIKTOK_REFRESH_DAYS")
    quota = settings.getint("TIKTOK_DAILY_REQUEST_LIMIT") * every
    cost = 5 * tasks + unproven
    said = (
        f"refresh: about {cost:,} requests every {every} days ({tasks:,} compliance tasks, {unproven:,} of "
        f"{profiles:,} profiles without a video to prove them public): {cost / quota:.0%} of that time's quota"
    )
    if cost > quota:
        said += " — more than the quota allows: the refresh cannot keep up; lower the study or ask TikTok for more"
    return said


def _totals(estimates: list[StageEstimate]) -> tuple[StageEstimate, StageEstimate]:
    research, follow = StageEstimate("research", seeds=0, high=0), StageEstimate("follow", seeds=0, high=0)
    for estimate_ in estimates:
        if not estimate_.known:
            continue
        total = follow if quota_of(estimate_.stage) == FOLLOW else research
        total.requests += estimate_.requests
        total.low += estimate_.low
        total.high = None if total.high is None or estimate_.high is None else total.high + estimate_.high
        total.exact = total.exact and estimate_.exact
    return research, follow


def summary(
    estimates: list[StageEstimate],
    settings: BaseSettings,
    pilot_note: str = "",
    left_today: int | None = None,
    duty: str | None = None,
) -> str:
    """The plan as the terminal shows it (``left_today``: the key's quota left today, to say by
    which day the study will be done; ``duty``: the refresh's cost, :func:`refresh_duty`)."""
    research, follow = _totals(estimates)
    limit = settings.getint("TIKTOK_DAILY_REQUEST_LIMIT")
    follow_limit = settings.getint("TIKTOK_DAILY_FOLLOW_REQUEST_LIMIT")
    lines = ["Plan (requests still to spend, stage by stage):", *(e.line for e in estimates)]
    per_day = f"{limit:,} a day (TIKTOK_DAILY_REQUEST_LIMIT)"
    exact = research.exact and all(e.known for e in estimates)
    if exact:
        figure = f"{research.requests:,} requests"
    elif research.high is None:
        figure = f"at least {research.low:,} requests (about {research.requests:,})"
    else:
        figure = f"about {research.requests:,} requests ({research.low:,} to {research.high:,})"
    lines.append(f"  total: {figure}: {days(research.requests, limit)} at {per_day}")
    if left_today is not None and research.requests:
        lines.append(
            f"  done by {done_by(research.requests, left_today, limit)}, with {left_today:,} requests left today "
            "(what does not fit waits for the next UTC day)"
        )
    if follow.requests:
        lines.append(
            f"  and {follow.requests:,} followers/following requests: {days(follow.requests, follow_limit)} "
            f"at {follow_limit:,}"
        )
    if any(not e.known for e in estimates):
        lines.append("  stages marked unknown are estimated again when the study reaches them")
    if pilot_note:
        lines.append(f"  {pilot_note}")
    if duty:
        lines.append(f"  {duty}")
    return "\n".join(lines)


def as_json(estimates: list[StageEstimate], settings: BaseSettings, pilot_requests: int = 0) -> str:
    """The plan as one JSON object, for scripts that budget a shared key."""
    limit = settings.getint("TIKTOK_DAILY_REQUEST_LIMIT")
    research, _ = _totals(estimates)
    return json.dumps(
        {
            "requests": research.requests,
            "low": research.low,
            "high": research.high if all(e.known for e in estimates) else None,
            "days": math.ceil(research.requests / limit) if research.requests else 0,
            "pilot_requests": pilot_requests,
            "stages": [e.as_json(limit) for e in estimates],
        }
    )
