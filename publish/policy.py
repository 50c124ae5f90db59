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

      - name: district_statistics
        description: 统计 counts of key populations per community, small cells suppressed
        kind: analyst
        level: district
        purpose: statistics
        legal_basis: statutory
        legal_reference: 统计法 art. 7
        aggregate: {by: community, threshold: 10}

Sensitive columns (``SENSITIVE_COLUMNS``: health and judicial), key populations that reveal them
(``sensitive`` in ``populations.yaml``) and any data of a child under 14 are shared on a consent basis
only with a separate decision naming that category (and, for a child, made by the guardian); see
``docs/privacy.md``.

The key populations a recipient may name are the categories of ``populations.yaml``
(:mod:`publish.populations`), given to :func:`load_policy`; without one, the default categories.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from core.config import load_yaml_model
from core.vocabulary import MASKS
from publish.anonymity import KAnonymity
from publish.populations import KeyPopulations, default_populations

__all__ = [
    "CONSENT_CATEGORIES",
    "KEY_POPULATIONS",
    "MINOR_AGE",
    "SENSITIVE_COLUMNS",
    "SHAREABLE_COLUMNS",
    "Aggregate",
    "Recipient",
    "SharingPolicy",
    "load_policy",
]

SHAREABLE_COLUMNS = (
    "person_id", "name", "sex", "birth_date", "birth_year", "age", "id_number", "phone", "address",
    "street", "community", "grid", "lives_alone", "low_income", "disability_grade", "chronic_disease",
    "pregnant", "corrections", "case_type", "hukou_address", "residence_status", "residence_type",
    "key_populations", "reasons", "consent_until", "risk_warnings",
)
"""Columns of ``unified_population`` a recipient may be given; the last three are computed for the
recipient: ``reasons`` (why the person is listed, ``key_residents``), ``consent_until`` (when the person's
consent to this recipient ends; consent basis only) and ``risk_warnings`` (their open warnings, with ids)."""

#: The codes of the default key populations (``demo/populations.yaml``), each a boolean column of
#: ``unified_population``; a deployment's own are those of its ``populations.yaml``.
KEY_POPULATIONS = (
    "elderly", "elderly_living_alone", "young_child", "minor_under_14", "disabled",
    "chronic_patient", "pregnant_woman", "community_corrections", "low_income_household", "elderly_with_child",
    "left_behind_child", "empty_nest_elderly",
)

SCOPE_FIELDS = ("street", "community", "grid")

#: A scope value that stands for every area of its level: one product per area (``{grid: "*"}``).
EVERY_AREA = "*"

#: Data categories a consent decision may name. ``basic`` covers everything not sensitive;
#: ``health``, ``judicial`` and ``minor`` (any data of a child under 14) need a separate decision
#: (单独同意, PIPL art. 28/29/31) unless the recipient's basis is statutory.
CONSENT_CATEGORIES = ("basic", "health", "judicial", "minor")

#: Sensitive columns and the consent category each needs.
SENSITIVE_COLUMNS: dict[str, str] = {
    "chronic_disease": "health", "pregnant": "health", "corrections": "judicial", "case_type": "judicial",
}

#: Under this age a child's data is shared on consent only with a decision naming ``minor`` made by
#: the guardian (PIPL art. 31): law, not a key-population setting.
MINOR_AGE = 14


def _categories(info: ValidationInfo) -> KeyPopulations:
    """The categories a policy is checked against: those given to :func:`load_policy`, else the defaults."""
    return (info.context or {}).get("populations") or default_populations()


