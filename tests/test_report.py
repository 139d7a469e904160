"""The report (one offline HTML file) and the study as one DuckDB database."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from tests.conftest import cli_env, read_jsonl, scrapy_cli
from tiktok_spiders.emulator import Emulator
from tiktok_spiders.report import SECTIONS

pytestmark = pytest.mark.slow  # crawls and commands against the sandbox, end to end

STUDY = {"hashtags": "climate,vote", "start_date": "2024-01-01", "end_date": "2024-01-20"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page(HTMLParser):
    """What a browser would load from a page: its sections, figures, and anything fetched."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.figures = 0
        self.fetched: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "section":
            self.sections.append(values.get("id") or "")
        if tag == "svg":
            self.figures += 1
        if tag in ("script", "link", "img", "iframe", "object", "embed"):
            self.fetched.append(tag)
        for name in ("src", "href"):  # inside SVG: href="#id" is the page's own, a URL is not
            value = values.get(name) or values.get(f"xlink:{name}")
            if value and not value.startswith("#"):
                self.fetched.append(value)


def report_of(data_dir: Path, emulator: Emulator) -> tuple[Page, str]:
    done = scrapy_cli(data_dir, cli_env(emulator, data_dir), "report")
    assert done.returncode == 0, done.stderr[-2000:]
    text = (data_dir / "report.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    return page, text


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator) -> Path:
    data_dir = tmp_path_factory.mktemp("report") / "data"
    env = cli_env(emulator, data_dir, TIKTOK_DAILY_REQUEST_LIMIT="100000")
    video_args = [part for k, v in STUDY.items() for part in ("-a", f"{k}={v}")]
    replies = ["-a", "min_replies=2"]  # comments with two replies or more: a fifth of the requests
    for stage, arguments in (("videos", video_args), ("comments", []), ("replies", replies), ("users", [])):
        assert scrapy_cli(data_dir.parent, env, "crawl", stage, *arguments).returncode == 0, stage
    return data_dir


@pytest.fixture(scope="module")
def reported(study: Path, emulator: Emulator) -> tuple[Page, str]:
    """The study's report, written once for the tests that read it and the one that renders it."""
    return report_of(study, emulator)


def test_the_report_has_every_section_and_plot_and_fetches_nothing(study: Path, reported: tuple[Page, str]) -> None:
    page, text = reported
    assert page.sections == list(SECTIONS)
    assert page.figures >= 9, "quota, videos per day, hashtags, four distributions, comments, followers"
    assert page.fetched == [], "no script, stylesheet, image or link: it opens offline"
    for words in ("Videos per day, by region", "Top hashtags", "Videos by view count", "comment_count",
                  "the API's cap", "Authors by follower count", "Requests per UTC day", "Never refreshed"):  # fmt: skip
        assert words in text, words
    videos = read_jsonl(study / "videos.jsonl")
    assert f'<td>videos</td><td class="n">{len(videos):,}</td>' in text


def test_a_partial_study_reports_what_is_missing(fresh_emulator: Emulator, tmp_path: Path) -> None:
    empty_page, empty = report_of(tmp_path, fresh_emulator)  # nothing collected at all
    assert empty_page.sections == list(SECTIONS) and "Nothing collected yet." in empty
    env = cli_env(fresh_emulator, tmp_path, TIKTOK_DAILY_REQUEST_LIMIT="4")
    seven_weeks = {**STUDY, "end_date": "2024-02-15", "window_days": "7"}  # more windows than the quota
    args = [part for k, v in seven_weeks.items() for part in ("-a", f"{k}={v}")]
    assert scrapy_cli(tmp_path, env, "crawl", "videos", *args).returncode == 1  # a quota stop
    page, text = report_of(tmp_path, fresh_emulator)
    assert page.sections == list(SECTIONS) and page.fetched == []
    assert "No comments collected yet." in text and "No user profiles collected yet." in text
    assert "daily_quota_exhausted" in text  # the stage's outcome

    few = tmp_path / "few fields"  # videos collected with only some of their fields
    env = cli_env(fresh_emulator, few, TIKTOK_DAILY_REQUEST_LIMIT="100")
    fields = ["-a", "fields=id,username", "-a", "start_date=2024-01-01", "-a", "end_date=2024-01-03"]
    assert scrapy_cli(tmp_path, env, "crawl", "videos", "-a", "hashtags=climate", *fields).returncode == 0
    page, _ = report_of(few, fresh_emulator)
    assert page.sections == list(SECTIONS) and page.fetched == []


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium) to render the report")
def test_the_report_renders_in_a_headless_browser(study: Path, reported: tuple[Page, str], tmp_path: Path) -> None:
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1200,3000", f"--screenshot={screenshot}", (study / "report.html").as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 50_000


