"""`etl sql` binds only the dataset views a query names (binding a view reads every file's
footer), and everything when the query names anything else."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from etl.catalog.session import ReadOnlySession, _datasets_named
from etl.lake import Lake
from tests.conftest import NOW, kline_rows


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT max(close) FROM klines WHERE symbol = 'A.SH'", {"klines"}),
        ("SELECT * FROM income i JOIN klines k ON i.symbol = k.symbol", {"income", "klines"}),
        ("WITH a AS (SELECT * FROM income) SELECT * FROM a", {"income"}),
        # DuckDB cannot name the tables without binding this one: everything is bound
        ("SELECT * FROM income JOIN klines USING (symbol)", None),
        ("SHOW TABLES", None),
        ("SELECT 1", None),
        ("SELECT * FROM coverage", None),
        ("SELECT * FROM klines_adj('qfq', NULL)", None),
        ("SELECT * FROM income_asof(DATE '2024-01-01')", None),
        ("SELEC oops", None),
    ],
)
def test_the_views_a_query_needs(query: str, expected: set[str] | None) -> None:
    assert _datasets_named(query) == expected


def test_a_dataset_query_answers_and_show_tables_lists_everything(data_root: Path) -> None:
    days = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(3)]
    Lake(data_root).write("klines", kline_rows(["600000.SH"], days), now=NOW)
    query = "SELECT count(*) AS n FROM klines"
    with ReadOnlySession(data_root, for_query=query) as session:
        assert session.query(query).rows == [(3,)]
        names = {r[0] for r in session.query("SHOW TABLES").rows}
    assert names == {"klines"}  # only what the query named was bound
    with ReadOnlySession(data_root, for_query="SHOW TABLES") as session:
        names = {r[0] for r in session.query("SHOW TABLES").rows}
    assert {"klines", "instruments", "coverage", "tasks"} <= names
