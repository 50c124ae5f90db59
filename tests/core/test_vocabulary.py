"""One vocabulary: staging, source declarations, dedup and publish read sex codes, dates and masks alike."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from connectors import SourceConfig
from core.vocabulary import (
    DATE_FORMATS,
    FIELD_LABELS,
    MASKS,
    PERSON_FIELDS,
    SEX_CODES,
    sex_code,
)
from dedup.prepare import normalize_sex, prepare_records
from staging import stage_person_records

EXTRACTED_AT = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def staged_through_a_declaration(values: dict[str, str], column: str, **declared) -> pd.DataFrame:
    """Stage one column per row as the pipeline does: the declaration's own defaults, no ``values`` map."""
    source = SourceConfig(name="x", department="测试", kind="csv", path="x.csv", primary_key=["k"],
                          columns={"name": "xm", column: "v"}, **declared)
    raw = pd.DataFrame({"k": [str(i) for i in range(len(values))], "xm": ["张伟"] * len(values), "v": list(values)})
    return stage_person_records(raw, source=source.name, primary_key=source.primary_key, columns=source.columns,
                                values=source.values, date_formats=source.date_formats, extracted_at=EXTRACTED_AT)


SEX_CASES = {
    "男": "M", "女": "F", "男性": "M", "女性": "F", "1": "M", "2": "F", "M": "M", "f": "F",
    "Male": "M", "FEMALE": "F", "0": None, "9": None, "未知": None,
}


@pytest.mark.parametrize(("code", "expected"), SEX_CASES.items())
def test_a_sex_code_means_the_same_in_staging_and_in_dedup(code, expected):
    staged = staged_through_a_declaration({code: None}, "sex").staged["sex"].iloc[0]
    linked = normalize_sex(pd.Series([code])).iloc[0]
    assert (None if pd.isna(staged) else staged) == expected
    assert (None if pd.isna(linked) else linked) == expected
    assert sex_code(code) == expected


def test_every_sex_code_maps_to_m_or_f():
    assert set(SEX_CODES.values()) == {"M", "F"} and all(code == code.upper() for code in SEX_CODES)


DATE_CASES = ["1985-03-12", "19850312", "1985/3/12", "1985年3月12日", "1985.03.12"]


@pytest.mark.parametrize("written", DATE_CASES)
def test_a_birth_date_in_a_default_format_is_read_alike_by_pipeline_direct_staging_and_dedup(written):
    through_declaration = staged_through_a_declaration({written: None}, "birth_date")
    direct = stage_person_records(pd.DataFrame({"k": ["1"], "xm": ["张伟"], "v": [written]}), source="x",
                                  primary_key=["k"], columns={"name": "xm", "birth_date": "v"},
                                  extracted_at=EXTRACTED_AT)
    prepared = prepare_records(pd.DataFrame({"record_id": ["x:1"], "source": ["x"], "name": ["张伟"], "sex": [None],
                                             "birth_date": [written], "id_number": [None], "phone": [None],
                                             "address": [None]}))
    assert through_declaration.quarantine.empty and direct.quarantine.empty
    assert through_declaration.staged["birth_date"].iloc[0] == direct.staged["birth_date"].iloc[0] == "1985-03-12"
    assert prepared["birth_date"].iloc[0] == "1985-03-12"


def test_a_source_without_date_formats_uses_the_canonical_defaults():
    source = SourceConfig(name="x", department="测试", kind="csv", path="x.csv", primary_key=["k"], columns={"name": "xm"})
    assert tuple(source.date_formats) == DATE_FORMATS


MASK_CASES = [
    ("name", "张伟", "张*"), ("name", "欧阳娜娜", "欧***"), ("name", "张", "*"),
    ("id_number", "330106195001010012", "330106********0012"), ("id_number", "3301061950", "**********"),
    ("phone", "13800000001", "138****0001"), ("phone", "057188123456", "057*****3456"), ("phone", "1381234", "*******"),
    ("address", "示范区西溪街道翠苑社区1幢", "示范区西溪街…"), ("address", "翠苑社区", "翠苑社区"),
    ("birth_date", "1950-01-01", "1950-01-**"), ("birth_date", "1950-01", "1950-01"),
]


@pytest.mark.parametrize(("field", "value", "shown"), MASK_CASES)
def test_a_mask_hides_the_same_characters_in_python_and_in_sql(field, value, shown):
    assert MASKS[field].apply(value) == shown
    with duckdb.connect() as con:
        assert con.execute(f"SELECT {MASKS[field].sql('v')} FROM (SELECT ?::VARCHAR AS v)", [value]).fetchone()[0] == shown
        assert con.execute(f"SELECT {MASKS[field].sql('v')} FROM (SELECT NULL::VARCHAR AS v)").fetchone()[0] is None


def test_every_canonical_field_has_one_chinese_label():
    assert set(PERSON_FIELDS) <= set(FIELD_LABELS)
    assert FIELD_LABELS["id_number"] == "公民身份号码"
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in label) for label in FIELD_LABELS.values())


def test_every_product_column_and_key_population_has_a_chinese_name():
    from core.vocabulary import FIELD_LABELS
    from publish.policy import KEY_POPULATIONS, SHAREABLE_COLUMNS
    from publish.populations import default_populations

    # The default categories (demo/populations.yaml) are the codes policy and products call KEY_POPULATIONS.
    labels = default_populations().labels
    assert set(labels) == set(KEY_POPULATIONS)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in label) for label in labels.values())
    assert not [c for c in (*SHAREABLE_COLUMNS, "person_key") if c not in FIELD_LABELS]


def test_every_quarantine_rule_staging_applies_has_its_chinese_text():
    # The clerk's corrections file and the report show these texts; a rule added to staging without one
    # would reach a department clerk as a bare code.
    import ast
    from pathlib import Path

    from core.vocabulary import QUARANTINE_RULE_TEXTS

    staging = Path(__file__).resolve().parents[2] / "staging"
    names = set()
    for path in staging.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if callee in ("QuarantineRule", "missing_rule"):
                    names.add(node.args[0].value)
    assert {"unparseable_birth_date", "missing_name", "truncated_row", "future_decided_at"} <= names
    assert names - set(QUARANTINE_RULE_TEXTS) == set()
    assert all(text.problem and text.fix for text in QUARANTINE_RULE_TEXTS.values())


def test_every_soft_problem_staging_counts_has_its_chinese_text():
    # The report lists soft problems per department; one added to staging without a text would show as a code.
    import ast
    from pathlib import Path

    from core.vocabulary import SOFT_PROBLEM_TEXTS, soft_problem_text

    staging = Path(__file__).resolve().parents[2] / "staging"
    kinds = set()
    for path in staging.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # ``for problem in ("birth_date_conflict", ...): fields.count(problem, ...)`` counts each name in the loop.
        looped = {node.target.id: [e.value for e in node.iter.elts if isinstance(e, ast.Constant)]
                  for node in ast.walk(tree)
                  if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(node.iter, ast.Tuple)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "count" \
                    and node.args:
                first = node.args[0]
                if isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
                    first = first.values[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    kinds.add(first.value.split(":", 1)[0])
                elif isinstance(first, ast.Name):
                    kinds.update(looped.get(first.id, []))
    assert {"invalid_id_number", "implausible_phone", "unmapped_value", "unrecognised_value",
            "birth_date_conflict", "sex_conflict"} <= kinds
    assert kinds - set(SOFT_PROBLEM_TEXTS) == set()
    assert soft_problem_text("unmapped_value:sex").problem == "性别的写法不在取值对照表中"
