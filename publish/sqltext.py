"""Text spliced into DuckDB SQL: a value as a quoted literal, a list of them, a name as an identifier.

Configuration (source names, labels, codes) reaches generated SQL as literals; each is quoted here, once,
so a name with a quote in it is text, never SQL.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["identifier", "literal", "literals", "of_persons"]


def literal(text: object) -> str:
    """``text`` as a SQL string literal: ``O'Brien`` -> ``'O''Brien'``."""
    return "'" + str(text).replace("'", "''") + "'"


def literals(values: Iterable[object]) -> str:
    """The values as a comma-separated list of literals, for ``IN (...)``; ``NULL`` for none (matches nothing)."""
    return ", ".join(literal(v) for v in values) or "NULL"


def identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def of_persons(relation: str, persons: str | None) -> str:
    """``relation``'s rows of the persons in ``persons`` (a relation with a ``person_id`` column), as a
    relation; ``relation`` itself without ``persons``. A night built on the last publication
    (:mod:`publish.carry`) computes the rows of the persons it writes again this way."""
    return f"(SELECT * FROM {relation} SEMI JOIN {persons} USING (person_id))" if persons else relation
