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

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import parse_qs, urlparse

from scrapy import Request, Spider, signals
from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.http import JsonRequest
from scrapy.spidermiddlewares.httperror import HttpError

from tiktok_spiders import api, pilot
from tiktok_spiders.ledger import Ledger, LedgerWriteError
from tiktok_spiders.spiders.arguments import argument_names, as_bool, check_configuration, refuse_unknown
from tiktok_spiders.spiders.pages import collection_time, commit_page
from tiktok_spiders.stopping import CrawlStopping, is_stopping, stop_crawl

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

    from tiktok_spiders.kinds import RecordKind


#: What reading the seeds tells of a feed record it passes over (see :meth:`ApiSpider.seeds`).
Note = Callable[[str], None]


def ignore(why: str) -> None:
    """The :data:`Note` of a reader that counts nothing (the summary, the plan, the progress bar)."""


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
    #: The data directory's ledger (:meth:`Ledger.for_crawler`: the one its command lent the crawl).
    ledger: Ledger

    #: Arguments a spider takes through ``**kwargs`` (the videos spider's shortcuts).
    extra_arguments: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def argument_names(cls) -> list[str]:
        """The ``-a`` arguments this spider takes (the README's argument table)."""
        return argument_names(cls, cls.extra_arguments)

    def __init__(self, *args: Any, fresh: str | bool = False, **kwargs: Any) -> None:
        refuse_unknown(self.name, kwargs, self.argument_names())
        super().__init__(*args, **kwargs)
        self.fresh = as_bool(fresh)
        self.fields: tuple[str, ...] | None = None
        #: The arguments as given (for the manifest); when the first and last page was fetched.
        self.arguments: dict[str, Any] = {"fresh": fresh} if fresh else {}
        self.first_page_at: str | None = None
        self.last_page_at: str | None = None
        #: Seeds scheduled, skipped (done in an earlier run), done and failed in this run.
        self.progress: Counter[str] = Counter()

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
        check_configuration(settings, self.name)

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

    def seeds(self, note: Note = ignore) -> Iterable[tuple[Any, ...]]:
        """``(ledger key, first request body)`` of every seed, lazily, for big seed files; a
        third element, a dict of the :attr:`seed_context`, goes to every page's callback.

        Reading the seeds changes nothing, so the summary, the plan and the progress bar
        read them again freely; why a feed record was passed over (``"malformed"``,
        ``"below_minimum"``) is told to ``note``, which the crawl counts."""
        raise NotImplementedError

    async def start(self) -> AsyncIterator[Any]:
        if self.fresh:
            self.ledger.forget(self.name, tuple(kind.feed for kind in self.kinds))
            self.logger.info("Starting afresh: earlier %s progress and records forgotten.", self.name)
        async for request in self.requests_for(self.seeds(note=self.count_passed_over)):
            yield request

    def count_passed_over(self, why: str) -> None:
        """A feed record that is no seed, in the crawl's stats (``tiktok/seeds/<why>``)."""
        self.crawler.stats.inc_value(f"tiktok/seeds/{why}")

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
            await commit_page(self, seed, items, response, follow)
        except LedgerWriteError as error:
            return self.stop_writing(error)
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

    async def finish_unavailable(self, seed: str, item: Any, response: Response) -> list[Any]:
        """Store an item that stands for a seed the API refuses, and close the seed."""
        item.collected_at = collection_time()
        try:
            await commit_page(self, seed, [item], response, None)
        except LedgerWriteError as error:
            return self.stop_writing(error)
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
        return counts

    def on_idle(self) -> None:
        """Close as ``incomplete`` when a seed failed or was left open."""
        left = self.progress["scheduled"] - self.progress["done"]
        if left > 0:
            raise CloseSpider("incomplete")
