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
"""

from __future__ import annotations

import html
import io
import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tiktok_spiders import api, clock
from tiktok_spiders.files import atomic_write
from tiktok_spiders.ledger import FILENAME, Ledger
from tiktok_spiders.refreshes import Refreshes

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

SECTIONS = ("study", "collected", "missing", "quota", "videos", "engagement", "comments", "users", "refresh")
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


def _log_histogram(maximum: int | None, batches: Iterable[Any], title: str, unit: str) -> str:
    """A histogram on log bins of whole numbers read a batch at a time (Arrow arrays)."""
    import numpy as np

    figure = Figure(title)
    if maximum is not None:
        bins = np.logspace(0, max(1.0, np.log10(maximum + 1)), 40)
        counts = np.zeros(len(bins) - 1)
        for batch in batches:
            counts += np.histogram(batch.column(0).to_numpy(zero_copy_only=False) + 1, bins=bins)[0]
        figure.axes.hist(bins[:-1], bins=list(bins), weights=counts, color="#4c72b0")
        figure.axes.set_xscale("log")
    figure.axes.set_xlabel(f"{unit} + 1 (log scale)")
    figure.axes.set_ylabel("videos" if "video" in title.lower() else "count")
    return figure.svg()


#: The most points a scatter plot draws (a sample beyond, said under it): an SVG of a
#: million points is hundreds of MB.
SCATTER_POINTS = 20_000


class Report:
    """The report of one data directory; :meth:`html` builds the page."""

    def __init__(self, data_dir: str | Path, settings: BaseSettings) -> None:
        from tiktok_spiders import table_writer, tables

        self.data_dir = Path(data_dir)
        self.settings = settings
        manifest = self.data_dir / "manifest.json"
        self.manifest = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
        # the feeds staged in DuckDB (as `scrapy tables` does): the page is made of aggregates, in
        # memory that does not grow with the study
        self.staged = table_writer.StudyDatabase(
            self.data_dir / table_writer.REPORT_STAGING,
            private=settings.getbool("TIKTOK_PRIVATE_FILES"),
            memory_mb=settings.getint("TIKTOK_TABLES_MEMORY_MB"),
            progress=True,  # reading a big study takes minutes: a bar on a terminal
        )
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
        return _log_histogram(maximum, self.staged.connection.sql(values).to_arrow_reader(100_000), title, unit)

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
        figure = Figure("Requests per UTC day (this study)")
        figure.axes.bar(list(days), list(days.values()), color="#4c72b0")
        figure.axes.axhline(limit, color="#c44e52", linestyle="--", label=f"daily limit ({limit:,})")
        figure.axes.set_ylabel("requests")
        figure.axes.set_xlabel("UTC day")
        figure.axes.legend()
        figure.figure.autofmt_xdate()
        return figure.svg() + _table([(day, count) for day, count in days.items()], ("UTC day", "requests"))

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
        if not by_day:
            parts.append(_note("No create_time collected (the videos were asked without it)."))
        else:
            grouped = pd.DataFrame(by_day, columns=["day", "region", "videos"]).pivot_table(
                index="day", columns="region", values="videos", aggfunc="sum", fill_value=0
            )
            figure = Figure("Videos per day, by region")
            grouped.plot(ax=figure.axes, kind="area", stacked=True, linewidth=0)
            figure.axes.set_xlabel("day posted (UTC)")
            figure.axes.set_ylabel("videos")
            parts.append(figure.svg())
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
            parts.append(figure.svg())
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
            "SELECT v.comment_count AS reported, coalesce(c.n, 0) AS collected FROM videos v "
            "LEFT JOIN (SELECT video_id, count(*) AS n FROM comments GROUP BY video_id) c ON v.id = c.video_id "
            "WHERE v.comment_count IS NOT NULL"
        )
        videos, reported, collected = self.fetch(
            f"SELECT count(*), coalesce(sum(reported), 0), coalesce(sum(collected), 0) FROM ({served})"
        )[0]
        sampled = videos > SCATTER_POINTS
        sample = f" USING SAMPLE reservoir({SCATTER_POINTS} ROWS) REPEATABLE (1)" * sampled
        points = self.fetch(f"SELECT * FROM ({served}){sample}")
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
            figure.svg(),
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
    """The report of a data directory written to ``path``, atomically."""
    report = Report(data_dir, settings)
    try:
        page = report.html()
    finally:
        report.close()
    with atomic_write(path, private=settings.getbool("TIKTOK_PRIVATE_FILES")) as handle:
        handle.write(page)
    return path
