"""The sharing policy: who receives which people and columns, for what purpose, on what basis.

Declared in ``policy.yaml`` and validated at load; nothing is shared that the policy does not name.

Example ``policy.yaml``::

    version: 1
    recipients:
      - name: health_family_doctors
        description: 卫健 family-doctor teams visiting elderly people who live alone
        kind: department
        level: district
        purpose: service_delivery
        legal_basis: consent
        columns: [person_id, name, sex, birth_date, phone, address, community, grid]
        population: [elderly_living_alone]
        mask: {phone: partial}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.config import load_yaml_model

__all__ = [
    "KEY_POPULATIONS",
    "SHAREABLE_COLUMNS",
    "Recipient",
    "SharingPolicy",
    "load_policy",
]

#: Columns of ``unified_population`` a recipient may be given.
SHAREABLE_COLUMNS = (
    "person_id", "name", "sex", "birth_date", "birth_year", "age", "id_number", "phone", "address",
    "street", "community", "grid", "lives_alone", "low_income", "disability_grade", "chronic_disease",
    "pregnant", "corrections", "case_type", "key_populations",
)

#: Key populations (重点人群) as boolean columns of ``unified_population``.
KEY_POPULATIONS = (
    "elderly", "elderly_living_alone", "young_child", "minor_under_14", "disabled",
    "chronic_patient", "pregnant_woman", "community_corrections", "low_income_household",
)

SCOPE_FIELDS = ("street", "community", "grid")


class Recipient(BaseModel):
    """One consumer of shared data and exactly what it may have."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="snake_case id; also the product's file name")
    description: str = Field(description="who this is and why they receive data")
    kind: Literal["department", "grid_worker", "analyst"] = Field(description="what sort of consumer")
    level: Literal["district", "street", "community", "grid"] = Field(description="administrative level served")
    purpose: str = Field(description="the purpose the data is used for, e.g. service_delivery, statistics")
    legal_basis: Literal["statutory", "consent"] = Field(
        description="statutory duty (PIPL art. 13(3)/34) or the subject's consent for this purpose and recipient"
    )
    consent_recipient: str | None = Field(
        default=None,
        description="the recipient name used in the consent registry (defaults to this recipient's name)",
    )
    columns: list[str] = Field(min_length=1, description=f"columns shared; any of {', '.join(SHAREABLE_COLUMNS)}")
    scope: dict[str, str] = Field(default_factory=dict, description="row scope, e.g. {grid: 翠苑社区第3网格}")
    population: list[str] = Field(
        default_factory=list, description=f"only people in any of these key populations: {', '.join(KEY_POPULATIONS)}"
    )
    mask: dict[str, Literal["partial"]] = Field(
        default_factory=dict, description="columns shown partly hidden, e.g. {id_number: partial}"
    )
    pseudonymise: bool = Field(
        default=False, description="replace person_id by a keyed pseudonym (person_key) unique to this recipient"
    )

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: list[str]) -> list[str]:
        unknown = [c for c in columns if c not in SHAREABLE_COLUMNS]
        if unknown:
            raise ValueError(f"unknown column(s) {unknown}; shareable columns are {list(SHAREABLE_COLUMNS)}")
        return columns

    @field_validator("scope")
    @classmethod
    def _known_scope(cls, scope: dict[str, str]) -> dict[str, str]:
        unknown = [k for k in scope if k not in SCOPE_FIELDS]
        if unknown:
            raise ValueError(f"scope keys {unknown} not allowed; use {list(SCOPE_FIELDS)}, e.g. {{grid: 翠苑社区第3网格}}")
        return scope

    @field_validator("population")
    @classmethod
    def _known_population(cls, population: list[str]) -> list[str]:
        unknown = [p for p in population if p not in KEY_POPULATIONS]
        if unknown:
            raise ValueError(f"unknown key population(s) {unknown}; known: {list(KEY_POPULATIONS)}")
        return population

    @model_validator(mode="after")
    def _consistent(self) -> Recipient:
        if self.kind == "grid_worker" and "grid" not in self.scope:
            raise ValueError("a grid_worker must be bound to one grid: add scope: {grid: <grid name>}")
        for column in self.mask:
            if column not in ("id_number", "phone", "name"):
                raise ValueError(f"mask on {column!r} is not supported; mask id_number, phone or name")
            if column not in self.columns:
                raise ValueError(f"mask on {column!r}, which is not in columns")
        if self.kind == "analyst" and any(c in self.columns for c in ("name", "id_number", "phone", "address")):
            raise ValueError("analysts get no direct identifiers: drop name, id_number, phone and address")
        if self.kind == "analyst" and not self.pseudonymise:
            raise ValueError("analyst products must set pseudonymise: true")
        return self

    @property
    def registry_recipient(self) -> str:
        """The recipient name consent decisions refer to."""
        return self.consent_recipient or self.name


class SharingPolicy(BaseModel):
    """The whole ``policy.yaml``."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = Field(description="file format version")
    recipients: list[Recipient] = Field(description="every consumer of shared data")

    @model_validator(mode="after")
    def _unique_names(self) -> SharingPolicy:
        names = [r.name for r in self.recipients]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"recipient names must be unique; repeated: {duplicated}")
        return self


def load_policy(path: str | Path) -> SharingPolicy:
    """Load and validate a sharing policy, failing with the file, the key and what was expected."""
    return load_yaml_model(path, SharingPolicy, "sharing policy")
