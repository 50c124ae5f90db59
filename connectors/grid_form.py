"""The grid-update form (网格信息变更表): the one spreadsheet grid workers fill in, read by a ``role: grid_updates`` source.

The form's columns are :data:`connectors.config.GRID_UPDATE_COLUMNS`; 变更类型 offers the changes of
:data:`connectors.config.GRID_UPDATE_CHANGES` as a drop-down (Excel and WPS both show it), 身份证号 and
联系电话 are text cells (Excel keeps all 18 digits), and a 填表说明 sheet says what each column wants.
``silobreaker grid-updates template`` writes it empty; the demo writes its updates in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import openpyxl
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from connectors.config import GRID_UPDATE_CHANGES, GRID_UPDATE_COLUMNS

__all__ = ["GRID_FORM_SHEET", "form_headers", "write_grid_update_form"]

GRID_FORM_SHEET = "网格信息变更"
"""The sheet the updates are written in (a ``role: grid_updates`` xlsx source reads the first sheet)."""

_TEXT_COLUMNS = ("身份证号", "联系电话", "出生日期", "填报日期")
_GUIDE = (
    ("序号", "每行一个编号，同一填报人同一填报日期内不重复（如 1、2、3…）"),
    ("变更类型", "从下拉列表选择：" + "、".join(GRID_UPDATE_CHANGES)
     + "。迁出、死亡的人员将移出网格名单；其余表示已上门见到本人在住"),
    ("姓名", "必填"),
    ("性别", "男 / 女"),
    ("出生日期", "可只填年月，如 1959-12"),
    ("身份证号", "知道则填，可不填"),
    ("联系电话", "电话变更时填新号码"),
    ("现住址", "如 翠苑社区1-2-302；迁入时必填"),
    ("户籍地址", "知道则填（人户分离、流动人口）"),
    ("情况说明", "如：随子女迁往外省；女儿已搬来同住"),
    ("填报人", "必填，网格员姓名"),
    ("填报日期", "必填，如 2026-11-20，不能晚于当天"),
)


def form_headers() -> list[str]:
    """The form's columns, in order: the key, then each column of the fixed schema once."""
    return ["序号", *dict.fromkeys(GRID_UPDATE_COLUMNS.values())]


def write_grid_update_form(path: str | Path, rows: Sequence[Mapping[str, str]] = ()) -> Path:
    """Write the form to ``path`` (xlsx), with ``rows`` (header -> text) filled in.

    Raises:
        ValueError: a row names a column the form does not have.
    """
    headers = form_headers()
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = GRID_FORM_SHEET
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    text_columns = [headers.index(h) + 1 for h in _TEXT_COLUMNS]
    for number, row in enumerate(rows, start=2):
        unknown = set(row) - set(headers)
        if unknown:
            raise ValueError(f"row {number - 1} names {sorted(unknown)}, not columns of the grid-update form {headers}")
        sheet.append([row.get(h) or None for h in headers])
    last = max(len(rows) + 1, 500)  # room for a worker's rows: the drop-down and text cells reach them
    for column in text_columns:
        for (cell,) in sheet.iter_rows(min_row=2, max_row=last, min_col=column, max_col=column):
            cell.number_format = "@"
    changes = DataValidation(type="list", formula1='"' + ",".join(GRID_UPDATE_CHANGES) + '"', allow_blank=False,
                             showErrorMessage=True, errorTitle="变更类型", error="请从下拉列表选择变更类型")
    sexes = DataValidation(type="list", formula1='"男,女"', allow_blank=True)
    for validation, header in ((changes, "变更类型"), (sexes, "性别")):
        letter = get_column_letter(headers.index(header) + 1)
        validation.add(f"{letter}2:{letter}{last}")
        sheet.add_data_validation(validation)
    for i, header in enumerate(headers, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = {"现住址": 30, "户籍地址": 30, "情况说明": 30}.get(header, 12)
    sheet.freeze_panes = "A2"
    guide = workbook.create_sheet("填表说明")
    guide.append(["列", "填写说明"])
    for line in _GUIDE:
        guide.append(list(line))
    guide.column_dimensions["A"].width = 12
    guide.column_dimensions["B"].width = 90
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path
