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
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy import Spider, signals
from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.http import JsonRequest
from scrapy.spidermiddlewares.httperror import HttpError

from tiktok_spiders import api
from tiktok_spiders.ledger import Ledger
from tiktok_spiders.middlewares.retry import json_error

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

    from tiktok_spiders.items import RecordKind


class BadArgument(ValueError):
    """Bad input from the researcher: reported as one line, before any request."""


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def comma_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


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


class ApiSpider(Spider):
    """Base of the Research API spiders; subclasses fill in the class attributes and hooks."""

    #: The endpoint's path (``api.*_PATH``).
    path: ClassVar[str]
    #: What the spider stores (for feeds, fresh starts and the summary).
    kinds: ClassVar[tuple[RecordKind, ...]]
    #: What a seed is called in messages ("window", "video", "user").
    seed_noun: ClassVar[str] = "seed"

    def __init__(self, *args: Any, fresh: str | bool = False, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - {"name"})
        if unknown:
            raise BadArgument(f"unknown argument {unknown[0]!r} for spider {self.name} (see the README's argument table)")
        super().__init__(*args, **kwargs)
        self.fresh = as_bool(fresh)
        self.fields: tuple[str, ...] | None = None
        #: Seeds scheduled, skipped (done in an earlier run), done and failed in this run.
        self.progress: Counter[str] = Counter()

    @classmethod
    def check(cls, settings: BaseSettings, **arguments: Any) -> None:
        """Everything that can be wrong before the crawl starts; raises :class:`BadArgument`."""
        cls(**arguments).validate(settings)

    def validate(self, settings: BaseSettings) -> None:
        """Checks that need settings (credentials, seed files); overridden to add more."""
        check_credentials(settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ApiSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.validate(crawler.settings)
        spider.ledger = Ledger.for_crawler(crawler)
        crawler.signals.connect(spider.on_idle, signal=signals.spider_idle)
        return spider

    @property
    def url(self) -> str:
        return api.endpoint_url(self.settings["TIKTOK_API_BASE_URL"], self.path, self.fields)

    # -- seeds ----------------------------------------------------------------------

    def seeds(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """``(ledger key, first request body)`` of every seed; lazily, for big seed files."""
        raise NotImplementedError

    async def start(self) -> AsyncIterator[Any]:
        if self.fresh:
            self.ledger.forget(self.name, tuple(kind.feed for kind in self.kinds))
            self.logger.info("Starting afresh: earlier %s progress and records forgotten.", self.name)
        for seed, body in self.seeds():
            state = self.ledger.seed(self.name, seed)
            if state is not None and state.status == "done":
                self.progress["skipped"] += 1
                continue
            self.progress["scheduled"] += 1
            if state is not None and state.cursor:
                yield self.resume_request(seed, body, state.cursor, state.search_id)
            else:
                yield self.api_request(seed, body)

    def api_request(self, seed: str, body: dict[str, Any], **context: Any) -> JsonRequest:
        return JsonRequest(
            self.url,
            data=body,
            callback=self.parse_page,
            errback=self.on_error,
            cb_kwargs={"seed": seed, **context},
            dont_filter=True,  # the ledger, not the dupefilter, knows what was fetched
        )

    def resume_request(self, seed: str, body: dict[str, Any], cursor: int, search_id: str | None) -> JsonRequest:
        """The first request of a seed that an earlier run left half done."""
        return self.api_request(seed, {**body, "cursor": cursor})

    # -- pages ----------------------------------------------------------------------------

    def parse_records(self, data: dict[str, Any], body: dict[str, Any]) -> Iterable[Any]:
        """The items of one page."""
        raise NotImplementedError

    def next_body(self, data: dict[str, Any], body: dict[str, Any], **context: Any) -> dict[str, Any] | None:
        """The body of the next page, or None when the seed is finished."""
        if not data.get("has_more") or data.get("cursor") is None:
            return None
        return {**body, "cursor": data["cursor"]}

    async def parse_page(self, response: Response, seed: str, **context: Any) -> list[Any]:
        payload = response.json()
        code, message = api.error_of(payload)
        if code not in (api.OK, ""):
            self.crawler.stats.inc_value(f"tiktok/api_error/{code}")
            return self.fail(seed, f"{code}: {message}")
        data = payload.get("data") or {}
        body = json.loads(response.request.body)
        scraper = self.crawler.engine.scraper
        for item in self.parse_records(data, body):
            # awaited one by one, so the page is committed only after its items are staged
            await scraper.start_itemproc_async(item, response=response)
        follow = self.next_body(data, body, **context)
        if follow is not None and follow.get("cursor") == body.get("cursor"):
            return self.fail(seed, f"the API said has_more but did not advance the cursor ({body.get('cursor')})")
        self.ledger.finish_page(
            self.name,
            seed,
            cursor=follow.get("cursor") if follow else None,
            search_id=follow.get("search_id") if follow else None,
            has_more=follow is not None,
        )
        if follow is None:
            self.progress["done"] += 1
            return []
        return [self.api_request(seed, follow)]

    # -- failures ---------------------------------------------------------------------------

    async def on_api_error(self, request: Any, response: Response, code: str, message: str) -> list[Any] | None:
        """A spider's own answer to an API error (None: a failure like any other)."""
        return None

    async def on_error(self, failure: Failure) -> list[Any]:
        request = failure.request  # type: ignore[attr-defined]
        seed = request.cb_kwargs["seed"]
        if failure.check(HttpError):
            response = failure.value.response
            code, message = json_error(response)
            handled = await self.on_api_error(request, response, code, message)
            if handled is not None:
                return handled
            reason = f"HTTP {response.status}" + (f" {code}: {message}" if code else "")
        elif failure.check(IgnoreRequest):
            return []  # stopped (quota, credentials): the seed stays open for the next run
        else:
            reason = f"{type(failure.value).__name__}: {failure.value}"
        return self.fail(seed, reason)

    def fail(self, seed: str, reason: str) -> list[Any]:
        self.ledger.fail_seed(self.name, seed, reason)
        self.progress["failed"] += 1
        self.crawler.stats.inc_value("tiktok/failed_seeds")
        self.logger.warning("Could not collect %s %s: %s", self.seed_noun, seed, reason)
        return []

    async def finish_unavailable(self, seed: str, item: Any, response: Response) -> list[Any]:
        """Store an item that stands for a seed the API refuses, and close the seed."""
        await self.crawler.engine.scraper.start_itemproc_async(item, response=response)
        self.ledger.finish_page(self.name, seed, cursor=None, search_id=None, has_more=False)
        self.progress["done"] += 1
        return []

    def on_idle(self) -> None:
        """Close as ``incomplete`` when a seed failed or was left open."""
        left = self.progress["scheduled"] - self.progress["done"]
        if left > 0:
            raise CloseSpider("incomplete")
