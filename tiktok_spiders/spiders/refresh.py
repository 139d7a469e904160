"""``refresh``: check every stored record against the API and purge what is gone.

Videos and comments (and replies) are checked through the Batch Compliance API:
a task per 10,000 ids and category is created (a multipart upload), its id kept in
the ledger before it is polled, its status polled with backoff until ``Completed``,
and the ids still valid downloaded; the others are gone.  A task the API fails,
forgets, or keeps ``Processing`` past ``TIKTOK_COMPLIANCE_MAX_HOURS`` is created again
with the same ids (at most :data:`MAX_TASK_ATTEMPTS` times in all).  Profiles are
checked through user info, one request each.

An answer is evidence, not an order: a file of valid ids is trusted only when it
comes from a task the API called ``Completed``, reads whole as ids, and names no id
that was not submitted; a profile is gone only when the API's answer says so
(:func:`profile_answer`).  Anything else is a failure, reported and asked again by
the next run, never a purge.  When the crawl closes, what was found gone is purged
(``purge.py``), unless it is more than ``TIKTOK_REFRESH_MAX_PURGE_SHARE`` of a kind and
not confirmed (``-a confirm_purge=true``).  Every request counts against the quota; a
re-run after a stop continues the same refresh, polling the same tasks.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Self

from scrapy import Request
from scrapy.http import JsonRequest
from scrapy.utils.httpobj import urlparse_cached
from urllib3 import encode_multipart_formdata

from tiktok_spiders import api
from tiktok_spiders.kinds import USER
from tiktok_spiders.ledger import LedgerWriteError
from tiktok_spiders.purge import Purge, PurgeHeld, PurgeUnfinished
from tiktok_spiders.refreshes import ForeignIds, Refreshes, Task
from tiktok_spiders.spiders.arguments import as_bool
from tiktok_spiders.spiders.base import ApiSpider, Note, ignore
from tiktok_spiders.stopping import CrawlStopping, is_stopping, wait_unless_stopping

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response

#: A task the API fails (or forgets, or keeps processing too long) is created again, at most this many times in all.
MAX_TASK_ATTEMPTS = 3
#: The longest wait between two status polls (seconds): each poll costs a request.
MAX_POLL_WAIT = 600.0
#: The profile fields asked, to see that an answer is a profile: at least one is always there.
PROFILE_FIELDS = ("display_name", "is_verified", "follower_count")
#: How the API's messages name the user they are about ("User x is invalid: cannot find the user").
NAMED_USER = re.compile(r"\buser\s+@?(\S+?)\s+is\s+invalid", re.IGNORECASE)

AVAILABLE, GONE = "available", "gone"


class RefreshSpider(ApiSpider):
    name = "refresh"
    kinds = ()  # it stores nothing: it removes
    seed_noun = "check"
    refreshes: Refreshes
    #: The refresh this crawl works on (None: it could not be begun), what it purged and found gone.
    refresh_id: int | None
    cannot_begin: LedgerWriteError
    purged: Counter[str]
    gone: Counter[str]

    def __init__(self, *args: Any, confirm_purge: str | bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.confirm_purge = as_bool(confirm_purge)
        if self.confirm_purge:
            self.arguments["confirm_purge"] = True

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.refreshes = Refreshes(spider.ledger)
        spider.purged = Counter()
        spider.gone = Counter()
        spider.refresh_id = spider.open_refresh()
        return spider

    def open_refresh(self) -> int | None:
        """The refresh this crawl works on: the open one, or a new one with its tasks planned from
        what is stored now (``fresh=true``: a new one, whatever the open one found).  None when the
        ledger cannot be written: the crawl then stops at once, saying so (:meth:`start`)."""
        try:
            current = self.refreshes.current()
            if self.fresh and current is not None:  # check everything again, whatever the open one found
                self.refreshes.abandon(current, self.name)
                self.logger.info("Starting a new refresh: the open one is given up, nothing it found is purged.")
            return self.refreshes.begin()
        except (LedgerWriteError, sqlite3.Error) as error:
            self.cannot_begin = LedgerWriteError(f"could not begin the refresh in {self.ledger.path}: {error}")
            return None

    # -- seeds: the refresh's tasks, then every stored profile ---------------------------

    def seeds(self, note: Note = ignore) -> Iterable[tuple[str, dict[str, Any], dict[str, Any]]]:
        yield from self.task_seeds()
        yield from self.profile_seeds()

    def task_seeds(self) -> Iterable[tuple[str, dict[str, Any], dict[str, Any]]]:
        for task in self.refreshes.tasks(self.refresh_id) if self.refresh_id is not None else ():
            yield task.seed, {}, {"task": task}

    def profile_seeds(self) -> Iterable[tuple[str, dict[str, Any], dict[str, Any]]]:
        for username in self.refreshes.usernames(self.refresh_id) if self.refresh_id is not None else ():
            yield f"{self.refresh_id}/{USER}/{username}", {"username": username}, {}

    async def start(self) -> AsyncIterator[Any]:
        """The compliance tasks first; the profiles once the video tasks are answered, so that an
        account one of whose videos TikTok has just called valid is known public without a
        request of its own (a request per profile is what a year's refresh cannot afford)."""
        if self.refresh_id is None:
            self.stop_writing(self.cannot_begin)
            return
        async for request in self.requests_for(self.task_seeds()):
            yield request
        assert self.refresh_id is not None
        while self.video_tasks_open() and not is_stopping(self.crawler):
            await asyncio.sleep(0.25)
        if not is_stopping(self.crawler):
            self.infer_profiles()
        async for request in self.requests_for(self.profile_seeds()):
            yield request

    def video_tasks_open(self) -> bool:
        """Whether a video task of this refresh is still being asked (neither answered nor failed)."""
        for task in self.refreshes.tasks(self.refresh_id or 0):
            state = self.ledger.seed(self.name, task.seed)
            if task.category == "video" and (state is None or state.status == "open"):
                return True
        return False

    def infer_profiles(self) -> None:
        """Every profile to check with a video the compliance API has just called valid: available, no request."""
        assert self.refresh_id is not None
        try:
            proven = self.refreshes.proven_available(self.refresh_id, self.name)
        except LedgerWriteError as error:
            self.stop_writing(error)
            return
        if proven:
            self.crawler.stats.inc_value("tiktok/refresh/profiles_inferred", proven)
            self.logger.info("%d profiles are available as their videos are: no request asked for them.", proven)
            # checked in this run, without a request: counted as done now, not as done by an earlier
            # run when requests_for meets them (the summary, the manifest and the bar say so)
            self.progress.update(scheduled=proven, done=proven)
            self.progress["skipped"] -= proven

    def seed_total(self) -> int:
        return sum(1 for _ in self.seeds())

    def api_request(self, seed: str, body: dict[str, Any], **context: Any) -> Request:
        task = context.get("task")
        if task is None:
            return self._request(api.USER_INFO_PATH, seed, body, self.on_profile, fields=PROFILE_FIELDS)
        if task.task_id is None:
            return self.create_request(seed, task)
        return self.status_request(seed, task, polls=0)

    def _request(
        self,
        path: str,
        seed: str,
        body: dict[str, Any],
        callback: Any,
        fields: tuple[str, ...] | None = None,
        **context: Any,
    ) -> JsonRequest:
        return JsonRequest(
            api.endpoint_url(self.settings["TIKTOK_API_BASE_URL"], path, fields),
            data=body,
            callback=callback,
            errback=self.on_error,
            cb_kwargs={"seed": seed, **context},
            dont_filter=True,
        )

    def create_request(self, seed: str, task: Task) -> Request:
        """The multipart upload the documentation asks for (its example's JSON content type is a bug)."""
        body, content_type = encode_multipart_formdata(
            {"category": task.category, "file_data": ("ids.txt", self.refreshes.ids_of(task) + "\n", "text/plain")}
        )
        return Request(
            api.endpoint_url(self.settings["TIKTOK_API_BASE_URL"], api.COMPLIANCE_CREATE_PATH),
            method="POST",
            body=body,
            headers={"Content-Type": content_type},
            callback=self.on_created,
            errback=self.on_error,
            cb_kwargs={"seed": seed, "task": task},
            dont_filter=True,
        )

    def status_request(self, seed: str, task: Task, polls: int) -> JsonRequest:
        body = {"task_id": sent_back(task)}
        return self._request(api.COMPLIANCE_STATUS_PATH, seed, body, self.on_status, task=task, polls=polls)

    # -- answers ----------------------------------------------------------------------------

    def _data(self, response: Response, seed: str) -> dict[str, Any] | None:
        """The answer's data, or None after failing the seed with the reason."""
        try:
            payload = api.answer_json(response)
            problem = self.page_error(response, payload)
            if problem:
                self.fail(seed, problem)
                return None
            return api.page_data(payload)
        except ValueError:
            self.fail(seed, f"HTTP {response.status} answer is not JSON")
        except api.BadAnswer as error:
            self.fail(seed, f"HTTP {response.status} answer of an unexpected shape: {error}")
        return None

    async def on_created(self, response: Response, seed: str, task: Task) -> list[Any]:
        data = self._data(response, seed)
        if data is None:
            return []
        task_id = data.get("task_id")
        if isinstance(task_id, bool) or not isinstance(task_id, int | str) or not str(task_id).isdigit():
            return self.fail(seed, f"the API created a task without a numeric task_id ({task_id!r})")
        try:
            # kept as its JSON text: a number stays a number (it may exceed int64), a string a string
            self.refreshes.task_created(task, json.dumps(task_id))
        except LedgerWriteError as error:
            return self.stop_writing(error)
        self.crawler.stats.inc_value("tiktok/refresh/tasks_created")
        return await self._poll_later(seed, task, polls=0)

    async def _poll_later(self, seed: str, task: Task, polls: int) -> list[Any]:
        first = self.settings.getfloat("TIKTOK_COMPLIANCE_POLL_SECONDS")
        try:
            why = f"compliance task {task.seed} is processing; asking again then"
            await wait_unless_stopping(self.crawler, min(first * 2**polls, MAX_POLL_WAIT), why)
        except CrawlStopping:
            return []  # the task's id is kept: the next run polls it
        return [self.status_request(seed, task, polls)]

    async def on_status(self, response: Response, seed: str, task: Task, polls: int) -> list[Any]:
        data = self._data(response, seed)
        if data is None:
            return []
        status = str(data.get("task_status") or "").strip().capitalize()  # as documented: "Completed"
        if status == api.TASK_PROCESSING:
            hours = self.settings.getfloat("TIKTOK_COMPLIANCE_MAX_HOURS")
            if task.hours_since_created() > hours:
                return self.create_again(seed, task, f"still Processing after {hours:g} hours")
            return await self._poll_later(seed, task, polls + 1)
        if status == api.TASK_COMPLETED:
            body = {"task_id": sent_back(task)}
            return [self._request(api.COMPLIANCE_DOWNLOAD_PATH, seed, body, self.on_download, task=task)]
        if status == api.TASK_FAILED:
            return self.create_again(seed, task, "failed by the API")
        return self.fail(seed, f"unknown task status {data.get('task_status')!r}: not read as done")

    def create_again(self, seed: str, task: Task, why: str) -> list[Any]:
        """A task lost (failed, forgotten, stuck) is created again with the same ids, a bounded number of times."""
        try:
            attempts = self.refreshes.task_lost(task)
        except LedgerWriteError as error:
            return self.stop_writing(error)
        self.crawler.stats.inc_value("tiktok/refresh/tasks_lost")
        if attempts >= MAX_TASK_ATTEMPTS:
            return self.fail(seed, f"compliance task {why}; lost {attempts} times, created again next run")
        self.logger.info("Compliance task %s %s: creating it again with the same ids.", seed, why)
        return [self.create_request(seed, task)]

    async def on_download(self, response: Response, seed: str, task: Task) -> list[Any]:
        """The file of ids still valid (not the JSON envelope): the task's other ids are gone."""
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        if "json" in content_type or "html" in content_type:
            code, message = api.json_error(response)
            what = f"{code}: {message}" if code else content_type
            return self.fail(seed, f"HTTP {response.status} {what} (no file of valid ids): nothing purged")
        valid = valid_ids(response.body)
        if valid is None:
            return self.fail(seed, "the file of valid ids holds something other than ids: nothing purged")
        try:
            gone = self.refreshes.task_answered(task, valid)
            self.ledger.finish_page(self.name, seed, cursor=None, search_id=None, has_more=False)
        except ForeignIds as error:
            self.crawler.stats.inc_value("tiktok/refresh/foreign_ids")
            return self.fail(seed, f"{error}: not trusted, nothing purged")
        except LedgerWriteError as error:
            return self.stop_writing(error)
        self.gone[f"{task.category}s"] += gone
        self.progress["done"] += 1
        return []

    async def on_profile(self, response: Response, seed: str) -> list[Any]:
        """A profile check's answer, whatever its status: available, gone, or a failure asked again next run."""
        username = seed.split(f"/{USER}/", 1)[1]
        verdict, why = profile_answer(response, username)
        if verdict is None:
            return self.fail(seed, f"the profile check's answer says neither (HTTP {response.status}, {why})")
        return self._profile_checked(seed, available=verdict == AVAILABLE)

    async def on_api_error(self, request: Any, response: Response, code: str, message: str) -> list[Any] | None:
        path = urlparse_cached(request).path
        if path == api.USER_INFO_PATH and response.status not in (401, 429):
            return await self.on_profile(response, request.cb_kwargs["seed"])
        task = request.cb_kwargs.get("task")
        lost = 400 <= response.status < 500 and response.status not in (401, 429)
        if lost and task is not None and path in (api.COMPLIANCE_STATUS_PATH, api.COMPLIANCE_DOWNLOAD_PATH):
            # the API no longer knows the task (tasks expire): its ids are in the ledger still
            why = f"unknown to the API ({code or response.status})"
            return self.create_again(request.cb_kwargs["seed"], task, why)
        return None

    def _profile_checked(self, seed: str, available: bool) -> list[Any]:
        username = seed.split(f"/{USER}/", 1)[1]
        assert self.refresh_id is not None
        try:
            self.refreshes.user_answered(self.refresh_id, username, available)
            self.ledger.finish_page(self.name, seed, cursor=None, search_id=None, has_more=False)
        except LedgerWriteError as error:
            return self.stop_writing(error)
        if not available:
            self.gone["users"] += 1
        self.progress["done"] += 1
        return []

    # -- closing: purge, then rewrite what held the purged records ---------------------------

    def closed(self, reason: str) -> None:
        if reason == "invalid_credentials" or self.refresh_id is None:
            return
        purge = Purge(self.ledger, self.settings["TIKTOK_DATA_DIR"], self.settings)
        stats = self.crawler.stats
        try:
            # the checks as this run leaves them, counted before the purge forgets the gone accounts'
            # and a finished refresh what it checked: the summary's tally is the run's own
            self.final_tally()
            if self.refreshes.pending():
                share = None if self.confirm_purge else self.settings.getfloat("TIKTOK_REFRESH_MAX_PURGE_SHARE")
                self.purged.update(purge.delete(self.refresh_id, share))
            if reason == "finished":
                self.refreshes.finish(self.refresh_id, self.name)
            for line in purge.finish():
                self.logger.info("Purge: %s.", line)
        except PurgeHeld as held:
            stats.set_value("tiktok/purge_held", str(held))
            self.logger.error("%s.", held)
        except (LedgerWriteError, PurgeUnfinished, OSError, sqlite3.Error) as error:
            message = f"could not purge: {error}"
            stats.set_value("tiktok/write_failed", message)
            self.logger.error("%s. Run the same command again once it is fixed: it finishes the purge first.", message)

    def sent(self) -> dict[str, Any]:
        return {
            "endpoints": [
                api.COMPLIANCE_CREATE_PATH,
                api.COMPLIANCE_STATUS_PATH,
                api.COMPLIANCE_DOWNLOAD_PATH,
                api.USER_INFO_PATH,
            ]
        }

    def summary_lines(self) -> list[str]:
        checked = self.refreshes.checked(self.refresh_id) if self.refresh_id else {}
        purged = ", ".join(f"{n} {kind}" for kind, n in sorted(self.purged.items())) or "nothing"
        gone = ", ".join(f"{n} {kind}" for kind, n in sorted(self.gone.items()) if n) or "nothing"
        created = self.crawler.stats.get_value("tiktok/refresh/tasks_created", 0)
        inferred = self.crawler.stats.get_value("tiktok/refresh/profiles_inferred", 0)
        lines = [
            "  checked in this refresh: "
            + (", ".join(f"{n} {kind}" for kind, n in sorted(checked.items())) or "nothing yet"),
            f"  found gone in this run: {gone}; purged with what depends on it: {purged}",
            f"  compliance tasks created in this run: {created}",
            f"  profiles known available from a video just found valid (no request): {inferred}",
        ]
        held = self.refreshes.pending()
        if held:
            lines.append(
                "  found gone and not purged yet: "
                + ", ".join(f"{n} {category}s" for category, n in sorted(held.items()))
            )
        return lines


def profile_answer(response: Response, username: str) -> tuple[str | None, str]:
    """What a user-info answer says of ``username``: ``available``, ``gone``, or None (it says
    neither: an error of another kind, HTML, another shape), with why.

    Available: HTTP 200, JSON, the ``ok`` code, a profile object holding at least one field
    asked.  Gone: a client error (not the token's 401, not a 429) in the API's JSON envelope
    whose message says the user cannot be found or returned, naming this user if it names one.
    """
    content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower().split(";")[0].strip()
    if "json" not in content_type:
        return None, f"a {content_type or 'typeless'} answer, not the API's JSON"
    try:
        payload = api.answer_json(response)
    except ValueError:
        return None, "not JSON"
    code, message = api.error_of(payload)
    if response.status == 200:
        if code != api.OK:
            return None, f"an error {code!r} sent with HTTP 200"
        data = payload.get("data") if isinstance(payload, dict) else None
        if isinstance(data, dict) and any(data.get(field) is not None for field in PROFILE_FIELDS):
            return AVAILABLE, "a profile"
        return None, "no profile in it"
    if not 400 <= response.status < 500 or response.status in (401, 429) or code in ("", api.OK):
        return None, f"{code or 'no error code'}"
    if api.user_unavailable_reason(message) is None:
        return None, f"{code}: {message}"
    named = NAMED_USER.search(message)
    if named and named.group(1).strip("'\".,:").lower() != username.lower():
        return None, f"it names another user ({message})"
    return GONE, message


def sent_back(task: Task) -> Any:
    """The task's id as the API sent it (an int of any size, or a string), for its status and file."""
    assert task.task_id is not None
    if task.task_id.isdigit():  # kept by an earlier version as plain digits: a number
        return int(task.task_id)
    return json.loads(task.task_id)


def valid_ids(body: bytes) -> set[str] | None:
    """The ids of a compliance task's file: one per line as the docs suggest, commas and blanks
    between them taken too; None when it holds anything else (a byte that is not UTF-8 included)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    parts = [part for part in re.split(r"[\s,]+", text) if part]
    return set(parts) if all(part.isdigit() and part.isascii() for part in parts) else None
