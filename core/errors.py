"""The project's exception root.

Every error silobreaker raises on purpose derives from :class:`SilobreakerError` and is either
:class:`TransientError` (worth retrying: a database that is restarting, a locked file) or
:class:`TerminalError` (retrying cannot help: a wrong column name, an undecodable file). Messages
say what happened, where (source, file, table, row or column) and how to fix it.
"""

from __future__ import annotations

import errno

__all__ = [
    "ConfigError",
    "SilobreakerError",
    "SourceError",
    "SourceUnavailableError",
    "TerminalError",
    "TransientError",
    "is_disk_full",
]


class SilobreakerError(Exception):
    """Root of every error silobreaker raises on purpose."""


class TransientError(SilobreakerError):
    """A failure that may succeed if retried (connection refused, lock held)."""


class TerminalError(SilobreakerError):
    """A failure that will not go away by retrying; the message says what to change."""


class ConfigError(TerminalError):
    """A configuration file is missing, malformed or inconsistent."""


class SourceError(TerminalError):
    """A department's source cannot be read or does not match its declaration.

    Args:
        source: the source name from ``sources.yaml``.
        location: the file path, table or URL (without password) that failed.
        problem: what is wrong, with the row, line or column where known.
        fix: what the data team should change.
    """

    def __init__(self, source: str, location: str, problem: str, fix: str) -> None:
        self.source = source
        self.location = location
        self.problem = problem
        self.fix = fix
        super().__init__(f"source {source!r} ({location}): {problem}. Fix: {fix}")


class SourceUnavailableError(TransientError):
    """A source's system did not answer (network, server down); retry later."""

    def __init__(self, source: str, location: str, problem: str) -> None:
        self.source = source
        self.location = location
        self.problem = problem
        self.fix = ("it may work on retry; if it does not, check that the server is running and reachable from "
                    "this machine (host and port in url in sources.yaml, a firewall between them)")
        super().__init__(f"source {source!r} ({location}) is unavailable: {problem}. Fix: {self.fix}")


#: How a full (or failing) disk reads in the errors of the OS, DuckDB and SQLite (Dagster's run storage).
_DISK_FULL_TEXT = ("no space left", "disk full", "database or disk is full", "disk i/o error")


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says the disk is full (or fails to write): ``ENOSPC``, or
    the words DuckDB and SQLite use for it, whatever the exception's class (seen: DuckDB's ``TransactionException``
    "Failed to commit: … No space left on device", SQLite's "disk I/O error" from Dagster's run storage)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = str(error).lower()
        if getattr(error, "errno", None) == errno.ENOSPC or any(words in text for words in _DISK_FULL_TEXT):
            return True
        error = error.__cause__ or error.__context__
    return False
