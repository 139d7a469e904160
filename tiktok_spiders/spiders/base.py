"""What every Research API spider shares: requests, paging, the ledger, failures.

A spider names its endpoint, its seeds (windows, videos, users) and how a page's
records become items.  This base turns each seed into a first ``JsonRequest``
(or skips it, or resumes it, by asking the ledger), follows ``cursor`` /
``search_id`` / ``has_more`` page by page, sends each page's items through the
pipelines and then commits the page, and records every seed it cannot collect
with the reason.  A crawl that leaves anything uncollected closes as
``incomplete``.
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import parse_qs, urlparse

from scrapy import Request, Spider, signals
from scrapy.exceptions import CloseSpider, DropItem, IgnoreRequest
from scrapy.http import JsonRequest
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.log import logformatter_adapter
from twisted.python.failure import Failure

from tiktok_spiders import api, clock, pilot
from tiktok_spiders.config import ConfigError, check_data_dir, check_settings
from tiktok_spiders.feeds import SeedFileError, check_feed, read_values
from tiktok_spiders.items import UnavailableUser, known_fields
from tiktok_spiders.kinds import kind_of
from tiktok_spiders.ledger import Ledger, LedgerWriteError
from tiktok_spiders.stopping import CrawlStopping, is_stopping, stop_crawl

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

    from tiktok_spiders.kinds import RecordKind


class BadArgument(ValueError):
    """Bad input from the researcher: reported as one line, before any request."""


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def comma_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def whole_number(name: str, value: str | int, minimum: int = 0) -> int:
    """A whole-number argument of at least ``minimum``, or :class:`BadArgument` naming it."""
    try:
        number = int(value)
    except ValueError:
        raise BadArgument(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise BadArgument(f"{name} must be {minimum} or more, not {value!r}")
    return number


def parse_fields(value: str | None, allowed: tuple[str, ...], always: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The ``fields`` argument, checked against the documented list (default: all of it)."""
    if not value:
        return allowed
    names = comma_list(value)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise BadArgument(f"unknown field {unknown[0]!r}; known fields: {', '.join(allowed)}")
    return tuple(dict.fromkeys((*always, *names)))


def check_credentials(settings: BaseSettings) -> None:
    if not settings.get("TIKTOK_CLIENT_KEY") or not settings.get("TIKTOK_CLIENT_SECRET"):
        raise BadArgument(
            "TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET are not set: put them in .env "
            "(see .env.example) or in the environment"
        )


def check_configuration(settings: BaseSettings) -> None:
    """Settings, credentials and the data directory, before anything is written."""
    try:
        check_settings(settings)
        check_data_dir(settings["TIKTOK_DATA_DIR"], settings.getfloat("TIKTOK_MIN_FREE_SPACE_MB"))
    except ConfigError as error:
        raise BadArgument(str(error)) from None
    check_credentials(settings)


def collection_time() -> str:
    """When a page was fetched: UTC, to the second, ISO 8601 (``collected_at``)."""
    return clock.stamp()


