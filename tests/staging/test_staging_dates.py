"""Dates in many formats, kept as precise as stated; points in time in UTC."""

import pandas as pd
import pytest

from core.errors import ConfigError
from core.vocabulary import DATE_FORMATS
from staging import DATE_COLUMNS, date_precision, parse_dates, parse_timestamps

YEAR_MONTH = ["%Y-%m", "%Y%m", "%Y/%m", "%Y年%m月"]


def parsed(raw, formats):
    row = parse_dates(pd.Series([raw], dtype=object), formats).iloc[0]
    return (None if pd.isna(row["date"]) else row["date"], None if pd.isna(row["precision"]) else row["precision"],
            bool(row["unparseable"]))


@pytest.mark.parametrize(
    "raw",
    [
        "1980-01-02",  # %Y-%m-%d
        "1980-1-2",
        "19800102",  # %Y%m%d
        "1980/01/02",  # %Y/%m/%d
        "1980/1/2",
        "1980年01月02日",  # %Y年%m月%d日
        "1980年1月2日",
        "1980.01.02",  # %Y.%m.%d
        "1980.1.2",
        "１９８０－０１－０２",  # full-width digits and dash
        " 1980 - 01 - 02 ",
        "1980-01-02 00:00:00",  # an Excel date cell read as a date-time
        "1980-01-02T00:00:00",
        "1980/1/2 0:00",
    ],
)
def test_every_default_format_gives_a_day(raw):
    assert parsed(raw, DATE_FORMATS) == ("1980-01-02", "day", False)


@pytest.mark.parametrize("raw", ["1980-01", "198001", "1980/1", "1980年1月", "１９８００１"])
def test_year_month_formats_give_a_month(raw):
    assert parsed(raw, YEAR_MONTH) == ("1980-01", "month", False)


@pytest.mark.parametrize(("raw", "formats"), [("1980", ["%Y"]), ("1980年", ["%Y年"])])
def test_year_only_formats_give_a_year(raw, formats):
    assert parsed(raw, formats) == ("1980", "year", False)


@pytest.mark.parametrize("raw", ["garbage", "不详", "1980-13-45", "1980-02-30", "1980-01-02 13:45:00", "0"])
def test_values_no_format_reads_are_unparseable(raw):
    assert parsed(raw, DATE_FORMATS) == (None, None, True)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_missing_values_are_not_unparseable(raw):
    assert parsed(raw, DATE_FORMATS) == (None, None, False)


def test_packed_formats_need_full_width_fields():
    # strptime alone would read 198011 as 1980-01-01 with %Y%m%d; it is November 1980.
    assert parsed("198011", ["%Y%m%d", "%Y%m"]) == ("1980-11", "month", False)


def test_formats_are_tried_in_order():
    assert parsed("1980-01-02", ["%Y-%m-%d", "%Y-%d-%m"]) == ("1980-01-02", "day", False)
    assert parsed("1980-01-02", ["%Y-%d-%m", "%Y-%m-%d"]) == ("1980-02-01", "day", False)


def test_drop_time_keeps_the_day_of_a_timestamp():
    result = parse_dates(pd.Series(["2024-05-17 10:23:45"]), ["%Y-%m-%d"], drop_time=True)
    assert result["date"].tolist() == ["2024-05-17"]


def test_result_frame_keeps_index_and_dtypes():
    result = parse_dates(pd.Series(["1980-01-02", None], index=[7, 9]), DATE_FORMATS)
    assert tuple(result.columns) == DATE_COLUMNS
    assert list(result.index) == [7, 9]
    assert result.dtypes.astype(str).tolist() == ["string", "string", "boolean"]


@pytest.mark.parametrize(
    ("date_format", "precision"),
    [("%Y-%m-%d", "day"), ("%Y年%m月%d日", "day"), ("%Y%m", "month"), ("%Y", "year"), ("%Y-%m-%d %H:%M:%S", "day")],
)
def test_date_precision(date_format, precision):
    assert date_precision(date_format) == precision


@pytest.mark.parametrize("formats", [[], ["%m-%d"]])
def test_bad_format_lists_are_config_errors(formats):
    with pytest.raises(ConfigError, match="%Y"):
        parse_dates(pd.Series(["1980-01-02"]), formats)


@pytest.mark.parametrize(
    ("raw", "expected_utc"),
    [
        ("2024-05-01 10:00:00", "2024-05-01 02:00:00+00:00"),  # no offset: China Standard Time
        ("2024-05-01T10:00:00+08:00", "2024-05-01 02:00:00+00:00"),
        ("2024-05-01T02:00:00Z", "2024-05-01 02:00:00+00:00"),
        ("2024-05-01", "2024-04-30 16:00:00+00:00"),  # midnight in Beijing
        ("２０２４／５／１　10:00", "2024-05-01 02:00:00+00:00"),  # via the extra format
    ],
)
def test_parse_timestamps(raw, expected_utc):
    result = parse_timestamps(pd.Series([raw]), ["%Y/%m/%d %H:%M"])
    assert result["timestamp"].dtype == "datetime64[us, UTC]"
    assert str(result["timestamp"].iloc[0]) == expected_utc
    assert not result["unparseable"].iloc[0]


def test_parse_timestamps_flags_garbage_but_not_missing():
    result = parse_timestamps(pd.Series(["yesterday", None, ""], dtype=object))
    assert result["timestamp"].isna().all()
    assert result["unparseable"].tolist() == [True, False, False]
