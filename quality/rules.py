"""The quality rules (``rules.yaml``): what a staged source as a whole must meet, as data.

Three kinds of rule live in silobreaker and keep distinct names: *quarantine rules* hold back one row
(``staging.PERSON_QUARANTINE_RULES``), *quality rules* (this module) judge a whole staged source
against thresholds and can block publication, and *vetoes* forbid one link (``dedup.VETOES``).

Each rule has a ``severity``: ``error`` rules make up the blocking check (a failure stops
publication); ``warn`` rules make up a second, non-blocking check whose failures are reported
(Dagster severity WARN) without stopping anything. Thresholds sit in a ``defaults:`` block; a source
named under ``sources:`` replaces a default rule of the same name whole (``required_fields`` and
``value_sets`` field by field), and ``null`` switches a default rule off for that source.

Example:
    >>> rules = load_quality_rules("demo/rules.yaml")                                  # doctest: +SKIP
    >>> suite = staged_person_suite("health", rules.for_source("health"), fields=["name", "id_number"])  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.config import load_yaml_model, suggest
from core.errors import ConfigError
from core.vocabulary import PERSON_FIELDS
from quality.expectations import ExpectationSpec, SuiteSpec, consent_suite
from staging.dates import CHINA_TZ
from staging.schema import CANONICAL_COLUMNS

__all__ = [
    "GUARD_RULES",
    "BirthYearsRule",
    "DistrictRules",
    "DropRule",
    "FilledRule",
    "FreshnessRule",
    "QuarantineShareRule",
    "RowCountChangeRule",
    "RowCountRule",
    "QualityRules",
    "QualityRulesFile",
    "ShareRule",
    "UniqueKeysRule",
    "ValueSetRule",
    "consent_registry_suite",
    "load_quality_rules",
    "staged_person_suite",
]

ID_NUMBER_PATTERN = r"^\d{17}[\dX]$"
ISO_PARTIAL_DATE_PATTERN = r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$"

Severity = Literal["error", "warn"]


class _QualityRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity = Field(
        default="error", description="error: a failure blocks publication; warn: it is reported and does not block."
    )


class FilledRule(_QualityRule):
    """A declared field must be filled on at least ``min_share`` of the staged rows."""

    min_share: float = Field(gt=0, le=1, description="least share of staged rows with the field filled, e.g. 0.5")


class ValueSetRule(_QualityRule):
    """Every filled value of a staged column must be one of ``values``."""

    values: list[str] = Field(min_length=1, description="the canonical values allowed, e.g. [M, F]")


class ShareRule(_QualityRule):
    """At least ``min_share`` of the ID numbers present must carry a valid GB 11643 check digit."""

    min_share: float = Field(gt=0, le=1, description="least share of present IDs that are valid, e.g. 0.9")


class BirthYearsRule(_QualityRule):
    """Staged birth dates fall within these years (inclusive); at any stated precision."""

    earliest: int | None = Field(default=None, ge=1800, le=2200, description="earliest birth year, e.g. 1900")
    latest: int | None = Field(default=None, ge=1800, le=2200, description="latest birth year, e.g. 2026")
    min_share: float = Field(default=1.0, gt=0, le=1, description="least share of birth dates in range (default all)")

    @model_validator(mode="after")
    def _ordered(self) -> BirthYearsRule:
        if self.earliest is None and self.latest is None:
            raise ValueError("give earliest, latest or both; e.g. birth_years: {earliest: 1900}")
        if self.earliest is not None and self.latest is not None and self.earliest > self.latest:
            raise ValueError(f"earliest {self.earliest} is after latest {self.latest}")
        return self


class RowCountRule(_QualityRule):
    """The staged source holds between ``min`` and ``max`` rows."""

    min: int = Field(default=1, ge=0, description="least staged rows, e.g. 1 (an empty extract is a failed sync)")
    max: int | None = Field(default=None, ge=1, description="most staged rows; none when omitted")

    @model_validator(mode="after")
    def _ordered(self) -> RowCountRule:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class RowCountChangeRule(_QualityRule):
    """Staged rows change by at most ``max_share`` against the last published run (skipped on the first)."""

    max_share: float = Field(gt=0, description="largest relative change, e.g. 0.5 for ±50%")


class DropRule(_QualityRule):
    """A guard: a count falls by at most ``max_share`` against the last published run (skipped on the first).

    A sync that comes back with a fraction of a register is far likelier a truncated file or an
    interrupted export than a district that lost its residents; it blocks until a person confirms it
    (``silobreaker run --accept-drop <source>``) or the rule is relaxed here.
    """

    max_share: float = Field(gt=0, le=1, description="largest relative drop, e.g. 0.2 for 20%")


class QuarantineShareRule(_QualityRule):
    """A guard: at most ``max_share`` of a source's extracted rows are quarantined.

    One bad row is the department's to fix; a flood of them (dates as ``#VALUE!``, IDs as
    ``3.30106E+17``) is a broken export, and publishing the rest would silently drop those people.
    """

    max_share: float = Field(ge=0, le=1, description="largest share of extracted rows quarantined, e.g. 0.05")


class FreshnessRule(_QualityRule):
    """The newest ``record_date`` is at most ``max_age_days`` older than the extraction day."""

    max_age_days: int = Field(ge=0, description="days, e.g. 90")


class UniqueKeysRule(_QualityRule):
    """Source keys (``record_id``) are unique among the staged rows."""


class QualityRules(BaseModel):
    """The rules for one source (or the defaults). A rule left out (or ``null``) is not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    required_fields: dict[str, FilledRule] = Field(
        default_factory=dict, description="canonical field -> least filled share; applies when the source declares it"
    )
    value_sets: dict[str, ValueSetRule] = Field(default_factory=dict, description="staged column -> allowed values")
    valid_id_share: ShareRule | None = Field(default=None, description="least share of present IDs that are valid")
    birth_years: BirthYearsRule | None = Field(default=None, description="range of plausible birth years")
    row_count: RowCountRule | None = Field(default=None, description="bounds on the staged row count")
    row_count_change: RowCountChangeRule | None = Field(default=None, description="bound on the change vs last run")
    freshness: FreshnessRule | None = Field(default=None, description="largest age of the newest record_date")
    unique_keys: UniqueKeysRule | None = Field(default=None, description="source keys are unique")
    row_drop: DropRule | None = Field(
        default=None, description="guard: largest drop of extracted rows vs the last published run"
    )
    quarantine_share: QuarantineShareRule | None = Field(
        default=None, description="guard: largest share of extracted rows quarantined"
    )

    @model_validator(mode="after")
    def _known_columns(self) -> QualityRules:
        for name in self.required_fields:
            if name not in PERSON_FIELDS:
                raise ValueError(f"required_fields.{name}: unknown canonical field{suggest(name, PERSON_FIELDS)}; "
                                 f"expected one of: {', '.join(PERSON_FIELDS)}")
        for name in self.value_sets:
            if name not in CANONICAL_COLUMNS:
                raise ValueError(f"value_sets.{name}: unknown staged column{suggest(name, list(CANONICAL_COLUMNS))}; "
                                 "e.g. value_sets: {sex: {values: [M, F]}}")
        return self

    def merged_with(self, override: QualityRules) -> QualityRules:
        """These rules with the keys ``override`` sets replacing them (dict rules field by field)."""
        update: dict[str, object] = {}
        for key in override.model_fields_set:
            value = getattr(override, key)
            update[key] = {**getattr(self, key), **value} if isinstance(value, dict) else value
        return self.model_copy(update=update)