def test_the_duckdb_study_holds_every_table_exactly_and_joins_them(emulator: Emulator, study: Path) -> None:
    done = scrapy_cli(study, cli_env(emulator, study), "tables", "--format", "duckdb")
    assert done.returncode == 0, done.stderr[-2000:]
    with duckdb.connect(str(study / "tables" / "study.duckdb"), read_only=True) as db:
        types = dict(db.execute("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = 'videos'").fetchall())  # fmt: skip
        assert types["id"] == "BIGINT" and types["create_time"] == "TIMESTAMP WITH TIME ZONE"
        assert types["hashtag_names"] == "VARCHAR[]" and types["video_label"].startswith("STRUCT")
        for feed, key in (("videos", "id"), ("comments", "id"), ("replies", "id"), ("users", "username")):
            stored = sorted(row[0] for row in db.execute(f"SELECT {key} FROM {feed}").fetchall())  # noqa: S608
            assert stored == sorted(record[key] for record in read_jsonl(study / f"{feed}.jsonl")), feed
        # the README's example queries
        by_region = db.sql(
            "SELECT region_code, count(*) AS videos, median(view_count) AS median_views "
            "FROM videos GROUP BY region_code ORDER BY videos DESC"
        ).fetchall()
        assert sum(row[1] for row in by_region) == len(read_jsonl(study / "videos.jsonl"))
        busiest = db.sql(
            "SELECT video_id, video_username, count(*) AS comments FROM comments_with_videos "
            "GROUP BY ALL ORDER BY comments DESC LIMIT 10"
        ).fetchall()
        counts = {}
        for comment in read_jsonl(study / "comments.jsonl"):
            counts[comment["video_id"]] = counts.get(comment["video_id"], 0) + 1
        assert [row[2] for row in busiest] == sorted(counts.values(), reverse=True)[:10]
        [replies] = db.sql("SELECT count(*), count(parent_text) FROM replies_with_comments").fetchall()
        assert replies[0] == len(read_jsonl(study / "replies.jsonl")) and replies[1] > 0


def test_the_apis_text_is_drawn_as_written_never_as_math(emulator: Emulator, tmp_path: Path) -> None:
    """Hashtags and regions are labels of the plots: '$x^$' was a parser error, '$\\alpha$' a silent alpha."""
    hostile = ["$x^$", r"$\alpha$", "<script>alert(1)</script>", "a&b", r"\n"]
    videos = [
        {
            "id": 7300000000000000000 + number,
            "create_time": 1704067200 + number * 3600,
            "username": f"user{number}",
            "region_code": hostile[number % len(hostile)],
            "hashtag_names": [hostile[number % len(hostile)], "climate"],
            "view_count": number * 10,
            "like_count": number,
            "comment_count": 0,
            "share_count": 0,
            "collected_at": "2024-02-01T00:00:00Z",
        }
        for number in range(1, 40)
    ]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "videos.jsonl").write_text("".join(json.dumps(video) + "\n" for video in videos), encoding="utf-8")
    page, text = report_of(data_dir, emulator)
    assert not page.fetched and "<script>alert" not in text
    for label in ("$x^$", r"$\alpha$", "&lt;script&gt;alert(1)&lt;/script&gt;", "a&amp;b"):
        assert label in text, f"{label} is not drawn as written"


def test_a_hole_in_the_data_is_drawn_as_zeros_and_marked_never_as_a_trend(
    fresh_emulator: Emulator, tmp_path: Path
) -> None:
    """Ten days without videos (an outage, a purge), a window that failed and one never collected."""
    corpus = fresh_emulator.corpus
    hole = (date(2024, 1, 11), date(2024, 1, 20))
    corpus.delete(videos=[v["id"] for v in corpus.window(*hole)])
    data_dir = tmp_path / "data"
    env = cli_env(fresh_emulator, data_dir, TIKTOK_RETRY_TIMES="0", TIKTOK_DAILY_REQUEST_LIMIT="5")
    fresh_emulator.faults.outage_requests = 1  # the first page asked fails, and is not asked again
    study = {"hashtags": "climate", "start_date": "2024-01-01", "end_date": "2024-01-30", "window_days": "5"}
    done = scrapy_cli(tmp_path, env, "crawl", "videos", *[p for k, v in study.items() for p in ("-a", f"{k}={v}")])
    assert done.returncode == 1, done.stderr[-2000:]  # one window failed, the quota stopped the rest
    page, text = report_of(data_dir, fresh_emulator)
    assert page.sections == list(SECTIONS)
    with (data_dir / "report-data" / "videos_per_day.csv").open(encoding="utf-8") as handle:
        days = list(csv.DictReader(handle))
    assert [row["day"] for row in days] == [(date(2024, 1, 1) + timedelta(days=n)).isoformat() for n in range(30)]
    videos = read_jsonl(data_dir / "videos.jsonl")
    for row in days:  # every day's count is what the feed holds, zero days included
        day = date.fromisoformat(row["day"])
        stamp = [v for v in videos if datetime.fromtimestamp(v["create_time"], UTC).date() == day]
        assert int(row["videos"]) == len(stamp), row
    states = Counter(row["state"] for row in days)
    assert states["failed"] == 5 and states["not collected"] >= 5, states
    collected_in_hole = [row for row in days if hole[0] <= date.fromisoformat(row["day"]) <= hole[1]]
    assert all(row["videos"] == "0" for row in collected_in_hole), "the hole is zeros"
    assert "days failed" in text and "days not collected" in text, "the figure's legend marks them"
    assert "days collected</td>" in text and "days failed</td>" in text, "the completeness section counts them"
    for name in ("completeness", "requests_per_day", "videos_by_view_count"):
        assert (data_dir / "report-data" / f"{name}.csv").is_file()
