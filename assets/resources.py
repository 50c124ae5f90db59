"""Dagster resources for what the pipeline writes: the data home's warehouse, sharing policy, key
populations and area register."""

from __future__ import annotations

import dagster as dg
import pandas as pd
from pydantic import Field

from core.home import DataHome
from core.keys import load_or_create_key
from dedup import DecisionLog, PreviousLinking
from publish import (
    AreaRegister,
    KeyPopulations,
    SharingPolicy,
    Warehouse,
    WarehouseReader,
    load_area_register,
    load_policy,
    load_populations,
)
from publish.populations import DEFAULT_POPULATIONS_FILE
from publish.risks import DEFAULT_RISKS_FILE, RiskRules, WarningActions, load_risks

__all__ = ["WarehouseResource"]


class WarehouseResource(dg.ConfigurableResource):
    """The published DuckDB warehouse under the data home, and the policy that shapes its products."""

    home: str = Field(description="the data home (SILOBREAKER_HOME)")
    policy_file: str = Field(description="path of the sharing policy (policy.yaml)")
    populations_file: str = Field(default=str(DEFAULT_POPULATIONS_FILE),
                                  description="path of the key populations (populations.yaml)")
    risks_file: str = Field(default=str(DEFAULT_RISKS_FILE), description="path of the risk rules (risks.yaml)")
    areas_file: str = Field(default="", description="path of the area register (CSV); empty: none, areas come "
                                                    "from what departments state only")

    def data_home(self) -> DataHome:
        """The data home, created if missing."""
        return DataHome.resolve(self.home)

    def warehouse(self) -> Warehouse:
        """The writer: builds a candidate and swaps it in."""
        return Warehouse(self.data_home())

    def reader(self) -> WarehouseReader:
        """The read side of the published warehouse."""
        return WarehouseReader(self.data_home())

    def policy(self) -> SharingPolicy:
        """The validated sharing policy (read at run time, never at import), checked against the key populations."""
        return load_policy(self.policy_file, self.populations())

    def populations(self) -> KeyPopulations:
        """The key-population categories."""
        return load_populations(self.populations_file)

    def risks(self, departments: dict[str, list[str]]) -> RiskRules:
        """The risk early-warning rules, checked against the key populations and the departments' sources."""
        return load_risks(self.risks_file, self.populations(), departments)

    def warning_actions(self) -> pd.DataFrame:
        """What workers did with warnings (``silobreaker warnings``), applied by the next publication."""
        return WarningActions.in_home(self.data_home()).load()

    def areas(self) -> AreaRegister | None:
        """The district's area register, or None where the deployment has none."""
        return load_area_register(self.areas_file) if self.areas_file else None

    def previous_linking(self) -> PreviousLinking:
        """The published mapping, issued ids, review queue and decisions (warehouse and decision log), read-only."""
        tables = self.reader().read_tables("record_person", "issued_person_ids", "review_decisions", "review_queue")
        return PreviousLinking.from_tables(tables, self.decision_log().load())

    def person_id_key(self) -> bytes:
        """The district's key for new person ids: ``$SILOBREAKER_PERSON_ID_KEY`` (hex) or its key file."""
        return load_or_create_key(self.data_home().person_id_key_file, "SILOBREAKER_PERSON_ID_KEY")

    def decision_log(self) -> DecisionLog:
        """The clerical review decisions recorded with ``silobreaker review decide``."""
        return DecisionLog.in_home(self.data_home())
