"""The warehouse's data dictionary, once: every table and column of the published warehouse, described.

Analysts read it in two places that must say the same: ``docs/warehouse.md`` (its "Tables and
columns" section is generated from here) and the warehouse itself, where every table and column
carries its description as a ``COMMENT ON`` (``duckdb_tables().comment``, ``duckdb_columns().comment``;
DBeaver and R show them beside the column). Where the canonical vocabulary has a Chinese name for a
column (:data:`core.vocabulary.FIELD_LABELS`, the key populations' labels in ``populations.yaml``), the
comment starts with it.

Why a Python mapping and not the document parsed at publish time: the package publishes from an
installed copy (a wheel on a district server has no ``docs/``), a markdown parser would be one more
way for a nightly publication to fail, and the types written here are checked against a real
warehouse by the tests, so the document cannot drift from what analysts open. The document stays
plain markdown tables; to change a description edit :data:`TABLES` and run::

    make warehouse-doc      # rewrites the generated section of docs/warehouse.md (:func:`rewrite_doc`)

Example:
    >>> TABLES["runs"].column("persons").comment
    '人数：persons resolved (rows of unified_population)'
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.vocabulary import FIELD_LABELS
from publish.populations import KeyPopulations, default_populations
from publish.sqltext import identifier, literal

__all__ = ["DOC_BEGIN", "DOC_END", "TABLES", "ColumnDoc", "TableDoc", "add_comments", "main", "markdown", "rewrite_doc",
           "unified_columns"]

log = logging.getLogger(__name__)

DOC_BEGIN = "<!-- BEGIN tables and columns: generated from publish/catalog.py by `make warehouse-doc`; edit there -->"
DOC_END = "<!-- END tables and columns -->"

# duckdb_columns().data_type spellings, so the document states exactly what DESCRIBE shows.
TEXT, BOOL, BIGINT, INT, TINYINT, DOUBLE, FLOAT = "VARCHAR", "BOOLEAN", "BIGINT", "INTEGER", "TINYINT", "DOUBLE", "FLOAT"
DATE, TSTZ, TEXTS, JSON = "DATE", "TIMESTAMP WITH TIME ZONE", "VARCHAR[]", "JSON"
TEXT_MAP = "MAP(VARCHAR, VARCHAR)"

_LABELS = dict(FIELD_LABELS)


@dataclass(frozen=True)
class ColumnDoc:
    """One column: its DuckDB type, what it holds, and its Chinese name where the vocabulary has one."""

    name: str
    type: str
    text: str
    label: str = ""

    @property
    def comment(self) -> str:
        """The ``COMMENT ON COLUMN`` text: the Chinese name first, then the description without markdown."""
        plain = self.text.replace("`", "")
        return f"{self.label}：{plain}" if self.label else plain


@dataclass(frozen=True)
class TableDoc:
    """One table: what one row is (``grain``), what the table holds, and its columns."""

    name: str
    grain: str
    text: str
    columns: tuple[ColumnDoc, ...]

    @property
    def comment(self) -> str:
        """The ``COMMENT ON TABLE`` text."""
        return self.sentence.replace("`", "")

    @property
    def sentence(self) -> str:
        """What one row is, then what the table holds, as the document says it."""
        return f"One row per {self.grain}. {self.text[:1].upper()}{self.text[1:]}."

    def column(self, name: str) -> ColumnDoc:
        """The column called ``name``.

        Raises:
            KeyError: the table documents no such column.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name}.{name} is not documented in publish/catalog.py")


def _col(name: str, type_: str, text: str, label: str | None = None) -> ColumnDoc:
    # The vocabulary's Chinese name unless the column means something else here (label="").
    return ColumnDoc(name, type_, text, _LABELS.get(name, "") if label is None else label)


def _table(name: str, grain: str, text: str, *columns: ColumnDoc | Iterable[ColumnDoc]) -> TableDoc:
    flat: list[ColumnDoc] = []
    for item in columns:
        flat.extend([item] if isinstance(item, ColumnDoc) else item)
    return TableDoc(name, grain, text, tuple(flat))


# -- columns several tables share ------------------------------------------------------------------

def _run_id(what: str = "the run that published the row") -> ColumnDoc:
    return _col("run_id", TEXT, f"{what} (`runs.run_id`)", "运行编号")


_PERSON_ID = _col("person_id", TEXT, "the person's stable id (`P` + 12 hex characters), kept across runs "
                  "(`person_id_history` says what became of each)")
_RECORD_ID = _col("record_id", TEXT, "`<source>:<source_key>`, unique across sources", "记录编号")
_SOURCE = _col("source", TEXT, "the source's name in sources.yaml (e.g. `health`)", "来源")
_SOURCE_KEY = _col("source_key", TEXT, "the record's key in its department's system (primary-key values joined with `|`)",
                   "原系统编号")
_DISPUTED = _col("id_number_disputed", BOOL,
                 "the record was keyed with another resident's valid ID number (it borrowed the number of an "
                 "ID-sharing conflict no reviewer has judged `same`, `docs/identity.md`), so the number is not its "
                 "person's", "公民身份号码存疑")
_DECISION_ID = _col("decision_id", TEXT, "the consent decision (`consent_decisions.record_id`)", "决定编号")
_PURPOSE = _col("purpose", TEXT, "purpose of processing (`service_delivery`, `statistics`, …; `*` every purpose)")
_RECIPIENT = _col("recipient", TEXT, "recipient as the consent registry names it (`*` every recipient)")
_CHANNEL = _col("channel", TEXT, "how the decision was made (线下窗口, 政务APP, 电话, …)")
_FLAT = _col("flat", TEXT, "the flat an address points to however written (`dedup.prepare.household_key`: "
             "`翠苑|3-2-501` for 翠苑社区3幢2单元501室, 翠苑社区3-2-501 and 翠苑3-2-501 alike); null where none can be read", "户")

