"""The docs cannot drift from the declarations: docs/identity.md lists every level of every comparison."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dedup.settings import VETOES, Comparison, default_comparisons

IDENTITY_MD = Path(__file__).resolve().parents[2] / "docs" / "identity.md"


def documented_levels() -> dict[str, list[str]]:
    """Per field, the level labels the table of "Comparisons and their levels" lists, in its order.

    A row reads ``| name | `field` | `label` (what it means) · `label` · … |``.
    """
    section = IDENTITY_MD.read_text(encoding="utf-8").split("## Comparisons and their levels", 1)[1].split("\n## ", 1)[0]
    levels: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[a-z_]+`", cells[1]):
            levels[cells[1].strip("`")] = [re.match(r"`([a-z_]+)`", item.strip()).group(1) for item in cells[2].split(" · ")]
    return levels


@pytest.mark.parametrize("comparison", default_comparisons(), ids=lambda comparison: comparison.field)
def test_identity_md_lists_every_level_in_the_order_it_is_tested(comparison: Comparison) -> None:
    assert documented_levels().get(comparison.field) == list(comparison.labels), (
        f"docs/identity.md: the row of `{comparison.field}` must list {list(comparison.labels)}"
    )


def documented_vetoes() -> list[str]:
    """The vetoes the table of "Vetoes and why each is conclusive" lists, in its order."""
    section = IDENTITY_MD.read_text(encoding="utf-8").split("## Vetoes and why each is conclusive", 1)[1].split("\n## ", 1)[0]
    return [match.group(1) for line in section.splitlines() if (match := re.match(r"\| `([a-z_]+)` \|", line.strip()))]


def test_identity_md_explains_every_veto() -> None:
    assert documented_vetoes() == list(VETOES), f"docs/identity.md: the veto table must list {list(VETOES)}"
