"""``--where``: expressions over a table's columns and nothing else."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tiktok_spiders.where import Where, WhereError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.array([7300000000000000001, 7300000000000000002, 7300000000000000003], dtype="Int64"),
            "view_count": pd.array([1, 5000, None], dtype="Int64"),
            "hashtag_names": [["climate"], ["vote"], None],
            "region_code": ["US", "GB", "DE"],
            "create_time": pd.to_datetime([1704067200, 1707000000, 1709000000], unit="s", utc=True),
            "username": ["a.b", "Climate_x", None],
        }
    )


@pytest.mark.parametrize(
    ("expression", "kept"),
    [
        ("view_count > 1000", [2]),
        ("@has(hashtag_names, 'climate')", [1]),
        ("region_code in ['US', 'DE'] and not view_count > 1000", [1, 3]),
        ("region_code not in ['US']", [2, 3]),
        ("create_time >= '2024-02-01'", [2, 3]),
        ("username.str.contains('limat')", [2]),
        ("username.str.contains('.')", [1]),  # text, not a pattern
        ("username.str.startswith('a')", [1]),
        ("(view_count > 1) & (region_code != 'US') | (region_code == 'US')", [1, 2]),
        ("~(region_code == 'US')", [2, 3]),
        ("1 < view_count < 6000", [2]),
        ("view_count * 2 >= 10000", [2]),
        ("view_count.isna()", [3]),
        ("region_code.isin(['GB', 'XX'])", [2]),
        ("id == 7300000000000000003", [3]),
        ("username.str.contains('@') or username == 'a.b'", [1]),  # an @ in text is text
        ("username != '@has(x)' and region_code == 'GB'", [2]),
    ],
)
def test_the_language_selects_rows(frame: pd.DataFrame, expression: str, kept: list[int]) -> None:
    assert [int(i) % 10 for i in frame[Where(expression).mask(frame)]["id"]] == kept


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("@pd.io.common.os.system('id > /tmp/x') == 0", "the only one allowed is @has"),
        ("__import__('os').system('id') == 0", "the method 'system' is not allowed"),
        ("view_count.__class__.__mro__ == 1", "the attribute '__mro__' is not allowed"),
        ("region_code.str.__class__ == 1", "the attribute '__class__' is not allowed"),
        ("region_code.apply(print) == 1", "the method 'apply' is not allowed"),
        ("open('/etc/passwd') == 1", "'open' cannot be called"),
        ("[x for x in region_code] == 1", "a comprehension is not allowed"),
        ("(lambda: 1)() == 1", "cannot be called"),
        ("view_count[0] == 1", "indexing is not allowed"),
        ("f'{view_count}' == '1'", "an f-string is not allowed"),
        ("region_code.isin(x := [1])", "an assignment is not allowed"),
        ("view_count >", "not an expression"),
        ("nope > 1", "no column 'nope'"),
        ("view_count", "does not say true or false"),
        ("@has(hashtag_names)", "@has takes a column and a value"),
    ],
)
def test_anything_else_is_refused_naming_it(frame: pd.DataFrame, expression: str, said: str) -> None:
    with pytest.raises(WhereError, match=said.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        Where(expression).mask(frame)


def test_a_command_in_an_expression_never_runs(tmp_path: Path, frame: pd.DataFrame) -> None:
    marker = tmp_path / "ran"
    for expression in (
        f"@pd.io.common.os.system('touch {marker}') == 0",
        f"region_code.__class__.__init__.__globals__['os'].system('touch {marker}') == 0",
        f"__import__('os').system('touch {marker}') == 0",
    ):
        with pytest.raises(WhereError):
            Where(expression).mask(frame)
    assert not marker.exists()
