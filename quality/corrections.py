"""Corrections back to departments: one file per department, in its own columns, format and language.

``silobreaker corrections export --source health`` gives the department's clerk (who has Excel or
WPS, not Python) every row of theirs that needs a look, each as their own system holds it (their
columns, values, encoding; :mod:`quality.quarantine`), followed by seven Chinese columns
(:data:`ISSUE_COLUMNS`): 问题类型, 问题字段, 本部门的值, 其他部门的值, 把握, 问题说明, 如何改正. Rows
come in the order the clerk should work through them:

1. **数据被隔离** — rows the last run held back (a quarantine rule broke; 把握 确定), in file order,
   with the Chinese text of each rule broken (:data:`core.vocabulary.QUARANTINE_RULE_TEXTS`).
2. **与其他部门不一致, 较确定** — records whose value differs from the person's golden value, and
   either (birth date, sex) the record's own valid ID number says what the golden value says, or at
   least :data:`MIN_BACKING` other departments hold the golden value against it and nothing speaks
   for the record's value.
3. **与其他部门不一致, 待核实**, the department's value is not the golden one and nothing speaks for
   it, or it is the golden one but the record's own ID number says otherwise (birth date, sex).
4. **与其他部门不一致, 待核实**, the rest: the department's value is the golden one, or another
   department (at the same precision) or the record's own ID number agrees with it — the golden value
   is chosen by trust, which is no proof. A check, with "如本部门无误，无需修改".

A record "disagrees" as ``field_conflicts`` and the quality measures compare values
(:func:`quality.metrics.disagreements_sql`): birth dates day against day and at year-month, addresses
by the flat they point to. The department's own values are shown as they are (sex as 男/女); another
department's value is personal data that department holds, so it is shown only masked
(:data:`core.vocabulary.MASKS`: ``张*``, ``1950-01-**``, ``330106********0012``, ``示范区西溪街…``) —
the clerk checks against the ID card or the person, never copies it. Sex has no mask: it has two
values, and hiding it would hide the disagreement itself.

Example:
    >>> corrections = build_corrections(health, quarantine, disagreements, raw=extract.frame,
    ...                                 departments={"civil_affairs": "民政", "health": "卫健"})  # doctest: +SKIP
    >>> write_department_file(health, corrections.rows, Path("var/corrections/health.csv"))    # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors.config import SourceConfig
from core.vocabulary import CONFLICT_CHECK_TEXTS, FIELD_LABELS, MASKS, QUARANTINE_RULE_TEXTS, SEX_LABELS, RuleText
from quality.quarantine import QUARANTINE_READ_COLUMNS, department_rows, own_columns
from staging import source_keys

__all__ = [
    "DISAGREES",
    "ISSUE_COLUMNS",
    "LIKELY",
    "MIN_BACKING",
    "QUARANTINED",
    "TO_VERIFY",
    "Corrections",
    "build_corrections",
    "certainty",
]

log = logging.getLogger(__name__)

ISSUE_COLUMNS = ("问题类型", "问题字段", "本部门的值", "其他部门的值", "把握", "问题说明", "如何改正")
"""The Chinese columns appended after the department's own columns."""

QUARANTINED = "数据被隔离"
DISAGREES = "与其他部门不一致"
CERTAIN, LIKELY, TO_VERIFY = "确定", "较确定", "待核实"

MIN_BACKING = 2
"""Other departments that must hold the golden value against a record for 较确定 (without its own ID's word)."""

DISAGREEMENT_COLUMNS = ("person_id", "field", "source", "record_id", "source_key", "value", "likely_wrong", "backing",
                        "supporters", "own_id_differs", "own_id_agrees", "own_id_supports", "others")
"""What :func:`build_corrections` reads of each disagreement (:func:`quality.metrics.disagreements_sql`)."""

_FIELD_ORDER = ("id_number", "name", "sex", "birth_date", "address")
_UNKNOWN_RULE = RuleText("未通过数据检查", "请与数据专班联系，核对该行数据")
_OTHER_DEPARTMENT = "其他部门"
_OWN_ID = {"birth_date": "本记录自己的公民身份号码中的出生日期", "sex": "本记录自己的公民身份号码所示的性别"}


