"""Pieces every room of silobreaker shares: the exception root and the data home."""

from core.errors import (
    ConfigError,
    SilobreakerError,
    SourceError,
    SourceUnavailableError,
    TerminalError,
    TransientError,
)
from core.paths import HOME_ENV, data_home

__all__ = [
    "HOME_ENV",
    "ConfigError",
    "SilobreakerError",
    "SourceError",
    "SourceUnavailableError",
    "TerminalError",
    "TransientError",
    "data_home",
]
