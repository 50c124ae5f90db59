"""The CLI that talks: a line per stage on stderr, and with --json one JSON document on stdout and nothing else.

One small demo runs as the operator runs it, in its own process (so anything a library prints on the
real stdout would break the JSON).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from connectors import load_sources
from core.home import DataHome
from pipelines.settings import DEMO_SOURCES
from publish import Generations

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^\[\s*(\d+\.\d) s\] (\S+ [a-z]+(?: [a-z_]+)?)(?:: (.*))?$")


@pytest.fixture(scope="module")
def demo_cli(tmp_path_factory):
    """``silobreaker demo --persons 100 --json -v`` in its own process: (home, stdout, stderr, exit code)."""
    home = tmp_path_factory.mktemp("cli-demo")
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "demo", "--persons", "100", "--seed", "5", "--json",
                           "-v", "--home", str(home)], cwd=REPO, capture_output=True, text=True, timeout=600)
    return DataHome.at(home), done.stdout, done.stderr, done.returncode


def query(home: DataHome, sql: str) -> list[tuple]:
    with duckdb.connect(str(home.warehouse_file), read_only=True) as con:
        return con.execute(sql).fetchall()


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