class ApiSpider(Spider):
    """Base of the Research API spiders; subclasses fill in the class attributes and hooks."""

    #: The endpoint's path (``api.*_PATH``).
    path: ClassVar[str]
    #: What the spider stores (for feeds, fresh starts and the summary).
    kinds: ClassVar[tuple[RecordKind, ...]]
    #: What a seed is called in messages ("window", "video", "user").
    seed_noun: ClassVar[str] = "seed"
    #: Which way the endpoint's cursor moves: an index goes up, a "before this time" goes down.
    cursor_goes: ClassVar[str] = "up"
    #: Callback arguments that belong to the seed (not sent, needed by every page of it).
    seed_context: ClassVar[tuple[str, ...]] = ()
    #: The data directory's ledger, opened in :meth:`from_crawler`.
    ledger: Ledger

    #: Constructor parameters that subclasses pass each other, not arguments a researcher gives.
    INTERNAL_PARAMETERS = frozenset({"self", "args", "kwargs", "name", "seed_values", "seed_path", "minimum"})
    #: Arguments a spider takes through ``**kwargs`` (the videos spider's shortcuts).
    extra_arguments: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def argument_names(cls) -> list[str]:
        """The ``-a`` arguments this spider takes (the README's argument table)."""
        names: set[str] = set(cls.extra_arguments)
        for klass in cls.__mro__:
            init = vars(klass).get("__init__")
            if init is not None:
                names.update(inspect.signature(init).parameters)
        return sorted(names - cls.INTERNAL_PARAMETERS)

    def __init__(self, *args: Any, fresh: str | bool = False, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - {"name"})
        if unknown:
            known = self.argument_names()
            close = difflib.get_close_matches(unknown[0], known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            raise BadArgument(
                f"unknown argument {unknown[0]!r} for spider {self.name} ({hint}it takes: {', '.join(known)})"
            )
        super().__init__(*args, **kwargs)
        self.fresh = as_bool(fresh)
        self.fields: tuple[str, ...] | None = None
        #: The arguments as given (for the manifest); when the first and last page was fetched.
        self.arguments: dict[str, Any] = {"fresh": fresh} if fresh else {}
        self.first_page_at: str | None = None
        self.last_page_at: str | None = None
        #: Seeds scheduled, skipped (done in an earlier run), done and failed in this run.
        self.progress: Counter[str] = Counter()
        #: True while the summary reads the seeds again (nothing is counted twice then).
        self.tallying = False

    #: Whether this spider's default seed feed is written by an earlier stage of the same
    #: study, so that it cannot be checked before the study starts.
    seed_feed_comes_later = False

    @classmethod
    def check(cls, settings: BaseSettings, *, seed_feed_comes_later: bool = False, **arguments: Any) -> ApiSpider:
        """Everything that can be wrong before the crawl starts; raises :class:`BadArgument`."""
        spider = cls(**arguments)
        spider.seed_feed_comes_later = seed_feed_comes_later
        spider.validate(settings)
        return spider

    def validate(self, settings: BaseSettings) -> None:
        """Checks that need settings (configuration, seed files); overridden to add more."""
        check_configuration(settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.arguments = dict(kwargs)
        spider.validate(crawler.settings)
        spider.ledger = Ledger.for_crawler(crawler)
        crawler.signals.connect(spider.on_idle, signal=signals.spider_idle)
        return spider

    @property
    def url(self) -> str:
        return api.endpoint_url(self.settings["TIKTOK_API_BASE_URL"], self.path, self.fields)

    # -- seeds ----------------------------------------------------------------------

    def seeds(self) -> Iterable[tuple[Any, ...]]:
        """``(ledger key, first request body)`` of every seed, lazily, for big seed files; a
        third element, a dict of the :attr:`seed_context`, goes to every page's callback."""
        raise NotImplementedError

    async def start(self) -> AsyncIterator[Any]:
        if self.fresh:
            self.ledger.forget(self.name, tuple(kind.feed for kind in self.kinds))
            self.logger.info("Starting afresh: earlier %s progress and records forgotten.", self.name)
        async for request in self.requests_for(self.seeds()):
            yield request

    async def requests_for(self, seeds: Iterable[tuple[Any, ...]]) -> AsyncIterator[Any]:
        """The first request of each seed not done yet, as the scheduler has room for them."""
        only = pilot.of(self.crawler)
        for seed, body, *extra in seeds:
            if only is not None and seed not in only.seeds:
                continue  # a plan's pilot asks a few seeds, the study the rest
            context = extra[0] if extra else {}
            state = self.ledger.seed(self.name, seed)
            if state is not None and state.status == "done":
                self.progress["skipped"] += 1
                continue
            # Scrapy reads start() as fast as it yields: a million-line seed feed would
            # be a million requests in the scheduler.  Yield only while there is room.
            if self.crawler.engine.needs_backout():
                await self.crawler.signals.wait_for(signals.scheduler_empty)
            self.progress["scheduled"] += 1
            if state is not None and state.cursor:
                yield self.resume_request(seed, body, state.cursor, state.search_id, **context)
            else:
                yield self.api_request(seed, body, **context)

    def seed_total(self) -> int | None:
        """How many seeds this crawl has, for the progress bar (None: not known cheaply)."""
        return None

    def api_request(self, seed: str, body: dict[str, Any], **context: Any) -> Request:
        return JsonRequest(
            self.url,
            data=body,
            callback=self.parse_page,
            errback=self.on_error,
            cb_kwargs={"seed": seed, **context},
            dont_filter=True,  # the ledger, not the dupefilter, knows what was fetched
        )

    def resume_request(
        self, seed: str, body: dict[str, Any], cursor: int, search_id: str | None, **context: Any
    ) -> Request:
        """The first request of a seed that an earlier run left half done."""
        return self.api_request(seed, {**body, "cursor": cursor}, **context)

    # -- pages ----------------------------------------------------------------------------

    def parse_records(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> Iterable[Any]:
        """The items of one page (``context``: the seed's, see :attr:`seed_context`)."""
        raise NotImplementedError

    def page_error(self, response: Response, payload: Any) -> str | None:
        """Why an answer that reached the callback is not a page after all (None: it is)."""
        code, message = api.error_of(payload)
        if code in (api.OK, ""):
            return None
        if response.status == 200:  # other statuses were counted by the retry middleware
            self.crawler.stats.inc_value(f"tiktok/api_error/{code}")
        return f"HTTP {response.status} {code}: {message}"

    def next_body(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> dict[str, Any] | None:
        """The body of the next page, or None when the seed is finished."""
        cursor = api.cursor_of(data)
        if not api.has_more_of(data) or cursor is None:
            return None
        return {**body, "cursor": cursor}

    def advances(self, before: int | None, after: int | None) -> bool:
        """Whether the next page's cursor moves on (a cursor that stays or cycles would page forever)."""
        if after is None:
            return False
        if self.cursor_goes == "up":
            return after > (before or 0)  # an index: the first page starts at 0
        return before is None or after < before  # a time: the first page starts "now"

    async def parse_page(self, response: Response, seed: str, **context: Any) -> list[Any]:
        collected_at = collection_time()
        try:
            payload = api.answer_json(response)
        except ValueError:
            return self.fail(seed, f"HTTP {response.status} answer is not JSON")
        problem = self.page_error(response, payload)
        if problem:
            return self.fail(seed, problem)
        assert response.request is not None
        body = json.loads(response.request.body)
        try:  # the whole page is checked before any of it is stored
            data = api.page_data(payload)
            carried = {key: context[key] for key in self.seed_context if key in context}
            items = list(self.parse_records(data, body, **carried))
            follow = self.next_body(data, body, **context)
        except api.BadAnswer as error:
            self.crawler.stats.inc_value("tiktok/bad_answers")
            return self.fail(seed, f"HTTP {response.status} answer of an unexpected shape: {error}")
        if follow is not None and not self.advances(body.get("cursor"), follow.get("cursor")):
            self.crawler.stats.inc_value("tiktok/bad_answers")
            return self.fail(
                seed, f"the API said has_more but its cursor went from {body.get('cursor')} to {follow.get('cursor')}"
            )
        for item in items:
            item.collected_at = collected_at
        self.first_page_at = self.first_page_at or collected_at
        self.last_page_at = collected_at
        try:
            stored = await self.process_items(items, response)
            self.ledger.finish_page(
                self.name,
                seed,
                cursor=follow.get("cursor") if follow else None,
                search_id=follow.get("search_id") if follow else None,
                has_more=follow is not None,
            )
        except LedgerWriteError as error:
            return self.stop_writing(error)
        self.count_stored(stored)
        if follow is None:
            self.progress["done"] += 1
            return []
        return [self.api_request(seed, follow, **carried)]

    # -- failures ---------------------------------------------------------------------------

    async def on_api_error(self, request: Any, response: Response, code: str, message: str) -> list[Any] | None:
        """A spider's own answer to an API error (None: a failure like any other)."""
        return None

    async def on_error(self, failure: Failure) -> list[Any]:
        request = failure.request  # type: ignore[attr-defined]
        seed = request.cb_kwargs["seed"]
        if isinstance(failure.value, HttpError):
            response = failure.value.response
            code, message = api.json_error(response)
            handled = await self.on_api_error(request, response, code, message)
            if handled is not None:
                return handled
            if response.status == 400 and self.fields:
                retry = self.without_rejected_fields(request, message)
                if retry is not None:
                    return [retry]
            reason = f"HTTP {response.status}" + (f" {code}: {message}" if code else "")
            if 300 <= response.status < 400:
                location = (response.headers.get(b"Location") or b"").decode("latin-1")
                reason += f" redirect to {location or '?'} (the API does not redirect: check TIKTOK_API_BASE_URL)"
        elif failure.check(CrawlStopping) or (failure.check(IgnoreRequest) and is_stopping(self.crawler)):
            return []  # stopped (quota, credentials, Ctrl-C): the seed stays open for the next run
        elif failure.check(IgnoreRequest):  # refused by Scrapy, e.g. an answer larger than the API's pages can be
            reason = str(failure.value)
        else:
            reason = f"{type(failure.value).__name__}: {failure.value}"
        return self.fail(seed, reason)

    def without_rejected_fields(self, request: Any, message: str) -> JsonRequest | None:
        """The same page again without the fields the API said it rejects (None: it named none).

        Which documented fields the API really serves is not settled (``favorites_count``,
        ``video_tag``, ...): losing one column beats losing the whole collection.
        """
        assert self.fields is not None
        asked = tuple(parse_qs(urlparse(request.url).query).get("fields", [""])[0].split(","))
        rejected = api.rejected_fields(message, asked)
        if not rejected:
            return None
        still_asked = [name for name in rejected if name in self.fields]
        if still_asked:  # other pages in flight may say the same: drop and warn once
            self.fields = tuple(name for name in self.fields if name not in rejected)
            self.crawler.stats.inc_value("tiktok/fields_rejected", len(still_asked))
            self.logger.warning("The API rejects the field(s) %s: collecting without them.", ", ".join(still_asked))
        return request.replace(url=self.url)

    def fail(self, seed: str, reason: str) -> list[Any]:
        try:
            self.ledger.fail_seed(self.name, seed, reason)
        except LedgerWriteError as error:
            return self.stop_writing(error)
        self.progress["failed"] += 1
        self.crawler.stats.inc_value("tiktok/failed_seeds")
        self.logger.warning("Could not collect %s %s: %s", self.seed_noun, seed, reason)
        return []

    def stop_writing(self, error: LedgerWriteError) -> list[Any]:
        """The ledger cannot be written (disk full): stop before paying for more pages.

        The page whose commit failed stays open and is asked again by the next run.
        """
        if self.crawler.stats.get_value("tiktok/write_failed") is None:
            self.crawler.stats.set_value("tiktok/write_failed", str(error))
            self.logger.error("%s. Stopping: nothing more is requested.", error)
        stop_crawl(self.crawler, "write_failed")
        return []

    def summary_lines(self) -> list[str]:
        """What this spider adds to its closing summary (the refresh: what it checked and purged)."""
        return []

    def sent(self) -> dict[str, Any]:
        """What this spider asks the API, beyond its arguments (the videos spider adds its query)."""
        return {"endpoint": self.path, "fields": list(self.fields) if self.fields else None}

    def run_record(self, outcome: str) -> dict[str, Any]:
        """This run, for the manifest: never a credential, only what was asked and what came of it."""
        stats = self.crawler.stats
        started = stats.get_value("start_time")
        return {
            "started": started.strftime("%Y-%m-%dT%H:%M:%SZ") if started else None,
            "finished": collection_time(),
            "outcome": outcome,
            "arguments": self.arguments,
            "sent": self.sent(),
            "first_page_at": self.first_page_at,
            "last_page_at": self.last_page_at,
            "requests": stats.get_value("tiktok/requests", 0),
            "new_records": {kind.feed: stats.get_value(f"tiktok/records/{kind.feed}", 0) for kind in self.kinds},
            "records_in_ledger": {kind.feed: self.ledger.count_records(kind.feed) for kind in self.kinds},
            "seeds": self.final_tally(),
            "seeds_this_run": {key: self.progress[key] for key in ("done", "failed")},
        }

    def count_stored(self, items: list[Any]) -> None:
        """Count records once their page is committed: a summary never counts what was lost."""
        for item in items:
            kind = kind_of(item, self.name)
            if kind is not None:
                self.crawler.stats.inc_value(f"tiktok/records/{kind.feed}")

    async def process_items(self, items: Iterable[Any], response: Response) -> list[Any]:
        """Send a page's items through the item pipelines, one after the other.

        The page is committed only once this returns, so its records are staged
        first.  This is Scrapy's ``Scraper.start_itemproc_async`` (2.19) item by item,
        in the callback: the same log formatter calls and the same signals
        (``item_scraped``, ``item_dropped``, ``item_error``), sent synchronously.
        Scrapy's asynchronous signal dispatch per item measured half of the crawl's
        time (``docs/scrapy-internals.md``).  An error other than a drop is said and
        signalled as Scrapy does, then raised: the page is not committed.
        """
        itemproc = self.crawler.engine.scraper.itemproc
        formatter = self.crawler.logformatter
        signals_ = self.crawler.signals
        stored = []
        for item in items:
            try:
                kept = await itemproc.process_item_async(item)
            except DropItem as drop:
                if (said := formatter.dropped(item, drop, response, self)) is not None:
                    self.logger.log(*logformatter_adapter(said), extra={"spider": self, "item": item})
                signals_.send_catch_log(signals.item_dropped, item=item, response=response, spider=self, exception=drop)
                continue
            except LedgerWriteError:
                raise  # said in one line by the caller, which stops the crawl
            except Exception as error:
                said = formatter.item_error(item, error, response, self)
                self.logger.log(*logformatter_adapter(said), extra={"spider": self, "item": item}, exc_info=True)
                signals_.send_catch_log(
                    signals.item_error, item=item, response=response, spider=self, failure=Failure()
                )
                raise
            if (said := formatter.scraped(kept, response, self)) is not None:
                self.logger.log(*logformatter_adapter(said), extra={"spider": self, "item": kept})
            stored.append(kept)
            signals_.send_catch_log(signals.item_scraped, item=kept, response=response, spider=self)
        return stored

    async def finish_unavailable(self, seed: str, item: Any, response: Response) -> list[Any]:
        """Store an item that stands for a seed the API refuses, and close the seed."""
        item.collected_at = collection_time()
        try:
            stored = await self.process_items([item], response)
            self.ledger.finish_page(self.name, seed, cursor=None, search_id=None, has_more=False)
        except LedgerWriteError as error:
            return self.stop_writing(error)
        self.count_stored(stored)
        self.progress["done"] += 1
        return []

    def final_tally(self) -> dict[str, int]:
        """The tally when the crawl closes, read once for every report of it."""
        if getattr(self, "_final_tally", None) is None:
            self._final_tally = self.tally()
        return self._final_tally

    def tally(self) -> dict[str, int]:
        """Every seed of this crawl (windows, videos, users) by its state in the ledger: done,
        failed, begun (a page stored, more to come) and not started — counted one way for the
        summary, the study table, the manifest and the quota message."""
        counts = dict.fromkeys(("done", "failed", "begun", "not_started"), 0)
        self.tallying = True
        try:
            for seed, *_ in self.seeds():
                state = self.ledger.seed(self.name, seed)
                if state is None:
                    counts["not_started"] += 1
                elif state.status == "done":
                    counts["done"] += 1
                elif state.status == "failed":
                    counts["failed"] += 1
                elif state.cursor:
                    counts["begun"] += 1
                else:
                    counts["not_started"] += 1
        finally:
            self.tallying = False
        return counts

    def on_idle(self) -> None:
        """Close as ``incomplete`` when a seed failed or was left open."""
        left = self.progress["scheduled"] - self.progress["done"]
        if left > 0:
            raise CloseSpider("incomplete")


def default_feed(data_dir: str | Path, name: str) -> Path:
    """The feed an earlier stage wrote into the data directory (JSON Lines, else CSV)."""
    jsonl = Path(data_dir) / f"{name}.jsonl"
    csv = Path(data_dir) / f"{name}.csv"
    return csv if csv.is_file() and not jsonl.is_file() else jsonl


class SeedFeedSpider(ApiSpider):
    """A spider whose seeds are one column of an earlier stage's feed, or a list argument."""

    #: The feeds read by default (the first that exists), the column holding the seeds, and
    #: the argument naming another feed.
    seed_feeds: tuple[str, ...] = ("videos",)
    seed_column: str
    seed_argument: str = "videos"
    #: Whether feed rows may lack a seed (videos without a playlist) without being malformed.
    seed_optional: bool = False

    def __init__(self, *args: Any, seed_values: list[Any] | None = None, seed_path: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.seed_values = seed_values
        self.seed_path = Path(seed_path) if seed_path else None

    def validate(self, settings: Any) -> None:
        super().validate(settings)
        if self.seed_values is None:
            given = self.seed_path is not None
            if not given:
                candidates = [default_feed(settings["TIKTOK_DATA_DIR"], name) for name in self.seed_feeds]
                self.seed_path = next((path for path in candidates if path.is_file()), candidates[-1])
            assert self.seed_path is not None
            if not given and self.seed_feed_comes_later and not self.seed_path.is_file():
                return  # an earlier stage of the study writes it; checked when this stage's turn comes
            try:
                check_feed(self.seed_path, self.seed_column, self.seed_argument)
            except SeedFileError as error:
                raise BadArgument(str(error)) from None

    def convert(self, value: Any) -> Any:
        """A seed value from the feed, or None when it is unusable."""
        raise NotImplementedError

    #: Feed records to seed from (None: all of them).
    keep_record: Callable[[dict[str, Any]], bool] | None = None
    #: How much a feed record's seed will be asked, e.g. its comment count (None: seeds go in feed order).
    seed_weight: Callable[[dict[str, Any]], float] | None = None
    #: What a seed takes along from its feed record (None: nothing); seeds then come as
    #: ``(value, what)`` pairs, also from ``seed_values``.
    seed_record_context: Callable[[dict[str, Any]], Any] | None = None

    #: A seed feed up to this size is read once more to count its seeds for the progress bar.
    COUNTED_FEED_BYTES = 50_000_000

    def seed_total(self) -> int | None:
        if self.seed_values is None and (
            self.seed_path is None or self.seed_path.stat().st_size > self.COUNTED_FEED_BYTES
        ):
            return None
        self.tallying = True  # read again: count nothing twice
        try:
            return sum(1 for _ in self.seed_stream())
        finally:
            self.tallying = False

    def seed_stream(self) -> Iterable[Any]:
        """Unique seed values, streamed: in feed order, or the heaviest first (``seed_weight``)."""
        seen: set[Any] = set()

        def malformed() -> None:
            if not self.tallying:
                self.crawler.stats.inc_value("tiktok/seeds/malformed")

        if self.seed_values is not None:
            values: Iterable[Any] = self.seed_values
        else:
            assert self.seed_path is not None
            values = read_values(
                self.seed_path,
                self.seed_column,
                self.convert,
                malformed,
                self.seed_optional,
                self.keep_record,
                self.seed_weight,
                self.seed_record_context,
            )
        paired = self.seed_record_context is not None
        for value in values:
            key = value[0] if paired else value
            if key not in seen:
                seen.add(key)
                yield value


class UserSeedSpider(SeedFeedSpider):
    """A spider asking something of each user: seeds are usernames, from ``-a usernames=…``
    or the ``username`` column of a feed; a user the API will not serve is recorded in the
    spider's ``<name>_unavailable`` feed with the reason, not counted as a failure."""

    seed_noun = "user"
    seed_column = "username"

    def __init__(self, *args: Any, usernames: str | None = None, seed_path: str | None = None, **kwargs: Any) -> None:
        values = [name.lstrip("@") for name in comma_list(usernames)] if usernames is not None else None
        if usernames is not None and not values:
            raise BadArgument("usernames is empty")
        super().__init__(*args, seed_values=values, seed_path=seed_path, **kwargs)

    def convert(self, value: Any) -> str | None:
        return value.replace("\x00", "").strip() or None if isinstance(value, str) else None

    async def on_api_error(self, request: Any, response: Response, code: str, message: str) -> list[Any] | None:
        # documented as 400; any client error but the token's and the quota's is taken at its word
        refused = 400 <= response.status < 500 and response.status not in (401, 429)
        reason = api.user_unavailable_reason(message) if refused else None
        if reason is None:
            return None
        self.crawler.stats.inc_value(f"tiktok/{self.name}_unavailable/{reason}")
        seed = request.cb_kwargs["seed"]
        item = UnavailableUser(username=seed, reason=reason, message=message)
        return await self.finish_unavailable(seed, item, response)


class UserListSpider(UserSeedSpider):
    """A paginated list per user (followers, liked videos, …): every item carries ``seed_username``."""

    seed_feeds = ("users", "videos")
    seed_argument = "users"
    #: Where the list is in the response data (every known spelling).
    response_keys: ClassVar[tuple[str, ...]]
    item_class: ClassVar[type]
    #: The endpoint's documented fields (None: it takes no ``fields``).
    allowed_fields: ClassVar[tuple[str, ...] | None] = None
    paginated: ClassVar[bool] = True

    def __init__(self, *args: Any, users: str | None = None, fields: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, seed_path=users, **kwargs)
        if self.allowed_fields:
            self.fields = parse_fields(fields, self.allowed_fields, always=("id",))
        elif fields:
            raise BadArgument(f"the {self.name} endpoint takes no fields")

    def seeds(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for username in self.seed_stream():
            yield (
                username,
                {"username": username, "max_count": api.MAX_COUNT} if self.paginated else {"username": username},
            )

    def parse_records(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> Iterable[Any]:
        for record in api.first_list(data, self.response_keys):
            yield self.item_class(**known_fields(self.item_class, {**record, "seed_username": body["username"]}))
