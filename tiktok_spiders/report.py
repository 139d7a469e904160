"""A study at a glance: one self-contained HTML file, plots inline, for any browser offline.

``scrapy report`` (``tiktok-spiders report``) writes ``<data dir>/report.html``:
the study (stages, arguments, query, dates, tool), what was collected and what
was not (records per feed, failures with reasons, unavailable users, seeds by
state, requests per UTC day against the quota), the data (videos per day by
region, top hashtags, engagement distributions, comments and replies served
against the counts the API reports, authors' followers, labels and tags) and the
refresh status.  Plots are matplotlib SVG written into the page: no script, no
stylesheet or font from the network.  Every section is there for a partial
study too, saying what is not collected yet.

What is missing is shown as plainly as what is there: every day of the study's range
is drawn, a day without videos as zero, and days whose windows failed or were never
collected are marked, so an outage or a purge is never drawn as a smooth trend; a
completeness section compares what was collected with what the API counts.  The
numbers behind every plot are written beside the page (``report-data/*.csv``, one row
per day with the zero days, dates ISO), so any figure can be checked or drawn again.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tiktok_spiders import api, clock
from tiktok_spiders.files import atomic_write, make_dir
from tiktok_spiders.ledger import FILENAME, Ledger
from tiktok_spiders.refreshes import Refreshes

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

SECTIONS = (
    "study",
    "collected",
    "missing",
    "completeness",
    "quota",
    "videos",
    "engagement",
    "comments",
    "users",
    "refresh",
)
#: Where the numbers behind every plot go, beside the report: ``report-data/<plot>.csv``.
DATA_DIR_SUFFIX = "-data"
STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: .2em .8em; border-bottom: 1px solid #eee;
text-align: left; vertical-align: top; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; } .note { color: #666; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{cell:,}</td>' if isinstance(cell, int) else f"<td>{_e(cell)}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _span(first: str | None, last: str | None) -> str:
    """``2026-12-01 11:46 to 12:03`` (UTC) from two ISO times."""
    if not first or not last:
        return "-"
    start, end = first[:16].replace("T", " "), last[:16].replace("T", " ")
    return start if start == end else f"{start} to {end[11:] if end[:10] == start[:10] else end}"


class Figure:
    """A matplotlib figure rendered to inline SVG (the Agg backend: no display needed)."""

    def __init__(self, title: str, width: float = 9, height: float = 3.6) -> None:
        import matplotlib

        matplotlib.use("Agg")
        # every label is the API's text as sent: a hashtag "$x^$" is drawn as written, never parsed
        # as math (an error, or a silently different alpha); text stays text in the SVG (searchable)
        matplotlib.rcParams.update({"text.parse_math": False, "text.usetex": False, "svg.fonttype": "none"})
        import matplotlib.pyplot as plt

        self.plt = plt
        self.figure, self.axes = plt.subplots(figsize=(width, height))
        self.axes.set_title(title)

    def svg(self) -> str:
        buffer = io.StringIO()
        self.figure.tight_layout()
        self.figure.savefig(buffer, format="svg")
        self.plt.close(self.figure)
        text = buffer.getvalue()
        return "<figure>" + text[text.index("<svg") :] + "</figure>"  # no XML prolog inside HTML


def _log_histogram(
    maximum: int | None, batches: Iterable[Any], title: str, unit: str
) -> tuple[str, list[tuple[Any, ...]]]:
    """A histogram on log bins of whole numbers read a batch at a time (Arrow arrays): the figure,
    and its bins as rows (``from``, ``below``, count)."""
    import numpy as np

    figure = Figure(title)
    rows: list[tuple[Any, ...]] = []
    if maximum is not None:
        bins = np.logspace(0, max(1.0, np.log10(maximum + 1)), 40)
        counts = np.zeros(len(bins) - 1)
        for batch in batches:
            counts += np.histogram(batch.column(0).to_numpy(zero_copy_only=False) + 1, bins=bins)[0]
        figure.axes.hist(bins[:-1], bins=list(bins), weights=counts, color="#4c72b0")
        figure.axes.set_xscale("log")
        rows = [
            (round(float(low) - 1, 3), round(float(high) - 1, 3), int(n))
            for low, high, n in zip(bins[:-1], bins[1:], counts, strict=True)
        ]
    figure.axes.set_xlabel(f"{unit} + 1 (log scale)")
    figure.axes.set_ylabel("videos" if "video" in title.lower() else "count")
    return figure.svg(), rows


def _runs(states: dict[date, str]) -> list[tuple[str, date, date]]:
    """``(state, first day, last day)`` of each stretch of consecutive days in the same state."""
    runs: list[tuple[str, date, date]] = []
    for day, state in sorted(states.items()):
        if runs and runs[-1][0] == state and runs[-1][2] + timedelta(days=1) == day:
            runs[-1] = (state, runs[-1][1], day)
        else:
            runs.append((state, day, day))
    return runs


#: The most points a scatter plot draws (a sample beyond, said under it): an SVG of a
#: million points is hundreds of MB.
SCATTER_POINTS = 20_000


class Report:
    """The report of one data directory; :meth:`html` builds the page."""

    def __init__(self, data_dir: str | Path, settings: BaseSettings) -> None:
        from tiktok_spiders import staging, tables

        self.data_dir = Path(data_dir)
        self.settings = settings
        manifest = self.data_dir / "manifest.json"
        self.manifest = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
        # the feeds staged in DuckDB (as `scrapy tables` does): the page is made of aggregates, in
        # memory that does not grow with the study
        self.staged = staging.StudyDatabase(
            self.data_dir / staging.REPORT_STAGING,
            private=settings.getbool("TIKTOK_PRIVATE_FILES"),
            memory_mb=settings.getint("TIKTOK_TABLES_MEMORY_MB"),
            progress=True,  # reading a big study takes minutes: a bar on a terminal
        )
        #: The numbers behind each plot, by file name: a header and rows (written beside the page).
        self.data: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}
        try:
            for name, path in tables.study_feeds(self.data_dir).items():
                self.staged.add(name, [path])
            self.rows = {name: self.value(f'SELECT count(*) FROM "{name}"') for name in self.staged.columns}
            self.ledger = Ledger(self.data_dir) if (self.data_dir / FILENAME).is_file() else None
        except BaseException:
            self.staged.close()
            raise

    def close(self) -> None:
        self.staged.close()
        if self.ledger is not None:
            self.ledger.close()

    def has(self, table: str, *columns: str) -> bool:
        """Whether the study holds ``table`` with these columns (a feed collected with fewer
        fields lacks some: their parts of the page say so, they are not errors)."""
        return table in self.staged.columns and all(column in self.staged.columns[table] for column in columns)

    def fetch(self, query: str) -> list[tuple[Any, ...]]:
        return self.staged.connection.execute(query).fetchall()

    def value(self, query: str) -> Any:
        return self.fetch(query)[0][0]

    def histogram(self, table: str, column: str, title: str, unit: str) -> str:
        values = f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'
        maximum = self.value(f'SELECT max("{column}") FROM "{table}"')
        svg, rows = _log_histogram(maximum, self.staged.connection.sql(values).to_arrow_reader(100_000), title, unit)
        self.data[f"{table}_by_{column}"] = ((f"{column}_from", f"{column}_below", table), rows)
        return svg + self.source(f"{table}_by_{column}")

    def source(self, name: str) -> str:
        """The line under a figure that says where its numbers are."""
        return _note(f"The numbers: report-data/{name}.csv")

    # -- the study's days: what was asked, collected, failed ------------------------------------

    def study_range(self) -> tuple[date, date] | None:
        """The days the videos stage was asked for (every run's range), or those the videos span."""
        runs = self.manifest.get("stages", {}).get("videos", {}).get("runs", [])
        sent = [run.get("sent") or {} for run in runs]
        ranges = [
            (datetime.strptime(s["start_date"], "%Y%m%d").date(), datetime.strptime(s["end_date"], "%Y%m%d").date())
            for s in sent
            if s.get("start_date") and s.get("end_date")
        ]
        if ranges:
            return min(start for start, _ in ranges), max(end for _, end in ranges)
        if self.has("videos", "create_time") and self.rows.get("videos"):
            first, last = self.fetch("SELECT min(create_time), max(create_time) FROM videos")[0]
            return first.date(), last.date()
        return None

    def day_states(self, days: list[date]) -> dict[date, str]:
        """Per day: ``collected`` (a window covering it finished), ``failed`` (its window failed)
        or ``not collected`` (begun, not started, or never asked)."""
        rank = {"done": 2, "failed": 1}
        best: dict[date, int] = {}
        if self.ledger is not None:
            for seed, status in self.ledger.connection.execute(
                "SELECT seed, status FROM seeds WHERE spider = 'videos'"
            ):
                try:
                    first, last = (datetime.strptime(part, "%Y%m%d").date() for part in seed.split(":")[-1].split("-"))
                except ValueError:
                    continue
                day = first
                while day <= last:
                    best[day] = max(best.get(day, 0), rank.get(status, 0))
                    day += timedelta(days=1)
        names = {2: "collected", 1: "failed", 0: "not collected"}
        return {day: names[best.get(day, 0)] for day in days}

    def study(self) -> str:
        stages = self.manifest.get("stages", {})
        tool = self.manifest.get("tool", {})
        rows = []
        for name, stage in stages.items():
            last = stage["runs"][-1]
            sent = last.get("sent") or {}
            rows.append(
                (
                    name,
                    stage.get("outcome", ""),
                    " ".join(f"{k}={v}" for k, v in (last.get("arguments") or {}).items()) or "(defaults)",
                    _span(stage.get("first_collected_at"), stage.get("last_collected_at")),
                    json.dumps(sent.get("query")) if sent.get("query") else "",
                )
            )
        parts = [
            _table(
                [
                    ("data directory", str(self.data_dir.resolve())),
                    ("API", self.manifest.get("api_base_url") or "unknown"),
                    ("tool", ", ".join(f"{k} {v}" for k, v in tool.items()) or "unknown"),
                    ("report written", clock.now().strftime("%Y-%m-%d %H:%M UTC")),
                ],
                ("", ""),
            )
        ]
        if rows:
            parts.append(_table(rows, ("stage", "outcome", "arguments", "collected (UTC)", "query as sent")))
        else:
            parts.append(_note("No stage has run yet (no manifest.json)."))
        coverage = [stage.get("api_coverage") for stage in stages.values() if stage.get("api_coverage")]
        if coverage:
            parts.append(_note(f"Videos {coverage[0]}."))
        return "".join(parts)

    def collected(self) -> str:
        rows = list(self.rows.items())
        if not rows:
            return _note("Nothing collected yet.")
        return _table(rows, ("feed", "records"))

    def missing(self) -> str:
        parts = []
        tallies = [
            (name, *(stage.get("seeds", {}).get(key, 0) for key in ("done", "failed", "begun", "not_started")))
            for name, stage in self.manifest.get("stages", {}).items()
        ]
        if tallies:
            parts.append(_table(tallies, ("stage", "done", "failed", "begun", "not started")))
        unavailable = [
            (name.removesuffix("_unavailable"), reason, count)
            for name in self.rows
            if name.endswith("_unavailable") and self.has(name, "reason")
            for reason, count in self.fetch(
                f'SELECT reason, count(*) AS n FROM "{name}" GROUP BY reason ORDER BY n DESC, min(_row)'
            )
        ]
        parts.append(
            _table(unavailable, ("stage", "why the API would not serve the user", "users"))
            if unavailable
            else _note("No user was unavailable.")
        )
        failures = []
        if self.ledger is not None:
            for name in self.manifest.get("stages", {}):
                failures += [(name, seed, why) for seed, why in self.ledger.failed_seeds(name, limit=20)]
        parts.append(_table(failures, ("stage", "seed", "why it failed")) if failures else _note("No seed failed."))
        return "".join(parts)

    def quota(self) -> str:
        per_day = self.manifest.get("requests_per_utc_day", {})
        days = {day: count for day, count in per_day.items() if "/" not in day}
        if not days:
            return _note("No request spent yet.")
        limit = self.settings.getint("TIKTOK_DAILY_REQUEST_LIMIT")
        self.data["requests_per_day"] = (("day", "requests", "limit"), [(day, n, limit) for day, n in days.items()])
        figure = Figure("Requests per UTC day (this study)")
        figure.axes.bar(list(days), list(days.values()), color="#4c72b0")
        figure.axes.axhline(limit, color="#c44e52", linestyle="--", label=f"daily limit ({limit:,})")
        figure.axes.set_ylabel("requests")
        figure.axes.set_xlabel("UTC day")
        figure.axes.legend()
        figure.figure.autofmt_xdate()
        return (
            figure.svg()
            + _table([(day, count) for day, count in days.items()], ("UTC day", "requests"))
            + self.source("requests_per_day")
        )

    def videos(self) -> str:
        import pandas as pd

        if not self.rows.get("videos"):
            return _note("No videos collected yet.")
        parts = []
        by_day = []
        if self.has("videos", "create_time"):
            region = "coalesce(region_code, 'unknown')" if self.has("videos", "region_code") else "'unknown'"
            top = f"SELECT {region} FROM videos GROUP BY 1 ORDER BY count(*) DESC, min(_row) LIMIT 6"
            by_day = self.fetch(
                f"SELECT date_trunc('day', create_time) AS day, "
                f"CASE WHEN {region} IN ({top}) THEN {region} ELSE 'other' END AS region, count(*) "
                "FROM videos WHERE create_time IS NOT NULL GROUP BY ALL ORDER BY ALL"
            )
        span = self.study_range()
        if not by_day and span is None:
            parts.append(_note("No create_time collected (the videos were asked without it)."))
        else:
            parts.append(self.videos_per_day(pd.DataFrame(by_day, columns=["day", "region", "videos"]), span))
        hashtags = (
            self.fetch(
                "SELECT tag, count(*) AS n FROM (SELECT unnest(from_json(hashtag_names, '[\"VARCHAR\"]')) AS tag, "
                "_row FROM videos) GROUP BY tag ORDER BY n DESC, min(_row) LIMIT 15"
            )
            if self.has("videos", "hashtag_names")
            else []
        )
        if hashtags:
            common = hashtags[::-1]
            figure = Figure("Top hashtags", height=4.5)
            figure.axes.barh([f"#{tag}" for tag, _ in common], [n for _, n in common], color="#55a868")
            figure.axes.set_xlabel("videos")
            self.data["top_hashtags"] = (("hashtag", "videos"), [(tag, n) for tag, n in hashtags])
            parts.append(figure.svg() + self.source("top_hashtags"))
        labels: Counter[str] = Counter()
        for column in ("video_tag", "video_label"):
            if self.has("videos", column):  # few distinct values: counted by DuckDB, keyed here
                for text, count in self.fetch(f"SELECT {column}, count(*) FROM videos GROUP BY 1 ORDER BY min(_row)"):
                    if text is not None and (value := json.loads(text)) != {}:
                        labels[json.dumps(value, sort_keys=True)] += count
        parts.append(
            _table([(label, n) for label, n in labels.most_common(10)], ("video_tag / video_label, as sent", "videos"))
            if labels
            else _note("No video_tag or video_label sent.")
        )
        return "".join(parts)

    def videos_per_day(self, by_day: Any, span: tuple[date, date] | None) -> str:
        """Every day of the study drawn, a day without videos as zero; the days that failed or were
        never collected shaded, so a hole is never drawn as a trend."""
        import pandas as pd

        by_day = by_day.assign(day=pd.to_datetime(by_day["day"], utc=True).dt.tz_localize(None).dt.normalize())
        known = [*by_day["day"].dt.date, *(span or ())]  # the days asked for, and any video outside them
        days = pd.date_range(min(known), max(known), freq="D")
        grouped = by_day.pivot_table(index="day", columns="region", values="videos", aggfunc="sum", fill_value=0)
        grouped = grouped.reindex(days, fill_value=0)
        states = self.day_states(list(days.date))
        figure = Figure("Videos per day, by region")
        bottom = [0] * len(days)
        for region in grouped.columns:  # a bar a day: nothing is drawn between two days that was not there
            heights = [int(value) for value in grouped[region]]
            figure.axes.bar(days, heights, bottom=bottom, width=0.9, label=str(region), linewidth=0)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        shade = {"failed": ("#c44e52", "failed"), "not collected": ("#999999", "not collected")}
        labelled: set[str] = set()
        for state, first, last in _runs(states):  # one band per stretch of days alike
            if state in shade:
                color, label = shade[state]
                figure.axes.axvspan(
                    pd.Timestamp(first) - pd.Timedelta(hours=12),
                    pd.Timestamp(last) + pd.Timedelta(hours=12),
                    color=color,
                    alpha=0.3,
                    linewidth=0,
                    label=None if label in labelled else f"days {label}",
                )
                labelled.add(label)
        figure.axes.set_xlim(days[0] - pd.Timedelta(hours=12), days[-1] + pd.Timedelta(hours=12))
        figure.axes.set_ylim(bottom=0)
        figure.axes.set_xlabel("day posted (UTC)")
        figure.axes.set_ylabel("videos")
        if labelled or len(grouped.columns):
            figure.axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        figure.figure.autofmt_xdate()
        regions = [str(region) for region in grouped.columns]
        self.data["videos_per_day"] = (
            ("day", "videos", "state", *regions),
            [
                (day.date().isoformat(), int(row.sum()), states[day.date()], *(int(value) for value in row))
                for day, row in grouped.iterrows()
            ],
        )
        zero = sum(1 for total in grouped.sum(axis=1) if total == 0)
        gaps = {state: sum(1 for s in states.values() if s == state) for state in ("failed", "not collected")}
        said = f"{len(days):,} days from {days[0].date()} to {days[-1].date()}: {zero:,} without a video"
        said += "".join(f", {n:,} {state}" for state, n in gaps.items() if n)
        return figure.svg() + _note(said + ".") + self.source("videos_per_day")

    def completeness(self) -> str:
        """What was collected against what the API counts: published audits find content missing."""
        rows: list[tuple[str, str]] = []
        span = self.study_range()
        if span is not None:
            days = [span[0] + timedelta(days=n) for n in range((span[1] - span[0]).days + 1)]
            states = self.day_states(days)
            empty = 0
            if self.has("videos", "create_time"):
                with_videos = {
                    day.date() if hasattr(day, "date") else day
                    for (day,) in self.fetch("SELECT DISTINCT date_trunc('day', create_time) FROM videos")
                }
                empty = sum(1 for day in days if day not in with_videos and states[day] == "collected")
            collected = sum(1 for state in states.values() if state == "collected")
            rows.append(("days collected", f"{collected:,} of {len(days):,}"))
            rows.append(("days collected without a single video", f"{empty:,}"))
            for state in ("failed", "not collected"):
                count = sum(1 for value in states.values() if value == state)
                if count:
                    rows.append((f"days {state}", f"{count:,}"))
        videos = self.rows.get("videos", 0)
        if videos and self.has("videos", "voice_to_text"):
            spoken = self.value("SELECT count(*) FROM videos WHERE voice_to_text IS NOT NULL AND voice_to_text <> ''")
            rows.append(("videos with voice_to_text", f"{spoken:,} of {videos:,} ({spoken / videos:.0%})"))
        if self.has("comments", "video_id") and self.has("videos", "id", "comment_count"):
            counted, got, full, none = self.fetch(
                "SELECT coalesce(sum(v.comment_count), 0), coalesce(sum(c.n), 0), "
                "count(*) FILTER (WHERE coalesce(c.n, 0) >= v.comment_count), "
                "count(*) FILTER (WHERE v.comment_count > 0 AND c.n IS NULL) FROM videos v "
                "LEFT JOIN (SELECT video_id, count(*) AS n FROM comments GROUP BY video_id) c ON v.id = c.video_id "
                "WHERE v.comment_count IS NOT NULL"
            )[0]
            share = f" ({got / counted:.0%})" if counted else ""
            rows.append(("comments collected of those counted", f"{int(got):,} of {int(counted):,}{share}"))
            rows.append(("videos with every counted comment collected", f"{full:,}"))
            rows.append(("videos with comments counted and none collected", f"{none:,}"))
        users = self.rows.get("users", 0)
        unavailable = self.rows.get("users_unavailable", 0)
        if users or unavailable:
            rows.append(("profiles unavailable (not found, refused)", f"{unavailable:,} of {users + unavailable:,}"))
        if not rows:
            return _note("Nothing collected yet.")
        self.data["completeness"] = (("measure", "value"), rows)
        return _table(rows, ("", "")) + self.source("completeness")

    def engagement(self) -> str:
        if not self.rows.get("videos"):
            return _note("No videos collected yet.")
        return "".join(
            self.histogram("videos", column, f"Videos by {column.replace('_', ' ')}", column.split("_")[0] + "s")
            for column in ("view_count", "like_count", "share_count", "comment_count")
            if self.has("videos", column)
        )

    def comments(self) -> str:
        if not self.has("comments", "video_id") or not self.has("videos", "id", "comment_count"):
            return _note("No comments collected yet.")
        served = (
            "SELECT v.id AS video_id, v.comment_count AS reported, coalesce(c.n, 0) AS collected FROM videos v "
            "LEFT JOIN (SELECT video_id, count(*) AS n FROM comments GROUP BY video_id) c ON v.id = c.video_id "
            "WHERE v.comment_count IS NOT NULL"
        )
        videos, reported, collected = self.fetch(
            f"SELECT count(*), coalesce(sum(reported), 0), coalesce(sum(collected), 0) FROM ({served})"
        )[0]
        sampled = videos > SCATTER_POINTS
        sample = f" USING SAMPLE reservoir({SCATTER_POINTS} ROWS) REPEATABLE (1)" * sampled
        points = self.fetch(f"SELECT reported, collected FROM ({served}){sample}")
        every = self.fetch(f"SELECT video_id, reported, collected FROM ({served}) ORDER BY video_id")
        self.data["comments_per_video"] = (("video_id", "comment_count", "comments_collected"), every)
        cap = self.settings.getint("TIKTOK_COMMENT_CAP") or api.COMMENT_CAP
        figure = Figure("Comments collected against each video's comment_count", height=4.5)
        figure.axes.scatter([r + 1 for r, _ in points], [c + 1 for _, c in points], s=8, alpha=0.5)
        figure.axes.set_xscale("log")
        figure.axes.set_yscale("log")
        figure.axes.axhline(cap + 1, color="#c44e52", linestyle="--", label=f"the API's cap ({cap:,})")
        figure.axes.set_xlabel("comment_count the video query reports + 1")
        figure.axes.set_ylabel("comments collected + 1")
        figure.axes.legend()
        parts = [
            figure.svg() + self.source("comments_per_video"),
            _note(
                f"{int(collected):,} comments collected of {int(reported):,} "
                "counted: hidden and deleted comments are counted but not served, and only the top "
                f"{cap:,} of a video are."
                + (
                    f" The plot shows {SCATTER_POINTS:,} of the {videos:,} videos, drawn at random."
                    if videos > SCATTER_POINTS
                    else ""
                )
            ),
        ]
        if self.rows.get("replies") and self.has("replies", "parent_comment_id"):
            replies, parents = self.fetch('SELECT count(*), count(DISTINCT parent_comment_id) FROM "replies"')[0]
            asked, on = (
                self.fetch("SELECT coalesce(sum(reply_count), 0), count(*) FROM comments WHERE reply_count > 0")[0]
                if self.has("comments", "reply_count")
                else (0, 0)
            )
            parts.append(
                _note(
                    f"Replies: {replies:,} collected for {parents:,} comments; "
                    f"the comments feed counts {int(asked):,} replies on {on:,} comments."
                )
            )
        else:
            parts.append(_note("No replies collected yet."))
        return "".join(parts)

    def users(self) -> str:
        if not self.rows.get("users"):
            return _note("No user profiles collected yet.")
        if not self.has("users", "follower_count"):
            return _note("No follower_count collected (the profiles were asked without it).")
        return self.histogram("users", "follower_count", "Authors by follower count", "followers")

    def refresh(self) -> str:
        history = Refreshes(self.ledger).history() if self.ledger is not None else []
        days = self.settings.getint("TIKTOK_REFRESH_DAYS")
        finished = [entry for entry in history if entry["finished"]]
        if not finished:
            first = min(
                filter(None, (stage.get("first_collected_at") for stage in self.manifest.get("stages", {}).values())),
                default=None,
            )
            due = (
                f"due {(datetime.fromisoformat(first[:10]) + timedelta(days=days)).date()}"
                if first
                else "due once something is collected"
            )
            return _note(f"Never refreshed; the first refresh is {due} (TIKTOK_REFRESH_DAYS={days}).")
        rows = [
            (
                entry["finished"],
                ", ".join(f"{n:,} {k}" for k, n in sorted(entry["checked"].items())),
                ", ".join(f"{n:,} {k}" for k, n in sorted(entry["purged"].items())) or "nothing",
            )
            for entry in finished
        ]
        next_due = (datetime.fromisoformat(finished[-1]["finished"][:10]) + timedelta(days=days)).date()
        return _table(rows, ("finished (UTC)", "checked", "purged")) + _note(
            f"Next refresh due {next_due} (TIKTOK_REFRESH_DAYS={days})."
        )

    # -- the page ---------------------------------------------------------------------------

    TITLES: ClassVar[dict[str, str]] = {
        "study": "The study",
        "collected": "What was collected",
        "missing": "What was not collected, and why",
        "completeness": "Completeness: collected against what the API counts",
        "quota": "Quota spent",
        "videos": "Videos",
        "engagement": "Engagement",
        "comments": "Comments and replies",
        "users": "Authors",
        "refresh": "Refresh",
    }

    def html(self) -> str:
        body = "".join(
            f'<section id="{name}"><h2>{self.TITLES[name]}</h2>{getattr(self, name)()}</section>' for name in SECTIONS
        )
        title = f"tiktok-spiders report: {self.data_dir.resolve().name}"
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>{body}</body></html>\n"
        )


def write_report(data_dir: str | Path, settings: BaseSettings, path: Path) -> Path:
    """The report of a data directory written to ``path``, and the numbers behind its plots to
    ``<path's stem>-data/*.csv`` beside it (files of plots the page no longer draws removed), atomically."""
    report = Report(data_dir, settings)
    try:
        page = report.html()
    finally:
        report.close()
    private = settings.getbool("TIKTOK_PRIVATE_FILES")
    numbers = data_dir_of(path)
    make_dir(numbers, private)
    for name, (header, rows) in report.data.items():
        with atomic_write(numbers / f"{name}.csv", private=private) as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    for stale in numbers.glob("*.csv"):
        if stale.stem not in report.data:
            stale.unlink()
    with atomic_write(path, private=private) as handle:
        handle.write(page)
    return path


def data_dir_of(report: Path) -> Path:
    """Where the numbers behind a report's plots go: ``report-data/`` beside ``report.html``."""
    return report.with_name(report.stem + DATA_DIR_SUFFIX)
