"""The supervisors' report's words: one table per language, every visible string by message id.

The report is Chinese first (supervisors read Chinese); ``silobreaker report --lang en`` renders the
same template from the English table for the platform team. A message id missing from either table
is a defect a test finds. Domain words that have a home elsewhere are not repeated here: field
labels are ``core.vocabulary.FIELD_LABELS``, quarantine rules ``QUARANTINE_RULE_TEXTS``, soft
problems ``SOFT_PROBLEM_TEXTS``, expectation kinds ``quality.expectations.EXPECTATION_TEXTS``.

Example:
    >>> t = ReportTexts("zh")
    >>> t("unit.persons"), t("conflicts.summary", multi=120, conflict=7)[:12]
    ('人', '120人在两个及以上部门登记')
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from core.vocabulary import FIELD_LABELS, SEX_LABELS

__all__ = ["LANGUAGES", "REPORT_TEXTS", "ReportTexts"]

LANGUAGES: tuple[str, ...] = ("zh", "en")
"""The report's languages; the first is the default."""

_ZH: dict[str, str] = {
    "html_lang": "zh-CN",
    "title": "数据质量报告",
    "meta.run": "运行编号",
    "meta.generated": "生成时间 {time}（北京时间）",
    "meta.compared": "对比上次运行",
    "none": "—",
    "unit.persons": "人",
    "unit.rows": "条记录",
    "result.pass": "通过",
    "result.fail": "未通过",
    "dimension.completeness": "完整性",
    "dimension.validity": "有效性",
    "dimension.uniqueness": "唯一性",
    "dimension.consistency": "一致性",
    "dimension.timeliness": "及时性",
    "dimension.repeated_entry": "重复录入",
    "dimension.overall": "综合",
    "grain.visit": "就诊",
    "grain.case": "案件",
    "grain.event": "业务办理",
    "col.department": "部门",
    "col.check": "检查项",
    "col.field": "字段",
    "col.observed": "实际情况",
    "col.threshold": "要求",
    "col.why": "为什么重要",
    "col.extracted": "读取行数",
    "col.staged": "暂存行数",
    "col.quarantined": "隔离行数",
    "col.validation": "校验",
    "col.top_rules": "主要隔离原因",
    "col.soft": "暂存时发现的问题（未隔离）",
    "col.repeated": "多部门登记 / 其中不一致",
    "col.quarantine_rate": "隔离率",
    "col.grade": "等级",
    "col.kind": "冲突类型",
    "col.persons": "人数",
    "col.likely_wrong": "可能有误的部门（有误记录 / 冲突记录）",
    "col.examples": "示例（已脱敏）",
    "col.problem": "问题",
    "col.fix": "怎么改",
    "col.example": "示例（已脱敏）",
    "col.q_now": "本次隔离",
    "col.q_last": "上次隔离",
    "col.fixed": "已修正",
    "col.new": "新增",
    "col.suite": "部门或数据表",
    "col.result": "结果",
    "col.unexpected": "不符合行数",
    "col.unexpected_pct": "不符合比例",
    "blocked.title": "本次运行未发布",
    "blocked.intro": "阻断检查未通过，本次数据没有发布；仓库中仍是上次发布的数据。",
    "blocked.last_run": "上次发布的运行：",
    "blocked.failures": "失败步骤",
    "blocked.failures_note": "以下技术信息供数据专班排查。",
    "blocked.attempt": "本次读取、暂存与隔离",
    "blocked.below": "以下为上次发布的质量评价。",
    "blocked.none": "尚无已发布的数据。",
    "step.raw": "{department}：读取数据失败",
    "step.stage": "{department}：暂存或校验失败",
    "step.other": "其他步骤失败",
    "scorecard.title": "部门质量评分",
    "scorecard.intro": "得分为0–100%，▲▼为与上次运行相比的变化（百分点）；等级：A ≥ 95%，B ≥ 90%，C ≥ 80%，D < 80%。",
    "scorecard.by_design": "按设计每次{unit}一行，唯一性低属正常，不计入综合得分和等级",
    "scorecard.notes": "完整性按字段用途加权；一致性含身份证号推导的出生日期、性别及跨部门比对；"
                       "及时性为一年内更新过的记录所占比例。每个数字都可从仓库的质量指标表复算，方法见",
    "trends.title": "趋势",
    "trends.none": "暂无历史数据。",
    "chart.scores": "各维度得分趋势",
    "chart.quarantine": "隔离行数趋势",
    "chart.quarantine_axis": "隔离行数",
    "chart.run": "第{n}次<br>{time}",
    "conflicts.title": "部门间数据冲突",
    "conflicts.summary": "{multi}人在两个及以上部门登记，其中{conflict}人的信息在部门之间不一致。",
    "conflicts.red": "标红的值与黄金记录（综合各部门得出的最可信值）不一致，该部门可能有误。",
    "conflicts.none": "没有部门间冲突。",
    "fix_first.title": "优先整改",
    "fix_first.intro": "各部门的全部问题合为一张清单，按涉及的居民人数从多到少排列。记录已识别到人的按人数计；"
                       "被隔离的记录未能识别到人、校验结果只有行数，这两类按记录条数计，单位已注明。"
                       "每一项都可导出待修正的记录交部门改正。",
    "fix_first.more": "其余{n}项",
    "fix_first.none": "没有发现需要整改的问题。",
    "fix.conflict.problem": "{field}与其他部门不一致，本部门的值可能有误",
    "fix.conflict.fix": "对照身份证或向本人核实{field}，在本部门系统中改正（示例见“部门间数据冲突”）",
    "fix.duplicate.problem": "同一居民在本部门登记了多条",
    "fix.duplicate.fix": "核对后在本部门系统中合并为一条，删除重复的登记",
    "fix.expectation.problem": "校验未通过：{check}",
    "fix.expectation.fix": "{why}。请数据专班核查该部门的导出与同步",
    "fix.soft.fix": "已暂存但标记或按未填处理，请在本部门系统中改正",
    "col.rank": "序号",
    "col.affected": "涉及",
    "col.command": "导出待修正记录",
    "fixed.title": "隔离记录整改情况",
    "grids.title": "网格：名单与风险预警",
    "grids.note": "共 {count} 个网格，此处列出待处理预警最多的 {shown} 个。未列入：网格内符合条件、"
                  "但因未取得同意等原因未列入网格员名单的人数；网格员在名单“待续同意”表中可见可续签的人员。"
                  "每条预警的编号见网格员名单的“风险预警”列，处理后由数据专班登记为已知悉或已处理。"
                  "迁出/死亡：网格员或部门报告已迁出或死亡、已移出名单的人数。普查未登记：部门或网格员掌握、"
                  "人口普查未登记的人数；仅普查：只有普查登记、无任何部门或网格员核实的人数（名单在数据仓的普查比对表中），"
                  "均待下次走访核实。",
    "grids.grid": "网格",
    "grids.listed": "名单人数",
    "grids.withheld": "未列入",
    "grids.open": "待处理预警",
    "grids.acknowledged": "已知悉",
    "grids.closed": "已处理",
    "grids.rules": "预警内容",
    "grids.total": "全区合计",
    "grids.departed": "迁出/死亡",
    "grids.not_in_census": "普查未登记",
    "grids.census_only": "仅普查",
    "linking.title": "身份识别",
    "linking.records": "暂存记录",
    "linking.persons": "识别出的人",
    "linking.merged": "自动合并的记录对",
    "linking.review": "待人工复核的记录对",
    "linking.vetoed": "规则否决的记录对（双胞胎、同名同姓等）",
    "linking.multi": "多部门登记的人（重复录入）",
    "linking.disagree": "其中信息不一致的比例",
    "validation.title": "校验结果",
    "validation.accepted": "骤减已确认，确认人：",
    "suite.unified_population": "统一人口表",
}

