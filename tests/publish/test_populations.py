"""Key populations as configuration: populations.yaml, checked at load, flowing into the unified table,
key_residents, the policy and the products."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from publish import (
    KEY_POPULATIONS,
    SharingPolicy,
    Warehouse,
    WarehouseReader,
    default_populations,
    load_policy,
    load_populations,
)
from pipelines.settings import DEMO_POLICY, DEMO_POPULATIONS
from tests.publish.conftest import make_inputs, policy

CATEGORY = """  - code: {code}
    label: {label}
    rule: "{rule}"
{extra}"""


def write(tmp_path, *categories: dict, name: str = "populations.yaml"):
    body = "".join(CATEGORY.format(**{"label": "独居老人", "extra": "", **c}) for c in categories)
    path = tmp_path / name
    path.write_text(f"version: 1\ncategories:\n{body}", encoding="utf-8")
    return path


def error(tmp_path, *categories: dict) -> str:
    path = write(tmp_path, *categories)
    with pytest.raises(ConfigError) as caught:
        load_populations(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid key populations file")
    return message


def test_the_demo_file_holds_todays_categories_and_is_the_default():
    demo = load_populations(DEMO_POPULATIONS)
    assert demo == default_populations()
    assert set(demo.codes) == set(KEY_POPULATIONS)
    assert demo.sensitive == {"chronic_patient": "health", "pregnant_woman": "health", "community_corrections": "judicial"}
    assert set(demo.derived_from_age) == {"elderly", "young_child", "minor_under_14"}


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        (dict(code="elderly", rule="agee >= 60"),
         "line 5, categories[0].rule: category 'elderly': rule 'agee >= 60': unknown column 'agee' (did you mean 'age'?)"),
        (dict(code="elderly", rule="age >= AND lives_alone"), "categories[0].rule: category 'elderly': rule "
                                                              "'age >= AND lives_alone' is not valid SQL (syntax error"),
        (dict(code="elderly", rule="age + 1"), "rule 'age + 1' gives INTEGER, not yes/no"),
        (dict(code="elderly", rule="lenght(name) > 2"), "rule 'lenght(name) > 2' cannot be evaluated"),
        (dict(code="elderly", rule="age > (SELECT max(age) FROM unified_population)"), "may not contain a query"),
        (dict(code="elderly", rule="age > 60) FROM unified_population, other WHERE (true"), "is not valid SQL"),
        (dict(code="elderly", rule="true; DROP TABLE unified_population"), "write one expression, without ';'"),
        (dict(code="elderly", rule="u.age > 60"), "unknown column 'u.age'"),
        (dict(code="chronic", rule="chronic_disease IS NOT NULL", extra="    sensitive: medical\n"),
         "categories[0].sensitive: category 'chronic': sensitive 'medical' is not a consent category; write one of "
         "health, judicial"),
        (dict(code="pregnant", rule="pregnant"), "categories[0].code: category 'pregnant': the code is already a column"),
        (dict(code="Elderly", rule="age >= 60"), "code 'Elderly' is not snake_case"),
        (dict(code="elderly", rule="age >= 60", label="elderly"), "categories[0].label: category 'elderly': the label "
                                                                   "is read by departments and grid workers; write it in Chinese"),
        (dict(code="elderly", rule="age >= 60", extra="    reason: 年龄{agee}岁\n"),
         "categories[0].reason: category 'elderly': reason names {agee}, which is not a column of unified_population "
         "(did you mean 'age'?)"),
    ],
)
def test_a_bad_category_fails_at_load_with_the_file_line_category_and_fix(tmp_path, category, expected):
    message = error(tmp_path, category)
    assert expected in message, message


def test_every_bad_category_is_listed_at_once(tmp_path):
    message = error(tmp_path, dict(code="a", rule="agee > 1"), dict(code="b", rule="age >"),
                    dict(code="c", rule="age > 1", extra="    sensitive: medical\n"))
    assert "3 problem(s)" in message
    assert "categories[0].rule" in message and "categories[1].rule" in message and "categories[2].sensitive" in message


def test_a_code_given_twice_is_refused(tmp_path):
    message = error(tmp_path, dict(code="c", rule="age > 1"), dict(code="c", rule="age > 2"))
    assert "categories[1].code: code 'c' is given twice (categories[0] and categories[1])" in message


OLDEST = dict(code="oldest_old", label="高龄老人", rule="age >= 75", extra="    reason: 高龄，{age}岁\n")
HYPERTENSION = dict(code="hypertension", label="高血压患者", rule="chronic_disease LIKE '%高血压%'",
                    extra="    reason: 慢性病：{chronic_disease}\n    sensitive: health\n")


def test_a_rule_may_use_functions_and_lambdas_over_the_golden_columns(tmp_path):
    populations = load_populations(write(
        tmp_path, dict(code="health_only", label="仅卫健登记", rule="len(list_filter(sources, lambda s: s = 'health')) = len(sources)"),
        dict(code="cuiyuan_elderly", label="翠苑老人", rule="age >= 60 AND starts_with(coalesce(grid, ''), '翠苑')")))
    assert populations.codes == ("health_only", "cuiyuan_elderly")
    assert populations.derived_from_age == ()


def test_a_policy_may_name_only_the_categories_of_the_file_it_is_checked_against(tmp_path):
    populations = load_populations(write(tmp_path, OLDEST, HYPERTENSION))
    recipient = (
        "version: 1\nrecipients:\n  - name: doctors\n    description: 卫健\n    kind: department\n    level: district\n"
        "    purpose: service_delivery\n    legal_basis: statutory\n    columns: [person_id, key_populations]\n"
        "    key_populations: [{shown}]\n")
    path = tmp_path / "policy.yaml"
    path.write_text(recipient.format(shown="oldest_old"), encoding="utf-8")
    assert load_policy(path, populations).recipients[0].shared_key_populations == ["oldest_old"]
    with pytest.raises(ConfigError, match=r"unknown key population\(s\) \['oldest_old'\]"):
        load_policy(path)  # the default categories have no oldest_old
    # A sensitive category of the file is health data on a statutory basis, like chronic_patient is.
    path.write_text(recipient.format(shown="hypertension"), encoding="utf-8")
    with pytest.raises(ConfigError, match="key population hypertension is health data"):
        load_policy(path, populations)
    assert load_policy(DEMO_POLICY, default_populations()).recipients


@pytest.mark.integration
def test_categories_become_columns_key_populations_and_key_residents(tmp_path, district):
    populations = load_populations(write(tmp_path, OLDEST, HYPERTENSION,
                                         dict(code="minor_under_14", label="14岁以下未成年人", rule="age < 14")))
    grid = dict(name="grid_1", description="网格员", kind="grid_worker", level="grid", purpose="service_delivery",
                legal_basis="statutory", columns=["person_id", "key_populations"], key_populations=["oldest_old"],
                scope={"grid": "翠苑社区第1网格"})
    recipients = SharingPolicy.model_validate({"version": 1, "recipients": [grid]},
                                              context={"populations": populations})
    wh = Warehouse(tmp_path)
    wh.publish(wh.build_candidate(make_inputs(district, populations=populations), recipients))
    with WarehouseReader(wh.home).connect() as con:
        flags = dict(con.execute("SELECT person_id, key_populations FROM unified_population").fetchall())
        columns = {r[0] for r in con.execute("DESCRIBE unified_population").fetchall()}
        residents = con.execute("SELECT person_id, category, category_label, sensitive, grid, reason "
                                "FROM key_residents ORDER BY person_id, category").fetchall()
    assert {"oldest_old", "hypertension", "minor_under_14"} <= columns and "elderly_living_alone" not in columns
    assert flags == {"P_zhang": ["oldest_old", "hypertension"], "P_li": [], "P_wang": ["minor_under_14"]}
    assert residents == [
        ("P_wang", "minor_under_14", "14岁以下未成年人", None, "翠苑社区第1网格", "14岁以下未成年人"),
        ("P_zhang", "hypertension", "高血压患者", "health", "翠苑社区第1网格", "慢性病：高血压"),
        ("P_zhang", "oldest_old", "高龄老人", None, "翠苑社区第1网格", "高龄，76岁"),
    ]


@pytest.mark.integration
def test_the_default_categories_list_a_child_under_14_and_explain_each_listing(tmp_path, district):
    wh = Warehouse(tmp_path)
    statutory = dict(name="civil", description="民政", kind="department", level="district",
                     purpose="service_delivery", legal_basis="statutory", columns=["person_id", "name"])
    wh.publish(wh.build_candidate(make_inputs(district), policy(statutory)))
    with WarehouseReader(wh.home).connect() as con:
        flags = dict(con.execute("SELECT person_id, key_populations FROM unified_population").fetchall())
        reasons = con.execute("SELECT category, reason FROM key_residents WHERE person_id = 'P_zhang' "
                              "ORDER BY category").fetchall()
    assert flags["P_wang"] == ["young_child", "minor_under_14"]
    assert flags["P_zhang"] == ["elderly_living_alone", "elderly", "chronic_patient"]
    assert reasons == [("chronic_patient", "慢性病：高血压"), ("elderly", "年龄76岁"),
                       ("elderly_living_alone", "年龄76岁，独居")]
