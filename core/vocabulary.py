"""The canonical vocabulary, once: fields, their Chinese labels, sex codes, date formats and masks.

Every room reads these from here — source declarations (which fields a source may map), staging
(what a sex code or a date means), dedup (the same), publish (how a product masks a value) and
quality (how a report shows one) — so two rooms cannot disagree about what ``1`` in a sex column
or ``1985.03.12`` in a birth-date column is. Nothing here imports anything heavier than the
standard library.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CONFLICT_CHECK_TEXTS",
    "CONSENT_FIELDS",
    "CONSENT_STATUSES",
    "CONSENT_STATUS_WORDS",
    "DATE_FORMATS",
    "DEPARTED_STATUSES",
    "DISTRICT_TIME_ZONE",
    "FIELD_LABELS",
    "FIELD_NOTES",
    "MASKED_NOTE",
    "MASKS",
    "PARTIAL_DATE_FORMATS",
    "PURPOSE_LABELS",
    "QUARANTINE_RULE_TEXTS",
    "RESIDENCE_STATUSES",
    "RESIDENCE_STATUS_LABELS",
    "RESIDENCE_STATUS_WORDS",
    "RESIDENCE_TYPE_LABELS",
    "RuleText",
    "SEX_LABELS",
    "SOFT_PROBLEM_TEXTS",
    "PERSON_FIELDS",
    "PROTECTIVE_ORDER",
    "SEX_CODES",
    "STAGED_DATE_FORMATS",
    "TIMESTAMP_FORMATS",
    "TYPED_DATE_FORMATS",
    "Mask",
    "mask_long_numbers",
    "sex_code",
    "soft_problem_text",
    "display_width",
]

PERSON_FIELDS: tuple[str, ...] = (
    "name",
    "alias",
    "sex",
    "birth_date",
    "id_number",
    "phone",
    "address",
    "street",
    "community",
    "grid",
    "record_date",
    "lives_alone",
    "low_income",
    "disability_grade",
    "chronic_disease",
    "pregnant",
    "corrections",
    "case_type",
    "hukou_address",
    "residence_status",
    "change",
    "reported_by",
    "note",
)
"""Canonical fields a ``role: person`` (or ``role: grid_updates``) source may map in ``columns``.

``alias`` holds former names and aliases (曾用名, 别名; several separated by 、), compared with the other
records' names when linking; ``address`` is where the person lives (居住地), ``hukou_address`` where their household is registered
(户籍地); ``residence_status`` whether they still live there (:data:`RESIDENCE_STATUSES`);
``change``, ``reported_by`` and ``note`` what a report says changed (变更类型, as written), who stated it and what
they added (a grid worker's update)."""

RESIDENCE_STATUSES: tuple[str, ...] = ("present", "moved_out", "deceased")
"""What ``residence_status`` can state: still living at the address (在住, also what a move-in states),
moved out of the district (迁出), deceased (死亡). Moved-out and deceased persons leave every grid list."""

DEPARTED_STATUSES: tuple[str, ...] = ("moved_out", "deceased")
"""The residence statuses that take a person off area lists and key populations."""

RESIDENCE_STATUS_WORDS: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(["PRESENT", "在住", "现住", "正常", "在册", "迁入", "新迁入", "居住", "常住"], "present"),
        **dict.fromkeys(["MOVED_OUT", "迁出", "已迁出", "外迁", "搬离", "已搬离", "户籍迁出"], "moved_out"),
        **dict.fromkeys(["DECEASED", "死亡", "已死亡", "去世", "已故", "病故", "注销（死亡）"], "deceased"),
    }
)
"""How departments commonly write a residence status (compared upper-cased), understood without a
``values`` map; a word that is not here is unrecognised and staged as missing."""

RESIDENCE_STATUS_LABELS: Mapping[str, str] = MappingProxyType(
    {"present": "在住", "moved_out": "已迁出", "deceased": "已死亡"})
"""Residence statuses as a grid worker reads them."""

RESIDENCE_TYPE_LABELS: Mapping[str, str] = MappingProxyType(
    {"registered": "人户一致", "separated": "人户分离", "floating": "流动人口"})
"""What a person's 户籍地 says beside where they live (``residence_type``): registered and living at the
same flat (人户一致), registered in the district but living at another flat (人户分离), registered
outside the district (流动人口)."""

CONSENT_FIELDS: tuple[str, ...] = (
    "id_number",
    "name",
    "purpose",
    "recipient",
    "status",
    "decided_at",
    "channel",
    "categories",
    "expires_at",
    "guardian_id_number",
)
"""Canonical fields a ``role: consent`` source may map in ``columns``."""

