"""Risk early warning: every rule of the demo's risks.yaml fires on a seeded case and not on its near
miss; a warning lives open → closed by a worker → cleared → open again when it recurs; a grid
worker's list shows only the warnings its policy may see."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import pandas as pd
import pytest

from core.config import ConfigError
from core.errors import TerminalError
from publish import Warehouse
from publish.risks import DEFAULT_RISKS_FILE, WarningActions, load_risks
from tests.publish.conftest import make_inputs, policy, read_shared, records, staging_report

pytestmark = pytest.mark.integration

AS_OF = date(2026, 11, 23)
GRID1, GRID2 = "翠苑社区第1网格", "翠苑社区第2网格"
DEPARTMENTS = {"civil_affairs": "民政", "health": "卫健", "justice": "司法", "census": "人口普查"}


def _days_ago(n: int) -> str:
    return (AS_OF - timedelta(days=n)).isoformat()


def _birth(age: int) -> str:
    return f"{AS_OF.year - age}-01-01"


# person -> (rule it seeds, fires?, records as (source, fields)); each rule's near miss differs in one fact.
CASES = {
    "P_alone_400": ("elderly_alone_no_health_contact", True,
                    [("civil_affairs", dict(birth=_birth(75), lives_alone=True)), ("health", dict(date=_days_ago(400)))]),
    "P_alone_300": ("elderly_alone_no_health_contact", False,
                    [("civil_affairs", dict(birth=_birth(75), lives_alone=True)), ("health", dict(date=_days_ago(300)))]),
    "P_preg_40": ("pregnant_no_visit_30_days", True, [("health", dict(birth=_birth(28), pregnant=True, date=_days_ago(40)))]),
    "P_preg_20": ("pregnant_no_visit_30_days", False, [("health", dict(birth=_birth(28), pregnant=True, date=_days_ago(20)))]),
    "P_corr_moved": ("corrections_left_grid", True,
                     [("justice", dict(birth=_birth(40), corrections=True, grid=GRID1, date=_days_ago(500))),
                      ("civil_affairs", dict(birth=_birth(40), grid=GRID2, date=_days_ago(30)))]),
    "P_corr_stayed": ("corrections_left_grid", False,
                      [("justice", dict(birth=_birth(40), corrections=True, grid=GRID1, date=_days_ago(500))),
                       ("civil_affairs", dict(birth=_birth(40), grid=GRID1, date=_days_ago(30)))]),
    "P_child_none": ("young_child_no_health_record", True, [("census", dict(birth=_birth(3)))]),
    "P_child_seen": ("young_child_no_health_record", False,
                     [("census", dict(birth=_birth(3))), ("health", dict(birth=_birth(3), date=_days_ago(900)))]),
    "P_severe_stale": ("severe_disability_alone_stale_file", True,
                       [("civil_affairs", dict(birth=_birth(50), disability_grade=1, lives_alone=True, date=_days_ago(400)))]),
    "P_mild_stale": ("severe_disability_alone_stale_file", False,
                     [("civil_affairs", dict(birth=_birth(50), disability_grade=3, lives_alone=True, date=_days_ago(400)))]),
}


def _district(cases=CASES, grid_for=lambda pid: GRID1) -> dict[str, pd.DataFrame]:
    rows, mapping = [], []
    for i, (pid, (_, _, recs)) in enumerate(cases.items()):
        birth = next(f["birth"] for _, f in recs if "birth" in f)
        for j, (source, fields) in enumerate(recs):
            extra = {k: v for k, v in fields.items() if k not in ("birth", "date", "grid")}
            grid = fields.get("grid", grid_for(pid))
            rows.append(dict(record_id=f"{source}:{pid}:{j}", source=source, source_key=f"{pid}:{j}",
                             name=f"居民{i}", sex="F", birth_date=birth, birth_date_precision="day",
                             address=f"示范区{grid}", street="西溪街道", community="翠苑社区", grid=grid,
                             record_date=fields.get("date", _days_ago(60) if source != "census" else None), **extra))
            mapping.append((f"{source}:{pid}:{j}", pid))
    consent = pd.DataFrame(columns=["record_id", "source", "source_key", "id_number", "name", "purpose", "recipient",
                                    "status", "decided_at", "channel"])
    return {"records": records(*rows), "mapping": pd.DataFrame(mapping, columns=["record_id", "person_id"]),
            "consent": consent}


def _inputs(district, as_of=AS_OF, run_id="run1", **changes):
    reports = [replace(staging_report(s), department=d) for s, d in DEPARTMENTS.items()]
    return make_inputs(district, run_id=run_id, as_of=as_of, staging_reports=reports,
                       trust={"civil_affairs": 0, "health": 1, "justice": 2, "census": 3},
                       risks=load_risks(DEFAULT_RISKS_FILE), **changes)


def _publish(home, district, *recipients, **changes):
    wh = Warehouse(home)
    candidate = wh.build_candidate(_inputs(district, **changes), policy(*recipients))
    wh.publish(candidate)
    return candidate


def test_every_rule_of_the_demo_fires_on_its_case_and_not_on_its_near_miss(tmp_path):
    rules = load_risks(DEFAULT_RISKS_FILE)
    seeded = {rule for rule, _, _ in CASES.values()}
    assert seeded == {r.code for r in rules.rules}, "every rule in demo/risks.yaml needs a seeded case here"
    warnings = _publish(tmp_path, _district()).read("SELECT rule, person_id, status, reason FROM risk_warnings")
    fired = set(zip(warnings["rule"], warnings["person_id"], strict=True))
    for pid, (rule, fires, _) in CASES.items():
        assert ((rule, pid) in fired) == fires, f"{rule} on {pid}"
    assert (warnings["status"] == "open").all()
    reasons = warnings.set_index("person_id")["reason"]
    assert reasons["P_alone_400"] == f"最近一次卫健记录：{_days_ago(400)}"
    assert reasons["P_child_none"] == "卫健无任何记录"
    assert reasons["P_corr_moved"] == f"司法登记网格：{GRID1}，现住：{GRID2}"


def test_a_closed_warning_stays_closed_until_the_condition_clears_and_recurs(tmp_path):
    home = tmp_path / "home"
    alone = {"P_alone_400": CASES["P_alone_400"]}
    first = _publish(home, _district(alone)).read("SELECT * FROM risk_warnings")
    (warning_id,) = first["warning_id"]
    actions = WarningActions.in_home(home)
    with pytest.raises(TerminalError, match="needs a note"):
        actions.record(warning_id, "close", by="王网格员")
    actions.record(warning_id, "close", by="王网格员", note="已上门，女儿每周来照看")
    second = _publish(home, _district(alone), run_id="run2", as_of=AS_OF + timedelta(days=7),
                      warning_actions=actions.load()).read("SELECT * FROM risk_warnings").iloc[0]
    assert (second.warning_id, second.status, second.note) == (warning_id, "closed", "已上门，女儿每周来照看")
    assert second.first_seen.date() == AS_OF and second.last_seen.date() == AS_OF + timedelta(days=7)

    # Health sees him: the condition clears, the episode ends.
    seen = {"P_alone_400": (*CASES["P_alone_400"][:2],
                            [CASES["P_alone_400"][2][0], ("health", dict(date=AS_OF.isoformat()))])}
    third = _publish(home, _district(seen), run_id="run3", as_of=AS_OF + timedelta(days=14),
                     warning_actions=actions.load()).read("SELECT * FROM risk_warnings").iloc[0]
    assert (third.status, third.cleared_on.date()) == ("cleared", AS_OF + timedelta(days=14))

    # A year and more later with no contact it recurs: a new warning, open, whatever was closed before.
    later = AS_OF + timedelta(days=400)
    fourth = _publish(home, _district(seen), run_id="run4", as_of=later,
                      warning_actions=actions.load()).read("SELECT * FROM risk_warnings ORDER BY first_seen")
    assert list(fourth["status"]) == ["cleared", "open"]
    assert fourth["warning_id"].iloc[1] != warning_id and fourth["first_seen"].iloc[1].date() == later


def test_a_warning_that_clears_and_recurs_the_same_day_is_a_new_warning(tmp_path):
    home = tmp_path / "home"
    alone = {"P_alone_400": CASES["P_alone_400"]}
    seen = {"P_alone_400": (*CASES["P_alone_400"][:2],
                            [CASES["P_alone_400"][2][0], ("health", dict(date=AS_OF.isoformat()))])}
    (first,) = _publish(home, _district(alone)).read("SELECT warning_id FROM risk_warnings")["warning_id"]
    actions = WarningActions.in_home(home)
    actions.record(first, "close", by="王网格员", note="已上门")
    _publish(home, _district(seen), run_id="run2", warning_actions=actions.load())  # cleared
    # the health record is withdrawn the same day: the condition holds again
    again = _publish(home, _district(alone), run_id="run3", warning_actions=actions.load()).read(
        "SELECT warning_id, status FROM risk_warnings ORDER BY status")
    assert again["warning_id"].is_unique
    assert dict(zip(again["status"], again["warning_id"], strict=True)) == {"cleared": first,
                                                                         "open": again["warning_id"].iloc[1]}
    assert again["warning_id"].iloc[1] != first


def test_a_rule_reading_a_sensitive_flag_reveals_it(tmp_path):
    rules = tmp_path / "risks.yaml"
    rules.write_text("version: 1\nrules:\n  - code: alone_chronic\n    label: 独居慢性病老人\n"
                     "    population: [elderly_living_alone]\n    when: chronic_patient\n", encoding="utf-8")
    (rule,) = load_risks(rules).rules
    assert rule.reveals == {"health"} and rule.populations_read == ["elderly_living_alone", "chronic_patient"]
    rules.write_text("version: 1\nrules:\n  - code: alone_diabetic\n    label: 独居糖尿病老人\n"
                     "    population: [elderly_living_alone]\n    when: chronic_disease LIKE '%糖尿病%'\n",
                     encoding="utf-8")
    assert load_risks(rules).rules[0].reveals == {"health"}


GRID_WORKER = dict(name="grid_1", description="网格员", kind="grid_worker", level="grid", purpose="service_delivery",
                   legal_basis="statutory", legal_reference="测试", scope={"grid": GRID1},
                   columns=["person_id", "name", "key_populations", "risk_warnings"],
                   population=["elderly_living_alone", "young_child"])


def test_a_list_shows_only_warnings_over_populations_its_policy_may_see(tmp_path):
    _publish(tmp_path, _district(), GRID_WORKER)
    shown = read_shared(tmp_path, "grid_1").set_index("person_id")["risk_warnings"].dropna()
    texts = {pid: [str(t) for t in items] for pid, items in shown.items() if len(items)}
    assert set(texts) == {"P_alone_400", "P_child_none"}, "孕产妇 and 社区矫正 warnings are not this worker's to see"
    assert texts["P_alone_400"][0].startswith(f"独居老人一年以上无卫健服务记录（最近一次卫健记录：{_days_ago(400)}）〔W")


def test_a_risks_file_naming_an_unknown_department_or_population_fails_with_the_fix(tmp_path):
    bad = tmp_path / "risks.yaml"
    bad.write_text("version: 1\nrules:\n  - code: x\n    label: 测试\n    population: [elderly_living_alon]\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError, match="elderly_living_alone"):
        load_risks(bad)
    bad.write_text("version: 1\nrules:\n  - code: x\n    label: 测试\n    no_record: {department: 卫建}\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError, match="卫健"):
        load_risks(bad, departments={"卫健": ["health"], "民政": ["civil_affairs"]})
    bad.write_text("version: 1\nrules:\n  - code: x\n    label: 测试\n    when: age >> 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="when"):
        load_risks(bad)


def test_a_worker_closes_a_warning_from_the_command_line(tmp_path, capsys):
    from pipelines.cli import main

    _publish(tmp_path, _district({"P_alone_400": CASES["P_alone_400"]}))
    assert main(["warnings", "list", "--home", str(tmp_path), "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["warnings"]
    assert (listed["status"], listed["grid"], listed["first_seen"]) == ("open", GRID1, AS_OF.isoformat())
    with pytest.raises(SystemExit):  # argparse: --note is required to close
        main(["warnings", "close", listed["warning_id"], "--by", "王网格员", "--home", str(tmp_path)])
    assert main(["warnings", "close", "W0000000000", "--by", "王", "--note", "x", "--home", str(tmp_path)]) == 2
    assert "no warning 'W0000000000'" in capsys.readouterr().err
    assert main(["warnings", "close", listed["warning_id"], "--by", "王网格员", "--note", "已上门",
                 "--home", str(tmp_path)]) == 0
    # The clerk who types it reads Chinese first (users audit: the reply was English only).
    reply = capsys.readouterr().out
    assert reply.startswith(f"{listed['warning_id']}（") and "王网格员 标记为“已处理”，已登记" in reply, reply
    assert main(["warnings", "list", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "待处理→已处理" in out and "已上门" in out, out
    header, row = out.splitlines()[:2]
    # Columns line up in a terminal, where a Chinese character takes two columns.
    assert _columns(header).index("首") == _columns(row).index(listed["first_seen"]), out
    assert out.splitlines()[-1] == "共 1 条预警 / 1 warning(s)"


def _columns(line: str) -> str:
    """``line`` as a Chinese terminal shows it, a wide character as two columns (the second a placeholder): East Asian
    wide, full-width and ambiguous ones (→ is two columns in a CJK locale)."""
    import unicodedata

    return "".join(ch + ("\0" if unicodedata.east_asian_width(ch) in "WFA" else "") for ch in line)


def test_the_supervisors_report_counts_warnings_per_grid(tmp_path):
    from publish import WarehouseReader
    from quality.report import _grids

    _publish(tmp_path, _district(grid_for=lambda pid: GRID2 if pid.startswith("P_child") else GRID1))
    grids = _grids(WarehouseReader(tmp_path).grids("run1"))
    by_grid = {row["grid"]: row for row in grids["rows"]}
    # grid 2: the child never seen by health, and the person under corrections who moved there
    assert by_grid[GRID2]["open"] == 2
    assert set(by_grid[GRID2]["rules"]) == {"6岁以下儿童无卫健记录", "社区矫正对象现住址已离开司法登记网格"}
    assert grids["totals"]["open"] == sum(fires for _, fires, _ in CASES.values())