#: The rules about how many rows a source sends and how recent they are: off for a grid-update form.
_VOLUME_RULES: tuple[str, ...] = ("row_count", "row_count_change", "row_drop", "freshness")

#: The rules that apply to the consent registry too (its other checks are a fixed suite).
GUARD_RULES: tuple[str, ...] = ("row_count", "row_drop", "quarantine_share")


class DistrictRules(BaseModel):
    """Rules over the whole district rather than one source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    persons_drop: DropRule | None = Field(
        default=None, description="guard: largest drop of persons resolved vs the last published run"
    )


class QualityRulesFile(BaseModel):
    """The whole ``rules.yaml``: defaults for every source, overrides by source name, district rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = Field(description="format version of the file; currently 1")
    defaults: QualityRules = Field(default_factory=QualityRules, description="rules every person source meets")
    sources: dict[str, QualityRules] = Field(default_factory=dict, description="source name -> rules replacing defaults")
    district: DistrictRules = Field(default_factory=DistrictRules, description="rules over the whole district")

    def for_source(self, name: str) -> QualityRules:
        """The defaults with ``name``'s overrides applied."""
        override = self.sources.get(name)
        return self.defaults if override is None else self.defaults.merged_with(override)

    def for_grid_updates(self, name: str) -> QualityRules:
        """The rules of a grid-update form ``name`` (``role: grid_updates``): the defaults without those about
        how many rows and how recent (``row_count``, ``row_count_change``, ``row_drop``, ``freshness``) — a
        quiet week sends an empty form, a busy one a long one — unless ``sources.<name>`` sets them."""
        quiet = QualityRules.model_validate(dict.fromkeys(_VOLUME_RULES))
        rules = self.defaults.merged_with(quiet)
        override = self.sources.get(name)
        return rules if override is None else rules.merged_with(override)

    def for_consent(self, name: str) -> QualityRules:
        """The guard rules (:data:`GUARD_RULES`) of the consent registry ``name``: the defaults' guards
        with its overrides applied; its other checks are a fixed suite."""
        rules = self.for_source(name)
        return QualityRules.model_validate({key: getattr(rules, key) for key in GUARD_RULES})

    def check_sources(
        self, declared: Iterable[str], origin: str | os.PathLike[str] = "rules file", consent: str | None = None
    ) -> None:
        """Reject overrides for anything but the sources ``sources.yaml`` declares.

        A typo would otherwise silently not apply, and so would a rule the consent registry does
        not take (it takes the guards only).

        Args:
            declared: the names of the ``role: person`` sources.
            origin: the rules file, for the message.
            consent: the consent registry's name, if one is declared.

        Raises:
            ConfigError: names the file, the key ``sources.<name>`` and what is allowed.
        """
        names = list(declared)
        everyone = names + ([consent] if consent else [])
        for name, override in self.sources.items():
            if name not in everyone:
                raise ConfigError(f"{origin}: invalid rules file: sources.{name}: no source of that name in "
                                  f"sources.yaml{suggest(name, everyone)}; rules apply to: {', '.join(everyone)}")
            if name == consent:
                other = sorted(set(override.model_fields_set) - set(GUARD_RULES))
                if other:
                    raise ConfigError(f"{origin}: invalid rules file: sources.{name}.{other[0]}: the consent registry "
                                      f"takes only the guard rules ({', '.join(GUARD_RULES)}); its other checks are fixed")


