"""``silobreaker corrections export`` (and ``quarantine export``): fails closed, and writes the department's own form."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest

from core.frames import write_frame
from pipelines.cli import main
from quality.corrections import DISAGREES, ISSUE_COLUMNS, QUARANTINED


def test_an_unknown_source_names_sources_yaml_and_the_declared_sources(tmp_path, capsys):
    code = main(["corrections", "export", "--source", "helth", "--home", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "未在" in err and "sources.yaml" in err and "(did you mean 'health'?)" in err
    assert "declared sources: civil_affairs, health, justice, census, consent_registry, grid_updates" in err


def test_nothing_run_yet_says_run_first(tmp_path, capsys):
    code = main(["corrections", "export", "--source", "health", "--home", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "run the pipeline first (silobreaker run)" in err and "尚未运行" in err
    assert not (tmp_path / "corrections").exists()


def test_quarantine_export_is_the_same_command_and_says_so(published_demo, tmp_path, capsys):
    settings, _ = published_demo
    home = str(settings.home)
    assert main(["quarantine", "export", "--source", "health", "--home", home, "--out", str(tmp_path / "q.csv")]) == 0
    assert main(["corrections", "export", "--source", "health", "--home", home, "--out", str(tmp_path / "c.csv")]) == 0
    assert (tmp_path / "q.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()
    capsys.readouterr()
    for command in (["quarantine", "--help"], ["quarantine", "export", "--help"]):
        with pytest.raises(SystemExit):
            main(command)
        assert "same as `corrections export`" in " ".join(capsys.readouterr().out.split())


def test_an_excel_source_gets_its_workbook_under_the_home_by_default(demo_copy, capsys):
    assert main(["corrections", "export", "--source", "justice", "--home", str(demo_copy.home)]) == 0
    path = demo_copy.home.corrections_file("justice", ".xlsx")
    assert str(path) in capsys.readouterr().out
    sheet = openpyxl.load_workbook(path)["在册人员"]
    header = [cell.value for cell in sheet[1]]
    assert header[-len(ISSUE_COLUMNS):] == list(ISSUE_COLUMNS) and "身份证号" in header
    ids = [row[header.index("身份证号")] for row in sheet.iter_rows(min_row=2)]
    assert ids and all(cell.data_type == "s" and cell.number_format == "@" for cell in ids if cell.value)
    kinds = {row[header.index("问题类型")].value for row in sheet.iter_rows(min_row=2)}
    assert DISAGREES in kinds and kinds <= {QUARANTINED, DISAGREES}


def test_a_source_that_cannot_be_read_again_still_gets_its_keys_and_values(demo_copy, capsys):
    (demo_copy.home.demo_dir / "health_visits.csv").unlink()
    out = demo_copy.home.root / "health.csv"
    assert main(["corrections", "export", "--source", "health", "--home", str(demo_copy.home), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "WARNING health: could not read the source again" in printed
    assert "disputed record(s) are no longer in health's extract" in printed
    rows = pd.read_csv(out, encoding="gbk", dtype=str, keep_default_na=False)
    disputed = rows[rows["问题类型"] == DISAGREES]
    assert len(disputed) > 0 and (disputed["visit_id"] != "").all()
    birth = disputed[disputed["问题字段"] == "出生日期（“dob”列）"]
    assert (birth["dob"] == birth["本部门的值"]).all() and (birth["diagnosis"] == "").all()


def test_a_latest_quarantine_that_cannot_be_read_exports_the_published_one_and_says_so(demo_copy, capsys):
    # Seen (an audit): a blocked run's quarantine frame damaged, or written before frames had digests, made the
    # export stop with a traceback (DamagedFrameError).
    home = demo_copy.home
    published = home.root / "published.csv"
    assert main(["corrections", "export", "--source", "health", "--home", str(home), "--out", str(published)]) == 0
    stored = home.asset_base("a-blocked-run", ["quarantine_health"]).with_suffix(".arrow")
    stored.parent.mkdir(parents=True)
    write_frame(pd.DataFrame({"record_id": ["health:1"]}), stored)
    stored.with_name(stored.name + ".sha256").unlink()
    capsys.readouterr()

    out = home.root / "health.csv"
    assert main(["corrections", "export", "--source", "health", "--home", str(home), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "WARNING health: the latest run's quarantine cannot be read" in printed and "no sha256 beside it" in printed
    assert out.read_bytes() == published.read_bytes()


@pytest.mark.parametrize("command", [["corrections", "export"], ["quarantine", "export"]])
def test_both_names_need_a_source(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(command)
    assert exit_.value.code == 2 and "--source" in capsys.readouterr().err
