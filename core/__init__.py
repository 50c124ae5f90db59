"""Pieces every room of silobreaker shares: the exception root, the data home, the canonical vocabulary
and the configuration loader. Nothing here imports a room above it."""

from core.errors import (
    ConfigError,
    SilobreakerError,
    SourceError,
    SourceUnavailableError,
    TerminalError,
    TransientError,
)
from core.home import HOME_ENV, DataHome

__all__ = [
    "HOME_ENV",
    "ConfigError",
    "DataHome",
    "SilobreakerError",
    "SourceError",
    "SourceUnavailableError",
    "TerminalError",
    "TransientError",
]