CONSENT_STATUSES: tuple[str, ...] = ("granted", "refused", "withdrawn", "deletion_requested", "deletion_revoked")
"""What a consent decision can state. ``deletion_revoked`` is the only thing that undoes a deletion
request (PIPL art. 47): a later grant for some purpose does not."""

PROTECTIVE_ORDER: tuple[str, ...] = ("deletion_requested", "withdrawn", "refused", "deletion_revoked", "granted")
"""Statuses from the most to the least protective: of two decisions made at the same instant, the
more protective one counts."""

CONSENT_STATUS_WORDS: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(["同意", "已同意", "授权", "已授权", "granted", "grant"], "granted"),
        **dict.fromkeys(["拒绝", "不同意", "未同意", "refused", "refuse"], "refused"),
        **dict.fromkeys(["撤回", "撤销", "取消", "撤回同意", "撤销同意", "取消同意", "撤回授权", "撤销授权", "取消授权",
                         "withdrawn", "withdraw", "revoked"], "withdrawn"),
        **dict.fromkeys(["删除", "要求删除", "申请删除", "删除个人信息", "deletion_requested", "delete"],
                        "deletion_requested"),
        **dict.fromkeys(["撤销删除", "撤回删除", "取消删除", "deletion_revoked"], "deletion_revoked"),
    }
)
"""How registries commonly write each status (compared lower-cased), understood beside a source's own
``values`` map: a registry that writes 撤销 where its map says 撤回 still withdraws. A word that is
in neither stays unknown, and the decision fails closed (``consent_problems``)."""

FIELD_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "name": "姓名",
        "sex": "性别",
        "birth_date": "出生日期",
        "id_number": "公民身份号码",
        "phone": "联系电话",
        "address": "住址",
        "street": "街道",
        "community": "社区",
        "grid": "网格",
        "record_date": "登记日期",
        "lives_alone": "独居",
        "low_income": "低保",
        "disability_grade": "残疾等级",
        "chronic_disease": "慢性病",
        "pregnant": "孕产妇",
        "corrections": "社区矫正",
        "case_type": "案件类型",
        "hukou_address": "户籍地址",
        "alias": "曾用名",
        "residence_status": "居住状态",
        "residence_type": "人户状态",
        "change": "变更类型",
        "reported_by": "填报人",
        "note": "情况说明",
        "purpose": "用途",
        "recipient": "接收方",
        "status": "同意状态",
        "decided_at": "决定时间",
        "channel": "渠道",
        "categories": "数据类别",
        "expires_at": "有效期至",
        "guardian_id_number": "监护人公民身份号码",
        "person_id": "人员编号",
        "person_key": "人员代码（化名）",
        "birth_year": "出生年份",
        "age": "年龄",
        "key_populations": "重点人群",
        "reasons": "列入原因",
        "consent_until": "同意有效期至",
        "renewal": "续签情况",
        "risk_warnings": "风险预警",
        "record_id": "记录编号",
        "id_number_valid": "公民身份号码校验位",
        "birth_date_precision": "出生日期精度",
        "source_key": "本部门记录编号",
    }
)
"""The Chinese name of each canonical field (and of each column a product or a quality check may
name), for every word a department or supervisor reads.

``id_number`` is 公民身份号码, the term of GB 11643 and of the resident ID law."""

FIELD_NOTES: Mapping[str, str] = MappingProxyType(
    {
        "person_id": "同一居民在各部门记录的统一编号，每次更新都不变；就某位居民联系数据团队时请提供",
        "birth_date": "有的部门只登记到年月（如 1964-05），这时按文字显示",
        "age": "按出生日期算到本表生成之日的周岁",
        "address": "部门或网格员最新登记的住址；网格员简写的住址，若部门登记的此人住址是同一房屋，按部门更完整的写法显示",
        "residence_status": "在住、迁出或死亡：各部门和网格员最新的说法",
        "residence_type": "人户一致：住在户籍地址；人户分离：户籍在本区另一处；流动人口：户籍不在本区；"
                          "空白：没有登记户籍地址，无法判断",
        "key_populations": "按本区重点人群目录判定，只列本表用途可以看到的类别",
        "reasons": "列入重点人群的依据",
        "risk_warnings": "尚未处理的风险预警；〔〕内是预警编号，上门核实或处理后请把编号和情况告诉数据团队登记",
        "consent_until": "本人同意向本接收方提供信息的截止日期；空白表示同意未设截止日期",
    }
)
"""What a column of a delivered file means where its name alone does not say it, for the 说明 sheet a clerk or
grid worker reads beside the rows (blank cells, the ids in brackets); a masked column is told by :data:`MASKED_NOTE`."""