_EN: dict[str, str] = {
    "html_lang": "en",
    "title": "Data quality report",
    "meta.run": "Run",
    "meta.generated": "generated {time} Beijing time",
    "meta.compared": "compared with run",
    "none": "—",
    "unit.persons": "persons",
    "unit.rows": "rows",
    "result.pass": "pass",
    "result.fail": "FAIL",
    "dimension.completeness": "completeness",
    "dimension.validity": "validity",
    "dimension.uniqueness": "uniqueness",
    "dimension.consistency": "consistency",
    "dimension.timeliness": "timeliness",
    "dimension.repeated_entry": "repeated entry",
    "dimension.overall": "overall",
    "grain.visit": "visit",
    "grain.case": "case",
    "grain.event": "event",
    "col.department": "department",
    "col.check": "expectation",
    "col.field": "column",
    "col.observed": "observed",
    "col.threshold": "threshold",
    "col.why": "why it matters",
    "col.extracted": "extracted",
    "col.staged": "staged",
    "col.quarantined": "quarantined",
    "col.validation": "validation",
    "col.top_rules": "top quarantine rules",
    "col.soft": "soft problems (staged)",
    "col.repeated": "in 2+ departments / copies disagree",
    "col.quarantine_rate": "quarantined",
    "col.grade": "grade",
    "col.kind": "kind",
    "col.persons": "persons",
    "col.likely_wrong": "likely wrong (records / records in conflict)",
    "col.examples": "examples, masked",
    "col.problem": "problem",
    "col.fix": "fix",
    "col.example": "example, masked",
    "col.q_now": "quarantined now",
    "col.q_last": "quarantined last run",
    "col.fixed": "fixed",
    "col.new": "new",
    "col.suite": "suite",
    "col.result": "result",
    "col.unexpected": "unexpected",
    "col.unexpected_pct": "%",
    "blocked.title": "Publication blocked",
    "blocked.intro": "A blocking check failed, so nothing from this run was published; "
                     "the warehouse still holds the previous publication.",
    "blocked.last_run": "last published run:",
    "blocked.failures": "Failed steps",
    "blocked.failures_note": "Technical details for the data team.",
    "blocked.attempt": "This attempt: extracted, staged, quarantined",
    "blocked.below": "Below: the quality of the last publication.",
    "blocked.none": "Nothing has been published yet.",
    "step.raw": "{department}: reading failed",
    "step.stage": "{department}: staging or validation failed",
    "step.other": "other step failed",
    "scorecard.title": "Scorecard: departments × dimensions",
    "scorecard.intro": "Scores 0–100%, ▲▼ change since the previous run in points; "
                       "grade A ≥ 95%, B ≥ 90%, C ≥ 80%, D below.",
    "scorecard.by_design": "one row per {unit} by design: low uniqueness is expected and left out of the "
                           "overall score and grade",
    "scorecard.notes": "Completeness is weighted by what each field is for; consistency covers ID-derived birth "
                       "date and sex and agreement across departments; timeliness is the share of records updated "
                       "within a year of the extract. Every number can be recomputed from quality_metrics; see",
    "trends.title": "Trends over runs",
    "trends.none": "No history yet.",
    "chart.scores": "Dimension scores over runs",
    "chart.quarantine": "Quarantined rows over runs",
    "chart.quarantine_axis": "quarantined rows",
    "chart.run": "{n}<br>{time}",
    "conflicts.title": "Conflicts between departments",
    "conflicts.summary": "{multi} people are registered by two or more departments; for {conflict} of them "
                         "the departments disagree.",
    "conflicts.red": "Values in red differ from the golden record: that department is likely wrong.",
    "conflicts.none": "No conflicts between departments.",
    "fix_first.title": "Fix first",
    "fix_first.intro": "Every problem of every department in one list, most residents affected first. Counted in "
                       "persons where records are linked to people; quarantined rows (never linked) and expectation "
                       "results count rows, as the unit says. Each can be exported for the department to correct.",
    "fix_first.more": "{n} more",
    "fix_first.none": "No problems found.",
    "fix.conflict.problem": "{field} differs from other departments: this department's value is likely wrong",
    "fix.conflict.fix": "check {field} against the ID card or with the person and correct it in the department's "
                        "system (examples under Conflicts between departments)",
    "fix.duplicate.problem": "a resident entered more than once in this register",
    "fix.duplicate.fix": "merge the entries into one in the department's system",
    "fix.expectation.problem": "{check} failed",
    "fix.expectation.fix": "{why}; the data team checks the department's export and sync",
    "fix.soft.fix": "staged, but flagged or left empty: correct it in the department's system",
    "col.rank": "#",
    "col.affected": "affected",
    "col.command": "export for correction",
    "fixed.title": "Quarantine: fixed since the previous run",
    "grids.title": "Grids: lists and risk warnings",
    "grids.note": "{count} grids; the {shown} with the most open warnings are listed. Withheld: residents of the grid "
                  "who qualify but are not on its worker's list (no consent, …); the list's renewal sheet names those "
                  "whose consent can be renewed. Each warning's id is in the list's warnings column; the data team records "
                  "it acknowledged or closed (silobreaker warnings). Moved out/deceased: people reported so, taken off the "
                  "lists. Not in census: known to departments or grid workers, not counted by the census; census only: "
                  "known to the census alone, confirmed by no department or worker (warehouse table census_gaps); both "
                  "to be checked on the next visit.",
    "grids.grid": "grid",
    "grids.listed": "listed",
    "grids.withheld": "withheld",
    "grids.open": "open warnings",
    "grids.acknowledged": "acknowledged",
    "grids.closed": "closed",
    "grids.rules": "warnings",
    "grids.total": "district total",
    "grids.departed": "moved out/deceased",
    "grids.not_in_census": "not in census",
    "grids.census_only": "census only",
    "linking.title": "Linking summary",
    "linking.records": "records",
    "linking.persons": "persons resolved",
    "linking.merged": "auto-merged pairs",
    "linking.review": "review queue (undecided near misses)",
    "linking.vetoed": "vetoed pairs (twins, namesakes)",
    "linking.multi": "persons in 2+ departments",
    "linking.disagree": "of whom copies disagree",
    "validation.title": "Validation",
    "validation.accepted": "drop accepted by",
    "suite.unified_population": "unified_population",
}

