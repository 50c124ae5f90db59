"""The ``silobreaker`` command line: dedup on a file, and configuration errors as exit code 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.home import DataHome
from pipelines.cli import main
from staging import id_check_digit

ID17 = "33010619800101001"
VALID = ID17 + id_check_digit(ID17)


def test_dedup_command_maps_every_record(tmp_path, capsys):
    source = tmp_path / "people.csv"
    pd.DataFrame({
        "record_id": ["a:1", "b:1", "c:1"],
        "source": ["a", "b", "c"],
        "name": ["王晓明", "王小明", "李娜"],
        "sex": ["男", "1", "F"],
        "birth_date": ["1980-01-01", "1980-01", "1990-05-05"],
        "id_number": [VALID, VALID, ""],
        "phone": ["13800000000", "", ""],
        "address": ["", "", ""],
    }).to_csv(source, index=False)
    output = tmp_path / "persons.parquet"
    assert main(["dedup", str(source), str(output)]) == 0
    result = pd.read_parquet(output).set_index("record_id")["person_id"]
    assert sorted(result.index) == ["a:1", "b:1", "c:1"]
    assert result["a:1"] == result["b:1"] != result["c:1"]
    captured = capsys.readouterr()
    assert json.loads(captured.out)["persons"] == 2  # stdout: the statistics alone
    # stderr: each phase as it ends, with what it produced and the time since the command started
    phases = [line.split("] ", 1)[1].split(":")[0] for line in captured.err.splitlines() if line.startswith("[")]
    assert phases == ["读取 read", "准备 prepare", "分块 blocking", "训练 train", "比对评分 compare", "聚类 cluster",
                      "写出 write"]
    assert "聚类 cluster: 2 人 (" in captured.err and "读取 read: 3 条记录 (" in captured.err


def test_bad_sources_file_exits_2_naming_file_and_key(tmp_path, capsys):
    sources = tmp_path / "sources.yaml"
    sources.write_text("version: 1\nsources:\n  - name: x\n    kind: ftp\n", encoding="utf-8")
    code = main(["run", "--home", str(tmp_path / "home"), "--sources", str(sources)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(sources) in err and "sources[0].kind" in err


@pytest.mark.parametrize(("persons", "message"), [("0", "must be at least 1"), ("10", "must be at least 100")])
def test_impossible_demo_size_is_refused(tmp_path, capsys, persons, message):
    # Seen: --persons 10 ended in a traceback from the generator.
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--persons", persons, "--home", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (DataHome.at(tmp_path).demo_dir).exists()


def test_version_and_verbose_after_the_subcommand(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("silobreaker ")
    # -v where users type it, after the subcommand (it used to be accepted only before it)
    assert main(["review", "list", "-v", "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" not in err and "run the pipeline first" in err
