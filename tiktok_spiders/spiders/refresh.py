"""``refresh``: check every stored record against the API and purge what is gone.

Videos and comments (and replies) are checked through the Batch Compliance API:
a task per 10,000 ids and category is created (a multipart upload), its id kept in
the ledger before it is polled, its status polled with backoff until ``Completed``
(a ``Failed`` task is created again, at most :data:`MAX_TASK_ATTEMPTS` times), and
the ids still valid downloaded; the others are gone.  Profiles are checked through
user info, one request each.  When the crawl closes, whatever was found gone is
purged from the ledger, every feed and the tables in ``<data dir>/tables``, with
what depends on it (``purge.py``).  Every request counts against the quota; a
re-run after a stop continues the same refresh, polling the same tasks.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from scrapy import Request
from scrapy.http import JsonRequest
from scrapy.utils.httpobj import urlparse_cached
from urllib3 import encode_multipart_formdata

from tiktok_spiders import api
from tiktok_spiders.config import feed_formats
from tiktok_spiders.ledger import LedgerWriteError
from tiktok_spiders.purge import USER, Refreshes, Task
from tiktok_spiders.spiders.base import ApiSpider
from tiktok_spiders.stopping import CrawlStopping, wait_unless_stopping

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response

#: A task the API fails is created again, at most this many times in all.
MAX_TASK_ATTEMPTS = 3
#: The longest wait between two status polls (seconds): each poll costs a request.
MAX_POLL_WAIT = 600.0


class RefreshSpider(ApiSpider):
    name = "refresh"
    kinds = ()  # it stores nothing: it removes
    seed_noun = "check"
    refreshes: Refreshes
    #: The refresh this crawl works on (once its seeds are first read), what it purged and found gone.
    refresh_id: int | None
    purged: Counter[str]
    gone: Counter[str]

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.refreshes = Refreshes(spider.ledger)
        spider.refresh_id = None
        spider.purged = Counter()
        spider.gone = Counter()
        return spider

    # -- seeds: the refresh's tasks, then every stored profile ---------------------------

    def seeds(self) -> Iterable[tuple[str, dict[str, Any], dict[str, Any]]]:
        if self.refresh_id is None:
            if self.refreshes.pending():  # found gone by a run that stopped before purging
                self.purged.update(self.refreshes.purge(self.refreshes.current()))
            self.refresh_id = self.refreshes.begin()
        for task in self.refreshes.tasks(self.refresh_id):
            yield task.seed, {}, {"task": task}
        for username in self.refreshes.usernames(self.refresh_id):
            yield f"{self.refresh_id}/{USER}/{username}", {"username": username}, {}

    def seed_total(self) -> int:
        return sum(1 for _ in self.seeds())

    def api_request(self, seed: str, body: dict[str, Any], **context: Any) -> Request:
        task = context.get("task")
        if task is None:
            return self._request(api.USER_INFO_PATH, seed, body, self.on_profile, fields=("display_name",))
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
            await wait_unless_stopping(self.crawler, min(first * 2**polls, MAX_POLL_WAIT))
        except CrawlStopping:
            return []  # the task's id is kept: the next run polls it
        return [self.status_request(seed, task, polls)]

    async def on_status(self, response: Response, seed: str, task: Task, polls: int) -> list[Any]:
        data = self._data(response, seed)
        if data is None:
            return []
        status = str(data.get("task_status") or "").strip().capitalize()  # as documented: "Completed"
        if status == api.TASK_PROCESSING:
            return await self._poll_later(seed, task, polls + 1)
        if status == api.TASK_COMPLETED:
            body = {"task_id": sent_back(task)}
            return [self._request(api.COMPLIANCE_DOWNLOAD_PATH, seed, body, self.on_download, task=task)]
        if status == api.TASK_FAILED:
            try:
                attempts = self.refreshes.task_failed(task)
            except LedgerWriteError as error:
                return self.stop_writing(error)
            self.crawler.stats.inc_value("tiktok/refresh/tasks_failed")
            if attempts >= MAX_TASK_ATTEMPTS:
                return self.fail(seed, f"the API failed the compliance task {attempts} times")
            return [self.create_request(seed, task)]
        return self.fail(seed, f"unknown task status {data.get('task_status')!r}")

    async def on_download(self, response: Response, seed: str, task: Task) -> list[Any]:
        """The file of ids still valid (not the JSON envelope): the task's other ids are gone."""
        code, message = api.json_error(response)
        if code:
            return self.fail(seed, f"HTTP {response.status} {code}: {message} (no file of valid ids)")
        valid = valid_ids(response.body)
        if valid is None:
            return self.fail(seed, "the file of valid ids holds something other than ids")
        try:
            gone = self.refreshes.task_answered(task, valid)
            self.ledger.finish_page(self.name, seed, cursor=None, search_id=None, has_more=False)
        except LedgerWriteError as error:
            return self.stop_writing(error)
        self.gone[f"{task.category}s"] += gone
        self.progress["done"] += 1
        return []

    async def on_profile(self, response: Response, seed: str) -> list[Any]:
        return self._profile_checked(seed, available=True)

    async def on_api_error(self, request: Any, response: Response, code: str, message: str) -> list[Any] | None:
        # a profile the API no longer serves (documented as 400: not found, private, refused)
        if urlparse_cached(request).path != api.USER_INFO_PATH or response.status in (401, 429):
            return None
        if api.user_unavailable_reason(message) is None:
            return None
        return self._profile_checked(request.cb_kwargs["seed"], available=False)

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
        try:
            self.purged.update(self.refreshes.purge(self.refresh_id))
            if reason == "finished":
                self.final_tally()  # counted before the finished refresh forgets what it checked
                self.refreshes.finish(self.refresh_id, self.name)
            if self.purged:
                self.ledger.compact()
                self.rewrite_files()
        except (LedgerWriteError, OSError, sqlite3.Error) as error:
            message = f"could not purge: {error}"
            self.crawler.stats.set_value("tiktok/write_failed", message)
            self.logger.error("%s. Run the same command again once it is fixed.", message)

    def rewrite_files(self) -> None:
        """Every feed and table of the data directory again, from the purged ledger."""
        from tiktok_spiders.extensions.export import known_feeds, write_feed

        data_dir = Path(self.settings["TIKTOK_DATA_DIR"])
        private = self.settings.getbool("TIKTOK_PRIVATE_FILES")
        for kind in known_feeds(data_dir):
            for fmt in {*feed_formats(self.settings), "jsonl", "csv"}:
                path = data_dir / f"{kind.feed}.{fmt}"
                if path.exists():
                    write_feed(self.ledger, kind, path, fmt, private)
        from tiktok_spiders import table_writer

        for leftover in table_writer.STAGING_NAMES:  # of a tables or report run that was killed: data too
            shutil.rmtree(data_dir / leftover, ignore_errors=True)
        tables_dir = data_dir / "tables"
        written = sorted(p for p in tables_dir.glob("*.*") if p.suffix in (".parquet", ".csv", ".duckdb"))
        if written:
            from tiktok_spiders import tables

            feeds = tables.study_feeds(data_dir)
            staging = data_dir / table_writer.TABLES_STAGING
            memory_mb = self.settings.getint("TIKTOK_TABLES_MEMORY_MB")
            with table_writer.StudyDatabase(staging, private=private, memory_mb=memory_mb) as study:
                table_writer.stage_study(study, feeds, feeds)
                for path in written:
                    if path.suffix == ".duckdb":
                        names = [name for name in table_writer.database_tables(path) if name in feeds]
                        table_writer.write_database(study, names, path, private=private)
                    elif path.stem in feeds:
                        table_writer.write_table(study, path.stem, path, path.suffix[1:], private=private)
                    else:
                        path.unlink()  # a table of records that are all gone
        self.logger.info("Rewrote the feeds and %d tables without the purged records.", len(written))

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
        return [
            "  checked in this refresh: "
            + (", ".join(f"{n} {kind}" for kind, n in sorted(checked.items())) or "nothing yet"),
            f"  found gone in this run: {gone}; purged with what depends on it: {purged}",
            f"  compliance tasks created in this run: {created}",
        ]


def sent_back(task: Task) -> Any:
    """The task's id as the API sent it (an int of any size, or a string), for its status and file."""
    assert task.task_id is not None
    if task.task_id.isdigit():  # kept by an earlier version as plain digits: a number
        return int(task.task_id)
    return json.loads(task.task_id)


def valid_ids(body: bytes) -> set[str] | None:
    """The ids of a compliance task's file: one per line as the docs suggest, commas and blanks
    between them taken too; None when it holds anything else."""
    parts = [part for part in re.split(r"[\s,]+", body.decode("utf-8-sig", "replace")) if part]
    return set(parts) if all(part.isdigit() for part in parts) else None
