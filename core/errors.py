"""The project's exception root.

Every error silobreaker raises on purpose derives from :class:`SilobreakerError` and is either
:class:`TransientError` (worth retrying: a database that is restarting, a locked file) or
:class:`TerminalError` (retrying cannot help: a wrong column name, an undecodable file). Messages
say what happened, where (source, file, table, row or column) and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "SilobreakerError",
    "SourceError",
    "SourceUnavailableError",
    "TerminalError",
    "TransientError",
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