REPORT_TEXTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"zh": MappingProxyType(_ZH), "en": MappingProxyType(_EN)}
)
"""Language -> message id -> text (``str.format`` placeholders in braces)."""


class ReportTexts:
    """The report's words in one language, called as ``t("message.id", **values)`` by the template.

    Args:
        lang: one of :data:`LANGUAGES`.

    Raises:
        ValueError: an unknown language, with the ones there are.
    """

    def __init__(self, lang: str) -> None:
        if lang not in REPORT_TEXTS:
            raise ValueError(f"no report texts in {lang!r}; choose one of {', '.join(LANGUAGES)}, e.g. lang='zh'")
        self.lang = lang
        self._messages = REPORT_TEXTS[lang]

    @property
    def chinese(self) -> bool:
        """Whether this is the Chinese report (domain words from the Chinese vocabulary)."""
        return self.lang == "zh"

    def __call__(self, key: str, **values: object) -> str:
        """The message ``key``, its placeholders filled from ``values``."""
        text = self._messages[key]
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        """Whether ``key`` is a message id."""
        return key in self._messages

    def dimension(self, dimension: str) -> str:
        """A quality dimension's name (``completeness`` -> 完整性)."""
        return self(f"dimension.{dimension}")

    def field(self, name: str | None) -> str:
        """A field's or column's name: its Chinese label, or as it is in English."""
        if not name:
            return self("none")
        return FIELD_LABELS.get(name, name) if self.chinese else name

    def department(self, source: str | None, departments: Mapping[str, str]) -> str:
        """Who holds a source: the department's label in Chinese (卫健), the source's name in English."""
        if not source:
            return self("none")
        return (departments.get(source) or source) if self.chinese else source

    def value(self, field: str, value: str) -> str:
        """A shown (already masked) value: sex codes as a clerk reads them (男/女) in Chinese."""
        return SEX_LABELS.get(value, value) if self.chinese and field == "sex" else value
