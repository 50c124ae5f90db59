"""Risk early warning (风险预警) as configuration: ``risks.yaml``, and the ``risk_warnings`` it raises.

A rule says whom it looks at and what is wrong, over the unified data and the departments' record dates:

    version: 1
    rules:
      - code: elderly_alone_no_health_contact
        label: 独居老人一年以上无卫健服务记录
        population: [elderly_living_alone]        # key populations (populations.yaml), any of them
        no_record: {department: 卫健, days: 365}   # no record of that department in the last 365 days
      - code: corrections_left_grid
        label: 社区矫正对象住址已离开司法登记网格
        population: [community_corrections]
        area_left: {department: 司法}              # the department's latest record places them in another grid

Conditions, all of which must hold (at least one is given):

- ``population``: the person is in any of these key populations;
- ``when``: a DuckDB yes/no expression over the golden columns and the key-population flags, checked
  at load like a ``populations.yaml`` rule (e.g. ``disabled AND low_income_household``);
- ``no_record``: no record of a ``department`` (its sources in ``sources.yaml``) or of one ``source``
  — ever, or within ``days`` of the run date (a record without a date is no contact within the days);
- ``area_left``: the grid of the department's most recent record (stated, or named by its address in
  the area register) is not the person's grid now.

Each run evaluates every rule in DuckDB SQL and keeps ``risk_warnings``, one row per *episode*: the
rule holding for a person from ``first_seen`` to ``last_seen``, with the reason in Chinese (最近一次卫健
记录：2025-03-02) and the person's grid. A worker acknowledges or closes a warning with a note
(``silobreaker warnings close <id> --by … --note …``, kept in ``<home>/warnings/actions.parquet``); a
closed warning stays closed while the condition holds, and when the condition clears (the person is
seen by health) the episode ends (``cleared``). Should it recur it is a new warning, open again.

A warning tells its recipient the person is in the rule's key populations, and what its department
reveals. So a product's ``risk_warnings`` column shows a warning only where the recipient may see every
key population of the rule (its ``population`` or ``key_populations`` in ``policy.yaml``: minimum
necessity; a rule without ``population`` goes to no product, only to the warehouse), and a rule over a
sensitive key population (孕产妇, 慢性病) or naming ``sensitive: health`` only for people whose consent
decision names that category, like the key populations themselves (:mod:`publish.products`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)

from core.appendlog import AppendLog
from core.config import key_error, load_yaml_model, suggest
from core.errors import TerminalError
from core.home import DataHome, HomeLike
from publish.populations import (
    KeyPopulations,
    _check_rule,
    default_populations,
    rule_columns,
)
from publish.sqltext import literals

__all__ = [
    "DEFAULT_RISKS_FILE",
    "WARNING_ACTIONS",
    "WARNING_STATUSES",
    "RiskRule",
    "RiskRules",
    "WarningActions",
    "add_risk_warnings",
    "departments_of",
    "load_risks",
]

log = logging.getLogger(__name__)

DEFAULT_RISKS_FILE = Path(__file__).resolve().parents[1] / "demo" / "risks.yaml"
"""The demo's rules: also what a deployment without its own ``risks.yaml`` gets."""

#: What a worker may do with a warning, and the status it leaves.
WARNING_ACTIONS = {"acknowledge": "acknowledged", "close": "closed", "reopen": "open"}
#: Every status a warning can have: the worker's three, and ``cleared`` when the condition no longer holds.
WARNING_STATUSES = ("open", "acknowledged", "closed", "cleared")
STATUS_LABELS = {"open": "待处理", "acknowledged": "已知悉", "closed": "已处理", "cleared": "已消除"}

_EXAMPLE_WHEN = "when: disabled AND low_income_household"