@dataclass(frozen=True)
class Corrections:
    """A department's corrections file, before it is written.

    Attributes:
        rows: the department's own columns followed by :data:`ISSUE_COLUMNS`, in working order.
        quarantined: rows held back by the last run.
        likely_wrong: disagreements marked 较确定.
        to_verify: disagreements marked 待核实.
        rows_not_found: disagreements whose row the department's extract did not hold (its key
            columns and the disputed column are filled in from the warehouse).
    """

    rows: pd.DataFrame
    quarantined: int
    likely_wrong: int
    to_verify: int
    rows_not_found: int


def certainty(likely_wrong: pd.Series, backing: pd.Series, own_id_agrees: pd.Series, supported: pd.Series) -> np.ndarray:
    """把握 of each disagreement: 较确定 where the value is not the golden one and either its own ID
    number says what the golden value says, or :data:`MIN_BACKING` other departments hold the golden
    value against it and nothing (``supported``: another department, its own ID) speaks for it;
    待核实 otherwise.

    Example:
        >>> certainty(pd.Series([True, True, True, True, False]), pd.Series([2, 2, 1, 0, 3]),
        ...           pd.Series([False, False, False, True, False]), pd.Series([False, True, False, True, False])).tolist()
        ['较确定', '待核实', '待核实', '较确定', '待核实']
    """
    wrong = _flags(likely_wrong)
    backed = backing.fillna(0).to_numpy() >= MIN_BACKING
    return np.where(wrong & ((backed & ~_flags(supported)) | _flags(own_id_agrees)), LIKELY, TO_VERIFY)


def _flags(values: pd.Series) -> np.ndarray:
    return values.fillna(False).astype(bool).to_numpy()


def build_corrections(
    source: SourceConfig,
    quarantine: pd.DataFrame,
    disagreements: pd.DataFrame | None,
    *,
    raw: pd.DataFrame | None = None,
    departments: Mapping[str, str] | None = None,
) -> Corrections:
    """The corrections file of ``source``: its quarantined rows, then its records other departments
    disagree with, in its own columns with the Chinese columns appended.

    Args:
        source: the source's declaration (``sources.yaml``).
        quarantine: its quarantined rows (:data:`quality.quarantine.QUARANTINE_READ_COLUMNS`).
        disagreements: its records that disagree with another department (:data:`DISAGREEMENT_COLUMNS`;
            ``None`` for a consent registry, which has no person fields to disagree on).
        raw: the department's rows as its system holds them (a fresh extract), to show each disputed
            record whole; without it, or for a record it no longer holds, the row has its key columns
            and the disputed column only.
        departments: source name -> department label (``sources.yaml``), in declaration order, which
            is also the order other departments are named in.
    """
    departments = dict(departments or {})
    quarantined = _quarantine_rows(source, quarantine)
    disputed, not_found = _disagreement_rows(source, disagreements, raw, departments)
    own = list(dict.fromkeys([c for frame in (quarantined, disputed) for c in frame.columns if c not in ISSUE_COLUMNS]))
    rows = pd.concat([quarantined, disputed], ignore_index=True).reindex(columns=[*own, *ISSUE_COLUMNS])
    rows = rows.astype(object).where(rows.notna(), None)
    sure = int((disputed["把握"] == LIKELY).sum()) if len(disputed) else 0
    return Corrections(rows, len(quarantined), sure, len(disputed) - sure, not_found)


def _quarantine_rows(source: SourceConfig, quarantine: pd.DataFrame) -> pd.DataFrame:
    q = quarantine.reindex(columns=list(QUARANTINE_READ_COLUMNS)).sort_values("row_number", kind="stable")
    q = q.reset_index(drop=True).astype(object)
    q = q.where(q.notna(), None)
    rows = department_rows(source, q)
    broken = [[_rule_text(rule) for rule in (rules or first or "").split(",") if rule]
              for rules, first in zip(q["rules"], q["rule"], strict=True)]
    rows["问题类型"] = QUARANTINED
    rows["问题字段"] = [_field_cell(f, c) for f, c in zip(q["field"], q["column"], strict=True)]
    rows["本部门的值"] = q["value"]
    rows["其他部门的值"] = None
    rows["把握"] = CERTAIN
    rows["问题说明"] = ["；".join(dict.fromkeys(t.problem for t in texts)) for texts in broken]
    rows["如何改正"] = ["；".join(dict.fromkeys(t.fix for t in texts)) for texts in broken]
    return rows