# The canonical person record's own fields (docs/architecture.md), as source_records holds them.
_RECORD_FIELDS = (
    _col("name", TEXT, "normalised: full-width to half-width, no spaces, traditional to simplified, middle dots as `·`"),
    _col("name_pinyin", TEXT, "toneless pinyin of the name, syllables joined by spaces, surname readings applied "
         "(单 shan, 解 xie, …)", "姓名拼音"),
    _col("sex", TEXT, "`M`, `F` or null, as the source states it"),
    _col("birth_date", TEXT, "as precise as the source states it: `YYYY-MM-DD`, `YYYY-MM` (the census knows only "
         "the month) or `YYYY`; `birth_day` holds it as a DATE where the day is known"),
    _col("birth_date_precision", TEXT, "`day`, `month`, `year` or null: the precision of `birth_date`", "出生日期精度"),
    _col("id_number", TEXT, "GB 11643 18-character form (upper-case X; 15-digit numbers upgraded), null if absent"),
    _col("id_number_valid", BOOL, "the check character (ISO 7064 MOD 11-2) and the embedded birth date are valid",
         "公民身份号码有效"),
    _col("id_upgraded", BOOL, "the source gave the old 15-digit form", "由15位升级"),
    _col("id_birth_date", DATE, "the birth date the ID number carries (always a whole day)", "身份号码中的出生日期"),
    _col("id_sex", TEXT, "`M`/`F` from the ID number's 17th digit", "身份号码中的性别"),
    _col("birth_date_conflict", BOOL, "the stated birth date disagrees with the ID number at the stated precision",
         "出生日期与身份号码不符"),
    _col("sex_conflict", BOOL, "the stated sex disagrees with the ID number", "性别与身份号码不符"),
    _col("phone", TEXT, "digits only, +86/0086 stripped; null if not a plausible number"),
    _col("address", TEXT, "normalised address text"),
    _col("street", TEXT, "address part: street (sub-district)"),
    _col("community", TEXT, "address part: community"),
    _col("grid", TEXT, "address part: grid, the smallest management cell"),
    _col("record_date", DATE, "when the department last recorded the row (staging reads every date format to a day; "
         "null where the source has none, e.g. the census)"),
    _col("lives_alone", BOOL, "department attribute (民政): lives alone"),
    _col("low_income", BOOL, "department attribute (民政): minimum-living subsidy household"),
    _col("pregnant", BOOL, "department attribute (卫健): pregnant or recently delivered"),
    _col("corrections", BOOL, "department attribute (司法): under community corrections"),
    _col("disability_grade", TINYINT, "department attribute: disability grade 1–4 (1 most severe)"),
    _col("chronic_disease", TEXT, "department attribute (卫健): chronic disease(s)"),
    _col("case_type", TEXT, "department attribute (司法): case type"),
    _col("hukou_address", TEXT, "normalised address of the household registration (户籍地), where the source keeps it"),
    _col("residence_status", TEXT, "`present` (在住; also a move-in), `moved_out` (迁出) or `deceased` (死亡), where "
         "the source states it (a grid worker's update, a register's 人员状态)"),
    _col("change", TEXT, "what a report says changed, as written (a grid worker's update: 变更类型)"),
    _col("reported_by", TEXT, "who stated the record (a grid worker's update: the worker)"),
    _col("note", TEXT, "what the reporter added (a grid worker's update: 情况说明)"),
    _col("alias", TEXT, "former names and aliases the source gives (曾用名, 别名), normalised as names and joined "
         "by 、; linking compares them with other records' names"),
    _col("extracted_at", TSTZ, "when the connector read the source", "抽取时间"),
)


def _record_field(name: str) -> ColumnDoc:
    return next(c for c in _RECORD_FIELDS if c.name == name)


# -- unified_population ----------------------------------------------------------------------------

_GOLDEN = {
    "name": "the golden name",
    "sex": "the golden sex (`M`/`F`): a stated sex that agrees with the ID number first",
    "birth_date": ("the golden birth date, text of mixed precision: `YYYY-MM-DD`, `YYYY-MM` (the census knows only "
                   "the month) or `YYYY`; a day-precise one first. `birth_day` holds it as a DATE where the day is known"),
    "id_number": ("the golden resident ID number, a valid one first; never a number one of the person's records "
                  "borrowed (`id_number_disputed`)"),
    "phone": "the golden phone number: the newest grid worker's update first, then the more trusted source's",
    "address": "the golden address: the most recent record's (people move; the area is chosen by recency too), "
               "then the more trusted source's; a grid worker's short form of a flat a department has written for the "
               "person is shown in the department's fullest wording",
    "hukou_address": "the golden household-registration address (户籍地址): the base register's (`base: true`, the "
                     "census) first, then the more trusted source's",
    "residence_status": "`present`, `moved_out` or `deceased`: the newest statement of any source (a grid worker's "
                        "update, a register's status); null where none states it. A person moved out or deceased is in "
                        "no key population and on no area's list",
    "street": "the golden street",
    "community": "the golden community",
    "grid": "the golden grid",
}


def _golden_columns() -> list[ColumnDoc]:
    columns = []
    for field, text in _GOLDEN.items():
        label = FIELD_LABELS[field]
        columns += [
            _col(field, TEXT, text),
            _col(f"{field}_source", TEXT, f"the source the golden `{field}` comes from", f"{label}来源"),
            _col(f"{field}_date", DATE, f"`record_date` of the record the golden `{field}` comes from", f"{label}登记日期"),
        ]
        if field == "birth_date":
            columns.append(_col("birth_date_precision", TEXT, "`day`, `month` or `year`: the precision of `birth_date`, "
                                "as the chosen record states it", "出生日期精度"))
    return columns


def _key_population_columns(populations: KeyPopulations) -> list[ColumnDoc]:
    """One yes/no column per category of ``populations.yaml``, described by its rule."""
    return [_col(c.code, BOOL, f"key population ({c.label}): `{' '.join(c.rule.split())}` (populations.yaml)", c.label)
            for c in populations.categories]