class NoRecord(BaseModel):
    """No record of a department (or of one source): ever, or within ``days`` of the run date."""

    model_config = ConfigDict(extra="forbid")

    department: str | None = Field(default=None, description="a department of sources.yaml, e.g. 卫健")
    source: str | None = Field(default=None, description="or one source by its name in sources.yaml")
    days: int | None = Field(default=None, ge=1, description="within this many days of the run date; omit: ever")

    @model_validator(mode="after")
    def _one(self) -> NoRecord:
        if (self.department is None) == (self.source is None):
            raise ValueError("name either a department (department: 卫健) or a source (source: health), not both")
        return self

    @property
    def who(self) -> str:
        return self.department or self.source or ""


class AreaLeft(BaseModel):
    """The grid of the department's most recent record is not the person's grid now."""

    model_config = ConfigDict(extra="forbid")

    department: str = Field(description="the department whose record places the person, e.g. 司法")


class RiskRule(BaseModel):
    """One warning rule: whom it looks at, what is wrong, and what a warning reveals."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="snake_case code, e.g. elderly_alone_no_health_contact")
    label: str = Field(description="what is wrong, in Chinese, as a grid worker reads it")
    population: list[str] = Field(default_factory=list, description="key populations (codes), any of them")
    when: str | None = Field(default=None, description="a DuckDB yes/no expression over the golden columns and "
                                                       "the key-population flags")
    no_record: NoRecord | None = Field(default=None, description="no record of a department or source (within days)")
    area_left: AreaLeft | None = Field(default=None, description="the department's latest record is in another grid")
    sensitive: Literal["health", "judicial"] | None = Field(
        default=None, description="the consent category a warning reveals beyond its population's (PIPL art. 28)")

    _populations: KeyPopulations | None = PrivateAttr(default=None)
    _reads: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="after")
    def _checked(self, info: ValidationInfo) -> RiskRule:
        populations: KeyPopulations = (info.context or {}).get("populations") or default_populations()
        self._populations = populations
        if not any((self.population, self.when, self.no_record, self.area_left)):
            raise key_error(f"rule {self.code!r} has no condition: give population, when, no_record or area_left, "
                            "e.g. population: [elderly_living_alone] and no_record: {department: 卫健, days: 365}",
                            "population")
        unknown = [p for p in self.population if p not in populations.codes]
        if unknown:
            raise key_error(f"rule {self.code!r}: unknown key population(s) {unknown}"
                            f"{suggest(unknown[0], list(populations.codes))}; known (populations.yaml): "
                            f"{', '.join(populations.codes)}", "population")
        if self.when is not None:
            columns = {**dict(rule_columns()), **{code: "BOOLEAN" for code in populations.codes}}
            self._reads = _check_rule(self.code, self.when, columns, what="rule", key="when", example=_EXAMPLE_WHEN)
        departments = (info.context or {}).get("departments")
        if departments is not None:
            named = [("no_record", self.no_record.department) if self.no_record and self.no_record.department else None,
                     ("area_left", self.area_left.department) if self.area_left else None]
            for key, department in filter(None, named):
                if department not in departments:
                    raise key_error(f"rule {self.code!r}: no source of department {department!r}"
                                    f"{suggest(department, sorted(departments))}; sources.yaml has "
                                    f"{', '.join(sorted(departments))}", key)
        sources = (info.context or {}).get("sources")
        if sources is not None and self.no_record and self.no_record.source and self.no_record.source not in sources:
            raise key_error(f"rule {self.code!r}: no source {self.no_record.source!r}"
                            f"{suggest(self.no_record.source, sorted(sources))}", "no_record")
        return self

    @property
    def populations_read(self) -> list[str]:
        """The key populations a warning tells its reader the person is in: ``population`` and those
        ``when`` names (独居 AND chronic_patient tells of a chronic disease)."""
        codes = (self._populations or default_populations()).codes
        return [*self.population, *(c for c in codes if c in self._reads and c not in self.population)]

    @property
    def reveals(self) -> set[str]:
        """The sensitive consent categories a warning of this rule reveals: its key populations', the
        sensitive columns its ``when`` reads (chronic_disease is health data), and ``sensitive``."""
        from publish.policy import SENSITIVE_COLUMNS

        sensitive = (self._populations or default_populations()).sensitive
        return ({sensitive[p] for p in self.populations_read if p in sensitive}
                | {SENSITIVE_COLUMNS[c] for c in self._reads if c in SENSITIVE_COLUMNS}
                | ({self.sensitive} if self.sensitive else set()))


class RiskRules(BaseModel):
    """The whole ``risks.yaml``."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = Field(description="file format version")
    rules: list[RiskRule] = Field(default_factory=list, description="every warning rule")

    @model_validator(mode="after")
    def _unique(self) -> RiskRules:
        codes = [r.code for r in self.rules]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"rule codes must be unique; repeated: {twice}")
        return self

    def rule(self, code: str) -> RiskRule | None:
        return next((r for r in self.rules if r.code == code), None)