MASKED_NOTE = "带 * 的部分已按规定隐去"
"""The 说明 note of a column the recipient's policy masks (``mask``), in place of the column's own."""

SEX_LABELS: Mapping[str, str] = MappingProxyType({"M": "男", "F": "女"})
"""Staged sex codes as a clerk reads them."""

PURPOSE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "service_delivery": "服务提供",
        "cross_department_sharing": "跨部门共享",
        "statistics": "统计",
        "research": "研究",
        "*": "全部用途",
    }
)
"""The Chinese name of the common purposes of processing; a purpose not listed is shown as written."""

@dataclass(frozen=True)
class RuleText:
    """What a quarantine rule means to the people who read it, in Chinese.

    Attributes:
        problem: what is wrong with the row, as a heading (``出生日期无法识别``).
        fix: what the department's clerk does about it, in the department's own system.
    """

    problem: str
    fix: str


QUARANTINE_RULE_TEXTS: Mapping[str, RuleText] = MappingProxyType(
    {
        "truncated_row": RuleText("行不完整（字段数少于表头）", "该行在导出时被截断或多了换行，请从本部门系统重新导出该记录"),
        "missing_source_key": RuleText("缺少记录编号", "请在本部门系统中补上该记录的编号（主键），编号为空的记录无法追溯"),
        "duplicate_source_key": RuleText("记录编号重复", "同一编号出现在多行，请在本部门系统中核对，每条记录保留唯一编号"),
        "missing_name": RuleText("姓名为空", "请补填姓名：部门在本部门系统中补填，网格员在网格信息变更表的这一行补填"),
        "implausible_name": RuleText("姓名不像真实姓名", "姓名过长或含表情、符号、没有文字，请按身份证上的姓名改正"),
        "excel_number_id": RuleText(
            "公民身份号码被Excel转成了数字",
            "Excel只保留15位数字，后几位已丢失：请把该列设为文本格式（设置单元格格式 → 文本）后重新录入，或从本部门系统重新导出",
        ),
        "malformed_id_number": RuleText(
            "公民身份号码格式不对", "应为18位（或旧的15位），只含数字，最后一位可以是X；请对照身份证改正"
        ),
        "missing_id_number": RuleText("公民身份号码为空", "同意记录必须写明是谁的决定，请补填本人的公民身份号码"),
        "unparseable_birth_date": RuleText(
            "出生日期无法识别", "请按“1985-03-12”这样的年-月-日格式改正出生日期；只知道年月的写“1985-03”"
        ),
        "birth_date_out_of_range": RuleText("出生日期不合理", "出生日期早于1900年或晚于今天，请对照身份证改正"),
        "unlisted_value": RuleText("填写的类型不在可选项中", "请从表格的下拉列表中选择（如变更类型：迁出、死亡、迁入、独居、不再独居、电话变更、信息更正）"),
        "future_record_date": RuleText("填报日期晚于今天", "填报日期不能晚于提交当天，请改正"),
        "unknown_status": RuleText("同意状态无法识别", "请写“同意”“拒绝”“撤回”“删除”或“撤销删除”之一"),
        "missing_purpose": RuleText("用途为空", "同意总是针对某个用途，请补填用途"),
        "missing_recipient": RuleText("接收方为空", "请补填接收数据的单位；对所有单位都适用时写 *"),
        "unparseable_decided_at": RuleText(
            "决定时间无法识别", "请按“2024-05-01 10:00:00”这样的格式改正决定时间"
        ),
        "missing_decided_at": RuleText("决定时间为空", "以哪次决定为准取决于决定时间，请补填"),
        "future_decided_at": RuleText(
            "决定时间晚于数据读取时间", "未来的时间会让这条决定压过之后所有真实的决定，请改正为实际决定的时间"
        ),
        "unparseable_expires_at": RuleText("有效期无法识别", "请按“2027-05-01”这样的格式改正有效期"),
    }
)
"""The Chinese text of every quarantine rule staging applies (``staging.stage``), for the department
clerk who corrects the row (``silobreaker corrections export``) and the supervisor who reads the report.
The English message stored with each quarantined row stays for the platform team's logs."""

