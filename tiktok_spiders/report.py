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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tiktok_spiders import api
from tiktok_spiders.ledger import FILENAME, Ledger
from tiktok_spiders.purge import Refreshes

if TYPE_CHECKING:
    import pandas as pd
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


def _log_histogram(values: pd.Series, title: str, unit: str) -> str:
    import numpy as np

    numbers = values.dropna().astype("int64")
    figure = Figure(title)
    if len(numbers):
        bins = list(np.logspace(0, max(1.0, np.log10(numbers.max() + 1)), 40))
        figure.axes.hist(numbers + 1, bins=bins, color="#4c72b0")
        figure.axes.set_xscale("log")
    figure.axes.set_xlabel(f"{unit} + 1 (log scale)")
    figure.axes.set_ylabel("videos" if "video" in title.lower() else "count")
    return figure.svg()


def _with_columns(tables: Any, feed: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The feed's table with every column its records can have, the missing ones empty and typed."""
    import pandas as pd

    missing = [column for column in tables.FEED_COLUMNS.get(feed, []) if column not in frame]
    if not missing:
        return frame
    empty = pd.DataFrame({column: [None] * len(frame) for column in missing}, index=frame.index, dtype=object)
    return pd.concat([frame, tables.typed(empty)], axis=1)


class Report:
    """The report of one data directory; :meth:`html` builds the page."""

    def __init__(self, data_dir: str | Path, settings: BaseSettings) -> None:
        from tiktok_spiders import tables

        self.data_dir = Path(data_dir)
        self.settings = settings
        manifest = self.data_dir / "manifest.json"
        self.manifest = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
        # a feed collected with fewer fields (-a fields=...) lacks columns: they are empty here, not errors
        self.tables = {
            name: _with_columns(tables, name, frame) for name, frame in tables.study_tables(data_dir).items()
        }
        self.ledger = Ledger(self.data_dir) if (self.data_dir / FILENAME).is_file() else None

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()

    # -- sections -------------------------------------------------------------------------

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
                    ("report written", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
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
        rows = [(name, len(frame)) for name, frame in self.tables.items()]
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
            for name, frame in self.tables.items()
            if name.endswith("_unavailable") and len(frame)
            for reason, count in Counter(frame["reason"]).most_common()
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
        videos = self.tables.get("videos")
        if videos is None or videos.empty:
            return _note("No videos collected yet.")
        parts = []
        days = videos["create_time"].dt.tz_convert("UTC").dt.floor("D")
        regions = videos["region_code"].fillna("unknown")
        top = regions.value_counts().index[:6]
        grouped = (
            videos.assign(day=days, region=regions.where(regions.isin(top), "other"))
            .groupby(["day", "region"])
            .size()
            .unstack(fill_value=0)
        )
        if grouped.empty:
            parts.append(_note("No create_time collected (the videos were asked without it)."))
        else:
            figure = Figure("Videos per day, by region")
            grouped.plot(ax=figure.axes, kind="area", stacked=True, linewidth=0)
            figure.axes.set_xlabel("day posted (UTC)")
            figure.axes.set_ylabel("videos")
            parts.append(figure.svg())
        hashtags = Counter(tag for tags in videos["hashtag_names"] if isinstance(tags, list) for tag in tags)
        if hashtags:
            common = hashtags.most_common(15)[::-1]
            figure = Figure("Top hashtags", height=4.5)
            figure.axes.barh([f"#{tag}" for tag, _ in common], [n for _, n in common], color="#55a868")
            figure.axes.set_xlabel("videos")
            parts.append(figure.svg())
        labels = Counter(
            json.dumps(value, sort_keys=True)
            for column in ("video_tag", "video_label")
            if column in videos
            for value in videos[column]
            if value not in (None, {}) and not (isinstance(value, float))
        )
        parts.append(
            _table([(label, n) for label, n in labels.most_common(10)], ("video_tag / video_label, as sent", "videos"))
            if labels
            else _note("No video_tag or video_label sent.")
        )
        return "".join(parts)

    def engagement(self) -> str:
        videos = self.tables.get("videos")
        if videos is None or videos.empty:
            return _note("No videos collected yet.")
        return "".join(
            _log_histogram(videos[column], f"Videos by {column.replace('_', ' ')}", column.split("_")[0] + "s")
            for column in ("view_count", "like_count", "share_count", "comment_count")
            if column in videos
        )

    def comments(self) -> str:
        videos, comments = self.tables.get("videos"), self.tables.get("comments")
        if comments is None or videos is None:
            return _note("No comments collected yet.")
        served = comments.groupby("video_id").size()
        counts = videos.set_index("id")["comment_count"].dropna().astype("int64")
        joined = counts.to_frame("reported").join(served.rename("collected"), how="left").fillna(0)
        cap = self.settings.getint("TIKTOK_COMMENT_CAP") or api.COMMENT_CAP
        figure = Figure("Comments collected against each video's comment_count", height=4.5)
        figure.axes.scatter(joined["reported"] + 1, joined["collected"] + 1, s=8, alpha=0.5)
        figure.axes.set_xscale("log")
        figure.axes.set_yscale("log")
        figure.axes.axhline(cap + 1, color="#c44e52", linestyle="--", label=f"the API's cap ({cap:,})")
        figure.axes.set_xlabel("comment_count the video query reports + 1")
        figure.axes.set_ylabel("comments collected + 1")
        figure.axes.legend()
        parts = [
            figure.svg(),
            _note(
                f"{int(joined['collected'].sum()):,} comments collected of {int(joined['reported'].sum()):,} "
                "counted: hidden and deleted comments are counted but not served, and only the top "
                f"{cap:,} of a video are."
            ),
        ]
        replies = self.tables.get("replies")
        if replies is not None and len(replies):
            collected = replies.groupby("parent_comment_id").size()
            asked = comments.set_index("id")["reply_count"].dropna().astype("int64")
            asked = asked[asked > 0]
            parts.append(
                _note(
                    f"Replies: {len(replies):,} collected for {len(collected):,} comments; "
                    f"the comments feed counts {int(asked.sum()):,} replies on {len(asked):,} comments."
                )
            )
        else:
            parts.append(_note("No replies collected yet."))
        return "".join(parts)

    def users(self) -> str:
        users = self.tables.get("users")
        if users is None or users.empty:
            return _note("No user profiles collected yet.")
        return _log_histogram(users["follower_count"], "Authors by follower count", "followers")

    def refresh(self) -> str:
        history = Refreshes(self.ledger).history() if self.ledger is not None else []
        days = self.settings.getint("TIKTOK_REFRESH_DAYS")
        finished = [entry for entry in history if entry["finished"]]
        if not finished:
            first = min(
                (stage.get("first_collected_at") for stage in self.manifest.get("stages", {}).values()), default=None
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