def load_risks(path: str | Path, populations: KeyPopulations | None = None,
               departments: Mapping[str, list[str]] | None = None) -> RiskRules:
    """Load and check ``risks.yaml`` against the key populations and (when given) the departments of
    ``sources.yaml`` (department → its sources), failing with the file, the rule and the fix."""
    context: dict = {"populations": populations or default_populations()}
    if departments is not None:
        context |= {"departments": set(departments), "sources": {s for v in departments.values() for s in v}}
    return load_yaml_model(path, RiskRules, "risk rules file", like="demo/risks.yaml", context=context)


# -- evaluation ------------------------------------------------------------------------------

_WARNINGS_DDL = """CREATE TABLE risk_warnings (
    warning_id VARCHAR, rule VARCHAR, rule_label VARCHAR, person_id VARCHAR, street VARCHAR, community VARCHAR,
    grid VARCHAR, reason VARCHAR, populations VARCHAR[], reveals VARCHAR[], first_seen DATE, last_seen DATE, status VARCHAR,
    status_by VARCHAR, status_at TIMESTAMPTZ, note VARCHAR, cleared_on DATE)"""



def _hits_sql(rule: RiskRule, departments: Mapping[str, list[str]], as_of: date) -> str:
    """SELECT rule, person_id, reason for every person the rule holds for now."""
    where = ["TRUE"]
    joins = []
    reason: list[str] = []
    if rule.population:
        where.append("(" + " OR ".join(f"coalesce(u.{p}, false)" for p in rule.population) + ")")
    if rule.when:
        where.append(f"coalesce(({rule.when}), false)")
    if rule.no_record:
        sources = departments.get(rule.no_record.department, []) if rule.no_record.department else [rule.no_record.source]
        joins.append(f"LEFT JOIN (SELECT person_id, max(record_date) AS last_record FROM source_records "
                     f"WHERE source IN ({literals(sources)}) GROUP BY person_id) n ON n.person_id = u.person_id")
        if rule.no_record.days is None:
            where.append("n.person_id IS NULL")
            reason.append(f"'{rule.no_record.who}无任何记录'")
        else:
            where.append(f"(n.person_id IS NULL OR n.last_record IS NULL "
                         f"OR n.last_record < DATE '{as_of.isoformat()}' - INTERVAL {rule.no_record.days} DAY)")
            reason.append(f"'最近一次{rule.no_record.who}记录：' || coalesce(strftime(n.last_record, '%Y-%m-%d'), "
                          f"CASE WHEN n.person_id IS NULL THEN '无' ELSE '日期不详' END)")
    if rule.area_left:
        sources = departments.get(rule.area_left.department, [])
        joins.append(f"JOIN (SELECT person_id, arg_max(coalesce(grid, address_grid), record_date) AS dept_grid "
                     f"FROM source_records WHERE source IN ({literals(sources)}) "
                     f"AND coalesce(grid, address_grid) IS NOT NULL GROUP BY person_id) a ON a.person_id = u.person_id")
        where.append("u.grid IS DISTINCT FROM a.dept_grid")
        reason.append(f"'{rule.area_left.department}登记网格：' || a.dept_grid || '，现住：' || coalesce(u.grid, '不详')")
    reason_sql = " || '；' || ".join(reason) or literals([rule.label])
    return (f"SELECT '{rule.code}' AS rule, u.person_id, u.street, u.community, u.grid, {reason_sql} AS reason "
            f"FROM unified_population u {' '.join(joins)} WHERE {' AND '.join(where)}")