class Aggregate(BaseModel):
    """Aggregate statistics instead of person rows: counts of key populations per area."""

    model_config = ConfigDict(extra="forbid")

    by: Literal["street", "community", "grid"] = Field(description="the area each row of counts is for")
    populations: list[str] = Field(
        default_factory=list, description="key populations counted (columns); default every category of populations.yaml"
    )
    threshold: int = Field(
        default=10, ge=2,
        description="cells whose perturbed count is below this are suppressed, zeros included (and the cells that would reveal them)",
    )
    noise: int = Field(
        default=2, ge=1, le=5,
        description="cell-key perturbation: each published count is off by at most this many people, "
        "the same for the same people run after run",
    )

    @field_validator("populations")
    @classmethod
    def _known(cls, populations: list[str], info: ValidationInfo) -> list[str]:
        known = _categories(info).codes
        unknown = [p for p in populations if p not in known]
        if unknown or not populations:
            raise ValueError(f"unknown or no key population(s) {unknown}; known (populations.yaml): {list(known)}")
        return populations

    @model_validator(mode="after")
    def _every_category_by_default(self, info: ValidationInfo) -> Aggregate:
        if "populations" not in self.model_fields_set:
            self.populations = list(_categories(info).codes)
        return self


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
    legal_reference: str | None = Field(
        default=None, description="the law or article a statutory basis rests on, e.g. 社会救助暂行办法 art. 8"
    )
    statutory_register: bool = Field(
        default=False,
        description="a statutory register (e.g. social assistance): keeps people who asked for deletion (PIPL art. 47)",
    )
    columns: list[str] = Field(
        default_factory=list, description=f"columns shared (person rows); any of {', '.join(SHAREABLE_COLUMNS)}"
    )
    aggregate: Aggregate | None = Field(
        default=None, description="publish small-cell-suppressed counts instead of person rows"
    )
    scope: dict[str, str] = Field(
        default_factory=dict,
        description='row scope, e.g. {grid: 翠苑社区第3网格}; "*" for one product per area of that level: '
        '{grid: "*"} gives every grid its own product (name <name>_<area>, its own key), '
        '{community: 翠苑社区, grid: "*"} every grid of one community',
    )
    population: list[str] = Field(
        default_factory=list, description="only people in any of these key populations (codes of populations.yaml, "
        f"by default {', '.join(KEY_POPULATIONS)})"
    )
    key_populations: list[str] | None = Field(
        default=None,
        description="the key-population categories the key_populations column may show (minimum necessity); "
        "defaults to population",
    )
    sensitive_legal_reference: dict[Literal["health", "judicial"], str] = Field(
        default_factory=dict,
        description="on a statutory basis, the law that allows each sensitive category received, "
        "e.g. {judicial: 社区矫正法 第三十五条}; health and judicial data need one even where the duty is statutory",
    )
    mask: dict[str, Literal["partial"]] = Field(
        default_factory=dict, description="columns shown partly hidden, e.g. {id_number: partial}"
    )
    pseudonymise: bool = Field(
        default=False, description="replace person_id by a keyed pseudonym (person_key) unique to this recipient"
    )
    pseudonyms: Literal["per_release", "stable"] = Field(
        default="per_release",
        description="per_release: every publication gives everyone a new person_key, so two releases cannot be "
        "joined on it (joined, a person who moved is alone in the pair of their classes); stable: the same "
        "person_key run after run, for following people over time, at that risk (recorded in the disclosure)",
    )
    format: Literal["parquet", "xlsx", "csv"] = Field(
        default="parquet",
        description="xlsx: also deliver a password-protected workbook a clerk opens in Excel/WPS "
        "(Chinese headers, IDs as text); csv: also deliver the rows as a UTF-8 CSV with BOM inside an "
        "AES-256 zip (7-Zip, WinRAR, Bandizip open it), for a system that imports CSV; "
        "either password is `silobreaker product password <name>`",
    )
    k_anonymity: KAnonymity | None = Field(
        default=None,
        description="generalise and suppress quasi-identifiers until every combination is shared by k rows "
        "(analyst row products: always, default k 5; see publish.anonymity)",
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
        every = [k for k, v in scope.items() if v == EVERY_AREA]
        if len(every) > 1:
            raise ValueError(f'"*" on {every}: one level only, the one each product is for, e.g. {{grid: "*"}}')
        if every and any(SCOPE_FIELDS.index(k) > SCOPE_FIELDS.index(every[0]) for k in scope if k not in every):
            raise ValueError(f'"*" on {every[0]} with a narrower level fixed: put "*" on the narrowest level')
        return scope

    _populations: KeyPopulations | None = PrivateAttr(default=None)

    @field_validator("population", "key_populations")
    @classmethod
    def _known_population(cls, population: list[str] | None, info: ValidationInfo) -> list[str] | None:
        known = _categories(info).codes
        unknown = [p for p in population or () if p not in known]
        if unknown:
            raise ValueError(f"unknown key population(s) {unknown}; known (populations.yaml): {list(known)}")
        return population

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Recipient:
        self._populations = _categories(info)
        if self.every_area and self.aggregate is not None:
            raise ValueError('an aggregate recipient counts per area already (aggregate: {by: ...}); drop the "*" scope')
        if self.aggregate is not None:
            if self.columns or self.mask or self.pseudonymise or self.key_populations is not None or self.k_anonymity:
                raise ValueError(
                    "an aggregate recipient gets counts only: drop columns, key_populations, mask, pseudonymise "
                    "and k_anonymity"
                )
            return self
        if not self.columns:
            raise ValueError("name the columns shared, e.g. columns: [person_id, sex, age], or set aggregate: {by: community}")
        if self.statutory_register and self.legal_basis != "statutory":
            raise ValueError("statutory_register: true needs legal_basis: statutory")
        if self.kind == "grid_worker" and "grid" not in self.scope:
            raise ValueError('a grid_worker must be bound to one grid: add scope: {grid: <grid name>}, '
                             'or scope: {grid: "*"} for one product per grid')
        if self.every_area and self.level != self.every_area:
            raise ValueError(f'scope {{{self.every_area}: "*"}} makes one product per {self.every_area}: '
                             f"set level: {self.every_area}")
        if "consent_until" in self.columns and self.legal_basis != "consent":
            raise ValueError("consent_until is the end of the person's consent to this recipient: "
                             "only a consent-based recipient (legal_basis: consent) has one; drop it")
        for column in self.mask:
            if column not in MASKS:
                raise ValueError(f"mask on {column!r} is not supported; mask one of {', '.join(MASKS)}")
            if column not in self.columns:
                raise ValueError(f"mask on {column!r}, which is not in columns")
        if self.kind == "analyst" and any(c in self.columns for c in ("name", "id_number", "phone", "address", "birth_date")):
            raise ValueError("analysts get no direct identifiers: drop name, id_number, phone, address and birth_date")
        if self.kind == "analyst" and not self.pseudonymise:
            raise ValueError("analyst products must set pseudonymise: true")
        if "pseudonyms" in self.model_fields_set and not self.pseudonymise:
            raise ValueError("pseudonyms says how long a person_key lasts: it needs pseudonymise: true")
        if self.kind == "analyst" and self.k_anonymity is None:
            self.k_anonymity = KAnonymity()
        if "key_populations" in self.columns and not self.shared_key_populations:
            raise ValueError(
                "key_populations is in columns but no category is named: list the ones this recipient needs, "
                "e.g. key_populations: [elderly_living_alone, disabled] (minimum necessity, PIPL art. 6)"
            )
        if "risk_warnings" in self.columns and self.kind == "analyst":
            raise ValueError("risk_warnings names what a worker should check on a person: not for analysts; drop it")
        if "reasons" in self.columns and (self.kind == "analyst" or not self.reason_categories):
            raise ValueError(
                "reasons says why each person is listed (their key populations' reasons, 年龄72岁，独居): it needs "
                "population or key_populations to name the categories, and analysts get no reasons"
            )
        if self.key_populations is not None and "key_populations" not in self.columns:
            raise ValueError("key_populations names categories but the key_populations column is not in columns")
        if self.legal_basis == "statutory":
            for category, why in sorted(self.sensitive_categories.items()):
                if category not in self.sensitive_legal_reference:
                    raise ValueError(
                        f"{why} is {category} data (PIPL art. 28): on a statutory basis name the law that allows it, "
                        f"e.g. sensitive_legal_reference: {{{category}: <law and article>}}, or drop it"
                    )
        return self

    _family: str | None = PrivateAttr(default=None)
    _area: str | None = PrivateAttr(default=None)

    @property
    def every_area(self) -> str | None:
        """The level with scope ``"*"`` (one product per area of it), else None."""
        return next((k for k, v in self.scope.items() if v == EVERY_AREA), None)

    @property
    def family(self) -> str:
        """The policy entry this product comes from: its own name, or the ``"*"`` entry it was expanded from."""
        return self._family or self.name

    @property
    def area(self) -> str | None:
        """For a product expanded from a ``"*"`` scope, the area it is for (翠苑社区第1网格)."""
        return self._area

    def for_areas(self, areas: list[tuple[str, dict[str, str], str]]) -> list[Recipient]:
        """The products of a ``"*"`` scope: one per ``(slug, scope, label)`` area (:func:`publish.areas.scope_areas`).

        Each is this entry with the area's scope, the name ``<name>_<slug>`` (its own key and files), the
        area in its description, and this entry's consent recipient (the registry names the entry, not a grid).
        """
        products = []
        for slug, scope, label in areas:
            product = self.model_copy(update={
                "name": f"{self.name}_{slug}", "scope": scope, "description": f"{self.description}（{label}）",
                "consent_recipient": self.registry_recipient,
            }, deep=True)
            product._family, product._area, product._populations = self.name, label, self._populations
            products.append(product)
        return products

    @property
    def populations(self) -> KeyPopulations:
        """The key-population categories this recipient was checked against."""
        return self._populations or default_populations()

    @property
    def shared_key_populations(self) -> list[str]:
        """The categories the ``key_populations`` column may show: those named, else ``population``."""
        if "key_populations" not in self.columns:
            return []
        return list(self.key_populations if self.key_populations is not None else self.population)

    @property
    def reason_categories(self) -> list[str]:
        """The categories whose reasons the ``reasons`` column shows: those ``key_populations`` may show, else
        the ``population`` filter (a person listed by it is known to be in one of them)."""
        return self.shared_key_populations or list(self.population)

    @property
    def sensitive_categories(self) -> dict[str, str]:
        """Sensitive consent categories (health, judicial) this recipient receives, each with the first
        column or key population that brings it (person rows only; counts are not personal data)."""
        if self.aggregate is not None:
            return {}
        found: dict[str, str] = {}
        for column in self.columns:
            if column in SENSITIVE_COLUMNS:
                found.setdefault(SENSITIVE_COLUMNS[column], f"column {column}")
        sensitive = self.populations.sensitive
        for population in self.shared_key_populations:
            if population in sensitive:
                found.setdefault(sensitive[population], f"key population {population}")
        for population in self.population:
            if population in sensitive:
                found.setdefault(sensitive[population], f"population filter {population}")
        return found

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

    @model_validator(mode="after")
    def _known_populations(self) -> SharingPolicy:
        # A category a department or grid worker receives about named people is something they know:
        # for an analyst product it identifies like age or grid does, so it is a quasi-identifier there.
        known = {p for r in self.recipients if r.aggregate is None and r.kind != "analyst"
                 for p in (*r.shared_key_populations, *r.population)}
        for r in self.recipients:
            if r.k_anonymity is not None and "known_populations" not in r.k_anonymity.model_fields_set:
                r.k_anonymity.known_populations = [p for p in r.shared_key_populations if p in known]
        return self


def load_policy(path: str | Path, populations: KeyPopulations | None = None) -> SharingPolicy:
    """Load and validate a sharing policy, failing with the file, the key and what was expected.

    Args:
        path: the policy file.
        populations: the key populations (``populations.yaml``) recipients may name; default the
            default categories.
    """
    return load_yaml_model(path, SharingPolicy, "sharing policy", like="demo/policy.yaml",
                           context={"populations": populations} if populations else None)
