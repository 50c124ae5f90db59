"""Helpers for the quality tests; the published demo fixtures live in tests/conftest.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from pipelines.settings import Settings


def warehouse_path(settings: Settings) -> Path:
    """The published warehouse file of a data home."""
    return settings.home.warehouse_file


ALLOWED_WORDS = frozenset({"silobreaker", "Great", "Expectations", "DuckDB", "plotly", "Excel", "WPS"})
"""Proper nouns the Chinese report may show outside <code>: product and tool names."""

_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_HIDDEN = ("script", "style", "code", "title", "head")


class _VisibleText(HTMLParser):
    """Text a reader sees: no tags, attributes, scripts or styles, and no <code> (commands, run ids, paths)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hidden = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in _HIDDEN:
            self.hidden += 1

    def handle_endtag(self, tag):
        if tag in _HIDDEN:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The text of ``html`` a reader sees, outside <code>."""
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def english_words(html: str) -> list[str]:
    """Latin words of two or more letters in the visible text, proper nouns (:data:`ALLOWED_WORDS`) left out."""
    return [w for w in _LATIN_WORD.findall(visible_text(html)) if w not in ALLOWED_WORDS]


def chinese_characters(html: str) -> int:
    """How many CJK characters the visible text holds."""
    return len(re.findall(r"[\u4e00-\u9fff]", visible_text(html)))