def add_risk_warnings(con: duckdb.DuckDBPyConnection, rules: RiskRules, departments: Mapping[str, list[str]],
                      as_of: date, previous: pd.DataFrame | None, actions: pd.DataFrame | None) -> dict[str, int]:
    """Create ``risk_warnings``: this run's hits merged with the previous publication's episodes and the
    workers' actions. Returns the open (or acknowledged) warnings per rule.

    Args:
        con: holds ``unified_population`` and ``source_records`` (with ``address_grid``).
        rules: the rules of ``risks.yaml``.
        departments: department → its sources (``sources.yaml``).
        as_of: the run date (first_seen, last_seen, cleared_on).
        previous: the previous publication's ``risk_warnings`` (None on the first run).
        actions: the workers' actions (:class:`WarningActions`), latest per warning in force.
    """
    con.execute(_WARNINGS_DDL)
    hits = "\nUNION ALL\n".join(_hits_sql(r, departments, as_of) for r in rules.rules) if rules.rules else \
        "SELECT NULL::VARCHAR AS rule, NULL::VARCHAR AS person_id, NULL::VARCHAR AS street, " \
        "NULL::VARCHAR AS community, NULL::VARCHAR AS grid, NULL::VARCHAR AS reason WHERE false"
    con.execute(f"CREATE TEMP TABLE _hits AS {hits}")
    labels = pd.DataFrame({"rule": [r.code for r in rules.rules], "rule_label": [r.label for r in rules.rules],
                           "populations": [r.populations_read for r in rules.rules],
                           "reveals": [sorted(r.reveals) for r in rules.rules]})
    con.register("_labels", labels)
    columns = [c.split()[0] for c in _WARNINGS_DDL.split("(", 1)[1].rsplit(")", 1)[0].split(",")]
    previous = pd.DataFrame(columns=columns) if previous is None else previous.copy()
    for column in columns:  # a warehouse published before a column existed
        if column not in previous.columns:
            previous[column] = None
    con.register("_previous", previous[columns])
    day = f"DATE '{as_of.isoformat()}'"
    # Episodes still running (not cleared): continued where the rule still holds, cleared where not.
    con.execute(f"""
        INSERT INTO risk_warnings
        SELECT p.warning_id, p.rule, coalesce(l.rule_label, p.rule_label), p.person_id,
               coalesce(h.street, p.street), coalesce(h.community, p.community), coalesce(h.grid, p.grid),
               coalesce(h.reason, p.reason), coalesce(l.populations, p.populations), coalesce(l.reveals, p.reveals),
               p.first_seen,
               CASE WHEN h.person_id IS NOT NULL THEN {day} ELSE p.last_seen END,
               CASE WHEN h.person_id IS NULL THEN 'cleared' ELSE p.status END,
               p.status_by, p.status_at, p.note,
               CASE WHEN h.person_id IS NULL THEN {day} END
        FROM _previous p
        LEFT JOIN _hits h ON h.rule = p.rule AND h.person_id = p.person_id
        LEFT JOIN _labels l ON l.rule = p.rule
        WHERE p.status <> 'cleared'""")
    # Cleared episodes stay as history.
    con.execute("INSERT INTO risk_warnings BY NAME SELECT * FROM _previous WHERE status = 'cleared'")
    # New episodes: the rule holds and no running episode covers it.
    new = con.execute("""
        SELECT h.*, l.rule_label, l.populations, l.reveals FROM _hits h JOIN _labels l USING (rule)
        WHERE NOT EXISTS (SELECT 1 FROM risk_warnings w WHERE w.rule = h.rule AND w.person_id = h.person_id
                          AND w.status <> 'cleared')""").df()
    # An episode's id also counts the person's earlier episodes of the rule: one that clears and recurs
    # within a day is a new warning, not the closed one again.
    earlier = dict(((r, p), n) for r, p, n in con.execute(
        "SELECT rule, person_id, count(*) FROM risk_warnings GROUP BY ALL").fetchall())
    new["warning_id"] = [_warning_id(r, p, as_of, earlier.get((r, p), 0))
                         for r, p in zip(new["rule"], new["person_id"], strict=True)]
    con.register("_new", new)
    con.execute(f"""
        INSERT INTO risk_warnings
        SELECT warning_id, rule, rule_label, person_id, street, community, grid, reason, populations, reveals,
               {day}, {day},
               'open', NULL, NULL, NULL, NULL FROM _new""")
    if actions is not None and len(actions):
        con.register("_actions", actions)
        con.execute("""
            UPDATE risk_warnings w SET status = a.status, status_by = a.acted_by, status_at = a.acted_at, note = a.note
            FROM (SELECT warning_id, arg_max(status, acted_at) AS status, arg_max(acted_by, acted_at) AS acted_by,
                         max(acted_at) AS acted_at, arg_max(note, acted_at) AS note FROM _actions GROUP BY warning_id) a
            WHERE a.warning_id = w.warning_id AND w.status <> 'cleared'""")
        con.unregister("_actions")
    con.execute("CREATE OR REPLACE TABLE risk_warnings AS SELECT * FROM risk_warnings "
                "ORDER BY grid NULLS LAST, rule, person_id, first_seen")
    for name in ("_labels", "_previous", "_new"):
        con.unregister(name)
    con.execute("DROP TABLE _hits")
    return dict(con.execute("SELECT rule, count(*) FROM risk_warnings WHERE status IN ('open', 'acknowledged') "
                            "GROUP BY rule ORDER BY rule").fetchall())


