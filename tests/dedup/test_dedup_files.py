"""``silobreaker dedup INPUT OUTPUT``: parquet and CSV in, parquet of person ids out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.errors import TerminalError
from dedup import dedup_file
from tests.dedup.dedup_helpers import records, valid_id

ID_WANG = valid_id("330106", "19520708", "013")
ROWS = records(
    [
        {"record_id": "mz:1", "source": "mz", "name": "王建国", "sex": "男", "birth_date": "1952-07-08",
         "id_number": ID_WANG, "phone": "13511112222", "address": "示范区清河街道幸福社区2栋301"},
        {"record_id": "wj:9", "source": "wj", "name": "王建國", "sex": "1", "birth_date": "1952/7/8",
         "id_number": ID_WANG, "phone": "", "address": ""},
        {"record_id": "sf:3", "source": "sf", "name": "赵红", "sex": "F", "birth_date": "", "id_number": "",
         "phone": "", "address": ""},
    ]
)


def read_output(path: Path) -> dict[str, str]:
    out = pd.read_parquet(path)
    assert list(out.columns) == ["record_id", "person_id"]
    return dict(zip(out["record_id"], out["person_id"], strict=True))


def check(mapping: dict[str, str]) -> None:
    assert set(mapping) == {"mz:1", "wj:9", "sf:3"}
    assert mapping["mz:1"] == mapping["wj:9"] != mapping["sf:3"]


def test_parquet_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    ROWS.assign(extra="ignored").to_parquet(source)
    stats = dedup_file(source, tmp_path / "out" / "persons.parquet")
    check(read_output(tmp_path / "out" / "persons.parquet"))
    assert stats["records"] == 3 and stats["persons"] == 2 and stats["output"].endswith("persons.parquet")


def test_csv_round_trip_keeps_leading_zeros_and_x(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    ROWS.to_csv(source, index=False, encoding="utf-8-sig")
    dedup_file(source, tmp_path / "out.parquet")
    check(read_output(tmp_path / "out.parquet"))


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    source = tmp_path / "no_phone.csv"
    ROWS.drop(columns=["phone"]).to_csv(source, index=False)
    with pytest.raises(TerminalError) as error:
        dedup_file(source, tmp_path / "out.parquet")
    assert "phone" in str(error.value) and str(source) in str(error.value)
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("persons.json", "{}", "unknown file kind"),
        ("gbk.csv", None, "not UTF-8"),
    ],
)
def test_unreadable_input_is_terminal(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    source = tmp_path / name
    if content is None:
        source.write_bytes(",".join(ROWS.columns).encode() + "\n".encode() + "1,民政,王建国,男,,,,\n".encode("gbk"))
    else:
        source.write_text(content)
    with pytest.raises(TerminalError, match=message):
        dedup_file(source, tmp_path / "out.parquet")


def test_absent_input_is_terminal(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="no such file"):
        dedup_file(tmp_path / "missing.parquet", tmp_path / "out.parquet")


def test_repeated_record_id_is_terminal(tmp_path: Path) -> None:
    source = tmp_path / "twice.parquet"
    pd.concat([ROWS, ROWS.iloc[[0]]]).to_parquet(source)
    with pytest.raises(TerminalError, match="mz:1"):
        dedup_file(source, tmp_path / "out.parquet")
