"""``videos``: every video matching a query over a date range of any length.

The range is split into windows of ``window_days`` (the API allows 30 at most);
each window is paginated to its end with ``search_id`` and ``cursor``, asking
``max_count=100`` and going on past short or empty pages while ``has_more``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from tiktok_spiders import api, clock
from tiktok_spiders.items import Video, known_fields
from tiktok_spiders.kinds import kinds_of
from tiktok_spiders.query import Query, QueryError
from tiktok_spiders.spiders.arguments import BadArgument, as_bool, comma_list, parse_fields, whole_number
from tiktok_spiders.spiders.base import ApiSpider, Note, ignore
from tiktok_spiders.terminal import note

#: Spider argument -> condition field of the query it adds.
SHORTCUTS = {
    "hashtags": "hashtag_name",
    "keywords": "keyword",
    "regions": "region_code",
    "usernames": "username",
    "video_ids": "video_id",
    "music_ids": "music_id",
    "effect_ids": "effect_id",
}
INDEXING_LAG_DAYS = 2
#: New searches started for one window whose search id the API keeps rejecting.
MAX_SEARCH_RESTARTS = 3


RELATIVE_DATE = re.compile(r"today\s*(?:-\s*(\d+))?", re.IGNORECASE)


def parse_date(name: str, value: str | None) -> date:
    """A date as given: ``YYYY-MM-DD``, ``YYYYMMDD``, or ``today`` / ``today-N`` (UTC, as the run starts)."""
    if not value:
        raise BadArgument(f"{name} is required (YYYY-MM-DD, YYYYMMDD, today or today-N)")
    relative = RELATIVE_DATE.fullmatch(value.strip())
    if relative:
        return clock.today() - timedelta(days=int(relative.group(1) or 0))
    for pattern in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(value.strip(), pattern).date()
        except ValueError:
            continue
    raise BadArgument(f"{name} {value!r} is not a date (use YYYY-MM-DD, YYYYMMDD, today or today-N)")


#: The API's videos begin with TikTok's (its Chinese twin Douyin opened in September 2016); a range
#: that ends more than a year from now is a typo, not a study (``9999-12-31``).
FIRST_DAY = date(2016, 9, 1)
FUTURE_DAYS = 366


def check_range(start: date, end: date) -> None:
    if start < FIRST_DAY:
        raise BadArgument(f"start_date {start} is before {FIRST_DAY}: the API has no videos that old")
    latest = clock.today() + timedelta(days=FUTURE_DAYS)
    if end > latest:
        raise BadArgument(f"end_date {end} is more than a year from today ({clock.today()}): check the date")


def load_query(value: str) -> dict[str, Any]:
    """The ``query`` argument: a path to a JSON file, or inline JSON."""
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise BadArgument(f"query file {value} does not exist (pass a path to a JSON file, or inline JSON)")
        text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise BadArgument(f"the query is not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise BadArgument("the query must be a JSON object with and / or / not lists")
    return raw


def build_query(query: str | None, shortcuts: dict[str, str | None], notes: list[str] | None = None) -> Query:
    """The query argument and the shortcut lists combined: every list must hold.  ``notes``
    collects what was sent other than as given (``#climate`` as ``climate``)."""
    raw = load_query(query) if query else {}
    extra = []
    for argument, field_name in SHORTCUTS.items():
        values = comma_list(shortcuts.get(argument))
        if argument in ("hashtags", "usernames"):  # "#climate", "@user": the API wants neither sign
            for value in values:
                if value != value.lstrip("#@") and notes is not None:
                    notes.append(f"{value!r} is sent as {value.lstrip('#@')!r} (the API wants no {value[0]})")
            values = [value.lstrip("#@") for value in values]
        if values:
            extra.append({"field_name": field_name, "operation": "IN", "field_values": values})
    if extra:
        raw = {**raw, "and": [*raw.get("and", []), *extra]}
    if not raw:
        raise BadArgument("say what to collect: a query, or at least one of " + ", ".join(SHORTCUTS))
    try:
        return Query.parse(raw)
    except QueryError as error:
        raise BadArgument(f"invalid query: {error}") from None


class VideosSpider(ApiSpider):
    name = "videos"
    path = api.VIDEO_QUERY_PATH
    kinds = kinds_of("videos")
    seed_noun = "window"
    extra_arguments = tuple(SHORTCUTS)

    def __init__(
        self,
        *args: Any,
        query: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        fields: str | None = None,
        window_days: str | int = 7,
        is_random: str | bool = False,
        max_videos_per_window: str | int | None = None,
        **kwargs: Any,
    ) -> None:
        shortcuts = {name: kwargs.pop(name, None) for name in SHORTCUTS}
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []
        self.query = build_query(query, shortcuts, self.notes)
        self.start_date = parse_date("start_date", start_date)
        self.end_date = parse_date("end_date", end_date)
        if self.end_date < self.start_date:
            raise BadArgument(f"end_date {self.end_date} is before start_date {self.start_date}")
        check_range(self.start_date, self.end_date)
        try:
            self.window_days = int(window_days)
        except ValueError:
            raise BadArgument(f"window_days must be a whole number of days, not {window_days!r}") from None
        if not 1 <= self.window_days <= api.MAX_WINDOW_DAYS:
            raise BadArgument(f"window_days must be between 1 and {api.MAX_WINDOW_DAYS}, not {self.window_days}")
        self.fields = parse_fields(fields, api.VIDEO_FIELDS, always=("id",))
        self.is_random = as_bool(is_random)
        self.max_per_window = (
            None
            if max_videos_per_window in (None, "")
            else whole_number("max_videos_per_window", max_videos_per_window, minimum=1)
        )
        self.window_videos: Counter[str] = Counter()  # videos stored per window (with max_per_window)
        self.query_json = self.query.as_json()
        # a random sample and the complete set are different searches: they never share a window
        fingerprint = json.dumps(self.query_json, sort_keys=True) + ("random" if self.is_random else "")
        self.restarts: Counter[str] = Counter()
        self.fingerprint = hashlib.sha1(fingerprint.encode()).hexdigest()[:12]  # noqa: S324 - a name, not security

    def windows(self) -> list[tuple[date, date]]:
        """Inclusive windows covering start_date..end_date, no day in two of them.

        The windows an earlier run asked are kept as they were (a search is never asked
        again over other days); the days no window covers yet — all of them on a first run,
        the new days of a study whose end date moved on, a day a run missed — are grouped
        into windows of ``window_days`` on a grid that starts at start_date.  So a day is
        never asked in two different searches, and a partial window at the end is completed
        by a window of its own the next time, never asked again whole.
        """
        taken = [(a, b) for a, b in self._asked_windows() if a <= self.end_date and b >= self.start_date]
        covered = {first + timedelta(days=n) for first, last in taken for n in range((last - first).days + 1)}
        new: list[tuple[int, date, date]] = []  # (grid cell, first day, last day)
        day = self.start_date
        while day <= self.end_date:
            cell = (day - self.start_date).days // self.window_days  # the grid's window of this day
            if day not in covered:
                if new and new[-1][0] == cell and new[-1][2] == day - timedelta(days=1):
                    new[-1] = (cell, new[-1][1], day)
                else:
                    new.append((cell, day, day))
            day += timedelta(days=1)
        return sorted([*taken, *((first, last) for _, first, last in new)])

    def _asked_windows(self) -> list[tuple[date, date]]:
        """The windows of this query an earlier run asked (begun, done or failed), from the ledger."""
        ledger = getattr(self, "ledger", None)
        if ledger is None:
            return []
        found = []
        for (seed,) in ledger.connection.execute(
            "SELECT seed FROM seeds WHERE spider = ? AND substr(seed, 1, ?) = ?",
            (self.name, len(self.fingerprint) + 1, f"{self.fingerprint}:"),
        ):
            first, last = (datetime.strptime(part, "%Y%m%d").date() for part in seed.split(":")[1].split("-"))
            found.append((first, last))
        return found

    def seed_total(self) -> int:
        return len(self.windows())

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        for text in spider.notes:
            note(text)
        spider.warn_about_dates()
        return spider

    def seeds(self, note: Note = ignore) -> Iterable[tuple[str, dict[str, Any]]]:
        inclusive = self.settings.getbool("TIKTOK_END_DATE_INCLUSIVE")
        for start, end in self.windows():
            sent_end = end if inclusive else end + timedelta(days=1)
            body = {
                "query": self.query_json,
                "start_date": start.strftime("%Y%m%d"),
                "end_date": sent_end.strftime("%Y%m%d"),
                "max_count": api.MAX_COUNT,
            }
            if self.is_random:
                body["is_random"] = True
            yield f"{self.fingerprint}:{start:%Y%m%d}-{end:%Y%m%d}", body

    def warn_about_dates(self) -> None:
        today = clock.today()
        lag_start = today - timedelta(days=INDEXING_LAG_DAYS)
        if self.start_date > today:
            self.logger.warning(
                "The whole range %s to %s is in the future (today is %s UTC): the API has no videos there yet, "
                "so this crawl will find none. Check start_date and end_date.",
                self.start_date,
                self.end_date,
                today,
            )
        elif self.end_date >= lag_start:
            self.logger.warning(
                "end_date %s is within the API's ~%d-day indexing lag: videos of the last days may be "
                "missing. Collect them later with -a fresh=true or a later study.",
                self.end_date,
                INDEXING_LAG_DAYS,
            )

    def sent(self) -> dict[str, Any]:
        inclusive = self.settings.getbool("TIKTOK_END_DATE_INCLUSIVE")
        return {
            **super().sent(),
            "query": self.query_json,
            "start_date": self.start_date.strftime("%Y%m%d"),
            "end_date": self.end_date.strftime("%Y%m%d"),
            "end_date_sent": "as given (inclusive)" if inclusive else "the day after (exclusive)",
            "window_days": self.window_days,
            # today / today-N, as resolved when this run began (UTC): the arguments keep them as given
            "dates_resolved_on": clock.today().isoformat(),
            "is_random": self.is_random,
            "max_videos_per_window": self.max_per_window,
        }

    def resume_request(
        self, seed: str, body: dict[str, Any], cursor: int, search_id: str | None, **context: Any
    ) -> Any:
        request = self.api_request(seed, {**body, "cursor": cursor, "search_id": search_id})
        request.meta[api.RESUMED_SEARCH] = True
        return request

    def parse_records(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> Iterable[Video]:
        for record in api.first_list(data, ("videos",)):
            yield Video(**known_fields(Video, record))

    def next_body(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> dict[str, Any] | None:
        if self.max_per_window and self._window_full(data, body):
            return None  # a stratified sample: this window has its videos (this page's all kept)
        follow = super().next_body(data, body)
        jump_to = context.get("jump_to")
        if jump_to and data.get("search_id"):
            # a fresh search replacing an expired one: go straight back to where we were
            return {**body, "cursor": max(jump_to, api.cursor_of(data) or 0), "search_id": data["search_id"]}
        if follow is not None and data.get("search_id"):
            follow["search_id"] = data["search_id"]  # it can change between pages: adopt the new one
        return follow

    def _window_full(self, data: dict[str, Any], body: dict[str, Any]) -> bool:
        """Whether the window of this page, with it, holds ``max_videos_per_window`` videos."""
        key = f"{body['start_date']}-{body['end_date']}"
        if key not in self.window_videos:  # resumed: what earlier runs stored of it
            first, last = (datetime.strptime(body[name], "%Y%m%d").date() for name in ("start_date", "end_date"))
            self.window_videos[key] = self.ledger.count_videos_posted(first, last) if body.get("cursor") else 0
        self.window_videos[key] += len(api.first_list(data, ("videos",)))
        return self.window_videos[key] >= (self.max_per_window or 0)

    async def on_api_error(self, request: Any, response: Any, code: str, message: str) -> list[Any] | None:
        body = json.loads(request.body)
        seed = request.cb_kwargs["seed"]
        if not (api.SEARCH_ID_INVALID.search(message) and body.get("search_id")):
            return None
        self.restarts[seed] += 1
        if self.restarts[seed] > MAX_SEARCH_RESTARTS:
            return None
        # The search id expired (or is rejected for good): one new search at cursor 0,
        # whose records are already stored, buys a fresh id for the stored cursor.
        self.crawler.stats.inc_value("tiktok/search_restarted")
        self.logger.info(
            "Search id of window %s expired; restarting the search at cursor %s.", seed, body.get("cursor")
        )
        fresh = {key: value for key, value in body.items() if key not in ("cursor", "search_id")}
        return [self.api_request(seed, fresh, jump_to=body.get("cursor") or 0)]
