"""The CLI that talks: a line per stage on stderr, and with --json one JSON document on stdout and nothing else.

One small demo runs as the operator runs it, in its own process (so anything a library prints on the
real stdout would break the JSON); the other commands run in-process against the session's published
demo district.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from connectors import load_sources
from core.home import DataHome
from pipelines.cli import main
from pipelines.settings import DEMO_SOURCES
from publish import AuditLog, Generations, product_key, read_product
from publish.crypto import product_key_id
from publish.office import DATA_SHEET, read_xlsx

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^\[\s*(\d+\.\d) s\] (\S+ [a-z]+(?: [a-z_]+)?)(?:: (.*))?$")


@pytest.fixture(scope="module")
def demo_cli(tmp_path_factory):
    """``silobreaker demo --persons 100 --json -v`` in its own process: (home, stdout, stderr, exit code).

    With a ``tail`` on its PATH that mirrors nothing: Dagster's compute-log capture sends a run's stdout and
    stderr to a file and back through ``tail -F``, polled once a second and stopped when the run ends, which
    lost the report line at the end of a CI run. What the CLI says must not go that way.
    """
    home = tmp_path_factory.mktemp("cli-demo")
    bin_dir = tmp_path_factory.mktemp("mute-tail")
    (bin_dir / "tail").write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    (bin_dir / "tail").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "demo", "--persons", "100", "--seed", "5", "--json",
                           "-v", "--home", str(home)], cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    return DataHome.at(home), done.stdout, done.stderr, done.returncode


def query(home: DataHome, sql: str) -> list[tuple]:
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        return con.execute(sql).fetchall()


def json_out(capsys, argv: list[str], code: int = 0):
    """Run the command in-process; its stdout must be one JSON document."""
    assert main(argv) == code
    return json.loads(capsys.readouterr().out)


def test_demo_json_is_all_of_stdout_and_says_what_the_run_published(demo_cli):
    home, out, err, code = demo_cli
    assert code == 0, err[-3000:]
    doc = json.loads(out)  # nothing but the document on stdout, even with -v
    [(run_id, persons)] = query(home, "SELECT run_id, persons FROM runs")
    assert doc["run_id"] == run_id and doc["success"] is True
    extracted = dict(query(home, "SELECT source, row_count FROM extraction_log"))
    quarantined = dict(query(home, "SELECT source, count(*) FROM quarantine GROUP BY source"))
    for s in doc["sources"]:
        assert s["read"] and s["extracted"] == extracted[s["source"]] == doc["demo"]["rows"][s["source"]]
        assert s["quarantined"] == quarantined.get(s["source"], 0) and s["staged"] + s["quarantined"] == s["extracted"]
    assert [s["source"] for s in doc["sources"]] == [s.name for s in load_sources(DEMO_SOURCES).sources]
    publication = doc["publication"]
    assert publication["by_this_run"] and publication["run_id"] == run_id and publication["persons"] == persons
    assert publication["generation"] == Generations(home).current().name
    assert publication["products"] == dict(query(home, "SELECT recipient, row_count FROM publication_log"))
    assert Path(doc["report"]).exists() and doc["failures"] == [] and doc["blocked"] == []
    assert doc["demo"] == {"persons": 100, "seed": 5, "directory": str(home.demo_dir), "rows": doc["demo"]["rows"]}


def test_demo_progress_on_stderr_names_every_stage_with_its_elapsed_time(demo_cli):
    home, out, err, _ = demo_cli
    lines = [m for m in map(LINE.match, err.splitlines()) if m]
    stages = [m.group(2) for m in lines]
    sources = [s.name for s in load_sources(DEMO_SOURCES).sources]
    steps = [*(f"抽取 extract {s}" for s in sources), *(f"清洗 stage {s}" for s in sources), "归并 link",
             "发布 publish", "质量报告 report"]
    assert stages[:2] == ["生成 generate demo", "运行开始 run started"] and stages[-1] == "运行结束 run finished"
    assert sorted(stages[2:-1]) == sorted(steps), err[-3000:]
    assert stages.index("归并 link") > max(stages.index(f"清洗 stage {s}") for s in sources)
    elapsed = [float(m.group(1)) for m in lines]
    assert elapsed == sorted(elapsed) and elapsed[-1] > 0
    details = {m.group(2): m.group(3) for m in lines}
    doc = json.loads(out)
    for s in doc["sources"]:
        assert details[f"抽取 extract {s['source']}"].startswith(f"{s['extracted']:,} 行 (")
        assert details[f"清洗 stage {s['source']}"].startswith(f"入库 {s['staged']:,} 行，隔离 {s['quarantined']:,} 行")
    assert details["发布 publish"].startswith(f"{doc['publication']['persons']:,} 人")
    assert details["运行结束 run finished"] == "成功 success" and details["运行开始 run started"] == doc["run_id"]
    # -v after the subcommand: silobreaker's own log, on stderr too; no traceback anywhere.
    assert "INFO dedup.engine: linked" in err and "Traceback" not in err


def test_review_list_and_decide_json(demo_copy, capsys):
    home = str(demo_copy.home.root)
    queue = query(demo_copy.home, "SELECT record_id_a, record_id_b FROM review_queue")
    listed = json_out(capsys, ["review", "list", "--json", "--limit", "1", "--home", home])
    assert listed["waiting"] == len(queue) > 0 and listed["decided_since_last_run"] == 0 and listed["shown"] == 1
    [pair] = listed["pairs"]
    assert (pair["record_id_a"], pair["record_id_b"]) == queue[0] and {"evidence", "name_a", "name_b"} <= set(pair)

    decided = json_out(capsys, ["review", "decide", pair["record_id_a"], pair["record_id_b"], "different",
                                "--by", "wang.fang", "--json", "--home", home])
    assert (decided["record_id_a"], decided["record_id_b"], decided["decision"], decided["decided_by"]) == (
        pair["record_id_a"], pair["record_id_b"], "different", "wang.fang")
    assert pd.read_parquet(decided["log"])["decision"].tolist() == ["different"]
    after = json_out(capsys, ["review", "list", "--json", "--home", home])
    assert after["waiting"] == len(queue) - 1 and after["decided_since_last_run"] == 1


def test_audit_verify_and_export_json(demo_copy, capsys, tmp_path):
    home = demo_copy.home
    entries = AuditLog(home).entries()
    verified = json_out(capsys, ["audit", "verify", "--json", "--home", str(home.root)])
    assert verified["ok"] and verified["log"]["entries"] == len(entries) and verified["disagrees"] == []
    exported = json_out(capsys, ["audit", "export", "--json", "--out", str(tmp_path / "export.json"),
                                 "--home", str(home.root)])
    on_disk = json.loads((tmp_path / "export.json").read_text(encoding="utf-8"))
    assert exported["head"] == on_disk["head"] and exported["entries"] == len(entries) == len(on_disk["entries"])

    lines = home.audit_log_file.read_text(encoding="utf-8").splitlines(keepends=True)
    home.audit_log_file.write_text("".join(lines[:-1]), encoding="utf-8")  # the last entry deleted
    broken = json_out(capsys, ["audit", "verify", "--json", "--home", str(home.root)], code=1)
    assert broken["ok"] is False and broken["disagrees"] and broken["log"]["entries"] == len(entries) - 1


def test_product_read_password_and_keys_rotate_json(demo_copy, capsys, tmp_path):
    home = demo_copy.home
    recipient = "health_family_doctors"
    table = read_product(home.product_file(recipient), product_key(home, recipient))
    read = json_out(capsys, ["product", "read", recipient, "--json", "--sql", "SELECT count(*) AS n FROM product",
                             "--home", str(home.root)])
    assert read["rows"] == table.num_rows and read["result"] == [{"n": table.num_rows}]
    assert [c["name"] for c in read["columns"]] == table.column_names
    assert read["key_id"] == product_key_id(home.product_file(recipient))
    written = json_out(capsys, ["product", "read", recipient, "--json", "--out", str(tmp_path / "p.parquet"),
                                "--home", str(home.root)])
    assert written["out"] == str(tmp_path / "p.parquet") and pq.read_table(written["out"]).num_rows == table.num_rows

    password = json_out(capsys, ["product", "password", recipient, "--json", "--home", str(home.root)])
    assert password["key_id"] == read["key_id"]
    workbook = read_xlsx(home.office_file(recipient), password["password"])  # the password opens the workbook
    assert len(list(workbook[DATA_SHEET].iter_rows())) == table.num_rows + 1

    rotated = json_out(capsys, ["keys", "rotate", recipient, "--json", "--home", str(home.root)])
    assert rotated["recipient"] == recipient and rotated["old_key_id"] == read["key_id"] != rotated["new_key_id"]
    assert Path(rotated["retired_file"]).exists() and Path(rotated["key_file"]).exists()


def test_report_and_restore_list_json(demo_copy, capsys):
    home = demo_copy.home
    [(run_id,)] = query(home, "SELECT run_id FROM runs")
    report = json_out(capsys, ["report", "--json", "--home", str(home.root)])
    assert report["run_id"] == run_id and Path(report["report"]).exists() and run_id in report["report"]
    listed = json_out(capsys, ["restore", "--list", "--json", "--home", str(home.root)])
    assert [g["generation"] for g in listed["generations"]] == [g.name for g in Generations(home).published()]
    assert [g["run_id"] for g in listed["generations"] if g["current"]] == [run_id]


def test_json_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    # `silobreaker review list --json | head -1`: the reader goes away mid-document.
    home = DataHome.at(tmp_path)
    pairs = pd.DataFrame({"record_id_a": [f"census:{i:05d}" for i in range(3000)],
                          "record_id_b": [f"health:{i:05d}" for i in range(3000)], "score": 7.5,
                          "evidence": "name=exact (+5.0); birth_date=day (+6.1); address=similar (+1.0)"})
    home.warehouse_dir.mkdir(parents=True)
    with duckdb.connect(str(home.warehouse_file)) as con:
        con.execute("CREATE TABLE review_queue AS SELECT * FROM pairs")
    reader = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "review", "list", "--json", "--limit", "3000",
                               "--home", str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.readline().strip() == b"{"
    reader.stdout.close()
    _, err = reader.communicate(timeout=120)
    assert reader.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err


@pytest.mark.parametrize("command", [["run"], ["corrections", "export", "--source", "census"], ["lookup", "--as", "grid_workers_cuiyuan_1", "--name", "张三"]])
def test_a_command_given_its_home_creates_nothing_where_it_is_run(command, tmp_path, monkeypatch):
    """``--home H`` is the home: ``./var`` (the default when none is named) is not created in the folder the
    command runs from, whatever the command then makes of its other arguments."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("SILOBREAKER_HOME", raising=False)
    main([*command, "--home", str(tmp_path / "home"), *(["--sources", str(tmp_path / "none.yaml")]
                                                        if command[0] != "lookup" else [])])
    assert list(cwd.iterdir()) == []