_UNIFIED = _table(
    "unified_population", "person",
    "the golden record: each field from the best record that has it, with its source and date; department "
    "attributes, age and key populations; consent per purpose and recipient (how values are chosen: "
    "`docs/warehouse.md`)",
    _PERSON_ID,
    _golden_columns(),
    _col("lives_alone", BOOL, "the newest grid worker's update that says whether the person lives alone; without "
         "one, any record of the person says so (民政)"),
    _col("low_income", BOOL, "any record of the person says so (民政)"),
    _col("disability_grade", TINYINT, "the most severe grade any record holds (1–4)"),
    _col("chronic_disease", TEXT, "every chronic disease the records name, joined by `,`"),
    _col("pregnant", BOOL, "any record of the person says so (卫健)"),
    _col("corrections", BOOL, "any record of the person says so (司法)"),
    _col("case_type", TEXT, "the case type of the most recent record that has one (司法)"),
    _col("id_number_disputed", BOOL, "a record of the person carries another resident's ID number — an ID-sharing "
         "conflict (`docs/identity.md`) — which is not given as its `id_number`", "公民身份号码存疑"),
    _col("sources", TEXTS, "the sources holding a record of the person", "来源"),
    _col("record_ids", TEXTS, "the person's records (`source_records.record_id`)", "记录编号"),
    _col("record_count", BIGINT, "how many records the person stands on", "记录数"),
    _col("conflict_fields", TEXTS, "the identity fields the departments disagree on (`name, sex, birth_date, "
         "id_number, address`); every value is in `field_conflicts`", "冲突字段"),
    _col("last_seen", DATE, "the most recent `record_date` of the person's records", "最近登记日期"),
    _col("birth_year", INT, "the year of `birth_date` (every precision states it)"),
    _col("birth_day", DATE, "`birth_date` as a DATE where its precision is `day`; null where only the month or the "
         "year is known", "出生日期（日）"),
    _col("age", INT, "completed years at the run date; a birth date without a day counts from the 1st of its month, "
         "without a month from January"),
    _col("household_size", BIGINT, "people whose golden address is the same flat, the person included (people "
         "reported moved out or deceased aside): the household as the departments' addresses tell it; null without "
         "a flat", "同住人数"),
    _col("household_working_age", BIGINT, "of them, aged 18–59", "同住18-59岁人数"),
    _col("household_elderly", BIGINT, "of them, aged 60 or more", "同住60岁以上人数"),
    _col("household_children", BIGINT, "of them, under 14", "同住14岁以下人数"),
    _col("residence_type", TEXT, "`registered` (人户一致: the 户籍地址 is the flat the person lives in), `separated` "
         "(人户分离: registered at another flat the area register places in the district) or `floating` (流动人口: "
         "registered outside the district); null without a 户籍地址, and without an area register unless the flats agree"),
    _col("area_from_address", BOOL, "the area (`street, community, grid`) is the one the chosen record's address "
         "names in the area register, not one a department stated (`area_conflicts`)", "区划由住址得出"),
    _key_population_columns(default_populations()),
    _col("key_populations", TEXTS, "the key populations the person belongs to, by the codes of `populations.yaml`, "
         "in its order"),
    _col("effective_consent", TEXT_MAP, "`purpose@recipient#category` → the effective status at the run date "
         "(`granted`, `expired`, `refused`, `withdrawn`), from `consent_effective`", "有效同意"),
    _col("consent", TEXT_MAP, "`purpose@recipient` → the latest decision's status, from `person_consent`", "同意"),
)

# -- the rest --------------------------------------------------------------------------------------

_LEVEL_FIELDS = ("id_number", "name", "birth_date", "sex", "phone", "address", "community", "source")
_LEVEL_LABELS = {**FIELD_LABELS, "source": "来源部门"}

