"""``scrapy study STUDY.toml``: a whole study as one reproducible, resumable command.

The study file names the stages to run, in order, and the arguments of each
(the spiders' own ``-a`` arguments); each stage reads its seeds from the feed
the previous one wrote.  The stages are crawled one after the other in this
process, as Scrapy runs spiders sequentially (which spares each stage the
interpreter's start-up), with what ``scrapy crawl`` gives each: its arguments
checked first, its summary, its exit status and resume.  A stage that finished
is recorded in the ledger and skipped when the study is run again; the command
ends with one table of what was collected, what is missing and why.

    [study]
    stages = ["videos", "comments", "users"]
    data_dir = "data/climate"        # optional: TIKTOK_DATA_DIR otherwise

    [videos]
    hashtags = "climate,vote"
    start_date = "2024-01-01"
    end_date = "2024-03-31"
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import gc
import hashlib
import json
import sqlite3
import sys
import tomllib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from tiktok_spiders import clock, pilot
from tiktok_spiders.commands import Named
from tiktok_spiders.datadir import DataDirError, open_data_dir
from tiktok_spiders.kinds import KINDS, kinds_of, unavailable_kind
from tiktok_spiders.ledger import DONE, FILENAME, Ledger
from tiktok_spiders.refreshes import Refreshes
from tiktok_spiders.spiders.arguments import BadArgument
from tiktok_spiders.spiders.base import ApiSpider
from tiktok_spiders.stopping import exit_status
from tiktok_spiders.terminal import QuietRun, command
from tiktok_spiders.token import AccessToken

if TYPE_CHECKING:
    import argparse

    from scrapy.spiderloader import SpiderLoaderProtocol

STAGE_LEDGER_NAME = "study"
#: What a study file's [study] section holds; each stage's section holds that spider's arguments.
STUDY_KEYS = frozenset({"stages", "data_dir"})
RUNNING = "running"


def stop_reactor(_: object = None) -> None:
    """Stop the reactor once the stages are done (it may be stopping already, after Ctrl-C)."""
    from twisted.internet import reactor

    with contextlib.suppress(RuntimeError):
        reactor.stop()  # type: ignore[misc]  # twisted's module-level reactor is typed as a class


class StudyFileError(ValueError):
    """A study file that cannot be run: said in one line."""


def load_study(path: Path, spider_names: list[str]) -> tuple[list[str], dict[str, dict[str, str]], str | None]:
    """``(stages, arguments per stage, data_dir)`` of a study file, checked."""
    if not path.is_file():
        raise StudyFileError(f"study file {path} does not exist")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise StudyFileError(f"{path} is not valid TOML: {error}") from None
    study = document.get("study", {})
    unknown = sorted(set(study) - STUDY_KEYS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(STUDY_KEYS), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise StudyFileError(
            f"{path}: unknown key {unknown[0]!r} in [study] ({hint}it takes: {', '.join(sorted(STUDY_KEYS))})"
        )
    stages = study.get("stages")
    if not isinstance(stages, list) or not stages or not all(isinstance(stage, str) for stage in stages):
        raise StudyFileError(f'{path}: [study] needs stages = ["videos", ...]')
    unknown = [stage for stage in (*stages, *(key for key in document if key != "study")) if stage not in spider_names]
    if unknown:
        raise StudyFileError(f"{path}: unknown stage {unknown[0]!r} (one of {', '.join(sorted(spider_names))})")
    arguments = {stage: {key: _argument(value) for key, value in document.get(stage, {}).items()} for stage in stages}
    data_dir = study.get("data_dir")
    return stages, arguments, str(data_dir) if data_dir else None


def _argument(value: Any) -> str:
    """A TOML value as a spider argument: lists become comma lists, tables inline JSON."""
    if isinstance(value, list):
        return ",".join(str(element) for element in value)
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolved(arguments: dict[str, str]) -> dict[str, str]:
    """The arguments with ``today`` / ``today-N`` dates as they are today (UTC): a stage of a rolling
    study is a new stage each day, not one finished once."""
    from tiktok_spiders.spiders.videos import RELATIVE_DATE, parse_date

    return {
        name: parse_date(name, value).isoformat() if RELATIVE_DATE.fullmatch(value.strip()) else value
        for name, value in arguments.items()
    }


async def wait_for_the_next_day(day: Any) -> None:
    """Until a minute past the next UTC midnight (the quota's reset), looking at the clock each second:
    Ctrl-C or SIGTERM stops the reactor, and this with it."""
    while clock.now() < datetime.combine(day + timedelta(days=1), time(0, 1), tzinfo=UTC):
        await asyncio.sleep(1.0)


def stage_key(stage: str, arguments: dict[str, str]) -> str:
    """The ledger's name for a stage run with these arguments."""
    digest = hashlib.sha1(json.dumps(arguments, sort_keys=True).encode()).hexdigest()[:12]  # noqa: S324
    return f"{stage}:{digest}"


def summary_table(ledger: Ledger, stages: list[str], outcomes: dict[str, str], loader: SpiderLoaderProtocol) -> str:
    """One table: per stage, its outcome, its seeds as its own summary counted them, records, and why."""
    rows: list[tuple[str, ...]] = [
        ("stage", "outcome", "done", "failed", "begun", "not started", "records", "unavailable")
    ]
    reasons = []
    last_tally = {run["spider"]: run.get("seeds") or {} for run in ledger.runs()}
    for stage in stages:
        counts = last_tally.get(stage, {})
        feeds = [kind.feed for kind in kinds_of(stage) if kind.feed != unavailable_kind(stage).feed]
        records = ", ".join(f"{ledger.count_records(feed)} {feed}" for feed in feeds)
        unavailable = ledger.count_records(unavailable_kind(stage).feed)
        rows.append(
            (
                stage,
                outcomes.get(stage, "not run"),
                *(str(counts[key]) if key in counts else "-" for key in ("done", "failed", "begun", "not_started")),
                records,
                str(unavailable),
            )
        )
        reasons += [f"  {stage} {seed}: {why}" for seed, why in ledger.failed_seeds(stage, limit=5)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    if reasons:
        lines += ["", "Missing, and why (first 5 per stage):", *reasons]
    return "\n".join(lines)


class Command(Named, QuietRun, ScrapyCommand):
    requires_project = True
    #: The data directory's ledger, opened once for the whole study and lent to each stage's crawl.
    ledger: Ledger

    def syntax(self) -> str:
        return "STUDY.toml"

    def short_desc(self) -> str:
        return "Run the stages of a study file in order, resumably, and summarise what is missing"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--fresh", action="store_true", help="run every stage again from the start")
        parser.add_argument(
            "--plan",
            action="store_true",
            help="say what the study will cost (requests, days of quota) and stop; on a study not begun, "
            "collect a few of its windows first to estimate the rest (its pilot: at most "
            f"{pilot.VIDEO_REQUESTS + pilot.COMMENT_REQUESTS} requests, kept for the study)",
        )
        parser.add_argument("--json", action="store_true", help="with --plan: the plan as one JSON object")
        parser.add_argument("--no-pilot", action="store_true", help="with --plan: spend nothing, estimate less")
        parser.add_argument(
            "--daily",
            action="store_true",
            help="run the study now, then again each UTC day after the quota's reset, until stopped (Ctrl-C, SIGTERM)",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if self.refused(args):
            return
        if len(args) != 1:
            raise UsageError("give one study file")
        assert self.settings is not None
        assert self.crawler_process is not None
        loader = self.crawler_process.spider_loader
        ledger = None
        with self.one_line_errors(StudyFileError, BadArgument, DataDirError):
            stages, arguments, data_dir = load_study(Path(args[0]), loader.list())
            settings = self.settings  # the crawler process's: every stage's crawler is made from it
            if data_dir:  # wins over the environment and .env, not over -s
                settings.set("TIKTOK_DATA_DIR", data_dir, priority="project")
            # every stage is checked before the first request: a typo in the last stage costs nothing
            # (a later stage's default seed feed is written by an earlier one: checked when its turn comes)
            spiders = [
                self._check(loader.load(stage), arguments[stage], later=index > 0) for index, stage in enumerate(stages)
            ]
            if opts.plan and (opts.no_pilot or not self._needs_pilot(stages, spiders)):
                self._print_plan(stages, spiders, None, opts)
                return
            ledger = open_data_dir(settings)
        if ledger is None:
            return
        self.ledger = ledger  # every stage's crawl uses it: one connection, one lock, per study
        self.start_run_log(settings["TIKTOK_DATA_DIR"], "study")
        # handed from stage to stage: one token fetch (one round trip) per study, renewed when due
        self.access_token = AccessToken()
        if opts.plan:
            try:
                spent = self._in_reactor(self._pilot(stages, arguments, spiders, ledger))
                spiders = [self._check(loader.load(stage), arguments[stage], later=True) for stage in stages]
                self._print_plan(stages, spiders, ledger, opts, spent)
            finally:
                ledger.close()
            return
        print(self._plan(stages, spiders, ledger), flush=True)
        if opts.daily:
            try:
                self._in_reactor(self._daily(stages, arguments, ledger, loader))
            finally:
                ledger.close()
            print("Stopped: run the same command again to go on (every day is resumed where it stopped).")
            self.exitcode = 0 if self.exitcode == 0 else 1
            return
        outcomes: dict[str, str] = {}
        try:
            self._in_reactor(self._run_stages(stages, arguments, opts.fresh, ledger, outcomes))
            for stage, outcome in outcomes.items():
                if outcome == RUNNING:  # the reactor stopped before the stage's end was seen
                    outcomes[stage] = "stopped (exit 1)"
                    self.exitcode = self.exitcode or 1
            print("\nStudy summary\n" + summary_table(ledger, stages, outcomes, loader), flush=True)
            if self.exitcode:
                print("The study is incomplete: run the same command again to continue.", flush=True)
                spiders = [self._check(loader.load(stage), arguments[stage], later=True) for stage in stages]
                print("\n" + self._plan(stages, spiders, ledger), flush=True)
        finally:
            ledger.close()
        gc.freeze()  # as in `scrapy crawl`: everything is written, spare the final collection

    def _in_reactor(self, work: Any) -> Any:
        """Run a coroutine of crawls to its end in the crawler process's reactor; its result."""
        assert self.crawler_process is not None
        task = asyncio.get_event_loop().create_task(work)
        task.add_done_callback(stop_reactor)
        # Ctrl-C stops the running stage cleanly (Scrapy's own signal handling), then the reactor
        self.crawler_process.start(stop_after_crawl=False)
        bug = task.exception() if task.done() else None
        if bug is not None:
            raise bug  # a bug of ours, not a stage's outcome: show it
        return task.result() if task.done() else None

    def _needs_pilot(self, stages: list[str], spiders: list[ApiSpider | None]) -> bool:
        """Whether the study's videos stage has asked nothing yet (its cost is then a guess)."""
        if "videos" not in stages or (videos := self._with_settings(spiders[stages.index("videos")])) is None:
            return False
        assert self.settings is not None
        data_dir = Path(self.settings["TIKTOK_DATA_DIR"])
        if not (data_dir / FILENAME).is_file():
            return True
        ledger = Ledger(data_dir)
        try:
            return not any(ledger.seed("videos", seed) for seed, *_ in videos.seeds())
        finally:
            ledger.close()

    def _with_settings(self, spider: ApiSpider | None) -> ApiSpider | None:
        """A checked spider, made able to list its seeds without a crawler."""
        if spider is not None:
            assert self.settings is not None
            spider.settings = self.settings  # what a crawler would give it
        return spider

    async def _pilot(
        self, stages: list[str], arguments: dict[str, dict[str, str]], spiders: list[ApiSpider | None], ledger: Ledger
    ) -> int:
        """Collect a few of the study's windows (and, for its replies, a few videos' first comments),
        as the study would: its pages, kept; the requests spent."""
        videos = self._with_settings(spiders[stages.index("videos")])
        assert videos is not None
        seeds = [seed for seed, *_ in videos.seeds()]
        chosen = pilot.spread(seeds, pilot.VIDEO_WINDOWS)
        print(
            f"Pilot: collecting {len(chosen)} of the study's {len(seeds)} windows (at most {pilot.VIDEO_REQUESTS} "
            "requests) to estimate the rest; the study keeps them and never asks them again.",
            flush=True,
        )
        spent = await self._crawl_pilot(
            "videos", arguments["videos"], pilot.Pilot(frozenset(chosen), pilot.VIDEO_REQUESTS)
        )
        if {"comments", "replies"} <= set(stages) and ledger.count_records("videos"):
            busiest = ledger.connection.execute(
                "SELECT key FROM records WHERE kind = 'videos' ORDER BY json_extract(data, '$.comment_count') DESC "
                "LIMIT ?",
                (pilot.COMMENT_VIDEOS,),
            ).fetchall()
            ask = pilot.Pilot(frozenset(key for (key,) in busiest), pilot.COMMENT_REQUESTS)
            spent += await self._crawl_pilot("comments", arguments["comments"], ask)
        return spent

    async def _crawl_pilot(self, stage: str, arguments: dict[str, str], budget: pilot.Pilot) -> int:
        assert self.crawler_process is not None
        crawler = self.crawler_process.create_crawler(self.crawler_process.spider_loader.load(stage))
        self.ledger.lend_to(crawler)
        crawler.tiktok_access_token = self.access_token  # type: ignore[attr-defined]
        crawler.tiktok_pilot = budget  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):
            await self.crawler_process.crawl(crawler, **arguments)
        return int(crawler.stats.get_value("tiktok/requests", 0)) if crawler.stats else 0

    def _print_plan(
        self, stages: list[str], spiders: list[ApiSpider | None], ledger: Ledger | None, opts: Any, spent: int = 0
    ) -> None:
        from tiktok_spiders import plan

        assert self.settings is not None
        estimates = self._estimates(stages, spiders, ledger)
        if opts.json:
            print(plan.as_json(estimates, self.settings, spent), flush=True)
            return
        said = f"the pilot spent {spent:,} requests; they are not in the plan" if spent else ""
        duty = plan.refresh_duty(ledger, self.settings) if ledger is not None and "refresh" in stages else None
        print(plan.summary(estimates, self.settings, said, self._left_today(), duty), flush=True)

    def _check(self, spidercls: type, arguments: dict[str, str], later: bool = False) -> ApiSpider | None:
        """What ``scrapy crawl`` checks before a crawl; raises :class:`BadArgument`."""
        if issubclass(spidercls, ApiSpider):
            assert self.settings is not None
            return spidercls.check(self.settings, seed_feed_comes_later=later, **arguments)
        return None

    def _plan(self, stages: list[str], spiders: list[ApiSpider | None], ledger: Ledger | None) -> str:
        """What the stages still need, in requests and days of quota (``plan.py``)."""
        from tiktok_spiders import plan

        assert self.settings is not None
        duty = plan.refresh_duty(ledger, self.settings) if ledger is not None and "refresh" in stages else None
        return plan.summary(
            self._estimates(stages, spiders, ledger), self.settings, left_today=self._left_today(), duty=duty
        )

    def _left_today(self) -> int | None:
        """The key's requests left today (its quota file, shared by every study), or None if it cannot be read."""
        from tiktok_spiders.quota_file import QuotaFile

        assert self.settings is not None
        try:
            quota = QuotaFile(self.settings["TIKTOK_QUOTA_FILE"], self.settings["TIKTOK_CLIENT_KEY"])
        except (OSError, sqlite3.Error):
            return None
        try:
            return max(0, self.settings.getint("TIKTOK_DAILY_REQUEST_LIMIT") - quota.spent(clock.today()))
        finally:
            quota.close()

    def _estimates(self, stages: list[str], spiders: list[ApiSpider | None], ledger: Ledger | None) -> list[Any]:
        from tiktok_spiders import plan

        assert self.settings is not None
        own = ledger is None and (Path(self.settings["TIKTOK_DATA_DIR"]) / FILENAME).is_file()
        if own:
            ledger = Ledger(self.settings["TIKTOK_DATA_DIR"])  # read, not locked: a plan changes nothing
        try:
            estimates: dict[str, plan.StageEstimate] = {}
            for stage, spider in zip(stages, spiders, strict=True):
                if self._with_settings(spider) is not None:
                    estimates[stage] = plan.estimate(stage, spider, ledger, self.settings, estimates)
        finally:
            if own and ledger is not None:
                ledger.close()
        return list(estimates.values())

    async def _run_stages(
        self,
        stages: list[str],
        arguments: dict[str, dict[str, str]],
        fresh: bool,
        ledger: Ledger,
        outcomes: dict[str, str],
    ) -> None:
        """Each stage in turn, as the study file orders them — but the refresh first when it is due:
        the terms' duty is never left for the quota that remains.  A stage is skipped as done
        earlier only when every stage before it was too (a stage that ran may have given the next
        new seeds: the new days of a rolling study, say)."""
        assert self.crawler_process is not None
        order = [stage for stage in stages if stage != "refresh"]
        if "refresh" in stages:
            due = fresh or self._refresh_not_due(ledger) is None
            order = ["refresh", *order] if due else [*order, "refresh"]
        upstream_ran = False
        for stage in order:
            key = stage_key(stage, resolved(arguments[stage]))
            state = ledger.seed(STAGE_LEDGER_NAME, key)
            if stage == "refresh":  # a duty that comes back: run whenever it is due, not once
                not_due = None if fresh else self._refresh_not_due(ledger)
                if not_due:
                    outcomes[stage] = "not due"
                    print(f"\n== {stage}: {not_due}, skipped", flush=True)
                    continue
            elif state is not None and state.status == DONE and not fresh and not upstream_ran:
                outcomes[stage] = "done earlier"
                print(f"\n== {stage}: finished in an earlier run, skipped", flush=True)
                continue
            if stage != "refresh":
                upstream_ran = True
            stage_arguments = {**arguments[stage], **({"fresh": "true"} if fresh else {})}
            print(
                f"\n== {stage}: {command('crawl')} {stage} "
                + " ".join(f"-a {k}={v}" for k, v in stage_arguments.items()),
                flush=True,
            )
            outcomes[stage] = RUNNING
            status = await self._crawl(stage, stage_arguments)
            outcomes[stage] = "finished" if status == 0 else f"stopped (exit {status})"
            if status != 0:
                self.exitcode = status
                return
            ledger.finish_page(STAGE_LEDGER_NAME, key, cursor=None, search_id=None, has_more=False)

    async def _daily(
        self, stages: list[str], arguments: dict[str, dict[str, str]], ledger: Ledger, loader: Any
    ) -> None:
        """The study now, then again each UTC day once the quota has been reset, until stopped; a
        line a day.  Dates written ``today-N`` move on with the days."""
        while True:
            day = clock.today()
            spent_before = dict(ledger.requests_per_day())
            records_before = {feed: ledger.count_records(feed) for feed in KINDS}
            outcomes: dict[str, str] = {}
            self.exitcode = 0
            await self._run_stages(stages, arguments, False, ledger, outcomes)
            spent = {d: n - spent_before.get(d, 0) for d, n in ledger.requests_per_day().items()}
            new = {feed: ledger.count_records(feed) - count for feed, count in records_before.items()}
            got = ", ".join(f"+{n:,} {feed}" for feed, n in new.items() if n) or "nothing new"
            state = "complete" if self.exitcode == 0 else "to be continued"
            print(
                f"{day} (UTC): {got}; {sum(spent.values()):,} requests; {state}; next run after 00:00 UTC",
                flush=True,
            )
            await wait_for_the_next_day(day)

    def _refresh_not_due(self, ledger: Ledger) -> str | None:
        """Why the refresh stage need not run now (None: it must: due, begun, or holding a purge)."""
        assert self.settings is not None
        refreshes = Refreshes(ledger)
        days = self.settings.getint("TIKTOK_REFRESH_DAYS")
        age = refreshes.age()
        if refreshes.is_open() or (age is not None and age[0] > days):
            return None
        if age is None:
            return "nothing collected to refresh yet"
        since = "last refreshed" if age[1] else "collected"
        return f"not due: {since} {age[0]} days ago, due after {days} days (TIKTOK_REFRESH_DAYS)"

    async def _crawl(self, stage: str, arguments: dict[str, str]) -> int:
        """One stage, as ``scrapy crawl`` would run it; its exit status."""
        assert self.crawler_process is not None
        spidercls = self.crawler_process.spider_loader.load(stage)
        try:
            self._check(spidercls, arguments)
        except BadArgument as error:
            print(f"error: {stage}: {error}", file=sys.stderr, flush=True)
            return 2
        crawler = self.crawler_process.create_crawler(spidercls)
        self.ledger.lend_to(crawler)
        crawler.tiktok_access_token = self.access_token  # type: ignore[attr-defined]  # see shared_token
        try:
            await self.crawler_process.crawl(crawler, **arguments)
        except Exception:
            return 1
        return exit_status(crawler)