def test_product_read_says_what_de_identification_did_to_an_analyst_product(published_demo, capsys, tmp_path):
    # Seen (users audit): statistics_analysts' street, community and grid were empty in every row, and
    # nothing an analyst reading it saw said why.
    import shutil

    from pipelines.privacy_cli import deidentified_text

    home = published_demo[0].home
    read = json_out(capsys, ["product", "read", "statistics_analysts", "--json", "--home", str(home.root)])
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        [(logged,)] = con.execute("SELECT disclosure FROM publication_log WHERE recipient = 'statistics_analysts'").fetchall()
    assert read["disclosure"] == json.loads(logged) and read["disclosure"]["quasi_identifiers"]
    assert main(["product", "read", "statistics_analysts", "--limit", "1", "--home", str(home.root)]) == 0
    told = capsys.readouterr().err
    assert told.strip() == deidentified_text(read["disclosure"]) and told.startswith("注：本产品按 k-匿名发布（每种组合至少 5 行）")
    assert json_out(capsys, ["product", "read", "health_family_doctors", "--json", "--home", str(home.root)])["disclosure"] is None
    # The recipient reads its copy away from the platform (no warehouse there): the file itself says it (re-check).
    copy, key = tmp_path / "copy.parquet", tmp_path / "analysts.hex"
    shutil.copyfile(home.product_file("statistics_analysts"), copy)
    key.write_text(product_key(home, "statistics_analysts").hex(), encoding="ascii")
    away = json_out(capsys, ["product", "read", "statistics_analysts", "--json", "--file", str(copy), "--key-file",
                             str(key), "--home", str(tmp_path / "elsewhere")])
    assert away["disclosure"] == read["disclosure"]


