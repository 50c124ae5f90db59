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


# The census knows a birth year and month; this export writes it as the first of the month and says so.
CENSUS_MONTH = records(
    [
        {"record_id": "census:1", "source": "census", "name": "刘秀兰", "sex": "女", "birth_date": "1964-05-01",
         "birth_date_precision": "month", "address": "示范区西溪街道翠苑社区3幢2单元501室", "community": "翠苑社区"},
        {"record_id": "health:1", "source": "health", "name": "刘秀兰", "sex": "2", "birth_date": "1964-05-17",
         "birth_date_precision": "day", "address": "西溪街道翠苑社区3-2-501", "community": ""},
    ]
)


def test_a_month_precision_date_is_compared_as_a_month_not_as_the_first_of_it(tmp_path: Path) -> None:
    source = tmp_path / "census.csv"
    CENSUS_MONTH.to_csv(source, index=False, encoding="utf-8-sig")
    stats = dedup_file(source, tmp_path / "out.parquet", explain=True)
    mapping = read_output(tmp_path / "out.parquet")
    assert mapping["census:1"] == mapping["health:1"]
    pair = pd.read_parquet(stats["explain"]).iloc[0]
    assert (pair["birth_date"], pair["decision"]) == ("month", "link")
    assert stats["optional_columns"] == ["community", "birth_date_precision"]


def test_without_the_precision_column_the_first_of_the_month_reads_as_a_day(tmp_path: Path) -> None:
    # The same export with the precision column left out: the engine cannot know, and the dates differ.
    source = tmp_path / "census.csv"
    CENSUS_MONTH.drop(columns=["birth_date_precision"]).to_csv(source, index=False, encoding="utf-8-sig")
    stats = dedup_file(source, tmp_path / "out.parquet", explain=True)
    mapping = read_output(tmp_path / "out.parquet")
    assert mapping["census:1"] != mapping["health:1"]
    assert stats["optional_columns"] == ["community"]


def test_columns_the_engine_does_not_read_are_reported_as_ignored(tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    ROWS.assign(street="西溪街道", remarks="", grid="翠苑社区第1网格").to_parquet(source)
    stats = dedup_file(source, tmp_path / "out.parquet")
    assert stats["optional_columns"] == ["grid"]
    assert stats["ignored_columns"] == ["street", "remarks"]


def test_an_unknown_precision_is_terminal_and_names_the_value(tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    ROWS.assign(birth_date_precision=["day", "week", ""]).to_parquet(source)
    with pytest.raises(TerminalError, match=r"'week' in row 1.*day, month or year"):
        dedup_file(source, tmp_path / "out.parquet")


def test_a_registered_address_links_a_mover_the_register_keeps_at_home(tmp_path: Path) -> None:
    # Civil affairs keys the registered flat; the census counts her where she lives and gives her 户籍地址.
    # No ID number, a census month: the 户籍地址 is what places the two records together.
    rows = records(
        [
            {"record_id": "civil_affairs:1", "source": "civil_affairs", "name": "胡佳琳", "sex": "女",
             "birth_date": "2005-10-06", "address": "示范区西溪街道丰收社区12幢2单元1102室"},
            {"record_id": "census:1", "source": "census", "name": "胡佳琳", "sex": "女", "birth_date": "2005-10",
             "birth_date_precision": "month", "address": "示范区西溪街道翠苑社区6幢2单元101室",
             "hukou_address": "示范区西溪街道丰收社区12幢2单元1102室"},
        ]
    )
    source = tmp_path / "in.csv"
    rows.to_csv(source, index=False, encoding="utf-8-sig")
    stats = dedup_file(source, tmp_path / "out.parquet", explain=True)
    assert "hukou_address" in stats["optional_columns"]
    assert pd.read_parquet(stats["explain"]).iloc[0]["address"] == "registered"
    without = tmp_path / "without.csv"
    rows.drop(columns=["hukou_address"]).to_csv(without, index=False, encoding="utf-8-sig")
    stats = dedup_file(without, tmp_path / "out2.parquet", explain=True)
    explained = pd.read_parquet(stats["explain"])
    assert explained.empty or explained.iloc[0]["address"] == "different"