CONFLICT_CHECK_TEXTS: Mapping[str, str] = MappingProxyType(
    {
        "name": "请对照身份证或户口簿核实姓名（注意同音字、形近字），如本部门有误，请在本部门系统中改正",
        "sex": "请对照身份证或向本人核实性别，如本部门有误，请在本部门系统中改正",
        "birth_date": "请对照身份证或向本人核实出生日期，如本部门有误，请在本部门系统中改正",
        "id_number": "请对照本人身份证逐位核对公民身份号码，如本部门有误，请在本部门系统中改正",
        "address": "请向本人或所在社区核实住址（街道、社区、楼栋、单元、室号），如本部门有误，请在本部门系统中改正；"
                   "如本部门登记的是户籍地址而本人已搬迁（人户分离），可不修改",
    }
)
"""What a department's clerk does about a record that disagrees with another department, per disputed
field (``field_conflicts``): check against the primary document or the person, never copy the other
department's value (``silobreaker corrections export``)."""


SOFT_PROBLEM_TEXTS: Mapping[str, RuleText] = MappingProxyType(
    {
        "invalid_id_number": RuleText(
            "公民身份号码校验位不对", "号码最后一位与前17位对不上，多半是录错一位或两位颠倒；请对照身份证改正"
        ),
        "birth_date_conflict": RuleText(
            "出生日期与公民身份号码不一致", "登记的出生日期与号码中的出生日期不符；请对照身份证核对，改正录错的一方"
        ),
        "sex_conflict": RuleText(
            "性别与公民身份号码不一致", "号码第17位为奇数是男、偶数是女，与登记的性别不符；请对照身份证核对"
        ),
        "implausible_phone": RuleText(
            "联系电话不像有效号码", "既不是11位手机号也不是带区号的固定电话，已按未填处理；请向本人核实后改正"
        ),
        "unmapped_value": RuleText(
            "{field}的写法不在取值对照表中", "已按未填处理；请改用本部门规定的写法，或请数据专班把这种写法加入对照表"
        ),
        "unrecognised_value": RuleText(
            "{field}无法识别", "不是规范的取值（性别写男或女，是否类写是或否，日期写到日），已按未填处理；请改正"
        ),
    }
)
"""The Chinese text of every soft problem staging counts (``staging.StageResult.soft_problems``): the row
stays staged, with the value flagged or left empty. ``unmapped_value`` and ``unrecognised_value`` come
per field (``unmapped_value:sex``); :func:`soft_problem_text` fills the field's label in."""


def soft_problem_text(problem: str) -> RuleText:
    """The Chinese text of a soft problem as staging names it, the field's label filled in.

    Example:
        >>> soft_problem_text("unrecognised_value:sex").problem
        '性别无法识别'
    """
    kind, _, field_name = problem.partition(":")
    text = SOFT_PROBLEM_TEXTS[kind]
    label = FIELD_LABELS.get(field_name, field_name)
    return RuleText(text.problem.format(field=label), text.fix.format(field=label))


SEX_CODES: Mapping[str, str] = MappingProxyType(
    {
        # GB/T 2261.1-2003: 1 男性, 2 女性 (0 未知 and 9 未说明 stay unknown)
        "1": "M",
        "2": "F",
        "男": "M",
        "女": "F",
        "男性": "M",
        "女性": "F",
        "M": "M",
        "F": "F",
        "MALE": "M",
        "FEMALE": "F",
    }
)
"""Sex codes departments write, upper-cased, and the canonical ``M``/``F`` each means.

A source whose codes differ (``0``/``1``, say) declares them in ``values`` in sources.yaml."""


def sex_code(value: str) -> str | None:
    """The canonical sex (``M``/``F``) of one code as a department writes it, else ``None``.

    Example:
        >>> [sex_code(v) for v in ("男", " 2 ", "female", "男性", "未知")]
        ['M', 'F', 'F', 'M', None]
    """
    return SEX_CODES.get(value.strip().upper())


DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d")
"""Day-precision ``strptime`` formats Chinese registers commonly use, tried in order when a source
declares no ``date_formats``; the ``/``, ``.`` and 年月日 forms may omit the zero padding."""

TIMESTAMP_FORMATS: tuple[str, ...] = tuple(
    f"{day}{time}" for time in (" %H:%M:%S", " %H:%M", "%H:%M:%S", "%H:%M", " %H时%M分%S秒", " %H时%M分", "%H时%M分", "")
    for day in DATE_FORMATS
)
"""Points in time as registries write them beside ISO 8601 (tried after it, and after a source's own
``date_formats``): every day form of :data:`DATE_FORMATS` alone or followed by a time —
``2026年6月1日``, ``2026年6月1日 9:05``, ``2026/6/1 09:05:03``, ``2026年6月1日 9时5分``."""

DISTRICT_TIME_ZONE = "Asia/Shanghai"
"""The clock a district lives by (Beijing time): when the nightly sync runs and by when its shares are due, the day
a consent ends, and a point in time as a clerk reads it in a workbook (times are kept in UTC)."""