def load_quality_rules(path: str | os.PathLike[str]) -> QualityRulesFile:
    """Read and validate a ``rules.yaml``.

    Raises:
        ConfigError: the file is missing, not YAML, or breaks the model; the message names the file
            and the key (e.g. ``sources.health.valid_id_share.min_share``).
    """
    return load_yaml_model(path, QualityRulesFile, "rules file", like="demo/rules.yaml")


def staged_person_suite(
    source: str,
    rules: QualityRules,
    *,
    fields: Sequence[str] = (),
    as_of: dt.datetime | dt.date | None = None,
    previous_rows: int | None = None,
) -> SuiteSpec:
    """The expectations a staged person source must meet, built from its rules.

    Hard rules in staging have already quarantined single bad rows; these catch a source broken as
    a whole. The canonical forms staging guarantees (record id and name present, ID and birth date
    in their stored forms) are always checked; everything else comes from ``rules``.

    Args:
        source: the source name; the suite is ``staged_<source>``.
        rules: the source's rules (:meth:`QualityRulesFile.for_source`).
        fields: the canonical fields the source declares; ``required_fields`` and ``freshness`` apply
            only to declared fields (an undeclared field is not an emptied one).
        as_of: the extraction time (or day, in China time) that ``freshness`` counts back from.
        previous_rows: staged rows of the last published run, for ``row_count_change``.
    """
    specs: list[ExpectationSpec] = []
    for name, rule in rules.required_fields.items():
        if name in fields:
            specs.append(_spec("ExpectColumnValuesToNotBeNull", rule,
                               f"the source declares {name} but fills it on fewer than {rule.min_share:.0%} of its rows: "
                               "the column was emptied or renamed in the export", column=name, mostly=rule.min_share))
    if rules.row_count is not None:
        bounds = {"min_value": rules.row_count.min} | ({"max_value": rules.row_count.max} if rules.row_count.max else {})
        specs.append(_spec("ExpectTableRowCountToBeBetween", rules.row_count,
                           "an empty or oversized extract means the sync failed upstream", **bounds))
    if rules.row_count_change is not None and previous_rows:
        share = rules.row_count_change.max_share
        specs.append(_spec("ExpectTableRowCountToBeBetween", rules.row_count_change,
                           f"the row count moved more than {share:.0%} from the last published run ({previous_rows} rows)",
                           min_value=math.floor(previous_rows * max(0.0, 1 - share)),
                           max_value=math.ceil(previous_rows * (1 + share))))
    specs += [
        ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "record_id"}, "every record needs its id"),
        ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": "name"}, "a person without a name cannot be matched"),
    ]
    if rules.unique_keys is not None:
        specs.append(_spec("ExpectColumnValuesToBeUnique", rules.unique_keys, "record ids identify source rows",
                           column="record_id"))
    for column, rule in rules.value_sets.items():
        specs.append(_spec("ExpectColumnValuesToBeInSet", rule, f"{column} must be one of {', '.join(rule.values)}",
                           column=column, value_set=list(rule.values)))
    specs.append(ExpectationSpec("ExpectColumnValuesToMatchRegex", {"column": "id_number", "regex": ID_NUMBER_PATTERN},
                                 "resident ID numbers are stored in the 18-character GB 11643 form"))
    if rules.valid_id_share is not None:
        specs.append(_spec("ExpectColumnValuesToBeInSet", rules.valid_id_share,
                           "most ID numbers must carry a valid check digit; many failures mean a broken export",
                           column="id_number_valid", value_set=[True], mostly=rules.valid_id_share.min_share))
    specs.append(ExpectationSpec("ExpectColumnValuesToMatchRegex",
                                 {"column": "birth_date", "regex": ISO_PARTIAL_DATE_PATTERN},
                                 "birth dates are ISO dates at their stated precision"))
    if rules.birth_years is not None:
        years = rules.birth_years
        bounds = {k: v for k, v in (("min_value", years.earliest), ("max_value", years.latest)) if v is not None}
        mostly = {"mostly": years.min_share} if years.min_share < 1 else {}
        specs.append(_spec("ExpectColumnValuesToBeBetween", years,
                           "birth years outside the plausible range point at a shifted or mistyped date column",
                           column="birth_year", **bounds, **mostly))
    if rules.freshness is not None and "record_date" in fields:
        day = _china_day(as_of)
        cutoff = day - dt.timedelta(days=rules.freshness.max_age_days)
        specs.append(_spec("ExpectColumnMaxToBeBetween", rules.freshness,
                           f"the newest record_date is more than {rules.freshness.max_age_days} days before the "
                           f"extract ({day}): the department has stopped updating its register",
                           column="record_date", min_value=cutoff.isoformat()))
    return SuiteSpec(name=f"staged_{source}", expectations=tuple(specs))


def consent_registry_suite(source: str, rules: QualityRules) -> SuiteSpec:
    """The consent registry's fixed suite, plus its ``row_count`` rule: an emptied registry must never
    publish as if nobody had ever withdrawn or asked to be deleted."""
    suite = consent_suite(source)
    if rules.row_count is None:
        return suite
    bounds = {"min_value": rules.row_count.min} | ({"max_value": rules.row_count.max} if rules.row_count.max else {})
    count = _spec("ExpectTableRowCountToBeBetween", rules.row_count,
                  "an empty consent registry would forget every withdrawal and deletion request", **bounds)
    return SuiteSpec(suite.name, (*suite.expectations, count))


def _spec(kind: str, rule: _QualityRule, why: str, **kwargs: object) -> ExpectationSpec:
    return ExpectationSpec(kind=kind, kwargs=dict(kwargs), why=why, severity=rule.severity)


def _china_day(as_of: dt.datetime | dt.date | None) -> dt.date:
    if as_of is None:
        return dt.datetime.now(CHINA_TZ).date()
    if isinstance(as_of, dt.datetime):
        return (as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.timezone.utc)).astimezone(CHINA_TZ).date()
    return as_of


