"""Helpers for the quality tests; the published demo fixtures live in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

from pipelines.settings import Settings


def warehouse_path(settings: Settings) -> Path:
    """The published warehouse file of a data home."""
    return settings.home.warehouse_file