def _rule_text(rule: str) -> RuleText:
    text = QUARANTINE_RULE_TEXTS.get(rule)
    if text is None:
        # A rule this version has no Chinese text for (a newer warehouse): the clerk still gets the row.
        log.warning("no Chinese text for quarantine rule %r (core.vocabulary.QUARANTINE_RULE_TEXTS)", rule)
        return _UNKNOWN_RULE
    return text


def _field_cell(field: str | None, column: str | None) -> str:
    """问题字段: the field's Chinese name and the department's own column it sits in."""
    label = FIELD_LABELS.get(field or "")
    if label and column:
        return f"{label}（“{column}”列）"
    return label or (f"“{column}”列" if column else "整行")


def _disagreement_rows(
    source: SourceConfig, disagreements: pd.DataFrame | None, raw: pd.DataFrame | None,
    departments: Mapping[str, str],
) -> tuple[pd.DataFrame, int]:
    d = pd.DataFrame(disagreements).reindex(columns=list(DISAGREEMENT_COLUMNS)).reset_index(drop=True)
    if d.empty:
        return pd.DataFrame(columns=[*own_columns(source), *ISSUE_COLUMNS]), 0
    supporters = [list(s) if isinstance(s, list | np.ndarray) else [] for s in d["supporters"]]
    supported = pd.Series([bool(s) for s in supporters]) | d["own_id_supports"].fillna(False).astype(bool)
    sure = certainty(d["likely_wrong"], d["backing"], d["own_id_agrees"], supported)
    wrong, own_id_differs = _flags(d["likely_wrong"]), _flags(d["own_id_differs"])
    rank = np.where(sure == LIKELY, 1, np.where((wrong & ~supported.to_numpy()) | own_id_differs, 2, 3))
    field_rank = d["field"].map({f: i for i, f in enumerate(_FIELD_ORDER)}).fillna(len(_FIELD_ORDER))
    order = np.lexsort((d["source_key"].astype(str).to_numpy(), field_rank.to_numpy(), rank))
    d, sure, wrong, own_id_differs = d.iloc[order].reset_index(drop=True), sure[order], wrong[order], own_id_differs[order]
    supporters = [supporters[i] for i in order]

    own_values = [_shown(f, v) for f, v in zip(d["field"], d["value"], strict=True)]
    rows, not_found = _own_rows(source, d, raw, own_values)
    named = [_other_departments(o, departments) for o in d["others"]]
    rows["问题类型"] = DISAGREES
    rows["问题字段"] = [_field_cell(f, source.columns.get(f)) for f in d["field"]]
    rows["本部门的值"] = own_values
    rows["其他部门的值"] = [_others_cell(f, o, departments) for f, o in zip(d["field"], d["others"], strict=True)]
    rows["把握"] = sure
    evidence = [
        _Evidence(w, s == LIKELY, int(b or 0), bool(agrees), bool(differs), bool(supports),
                  "、".join(dict.fromkeys(departments.get(x, _OTHER_DEPARTMENT) for x in backers)))
        for w, s, b, agrees, differs, supports, backers in zip(
            wrong, sure, d["backing"], d["own_id_agrees"].fillna(False), own_id_differs,
            d["own_id_supports"].fillna(False), supporters, strict=True)
    ]
    rows["问题说明"] = [_conflict_problem(f, names, e) for f, names, e in zip(d["field"], named, evidence, strict=True)]
    rows["如何改正"] = [CONFLICT_CHECK_TEXTS.get(f, _UNKNOWN_RULE.fix) for f in d["field"]]
    return rows, not_found


