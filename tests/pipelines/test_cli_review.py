"""``silobreaker review list|decide`` against a published warehouse, and ``silobreaker dedup --previous``."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from core.home import DataHome
from dedup import DecisionLog
from dedup.review import QUEUE_COLUMNS
from pipelines.cli import main
from staging import id_check_digit

ID17 = "33010619800101001"
VALID = ID17 + id_check_digit(ID17)


@pytest.fixture
def home(tmp_path):
    """A data home whose published warehouse queues two pairs for review."""
    queue = pd.DataFrame([
        {"record_id_a": "civil_affairs:9", "record_id_b": "justice:9", "score": 8.5, "decision": "near_miss",
         "rule": "birth_date_sex", "evidence": "name=different (-3.0); birth_date=exact (+6.1)",
         "person_id_a": "P1", "person_id_b": "P2", "same_person_now": False, "source_a": "civil_affairs",
         "name_a": "孙丽", "birth_date_a": "1960-02-02", "source_b": "justice", "name_b": "孙美丽",
         "birth_date_b": "1960-02-02", "first_seen_run": "run-1"},
        {"record_id_a": "census:5", "record_id_b": "health:5", "score": 7.0, "decision": "near_miss",
         "rule": "name_birth", "evidence": "name=exact (+5.0)", "person_id_a": "P3", "person_id_b": "P4",
         "same_person_now": False, "source_a": "census", "name_a": "李娜", "source_b": "health", "name_b": "李娜",
         "first_seen_run": "run-1"},
    ]).reindex(columns=list(QUEUE_COLUMNS))
    mapping = pd.DataFrame({"record_id": ["civil_affairs:9", "justice:9", "census:5", "health:5"],
                            "person_id": ["P1", "P2", "P3", "P4"]})
    (DataHome.at(tmp_path).warehouse_dir).mkdir()
    with duckdb.connect(str(DataHome.at(tmp_path).warehouse_file)) as con:
        con.execute("CREATE TABLE review_queue AS SELECT * FROM queue")
        con.execute("CREATE TABLE record_person AS SELECT * FROM mapping")
    return tmp_path


def test_review_list_prints_both_records_and_the_evidence(home, capsys):
    assert main(["review", "list", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "2 pair(s) await review" in out
    assert "civil_affairs:9  ~  justice:9" in out and "孙美丽" in out and "name=different (-3.0)" in out
    assert out.index("justice:9") < out.index("health:5")  # highest score first


def test_review_decide_records_the_decision_and_the_pair_leaves_the_list(home, capsys):
    code = main(["review", "decide", "justice:9", "civil_affairs:9", "same", "--by", "wang.fang",
                 "--note", "married name", "--home", str(home)])
    assert code == 0
    [row] = DecisionLog.in_home(home).load().itertuples()
    assert (row.record_id_a, row.record_id_b, row.decision, row.decided_by, row.note) == (
        "civil_affairs:9", "justice:9", "same", "wang.fang", "married name")
    capsys.readouterr()
    main(["review", "list", "--home", str(home)])
    out = capsys.readouterr().out
    assert "1 pair(s) await review (1 decided since the last run" in out and "justice:9" not in out


def test_review_decide_refuses_an_unknown_record(home, capsys):
    assert main(["review", "decide", "justice:9", "census:404", "different", "--home", str(home)]) == 2
    assert "census:404" in capsys.readouterr().err
    assert not DecisionLog.in_home(home).path.exists()


def test_review_without_a_publication_says_to_run_first(tmp_path, capsys):
    assert main(["review", "list", "--home", str(tmp_path)]) == 2
    assert "run the pipeline first" in capsys.readouterr().err


def test_dedup_with_previous_keeps_ids(tmp_path):
    people = pd.DataFrame({
        "record_id": ["b:1", "c:1", "a:1"],
        "source": ["b", "c", "a"],
        "name": ["王小明", "李娜", "王晓明"],
        "sex": ["1", "F", "男"],
        "birth_date": ["1980-01", "1990-05-05", "1980-01-01"],
        "id_number": [VALID, "", VALID],
        "phone": ["", "", "13800000000"],
        "address": ["", "", ""],
    })
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    people.iloc[:2].to_csv(tmp_path / "v1.csv", index=False)
    people.to_csv(tmp_path / "v2.csv", index=False)
    assert main(["dedup", str(tmp_path / "v1.csv"), str(first)]) == 0
    assert main(["dedup", str(tmp_path / "v2.csv"), str(second), "--previous", str(first)]) == 0
    before = pd.read_parquet(first).set_index("record_id")["person_id"]
    after = pd.read_parquet(second).set_index("record_id")["person_id"]
    # a:1 now sorts first in 王小明's person, yet the person keeps the id it had.
    assert after["a:1"] == after["b:1"] == before["b:1"] and after["c:1"] == before["c:1"]
    assert main(["dedup", str(tmp_path / "v2.csv"), str(second)]) == 0
    assert pd.read_parquet(second).set_index("record_id")["person_id"]["a:1"] != before["b:1"]