def _warning_id(rule: str, person_id: str, first_seen: date, episode: int = 0) -> str:
    return "W" + hashlib.sha256(f"{rule}|{person_id}|{first_seen.isoformat()}|{episode}".encode()).hexdigest()[:10]


# -- the workers' actions --------------------------------------------------------------------

class WarningActions:
    """What workers did with warnings, kept in the data home (``<home>/warnings/actions.parquet``) outside
    the warehouse, which each run replaces; the next run applies the latest action per warning."""

    COLUMNS = ("warning_id", "action", "status", "acted_by", "note", "acted_at")

    def __init__(self, path: Path) -> None:
        self._log = AppendLog(path, lambda: pd.DataFrame(columns=list(self.COLUMNS)), "the warning actions",
                              "restore it from a backup or the warehouse's risk_warnings table (status_by, note)")
        self.path = self._log.path

    @classmethod
    def in_home(cls, home: HomeLike) -> WarningActions:
        return cls(DataHome.at(home).warning_actions_file)

    def load(self) -> pd.DataFrame:
        return self._log.load()

    def record(self, warning_id: str, action: str, *, by: str, note: str | None = None,
               at: datetime | None = None) -> pd.DataFrame:
        """Append one action (``acknowledge``, ``close``, ``reopen``); a close needs a note."""
        if action not in WARNING_ACTIONS:
            raise TerminalError(f"action {action!r} is not one of {list(WARNING_ACTIONS)}")
        if action == "close" and not (note or "").strip():
            raise TerminalError("closing a warning needs a note saying what was done, e.g. --note 已上门，女儿同住")
        if not by.strip():
            raise TerminalError("say who acts on the warning: --by <worker>")
        return self._log.append(pd.DataFrame({
            "warning_id": [warning_id], "action": [action], "status": [WARNING_ACTIONS[action]], "acted_by": [by],
            "note": [note], "acted_at": [at or datetime.now(UTC)]}))


def departments_of(reports) -> dict[str, list[str]]:
    """Department → its sources, from the staging reports of a run."""
    found: dict[str, list[str]] = {}
    for r in reports:
        if getattr(r, "department", None):
            found.setdefault(r.department, []).append(r.source)
    return found

