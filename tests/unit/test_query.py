"""The query builder and the API's values: a query checked as the API checks it, ids and times exact."""

from __future__ import annotations

import pandas as pd
import pytest

from tiktok_spiders import api, tables
from tiktok_spiders.query import Query, QueryError


def test_a_query_is_checked_as_the_api_checks_it_and_sent_as_given() -> None:
    raw = {
        "and": [{"field_name": "hashtag_name", "operation": "IN", "field_values": ["climate", "vote"]}],
        "not": [{"field_name": "region_code", "operation": "EQ", "field_values": ["US"]}],
    }
    assert Query.parse(raw).as_json() == raw
    for wrong, said in (
        ({}, "at least one"),
        ({"and": [{"field_name": "region_code", "operation": "EQ", "field_values": ["UK"]}]}, "use GB"),
        ({"and": [{"field_name": "view_count", "operation": "GT", "field_values": ["many"]}]}, "must be a number"),
        ({"and": [{"field_name": "keyword", "operation": "EQ", "field_values": ["a", "b"]}]}, "one field value"),
        ({"and": [{"field_name": "keyword", "operation": "GT", "field_values": ["a"]}]}, "not supported"),
        ({"or": [{"field_name": "hashtag", "operation": "IN", "field_values": ["a"]}]}, "unknown field_name"),
        ({"maybe": []}, "unknown query key"),
    ):
        with pytest.raises(QueryError, match=said):
            Query.parse(wrong)


def test_a_time_without_its_utc_offset_is_an_error_not_a_guess() -> None:
    kept = tables.typed(pd.DataFrame({"collected_at": ["2026-12-01T10:00:00Z", "2026-12-01 12:00:00+02:00", ""]}))
    assert kept["collected_at"].tolist()[:2] == [pd.Timestamp("2026-12-01 10:00", tz="UTC")] * 2
    for text in ("2026-12-01 10:00:00", "2026-12-01", "01/12/2026 10:00"):  # as a spreadsheet may save them
        with pytest.raises(ValueError, match="does not say its UTC offset"):
            tables.typed(pd.DataFrame({"collected_at": [text]}, dtype=object))


def test_ids_are_exact_int64_or_nothing() -> None:
    assert api.as_int("7300000000000000001") == 7300000000000000001
    assert api.as_int(2**63 - 1) == 2**63 - 1
    assert [api.as_int(value) for value in (2**63, 1.0, True, "12a", None)] == [None] * 5
