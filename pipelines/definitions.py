"""Dagster's code location: ``dg dev`` / ``dagster dev`` (from the repository root) load ``defs`` from here, the graph
of :func:`pipelines.graph.build_definitions` for the settings in the environment. Importing it resolves the data home
(``$SILOBREAKER_HOME``, else ``./var``, created): the CLI builds its graph from :mod:`pipelines.graph` instead.
"""

from __future__ import annotations

from core.home import private_files
from core.memory import use_system_allocator
from pipelines.graph import build_definitions
from pipelines.settings import Settings

__all__ = ["build_definitions", "defs"]

use_system_allocator()  # a Dagster run's process, as the CLI's (core.memory)
# What the code server writes itself (the run-failure sensor's report) is its owner's only, as the CLI's is.
# Seen: the sensor's report was -rw-r--r-- under a data home where everything else is 0600.
private_files()
defs = build_definitions(Settings.from_env(), from_env=True)
