"""Dagster resources for what the pipeline writes: the data home's warehouse and sharing policy."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from core.paths import data_home
from dedup import DecisionLog, PreviousLinking
from publish import SharingPolicy, Warehouse, load_policy

__all__ = ["WarehouseResource"]


class WarehouseResource(dg.ConfigurableResource):
    """The published DuckDB warehouse under the data home, and the policy that shapes its products."""

    home: str = Field(description="the data home (SILOBREAKER_HOME)")
    policy_file: str = Field(description="path of the sharing policy (policy.yaml)")

    def warehouse(self) -> Warehouse:
        """The warehouse object for this data home."""
        return Warehouse(data_home(self.home))

    def policy(self) -> SharingPolicy:
        """The validated sharing policy (read at run time, never at import)."""
        return load_policy(self.policy_file)

    def previous_linking(self) -> PreviousLinking:
        """The published mapping, issued ids, review queue and decisions (warehouse and decision log), read-only."""
        tables = self.warehouse().read_tables("record_person", "issued_person_ids", "review_decisions", "review_queue")
        return PreviousLinking.from_tables(tables, self.decision_log().load())

    def previous_staged_rows(self, source: str) -> int | None:
        """Rows of ``source`` staged by the last published run (None before the first publication)."""
        wh = self.warehouse()
        if not wh.path.exists():
            return None
        with wh.connect() as con:
            if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'validation_results'").fetchone()[0]:
                return None
            row = con.execute(
                """SELECT max(v.row_count) FROM validation_results v
                   WHERE v.suite = ? AND v.run_id = (SELECT run_id FROM runs ORDER BY published_at DESC LIMIT 1)""",
                [f"staged_{source}"]).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def decision_log(self) -> DecisionLog:
        """The clerical review decisions recorded with ``silobreaker review decide``."""
        return DecisionLog.in_home(data_home(self.home))

    @property
    def reports_dir(self) -> Path:
        """Where quality reports are written."""
        return data_home(self.home) / "reports"