_TABLES = (
    _UNIFIED,
    _table(
        "record_person", "staged source record", "which person each staged record belongs to",
        _RECORD_ID, _PERSON_ID, _DISPUTED,
    ),
    _table(
        "source_records", "staged source record",
        "the canonical record (`docs/architecture.md`) as the department wrote it, with its person",
        _PERSON_ID, _RECORD_ID, _SOURCE, _SOURCE_KEY, _RECORD_FIELDS, _DISPUTED, _FLAT,
        _col("birth_day", DATE, "`birth_date` as a DATE where its precision is `day`", "出生日期（日）"),
        _col("address_street", TEXT, "the 街道 the record's address names in the area register (null where it names "
             "no community there, or without a register)", "住址所属街道"),
        _col("address_community", TEXT, "the 社区 the record's address names in the area register", "住址所属社区"),
        _col("address_grid", TEXT, "the 网格 whose buildings include the address's (null where none covers it)",
             "住址所属网格"),
    ),
    _table(
        "area_conflicts", "person whose areas disagree × source × origin × area",
        "every area a person's records give when they disagree (stated by the department, or named by its address in "
        "the area register), the most recent date of each, and the one chosen with why; the chosen row first",
        _PERSON_ID, _SOURCE,
        _col("department", TEXT, "that source's department label (民政, 卫健, …)", "部门"),
        _col("origin", TEXT, "`stated`: the department's own street/community/grid columns; `address`: what the "
             "record's address names in the area register", "来源方式"),
        _col("street", TEXT, "the 街道 of this area (null where not stated)"),
        _col("community", TEXT, "the 社区 of this area, in the register's spelling where it knows the name"),
        _col("grid", TEXT, "the 网格 of this area (null where not stated or no grid covers the building)"),
        _col("record_date", DATE, "the most recent `record_date` of the records giving this area (null: none has one)"),
        _col("records", BIGINT, "how many of the person's records give this area from this source and origin", "记录数"),
        _col("record_id", TEXT, "the best-ranked record giving it (`source_records.record_id`)", "记录编号"),
        _col("chosen", BOOL, "the area the golden record takes", "采用"),
        _col("reason", TEXT, "on the chosen row, why, in Chinese (登记日期最近…); null on the others", "原因"),
    ),
    _table(
        "key_residents", "person × key population",
        "each person of each category of `populations.yaml`, with their area and the reason in Chinese: the list a "
        "grid's worker visits (which of these a recipient receives is the sharing policy's business)",
        _PERSON_ID,
        _col("category", TEXT, "the category's `code` in `populations.yaml`", "类别"),
        _col("category_label", TEXT, "its Chinese `label` (独居老人)", "类别名称"),
        _col("sensitive", TEXT, "the consent category membership reveals (`health`, `judicial`; null for neither)",
             "敏感类别"),
        _col("street", TEXT, "the person's 街道 (`unified_population.street`)"),
        _col("community", TEXT, "the person's 社区"),
        _col("grid", TEXT, "the person's 网格 (null where the person could not be placed)"),
        _col("reason", TEXT, "why the person is listed, in Chinese, from the category's `reason` (年龄72岁，独居)", "原因"),
    ),
    _table(
        "risk_warnings", "warning episode: rule × person × the span it held",
        "risk early warnings (风险预警) of `risks.yaml`: a rule holding for a person from `first_seen` to "
        "`last_seen`, open until a worker acknowledges or closes it (`silobreaker warnings`), `cleared` when "
        "the condition no longer holds (should it recur, a new warning); carried over",
        _col("warning_id", TEXT, "`W` + 10 hex characters, stable for the episode: what a worker names to act on it",
             "预警编号"),
        _col("rule", TEXT, "the rule's `code` in `risks.yaml`", "规则"),
        _col("rule_label", TEXT, "what is wrong, in Chinese (独居老人一年以上无卫健服务记录)", "预警内容"),
        _PERSON_ID,
        _col("street", TEXT, "the person's 街道 when last seen"),
        _col("community", TEXT, "the person's 社区 when last seen"),
        _col("grid", TEXT, "the person's 网格 when last seen: the grid whose worker receives the warning"),
        _col("reason", TEXT, "the facts behind it, in Chinese (最近一次卫健记录：2025-03-02)", "原因"),
        _col("populations", TEXTS, "the rule's key populations (`population` in risks.yaml): a product shows the "
             "warning only to a recipient that may see all of them", "重点人群"),
        _col("reveals", TEXTS, "the sensitive consent categories (`health`, `judicial`) the warning reveals: "
             "shown to a consent-based recipient only where the person's decision names them", "敏感类别"),
        _col("first_seen", DATE, "the run date the rule first held (this episode)", "首次发现"),
        _col("last_seen", DATE, "the last run date it held", "最近发现"),
        _col("status", TEXT, "`open`, `acknowledged`, `closed` (by a worker, with a note: stays closed while "
             "the condition holds) or `cleared` (the condition no longer holds)", "状态"),
        _col("status_by", TEXT, "who acknowledged or closed it", "处理人"),
        _col("status_at", TSTZ, "when", "处理时间"),
        _col("note", TEXT, "the worker's note (已上门，女儿同住)", "处理说明"),
        _col("cleared_on", DATE, "the run date the condition no longer held", "消除日期"),
    ),
    _table(
        "census_gaps", "person × gap",
        "who the base register (`base: true`, the census) misses and who only it knows, per grid: people departments "
        "or grid workers know but the census did not count (`not_in_census`), and census-only people no department "
        "or grid worker confirms (`census_only`); people reported moved out or deceased are left out. Empty without "
        "a base register",
        _PERSON_ID,
        _col("gap", TEXT, "`not_in_census` or `census_only`", "类型"),
        _col("gap_label", TEXT, "the gap in Chinese (部门掌握、普查未登记)", "类型名称"),
        _col("street", TEXT, "the person's 街道 (`unified_population.street`)"),
        _col("community", TEXT, "the person's 社区"),
        _col("grid", TEXT, "the person's 网格: whose worker checks on the next visit"),
        _col("name", TEXT, "the golden name"),
        _col("sex", TEXT, "the golden sex"),
        _col("birth_date", TEXT, "the golden birth date"),
        _col("address", TEXT, "the golden address"),
        _col("sources", TEXTS, "the sources holding a record of the person", "来源"),
        _col("last_seen", DATE, "the most recent `record_date` of the person's records", "最近登记日期"),
    ),
    _table(
        "grid_updates", "grid worker's update",
        "every update grid workers sent (`role: grid_updates`: moved out, deceased, lives alone, a phone), linked to "
        "its person like any record, and whether the golden record now states it",
        _col("record_id", TEXT, "the update's record (`source_records.record_id`)", "记录编号"),
        _PERSON_ID,
        _col("source", TEXT, "the grid-update source", "来源"),
        _col("change", TEXT, "what it reported (变更类型, as written): 迁出, 死亡, 迁入, 独居, 不再独居, 电话变更, 信息更正; "
             "where a source has none, what its record states", "变更类型"),
        _col("residence_status", TEXT, "the status it stated (`present`, `moved_out`, `deceased`)"),
        _col("lives_alone", BOOL, "whether it said the person lives alone (null: not stated)"),
        _col("phone", TEXT, "the phone it reported"),
        _col("note", TEXT, "the worker's 情况说明"),
        _col("reported_by", TEXT, "the worker (填报人)"),
        _col("record_date", DATE, "the day reported (填报日期)", "填报日期"),
        _col("grid", TEXT, "the person's 网格 now"),
        _col("status_now", TEXT, "the person's golden `residence_status` now (`present` where none is stated)",
             "当前状态"),
        _col("taken", BOOL, "the golden record now states what the update stated; false where a newer record says "
             "otherwise", "已采用"),
    ),
    _table(
        "consent_subjects", "ID number × person",
        "the person a consent decision naming that number applies to: every number a person's records carry, "
        "except a borrowed one (`id_number_disputed`)",
        _col("id_number", TEXT, "a resident ID number some record carries as its own"), _PERSON_ID,
    ),
    _table(
        "person_flats", "person × flat",
        "every flat a person's records place them in; a guardian the district knows must share one with the "
        "child (`docs/privacy.md`)",
        _PERSON_ID, _FLAT,
    ),
    _table(
        "field_conflicts", "person × disputed field × record",
        "every value the departments hold for an identity field they disagree on: `name`, `sex`, `birth_date` "
        "(day against day, and everyone at year-month: the census knows the month), `id_number` (valid ones) or "
        "`address` (by the flat it points to: 3幢2单元501室 and 3-2-501 agree; as text where no flat can be read)",
        _PERSON_ID, _col("field", TEXT, "the disputed field", "字段"), _SOURCE, _RECORD_ID,
        _col("value", TEXT, "the record's value, as text", "取值"),
    ),
    _table(
        "person_consent", "person × purpose × recipient",
        "the latest consent decision; of decisions made at the same instant the more protective one",
        _PERSON_ID, _PURPOSE, _RECIPIENT,
        _col("status", TEXT, "`granted`, `refused` or `withdrawn`"),
        _col("decided_at", TSTZ, "when the latest decision was made"), _CHANNEL, _DECISION_ID,
        _col("decisions", BIGINT, "how many decisions there were", "决定次数"),
    ),
    _table(
        "consent_decisions", "consent decision",
        "the staged consent registry, full history; withdrawals, refusals and deletion requests of earlier runs "
        "that the registry no longer holds are kept",
        _RECORD_ID, _SOURCE, _SOURCE_KEY,
        _col("id_number", TEXT, "the resident ID number of the person the decision is about"),
        _col("name", TEXT, "the person's name as the registry writes it"),
        _PURPOSE, _RECIPIENT,
        _col("status", TEXT, "`granted`, `refused`, `withdrawn`, `deletion_requested` or `deletion_revoked`"),
        _col("decided_at", TSTZ, "when the decision was made"), _CHANNEL,
        _col("categories", TEXT, "data categories the decision names, joined by `,` (`basic`, `health`, `judicial`, "
             "`minor`); empty means `basic`"),
        _col("expires_at", TSTZ, "when a grant expires; null if it does not"),
        _col("guardian_id_number", TEXT, "the ID number of the guardian who decided for the person, if one did"),
        _record_field("extracted_at"),
    ),
    _table(
        "consent_effective", "person × purpose × recipient × data category",
        "the latest decision and what it means at the run date (`unified_population.effective_consent` holds the "
        "same as a MAP)",
        _PERSON_ID, _PURPOSE, _RECIPIENT,
        _col("category", TEXT, "data category: `basic`, or `health`, `judicial`, `minor` (these need a decision "
             "naming them, 单独同意)", "数据类别"),
        _col("status", TEXT, "the latest decision: `granted`, `refused` or `withdrawn`"),
        _col("decided_at", TSTZ, "when it was made"),
        _col("expires_at", TSTZ, "when a grant expires; null if it does not"), _CHANNEL,
        _col("by_guardian", BOOL, "a guardian decided: someone else, of age on the day by their ID number, sharing a "
             "flat with the child where both are placed in one", "监护人决定"),
        _DECISION_ID, _col("decisions", BIGINT, "how many decisions there were", "决定次数"),
        _col("effective_status", TEXT, "at the run date: `granted`, `expired`, `refused` or `withdrawn`", "有效状态"),
    ),
    _table(
        "deletion_requests", "person",
        "a standing request to be deleted (PIPL art. 47): the person is kept only in statutory registers; only a "
        "later `deletion_revoked` undoes it",
        _PERSON_ID, _col("requested_at", TSTZ, "when the request was made", "申请时间"), _CHANNEL, _DECISION_ID,
    ),
    _table(
        "consent_exclusions", "recipient × person left out",
        "why a person in a product's scope was not published to it this run",
        _col("recipient", TEXT, "the product's recipient (policy.yaml name)"), _PERSON_ID,
        _col("reason", TEXT, "`withdrawn`, `expired`, `refused`, `deleted`, `consent_unreadable`, "
             "`no_guardian_consent`, `id_disputed` or `no_consent`", "原因"),
    ),
    _table(
        "consent_problems", "person × consent decision that could not be read",
        "the person is left out wherever a withdrawal or a deletion would leave them out, until the row is "
        "corrected (`docs/privacy.md`)",
        _PERSON_ID, _DECISION_ID,
        _col("rule", TEXT, "the quarantine rule the decision broke, or `id_holder_unknown`", "规则"),
        _col("message", TEXT, "what is wrong, for the registry's clerk", "说明"),
    ),
    _table(
        "consent_unmatched", "consent decision that applies to no one the policy shares with",
        "counted in the run log, so a registry that drifted from the policy (卫健委 for health) shows",
        _DECISION_ID, _col("id_number", TEXT, "the ID number the decision names"), _PURPOSE, _RECIPIENT,
        _col("status", TEXT, "the decision's status"), _col("decided_at", TSTZ, "when it was made"),
        _col("reason", TEXT, "`no_person`, `unknown_recipient` or `unknown_purpose`", "原因"),
    ),
    _table(
        "link_pairs", "scored record pair",
        "links, near misses, vetoed and cut pairs (every ID-sharing conflict in force among the `vetoed`, whatever "
        "its score, compared as written), with the level each comparison reached and the waterfall of weights; "
        "levels and rules: `docs/identity.md`",
        _col("record_id_l", TEXT, "one record of the pair", "记录编号（左）"),
        _col("record_id_r", TEXT, "the other record", "记录编号（右）"),
        _col("score", FLOAT, "the match weight in bits", "得分"),
        _col("decision", TEXT, "`link`, `cut`, `vetoed` or `near_miss`", "判定"),
        _col("veto", TEXT, "the veto that forbade the link, if one did", "否决规则"),
        _col("rule", TEXT, "the first blocking rule that produced the pair", "分块规则"),
        [_col(f, TEXT, f"the level the {f} comparison reached", f"{_LEVEL_LABELS[f]}比对等级") for f in _LEVEL_FIELDS],
        _col("w_prior", FLOAT, "the prior weight (bits)", "先验权重"),
        [_col(f"w_{f}", FLOAT, f"the weight (bits) the {f} level adds", f"{_LEVEL_LABELS[f]}权重") for f in _LEVEL_FIELDS],
        _col("match_weight", FLOAT, "`w_prior` + every `w_<comparison>`", "匹配权重"),
        _col("match_probability", DOUBLE, "`2^match_weight / (1 + 2^match_weight)`", "匹配概率"),
        _col("context", TEXT, "`one_flat`, `born_together` or null: whose u probabilities the weights of a pair at "
             "one flat come from (`docs/identity.md`, household context)", "同户情境"),
    ),
    _table(
        "quarantine", "quarantined row",
        "rows held back by a quarantine rule, waiting for the department to correct them",
        _run_id(), _SOURCE, _SOURCE_KEY, _RECORD_ID,
        _col("row_number", BIGINT, "1-based position in the extract", "行号"),
        _col("rule", TEXT, "the first quarantine rule the row broke", "规则"),
        _col("rules", TEXT, "every rule it broke, joined by `,`", "全部规则"),
        _col("field", TEXT, "the canonical field the first rule is about", "字段"),
        _col("column", TEXT, "the source's own column for that field", "原列名"),
        _col("value", TEXT, "the value as the department wrote it", "原值"),
        _col("message", TEXT, "what is wrong and how to fix it", "说明"),
        _col("raw_record", TEXT, "the source row as JSON", "原始记录"),
        _col("subject_id_number", TEXT, "for a consent decision: the ID number of the person it names, when readable",
             "当事人公民身份号码"),
        _record_field("extracted_at"),
    ),
    _table(
        "extraction_log", "source × run",
        "where and when each source was read; carried over",
        _run_id("the run that read the source"), _SOURCE,
        _col("kind", TEXT, "connector kind (`csv`, `xlsx`, `parquet`, `sql`)", "类型"),
        _col("location", TEXT, "file path or database URL and table (no password)", "位置"),
        _col("extracted_at", TSTZ, "when it was read", "抽取时间"),
        _col("row_count", BIGINT, "rows read", "行数"),
        _col("content_hash", TEXT, "sha256 of the file bytes, or of the rows read from a database", "内容哈希"),
        _col("encoding", TEXT, "the text encoding it was read in", "编码"),
        _col("department", TEXT, "its department's label in sources.yaml (null in runs before 2026-12)", "部门"),
    ),
    _table(
        "validation_results", "expectation × suite × run",
        "Great Expectations outcomes and guards per staged source; carried over",
        _run_id("the run that validated"),
        _col("suite", TEXT, "the expectation suite (`staged_<source>`)", "校验套件"),
        _col("success", BOOL, "the whole suite passed", "套件通过"),
        _col("row_count", BIGINT, "rows validated", "行数"),
        _col("expectation", TEXT, "the expectation or guard (e.g. `row_drop`)", "校验项"),
        _col("column_name", TEXT, "the column it checks, if one", "列"),
        _col("expectation_success", BOOL, "it passed (or an accepted drop)", "通过"),
        _col("unexpected_count", BIGINT, "rows that failed it", "不合格行数"),
        _col("unexpected_percent", DOUBLE, "their share in percent", "不合格比例"),
        _col("why", TEXT, "why the rule exists, and who accepted a drop", "原因"),
    ),
    _table(
        "publication_log", "product × run",
        "every product published: to whom, why, what, how many rows; carried over",
        _run_id(), _col("published_at", TSTZ, "when", "发布时间"),
        _col("recipient", TEXT, "the recipient (policy.yaml name)"), _PURPOSE,
        _col("legal_basis", TEXT, "`statutory` or `consent`", "法律依据"),
        _col("columns", TEXTS, "the columns shared", "共享列"),
        _col("row_count", BIGINT, "rows published", "行数"),
        _col("content_hash", TEXT, "sha256 of the product file", "内容哈希"),
        _col("path", TEXT, "where the product is published", "路径"),
        _col("disclosure", JSON, "pseudonymised products: how long their person_key lasts (`pseudonyms`: "
             "per_release or stable); analyst row products also: k required and achieved, the generalisation levels "
             "chosen, rows suppressed or left out, category flags withheld (`publish.anonymity.Disclosure`), and how the "
             "release was held against the last one delivered (`held_against`: that product's sha256, `classes_held`, "
             "`rows_held`, `classes_withheld`, `rows_withheld`, `rows_behind`, `rows_outdated`, `not_held`: "
             "`publish.releases.Continuity`)", "披露控制"),
        _col("audit_seq", BIGINT, "the product's entry in the audit log (its anchor there, checked by "
             "`silobreaker audit verify`); empty before 2026-12", "审计序号"),
        _col("audit_hash", TEXT, "that entry's hash; empty before 2026-12", "审计哈希"),
        _col("key_id", TEXT, "the key the product is encrypted under; empty before 2026-12", "密钥编号"),
        _col("policy_entry", TEXT, "the policy.yaml entry the product comes from: the recipient itself, or the "
             "`\"*\"` entry (`scope: {grid: \"*\"}`) it is one area's product of; empty before 2026-12", "策略条目"),
        _col("area", TEXT, "for an area product of a `\"*\"` entry, its area (翠苑社区第1网格); else null", "区域"),
        _col("withheld", "MAP(VARCHAR, BIGINT)", "people in the product's scope left out, by reason (`no_consent`, "
             "`expired`, `withdrawn`, …, as in `consent_exclusions`): per grid, the residents a worker cannot see yet; "
             "empty before 2026-12", "未列入人数"),
    ),
    _table(
        "runs", "published run",
        "when each run published and what it held; carried over",
        _run_id("the run"), _col("published_at", TSTZ, "when it published", "发布时间"),
        _col("records", BIGINT, "staged records (rows of `record_person`)", "记录数"),
        _col("quarantined", BIGINT, "quarantined rows", "隔离行数"),
        _col("persons", BIGINT, "persons resolved (rows of `unified_population`)", "人数"),
        _col("sources", TEXTS, "the sources staged", "来源"),
    ),
    _table(
        "carry_state", "this publication (one row)",
        "how this warehouse was built: whole, or on a copy of the last one with only the changed records' and "
        "persons' rows written (`publish.carry`, `docs/operations.md`); the next run compares its fingerprint",
        _run_id("the run that built it"),
        _col("built", TEXT, "`whole` or `carried`", "构建方式"),
        _col("nights_carried", INT, "nights in a row built on a copy (0 for a whole build; a whole one comes at "
             "least every 7th night)", "连续沿用次数"),
        _col("fingerprint", TEXT, "SHA-256 of what a carried row depends on beside its records: the code, DuckDB's "
             "version, the area register, the golden record's configuration (trust, key populations)", "指纹"),
        _col("rows_carried", BIGINT, "rows of `source_records` kept from the last publication", "沿用行数"),
        _col("rows_written", BIGINT, "rows of `source_records` written by this run (every row when whole)", "写入行数"),
        _col("persons_written", BIGINT, "rows of `unified_population` written by this run: persons whose records, "
             "consent or age changed and everyone in their households (every person when whole)", "写入人数"),
        _col("why_whole", TEXT, "why it was built whole (first run, `run --full`, a changed fingerprint, the "
             "weekly whole build, changed record columns); null when carried", "整体重建原因"),
    ),
    _table(
        "quality_metrics", "run × source × dimension × measure",
        "completeness, validity, uniqueness, consistency, timeliness, repeated entry, quarantine and linking "
        "measures; carried over. Definitions and the SQL to recompute each: `docs/quality.md`",
        _run_id("the run measured"),
        _col("source", TEXT, "the source, or `*` for the district", "来源"),
        _col("dimension", TEXT, "quality dimension (`completeness`, `validity`, …, `overall`)", "维度"),
        _col("measure", TEXT, "the measure (`score`, `field:<name>`, …)", "指标"),
        _col("value", DOUBLE, "its value (a share, days, or a count)", "值"),
        _col("numerator", BIGINT, "the numerator of a share", "分子"),
        _col("denominator", BIGINT, "the denominator of a share", "分母"),
    ),
    _table(
        "quarantine_history", "quarantined row × span of published runs",
        "one row from the first published run that quarantined the row to the last, the runs between them "
        "consecutive (`runs` by `published_at`), rows alike in every column (a source's rows without their key) "
        "counted in one; carried over, so a row quarantined last run and staged now counts as fixed",
        _SOURCE, _SOURCE_KEY, _RECORD_ID,
        _col("rule", TEXT, "the first quarantine rule it broke", "规则"),
        _col("rows", BIGINT, "how many rows alike it stands for (more than 1 only for rows without their key)",
             "行数"),
        _col("first_run_id", TEXT, "the first published run that quarantined it (`runs.run_id`)", "首次隔离运行"),
        _col("last_run_id", TEXT, "the last published run that quarantined it (`runs.run_id`)", "最近隔离运行"),
    ),
    _table(
        "conflict_history", "record disagreeing with another department × disputed field × span of published runs",
        "the rows each department's corrections file listed (`quality.metrics.disagreements_sql`), one row from the "
        "first published run that found the disagreement to the last, the runs between them consecutive (`runs` by "
        "`published_at`); carried over, so a value corrected since the last run counts as fixed (`conflicts_fixed`, "
        "`docs/quality.md`)",
        _SOURCE, _RECORD_ID,
        _col("field", TEXT, "the disputed field (`name`, `sex`, `birth_date`, `id_number`, `address`)", "字段"),
        _col("value", TEXT, "the value the record held", "值"),
        _col("likely_wrong", BOOL, "the value differed from the golden record's", "可能有误"),
        _col("first_run_id", TEXT, "the first published run that found it (`runs.run_id`)", "首次发现运行"),
        _col("last_run_id", TEXT, "the last published run that found it (`runs.run_id`)", "最近发现运行"),
    ),
    _table(
        "person_id_history", "person-id change × run",
        "what became of every person id; carried over",
        _run_id("the run that made the change"),
        _col("kind", TEXT, "`merge` (old_id absorbed into the surviving new_id), `split` (records of old_id, which "
             "lives on, now under new_id) or `new` (new_id issued for a person with no earlier records)", "类型"),
        _col("old_id", TEXT, "the earlier person id (null for `new`)", "原人员编号"),
        _col("new_id", TEXT, "the person id after the change", "新人员编号"),
        _col("records", BIGINT, "records that moved", "记录数"),
    ),
    _table(
        "issued_person_ids", "person id ever issued",
        "an id is never given to anyone else, even after its person was merged away; carried over",
        _PERSON_ID, _col("first_run_id", TEXT, "the run that issued it", "首次发布运行"),
    ),
    _table(
        "review_queue", "uncertain pair",
        "pairs in the uncertain band (`near_miss`) and ID-sharing conflicts (`vetoed`: two records under one valid ID "
        "number whose name and stated birth date both contradict each other, `docs/identity.md`), not merged and not yet "
        "decided; both records' fields as the departments wrote them (text: `birth_date_a` may be a year-month, "
        "`source_records.birth_day` has the typed date)",
        _col("record_id_a", TEXT, "one record (`record_id_a < record_id_b`)", "记录编号A"),
        _col("record_id_b", TEXT, "the other record", "记录编号B"),
        _col("score", DOUBLE, "the match weight in bits", "得分"),
        _col("decision", TEXT, "`near_miss` or `vetoed`", "判定"),
        _col("reason", TEXT, "`near_miss` or `id_sharing_conflict`", "原因"),
        _col("reason_label", TEXT, "the reason as the reviewer reads it (疑似同一人（待核实）, 公民身份号码冲突（…）)",
             "原因说明"),
        _col("rule", TEXT, "the blocking rule that produced the pair", "分块规则"),
        _col("evidence", TEXT, "`field=level (+weight)` per comparison", "证据"),
        _col("person_id_a", TEXT, "record a's person now", "人员编号A"),
        _col("person_id_b", TEXT, "record b's person now", "人员编号B"),
        _col("same_person_now", BOOL, "other links already put both records in one person", "当前为同一人"),
        [_col(f"{f}_{side}", TEXT, f"record {side}'s {f} as the department wrote it",
              f"{FIELD_LABELS.get(f, '来源')}{side.upper()}")
         for side in ("a", "b") for f in ("source", "name", "sex", "birth_date", "id_number", "phone", "address")],
        _col("first_seen_run", TEXT, "the run that first queued the pair", "首次进入队列的运行"),
    ),
    _table(
        "review_decisions", "review decision",
        "`silobreaker review decide`'s decisions; the latest per pair is in force; carried over",
        _col("record_id_a", TEXT, "one record (`record_id_a < record_id_b`)", "记录编号A"),
        _col("record_id_b", TEXT, "the other record", "记录编号B"),
        _col("decision", TEXT, "`same` (a must-link) or `different` (a cannot-link)", "判定"),
        _col("decided_by", TEXT, "who decided", "决定人"),
        _col("decided_at", TSTZ, "when"),
        _col("note", TEXT, "why, for the next reviewer", "备注"),
    ),
)

