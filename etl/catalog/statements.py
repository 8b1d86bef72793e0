"""Which SQL ``etl sql`` accepts: queries only, judged on DuckDB's parse of each statement.

This is the first of three layers (the others: DuckDB's file confinement and the kernel's,
see :mod:`etl.catalog.session`). DuckDB parses DESCRIBE, SHOW, SUMMARIZE, VALUES, FROM-first
queries and set operations as SELECT statements. An EXPLAIN is judged by what it wraps, since
``EXPLAIN ANALYZE`` runs the statement inside it: ``EXPLAIN ANALYZE COPY ... TO`` is a COPY.
A statement type DuckDB's Python API cannot even name (``UPDATE EXTENSIONS``) is refused.
"""

from __future__ import annotations

from typing import Final

import duckdb

from etl.errors import BadInputError

__all__ = ["check_read_only"]

_ALLOWED: Final = frozenset({duckdb.StatementType.SELECT})
_HINT: Final = "use SELECT, WITH ... SELECT, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN of those"
_MAX_NESTING: Final = 4


def _statements(sql: str) -> list[duckdb.Statement]:
    try:
        return list(duckdb.extract_statements(sql))
    except ValueError as exc:  # a statement type the Python API has no name for
        raise BadInputError(f"etl sql is read-only: statement refused ({_HINT})") from exc
    except duckdb.Error as exc:
        raise BadInputError(f"SQL does not parse: {exc}") from exc


def _explained(text: str) -> str:
    """The statement an EXPLAIN wraps: past ``EXPLAIN``, ``ANALYZE`` and an options list."""
    tokens = duckdb.tokenize(text)
    i = 1  # tokens[0] is EXPLAIN
    if i < len(tokens) and text[tokens[i][0] :].lower().startswith(("analyze", "analyse")):
        i += 1
    rest = text[tokens[i][0] :] if i < len(tokens) else ""
    if rest.startswith("("):
        try:  # `EXPLAIN (SELECT 1)` wraps a parenthesised query ...
            duckdb.extract_statements(rest)
        except (duckdb.Error, ValueError):  # ... `EXPLAIN (FORMAT json) ...` an options list
            depth = 0
            for offset, _kind in tokens[i:]:
                ch = text[offset]
                depth += ch == "("
                depth -= ch == ")"
                if depth == 0:
                    return text[offset + 1 :]
    return rest


def check_read_only(sql: str, *, _depth: int = 0) -> None:
    """Refuse, before running anything, every statement that is not a query."""
    statements = _statements(sql)
    if not statements:
        raise BadInputError("no SQL statement given")
    for st in statements:
        try:
            kind = st.type
        except ValueError as exc:  # a statement type the Python API has no name for
            raise BadInputError(f"etl sql is read-only: statement refused ({_HINT})") from exc
        if kind is duckdb.StatementType.EXPLAIN and _depth < _MAX_NESTING:
            inner = _explained(st.query)
            if not inner.strip():
                raise BadInputError("EXPLAIN of nothing: give a query after EXPLAIN")
            check_read_only(inner, _depth=_depth + 1)
            continue
        if kind not in _ALLOWED:
            name = str(kind).rsplit(".", 1)[-1]
            raise BadInputError(f"etl sql is read-only: {name} statements are refused ({_HINT})")