def test_the_de_identification_is_told_in_chinese_column_by_column():
    from pipelines.privacy_cli import deidentified_text

    told = deidentified_text({"k_required": 5, "quasi_identifiers": ["sex", "age", "street", "community", "grid"],
                              "age_band": 10, "area": "street", "sex_shown": False, "rows_suppressed": 12,
                              "rows_blank": 12, "rows_left_out": 0})
    assert ("年龄按10岁分段；不显示社区、网格；不显示性别；另有 12 行的年龄、性别、网格、社区、街道和其他部门也知道的重点人群"
            "类别都不显示") in told
    assert "不显示出生年份" in deidentified_text({"k_required": 5, "quasi_identifiers": ["birth_year"], "age_band": None})


def test_an_analyst_is_told_in_chinese_which_rows_are_as_last_released():
    from pipelines.privacy_cli import deidentified_text

    told = deidentified_text({"k_required": 5, "quasi_identifiers": ["age"], "age_band": 5, "classes_held": 3,
                              "rows_held": 240, "rows_outdated": 2, "classes_withheld": 1, "rows_withheld": 7,
                              "rows_behind": 4})
    assert "3 个组合自此前发布以来的变动还不足以混在 5 人之中，照此前发布列出 240 行（其中 2 行已与现状不同）" in told
    assert "1 个组合暂不列出（7 行），变动凑足 5 人后恢复" in told and "4 行最新变动暂未列出，凑足 5 人后一并列出" in told
    assert told.endswith("shown as then released")
    plain = deidentified_text({"k_required": 5, "quasi_identifiers": ["age"], "age_band": 5, "rows_held": 0})
    assert "此前发布" not in plain and "released" not in plain
    assert "未能与此前发布逐组核对" in deidentified_text({"k_required": 5, "quasi_identifiers": ["age"], "age_band": 5,
                                                 "not_held": "its rows were not kept"})