def _own_rows(
    source: SourceConfig, d: pd.DataFrame, raw: pd.DataFrame | None, own_values: list[str | None]
) -> tuple[pd.DataFrame, int]:
    """Each disputed record's row as the department holds it, found by its key in ``raw``; where it
    is not there, its key columns and the disputed column, from the warehouse."""
    columns = list(raw.columns) if raw is not None else own_columns(source)
    rows = pd.DataFrame(None, index=d.index, columns=columns, dtype=object)
    found = np.zeros(len(d), dtype=bool)
    if raw is not None and len(raw):
        keyed = raw.assign(_key=source_keys(raw, source.primary_key).to_numpy(dtype=object, na_value=None))
        keyed = keyed.dropna(subset=["_key"]).drop_duplicates("_key").set_index("_key")
        found = d["source_key"].isin(keyed.index).to_numpy()
        rows.loc[found, columns] = keyed.loc[d["source_key"][found], columns].to_numpy(dtype=object)
    missing = np.flatnonzero(~found)
    if len(missing):
        key_columns = list(source.primary_key)
        parts = d["source_key"].iloc[missing].str.split("|", n=len(key_columns) - 1, expand=True)
        for i, column in enumerate(key_columns):
            rows.loc[missing, column] = parts[i].to_numpy(dtype=object) if i in parts else None
        for position in missing:
            column = source.columns.get(d["field"].iat[position])
            if column is not None and column not in key_columns:
                rows.loc[position, column] = own_values[position]
    return rows, len(missing)


def _shown(field: str, value: str | None, *, masked: bool = False) -> str | None:
    """A value as a clerk reads it: sex as 男/女; another department's masked."""
    if value is None:
        return None
    if field == "sex":
        return SEX_LABELS.get(value, value)
    return MASKS[field].apply(value) if masked and field in MASKS else value


def _sorted_others(others: list[dict], departments: Mapping[str, str]) -> list[dict]:
    # The golden value first, then departments in sources.yaml order.
    order = {name: i for i, name in enumerate(departments)}
    return sorted(others, key=lambda o: (not o["golden"], order.get(o["source"], len(order)), o["source"], o["value"]))


def _other_departments(others: list[dict], departments: Mapping[str, str]) -> str:
    names = dict.fromkeys(departments.get(o["source"], _OTHER_DEPARTMENT) for o in _sorted_others(others, departments))
    return "、".join(names)


def _others_cell(field: str, others: list[dict], departments: Mapping[str, str]) -> str:
    """其他部门的值: each other value, masked, with the departments holding it: ``1950-01-**（民政、司法）``."""
    held: dict[str, dict[str, None]] = {}
    for o in _sorted_others(others, departments):
        shown = _shown(field, o["value"], masked=True) or ""
        held.setdefault(shown, {})[departments.get(o["source"], _OTHER_DEPARTMENT)] = None
    return "；".join(f"{value}（{'、'.join(names)}）" for value, names in held.items())


@dataclass(frozen=True)
class _Evidence:
    """What speaks for and against one disputed value, as the clerk is told it."""

    wrong: bool           # differs from the golden value
    sure: bool            # 较确定
    backing: int          # other departments holding the golden value against it
    own_id_agrees: bool   # its own ID number says what the golden value says
    own_id_differs: bool  # its own ID number says otherwise
    own_id_supports: bool  # its own ID number says what it says
    supporters: str       # other departments agreeing with it, named


def _conflict_problem(field: str, others: str, e: _Evidence) -> str:
    """问题说明 of a disagreement, addressed to the clerk."""
    label = FIELD_LABELS.get(field, field)
    own_id = _OWN_ID.get(field)
    if e.sure:
        reasons = ([f"{e.backing}个其他部门的记录彼此一致"] if e.backing >= MIN_BACKING else []) + (
            [f"{own_id}也与其他部门的值一致"] if e.own_id_agrees and own_id else [])
        return f"本部门记录的{label}与{others}不一致；{'，'.join(reasons)}，本部门的值很可能有误"
    backers = ([f"{e.supporters}的记录"] if e.supporters else []) + ([own_id] if e.own_id_supports and own_id else [])
    if e.wrong and backers:
        return f"本部门记录的{label}与{others}不一致，但{'、'.join(backers)}与本部门一致；请核实，如本部门无误，无需修改"
    if e.wrong:
        return f"本部门记录的{label}与{others}不一致；综合各部门的数据，本部门的值可能有误，需核实"
    if e.own_id_differs and own_id:
        return f"{others}记录的{label}与本部门不同，{own_id}也与本部门的值不符；请核实"
    return f"{others}记录的{label}与本部门不同，目前采用的是本部门的值；请核实，如本部门无误，无需修改"