TABLES: Mapping[str, TableDoc] = {t.name: t for t in _TABLES}
"""Every table of the published warehouse, in the order the document lists them."""


def unified_columns(populations: KeyPopulations | None = None) -> tuple[ColumnDoc, ...]:
    """``unified_population``'s columns as a deployment's warehouse holds them: one per key population of
    ``populations`` (the deployment's ``populations.yaml``; the default categories when omitted) where the document
    lists the default ones."""
    default = {c.name for c in _key_population_columns(default_populations())}
    own = _key_population_columns(populations or default_populations())
    columns: list[ColumnDoc] = []
    for column in _UNIFIED.columns:
        if column.name not in default:
            columns.append(column)
        elif own:
            columns.extend(own)
            own = []
    return tuple(columns)


def add_comments(con: duckdb.DuckDBPyConnection, populations: KeyPopulations | None = None) -> list[str]:
    """``COMMENT ON`` every table and column of ``con``'s database that :data:`TABLES` documents; the key
    population columns of ``unified_population`` from ``populations`` (the deployment's ``populations.yaml``).

    Returns:
        ``table`` or ``table.column`` for everything present but undocumented (logged as a warning: the
        warehouse publishes anyway, and the tests fail on it).
    """
    present: dict[str, list[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND NOT internal ORDER BY table_name, column_index"
    ).fetchall():
        present.setdefault(table, []).append(column)
    statements, missing = [], []
    for table, columns in present.items():
        doc = TABLES.get(table)
        if doc is None:
            missing.append(table)
            continue
        statements.append(f"COMMENT ON TABLE {identifier(table)} IS {literal(doc.comment)}")
        known = {c.name: c for c in doc.columns}
        if table == "unified_population" and populations is not None:
            known |= {c.name: c for c in _key_population_columns(populations)}
        for column in columns:
            if column in known:
                statements.append(f"COMMENT ON COLUMN {identifier(table)}.{identifier(column)} "
                                  f"IS {literal(known[column].comment)}")
            else:
                missing.append(f"{table}.{column}")
    if statements:
        con.execute(";\n".join(statements))
    if missing:
        log.warning("the warehouse has tables or columns publish/catalog.py does not describe, published without a "
                    "comment: %s (describe them there and run make warehouse-doc)", ", ".join(missing))
    return missing



def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """The "Tables and columns" section of ``docs/warehouse.md``, between :data:`DOC_BEGIN` and :data:`DOC_END`."""
    lines = [DOC_BEGIN, "", "| table | one row per | what it holds |", "|---|---|---|"]
    lines += [f"| [`{t.name}`](#{t.name}) | {_cell(t.grain)} | {_cell(t.text)} |" for t in TABLES.values()]
    for t in TABLES.values():
        lines += ["", f"### {t.name}", "", t.sentence, "",
                  "| column | type | 中文 | what it holds |", "|---|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type} | {c.label} | {_cell(c.text)} |" for c in t.columns]
    lines += ["", DOC_END]
    return "\n".join(lines)


def rewrite_doc(path: Path) -> bool:
    """Replace the generated section of the document at ``path`` with :func:`markdown`; ``True`` if it changed.

    Raises:
        ValueError: the document lacks the :data:`DOC_BEGIN` / :data:`DOC_END` markers.
    """
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(DOC_BEGIN) + ".*?" + re.escape(DOC_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{path} has no generated section: put the lines {DOC_BEGIN!r} and {DOC_END!r} where the "
                         "tables belong")
    new = pattern.sub(lambda _: markdown(), text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main() -> None:
    """``make warehouse-doc``: bring the repository's ``docs/warehouse.md`` up to date with :data:`TABLES`."""
    doc = Path(__file__).resolve().parents[1] / "docs" / "warehouse.md"
    sys.stderr.write(f"{doc}: {'rewritten' if rewrite_doc(doc) else 'already up to date'}\n")