def test_a_warning_logged_during_the_run_is_in_the_summary_and_its_json(tmp_path, monkeypatch):
    # Seen (users audit): "blocking rule name: skipped 185 block(s) …" printed as a raw log line every night, in
    # neither the summary's WARNING lines nor run --json, where monitoring reads.
    import logging

    import assets.run_lifecycle as lifecycle
    import pipelines.cli as cli
    from pipelines.settings import DEMO_POLICY, Settings
    from pipelines.summary import build_summary

    def execute(defs, instance, settings, run_id, log_level, on_event=None):
        logging.getLogger("dedup.blocking").warning("blocking rule phone: skipped %d block(s)", 185)
        logging.getLogger("dedup.blocking").warning("blocking rule phone: skipped %d block(s)", 185)  # once in the summary
        logging.getLogger("dagster.something").warning("not ours")
        logging.getLogger("publish.x").warning("%d malformed", "x")  # reported by logging, never raised into the run
        return cli.RunOutcome(run_id, False, {}, {"publish": "stopped"}, settings)

    def begin_run(instance, home, run_id):
        # what putting the home in order warns of first (review: logged before the summary listened)
        logging.getLogger("assets.run_lifecycle").warning("key file(s) x.product.key were readable by other users")
        return []

    monkeypatch.setattr(cli, "_execute", execute)
    monkeypatch.setattr(lifecycle, "begin_run", begin_run)
    monkeypatch.setattr(logging, "raiseExceptions", False)  # logging's own report of the malformed call stays quiet
    outcome = cli.run_pipeline(Settings(tmp_path, DEMO_SOURCES, DEMO_POLICY))
    assert outcome.logged == [("assets.run_lifecycle", "key file(s) x.product.key were readable by other users"),
                              ("dedup.blocking", "blocking rule phone: skipped 185 block(s)")]
    summary = build_summary(outcome)
    assert "WARNING linking: blocking rule phone: skipped 185 block(s)" in summary.lines()
    assert {"subject": "linking", "message": "blocking rule phone: skipped 185 block(s)"}.items() <= \
        summary.as_dict()["warnings"][1].items()
    assert "WARNING run: key file(s) x.product.key were readable by other users" in summary.lines()
    assert not [h for h in logging.getLogger().handlers if isinstance(h, cli._WarningsKept)]  # gone after the run


def test_the_de_identification_note_counts_only_rows_released_blank_and_tells_of_withheld_categories():
    # Review: rows suppressed and then left out were told as released with blank columns; withheld categories were
    # not told; a product with birth_year alone was told of an age column it does not have.
    import pyarrow as pa

    from pipelines.privacy_cli import deidentified_text
    from publish.anonymity import anonymise
    from publish.policy import KAnonymity

    table = pa.table({"sex": ["M"] * 100 + ["F"], "age": [70] * 100 + [30], "key_populations": [[]] * 101})
    released, disclosure = anonymise(table, KAnonymity(k=5, known_populations=[]), [])
    told = deidentified_text(disclosure.as_dict())
    blank = sum(1 for row in released.to_pylist() if row["sex"] is None and row["age"] is None)
    assert disclosure.rows_suppressed == disclosure.rows_left_out == 1  # suppressed, then alone in its class: left out
    assert blank == disclosure.rows_blank == 0 and "另有" not in told
    assert "1 人未列入" in told
    told = deidentified_text({"k_required": 5, "quasi_identifiers": ["birth_year"], "age_band": 10, "flags_withheld": 3})
    assert "出生年份按10年分段" in told and "年龄" not in told and "3 处重点人群类别在人数太少的地区不显示" in told