STAGED_DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d", "%Y-%m", "%Y")
"""The ISO forms staging writes a date in, one per precision (day, month, year)."""

PARTIAL_DATE_FORMATS: tuple[str, ...] = ("%Y%m", "%Y/%m", "%Y.%m", "%Y年%m月", "%Y年")
"""Month- and year-precision forms (the census gives a birth year and month)."""

TYPED_DATE_FORMATS: tuple[str, ...] = (*DATE_FORMATS, "%Y-%m", *PARTIAL_DATE_FORMATS, "%Y")
"""How a birth date is typed at the door (a grid worker's form, a look-up): a whole date, a year-month
(1959-12, 195912, 1959年12月) as often, or a year."""


@dataclass(frozen=True)
class Mask:
    """How a value is shown partly hidden: the first ``keep_start`` and last ``keep_end`` characters
    stay, the rest is hidden.

    With ``hidden`` unset each hidden character becomes ``*`` and a value too short to keep anything
    is hidden whole (a two-character name shows ``张*``, a one-character name ``*``). With ``hidden``
    set the rest is cut and replaced by that text (an address ``示范区西溪街…``), and a value no longer
    than ``keep_start`` is shown as it is: there is nothing to cut.

    Example:
        >>> MASKS["id_number"].apply("330106195001010012")
        '330106********0012'
        >>> MASKS["birth_date"].apply("1950-01-01")
        '1950-01-**'
    """

    keep_start: int
    keep_end: int = 0
    hidden: str | None = None

    def apply(self, value: str) -> str:
        """The masked form of ``value``."""
        kept = self.keep_start + self.keep_end
        if self.hidden is not None:
            return value if len(value) <= self.keep_start else value[: self.keep_start] + self.hidden
        if len(value) <= kept:
            return "*" * len(value)
        return value[: self.keep_start] + "*" * (len(value) - kept) + (value[-self.keep_end :] if self.keep_end else "")

    def sql(self, column: str) -> str:
        """A DuckDB expression computing :meth:`apply` of ``column`` (null stays null)."""
        if self.hidden is not None:
            cut = self.hidden.replace("'", "''")
            return (
                f"CASE WHEN {column} IS NULL THEN NULL WHEN length({column}) <= {self.keep_start} THEN {column} "
                f"ELSE substr({column}, 1, {self.keep_start}) || '{cut}' END"
            )
        kept = self.keep_start + self.keep_end
        tail = f" || substr({column}, -{self.keep_end})" if self.keep_end else ""
        return (
            f"CASE WHEN {column} IS NULL THEN NULL WHEN length({column}) <= {kept} THEN repeat('*', length({column})) "
            f"ELSE substr({column}, 1, {self.keep_start}) || repeat('*', length({column}) - {kept}){tail} END"
        )


MASKS: Mapping[str, Mask] = MappingProxyType(
    {
        "name": Mask(1),
        "alias": Mask(1),
        "id_number": Mask(6, 4),
        "phone": Mask(3, 4),
        "address": Mask(6, hidden="…"),
        "hukou_address": Mask(6, hidden="…"),
        "birth_date": Mask(7, hidden="-**"),
    }
)
"""The mask of each field that can be shown partly hidden, in products and in reports alike."""

_LONG_NUMBER = re.compile(r"[0-9Xx.Ee+]{7,}")


def mask_long_numbers(text: str) -> str:
    """``text`` with every run of seven or more ID or phone characters masked (``3301********17``).

    For free text that may quote a value, such as a quarantine message.

    Example:
        >>> mask_long_numbers("公民身份号码 '33010619500101001' has 17 characters")
        "公民身份号码 '3301***********01' has 17 characters"
    """
    return _LONG_NUMBER.sub(lambda m: m.group()[:4] + "*" * (len(m.group()) - 6) + m.group()[-2:], text)


def display_width(text: str) -> int:
    """How wide ``text`` shows, a Chinese (or full-width) character taking two columns, as in a terminal or in Excel's
    character units: its length in GBK, where such a character takes two bytes (measured in C; a character GBK lacks,
    an Extension B given name or an emoji, counts two as well).

    Example:
        >>> display_width("王伟 ab"), display_width("王𠀀")
        (7, 4)
    """
    return len(text.encode("gbk", _WIDE))


def _as_wide(error: UnicodeEncodeError) -> tuple[str, int]:
    return "??" * (error.end - error.start), error.end


_WIDE = "silobreaker-wide"
codecs.register_error(_WIDE, _as_wide)
