"""Blocking in DuckDB: pairs only within blocks, each once, oversized blocks skipped and reported."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from dedup.blocking import blocked_pairs_sql, candidate_pairs, coded_keys, iter_pair_batches
from dedup.prepare import prepare_records
from dedup.settings import BlockingRule, LinkSettings
from tests.dedup.dedup_helpers import records


def keyed(**columns: list[str | None]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({"rid": np.arange(n, dtype=np.int32)})
    for name, values in columns.items():
        frame[name] = pd.Series(values, dtype="string")
    return frame


def pairs_of(frame: pd.DataFrame, settings: LinkSettings) -> tuple[set[tuple[int, int, int]], object]:
    with duckdb.connect() as con:
        report = candidate_pairs(con, frame, settings)
        batches = list(iter_pair_batches(con, 2))
    assert all(len(rid_l) == 2 for rid_l, _, _ in batches[:-1]), "a batch other than the last is not of the chunk size"
    assert all(0 < len(rid_l) <= 2 for rid_l, _, _ in batches[-1:])
    found = {
        (int(a), int(b), int(rule))
        for rid_l, rid_r, rules in batches
        for a, b, rule in zip(rid_l, rid_r, rules, strict=True)
    }
    return found, report


def test_pairs_share_every_key_and_missing_never_matches() -> None:
    frame = keyed(
        name_pinyin=["zhang wei", "zhang wei", "zhang wei", None, None, "li na"],
        birth_ym=["1985-03", "1985-03", "1985-04", "1985-03", "1985-03", "1985-03"],
    )
    settings = LinkSettings(blocking_rules=(BlockingRule("pinyin_month", keys=("name_pinyin", "birth_ym")),))
    found, report = pairs_of(frame, settings)
    assert found == {(0, 1, 0)}
    assert report.candidate_pairs == 1 and report.pairs_per_rule == {"pinyin_month": 1}


def test_keys_are_blocked_on_as_codes_equal_where_the_text_is_and_null_where_it_is_missing() -> None:
    frame = keyed(phone=["139", None, "139", "138", None], name_pinyin=["li na", "li na", None, "li nа", "li na"])
    coded = coded_keys(frame)
    assert coded["rid"].tolist() == [0, 1, 2, 3, 4]
    for key in ("phone", "name_pinyin"):
        text, codes = frame[key], coded[key]
        assert (codes.isna() == text.isna()).all()
        for i in range(len(frame)):
            for j in range(len(frame)):
                if text.notna()[i] and text.notna()[j]:
                    assert (codes[i] == codes[j]) == (text[i] == text[j]), (key, i, j)
    # "li nа" above ends in a Cyrillic а: another name, another code, no pair.
    settings = LinkSettings(blocking_rules=(BlockingRule("name", keys=("name_pinyin",)),))
    assert pairs_of(frame, settings)[0] == {(0, 1, 0), (0, 4, 0), (1, 4, 0)}


def test_pair_found_by_two_rules_appears_once_with_the_first_rule() -> None:
    frame = keyed(id_number=["A", "A", "B"], phone=["1", "1", "1"])
    settings = LinkSettings(
        blocking_rules=(BlockingRule("id_number", keys=("id_number",)), BlockingRule("phone", keys=("phone",)))
    )
    found, report = pairs_of(frame, settings)
    assert found == {(0, 1, 0), (0, 2, 1), (1, 2, 1)}
    assert report.pairs_per_rule == {"id_number": 1, "phone": 3}
    assert report.candidate_pairs == 3


def test_oversized_block_is_skipped_and_reported() -> None:
    # Ten records share a placeholder phone; two share a real one.
    frame = keyed(phone=["00000000000"] * 10 + ["13800138000", "13800138000"])
    settings = LinkSettings(blocking_rules=(BlockingRule("phone", keys=("phone",), max_block_size=5),))
    found, report = pairs_of(frame, settings)
    assert found == {(10, 11, 0)}
    assert report.skipped_blocks == {"phone": 1}
    assert report.skipped_records == {"phone": 10}
    assert report.largest_skipped_block == {"phone": 10}


def test_a_skipped_placeholder_block_is_a_warning_a_common_name_is_not(caplog) -> None:
    # Seen (users audit): "blocking rule name: skipped 185 block(s)" was a warning every night, now in the summary.
    import logging

    frame = keyed(phone=["00000000000"] * 6, name_pinyin=["wang wei"] * 6)
    settings = LinkSettings(blocking_rules=(BlockingRule("phone", keys=("phone",), max_block_size=5),
                                            BlockingRule("name", keys=("name_pinyin",), max_block_size=5)))
    with caplog.at_level(logging.INFO, logger="dedup.blocking"):
        pairs_of(frame, settings)
    levels = {r.getMessage().split(":")[0]: r.levelname for r in caplog.records if "skipped" in r.getMessage()}
    assert levels == {"blocking rule phone": "WARNING", "blocking rule name": "INFO"}


def test_rule_cap_falls_back_to_the_settings_cap() -> None:
    frame = keyed(phone=["1"] * 4)
    found, report = pairs_of(frame, LinkSettings(blocking_rules=(BlockingRule("phone", keys=("phone",)),), max_block_size=3))
    assert found == set() and report.skipped_blocks == {"phone": 1}


def test_sql_is_text_with_the_rule_index() -> None:
    sql = blocked_pairs_sql(BlockingRule("phone", keys=("phone",)), 2, 50, "dedup_blocks")
    assert "l.rid < r.rid" in sql and "BETWEEN 2 AND 50" in sql and "2::SMALLINT" in sql


@pytest.mark.parametrize("block", [2, 7, 30])
def test_pair_count_is_n_choose_2_per_block(block: int) -> None:
    frame = keyed(phone=[str(index // block) for index in range(block * 4)])
    found, report = pairs_of(frame, LinkSettings(blocking_rules=(BlockingRule("phone", keys=("phone",)),)))
    assert len(found) == report.candidate_pairs == 4 * block * (block - 1) // 2
    assert all(a < b for a, b, _ in found)


def test_records_without_birth_date_and_with_mistyped_identifiers_still_meet() -> None:
    # FEBRL-like records: no birth date on one side and the identifier mistyped, so neither the
    # identifier nor any birth-date rule pairs them. Name + community does, and so does community +
    # house number (the street number of a Latin address) when the name is mistyped too.
    rows = records(
        [
            {"record_id": "a:1", "source": "a", "name": "peachey deakin", "birth_date": "1969-08-24",
             "id_number": "8507376", "address": "16 officer crescent tesbury nollamara 2144 tas", "community": "2144"},
            {"record_id": "b:1", "source": "b", "name": "peachey deakin", "id_number": "3378938",
             "address": "16 officer crescent tes bury nollamara 2144 tas", "community": "2144"},
            {"record_id": "b:2", "source": "b", "name": "peachy deakn", "id_number": "3378939",
             "address": "16 officer cresent tesbury nollamara 2144 tas", "community": "2144"},
        ]
    )
    prepared = prepare_records(rows)
    assert prepared["house_number"].tolist() == ["16", "16", "16"]
    found, _ = pairs_of(prepared, LinkSettings())
    names = [rule.name for rule in LinkSettings().blocking_rules]
    rules = {(left, right): names[rule] for left, right, rule in found}
    assert rules[(0, 1)] == "name_community"
    assert rules[(0, 2)] == "community_house_number"


def test_chinese_addresses_have_no_house_number() -> None:
    # A Chinese address's flat is the household key; its first number is a building, far too coarse.
    prepared = prepare_records(records([{"record_id": "a:1", "address": "示范区西溪街道翠苑社区3幢2单元501室"}]))
    assert prepared["house_number"].isna().all()
    assert prepared["household"].tolist() == ["翠苑|3-2-501"]


def test_an_address_abbreviated_to_the_compound_name_points_to_the_same_flat() -> None:
    # Clerks write 翠苑社区, 翠苑小区 or just 翠苑 before the building: one flat. Without 社区/小区/村 the
    # name must sit right before the numbers and be followed by at least two of them (a flat, not a
    # building on a road), and a Latin address's words are never a place.
    addresses = ["示范区西溪街道翠苑社区3幢2单元501室", "西溪街道翠苑小区3-2-501", "翠苑3-2-501", "文一西路88号翠苑3幢2单元501室",
                 "西溪街道翠苑3幢501", "西溪路88号", "示范区3-2-501", "16 officer crescent berwick 3806 vic"]
    prepared = prepare_records(records([{"record_id": f"a:{i}", "address": a} for i, a in enumerate(addresses)]))
    assert prepared["household"].tolist()[:5] == ["翠苑|3-2-501"] * 4 + ["翠苑|3-501"]
    assert prepared["household"].iloc[5:].isna().all()
    # A village's 组/号 are not a community's building and room: 光明村3组15号 is not 光明社区3-15.
    villages = prepare_records(records([{"record_id": "a:1", "address": "光明村3组15号"},
                                        {"record_id": "a:2", "address": "光明社区3-15"}]))
    assert villages["household"].tolist() == ["光明村|3-15", "光明|3-15"]


def test_a_raw_export_without_a_community_column_blocks_on_the_place_its_addresses_name() -> None:
    # The same FEBRL-like records as a user exports them: no community column. The postcode the address
    # ends with is the community, so name + community and community + house number still pair them.
    rows = records(
        [
            {"record_id": "a:1", "source": "a", "name": "peachey deakin", "birth_date": "1969-08-24",
             "id_number": "8507376", "address": "16 officer crescent tesbury nollamara 2144 tas"},
            {"record_id": "b:1", "source": "b", "name": "deakin peachey", "id_number": "3378938",
             "address": "16 officer crescent tes bury nollamara 2144 tas"},
            {"record_id": "b:2", "source": "b", "name": "peachy deakn", "id_number": "3378939",
             "address": "16 officer cresent tesbury nollamara 2144 tas"},
        ]
    )
    prepared = prepare_records(rows)
    assert prepared["community"].tolist() == ["2144", "2144", "2144"]
    assert prepared["name_words"].tolist() == ["deakin peachey", "deakin peachey", "deakn peachy"]
    found, _ = pairs_of(prepared, LinkSettings())
    names = [rule.name for rule in LinkSettings().blocking_rules]
    rules = {(left, right): names[rule] for left, right, rule in found}
    assert rules[(0, 1)] == "name_words", "surname and given name in the other order"
    assert rules[(0, 2)] == "community_house_number"


def test_a_record_without_a_birth_date_meets_its_namesake_at_its_flat() -> None:
    # A justice case file gives a name and an address, no birth date; 王伟 is too common in 翠苑社区 for the
    # name and name + community rules.
    common = [{"record_id": f"h:{i}", "source": "health", "name": "王伟", "birth_date": f"19{30 + i}-01-01",
               "address": f"示范区西溪街道翠苑社区{10 + i}幢1单元101室"} for i in range(55)]
    rows = records([
        {"record_id": "j:1", "source": "justice", "name": "王伟", "address": "西溪街道翠苑社区3-2-501"},
        {"record_id": "c:1", "source": "civil_affairs", "name": "王伟", "birth_date": "1985-03-12",
         "address": "示范区西溪街道翠苑社区3幢2单元501室"},
        *common,
    ])
    found, report = pairs_of(prepare_records(rows), LinkSettings())
    names = [rule.name for rule in LinkSettings().blocking_rules]
    rules = {(left, right): names[rule] for left, right, rule in found}
    assert rules[(0, 1)] == "name_household"
    assert not any(left == 0 and right > 1 for left, right in rules), "no other 王伟 elsewhere is paired"


def test_a_record_is_blocked_under_each_name_it_is_known_by() -> None:
    # Civil affairs still has her former name; the census gives her new name and the former one as 曾用名.
    rows = records([
        {"record_id": "civil_affairs:1", "source": "civil_affairs", "name": "王小芳", "birth_date": "1980-05-02"},
        {"record_id": "census:1", "source": "census", "name": "王芳", "alias": "王小芳", "birth_date": "1980-05"},
        {"record_id": "census:2", "source": "census", "name": "王芳", "birth_date": "1980-05"},
    ])
    prepared = prepare_records(rows)
    found, _ = pairs_of(prepared, LinkSettings())
    names = [rule.name for rule in LinkSettings().blocking_rules]
    rules = {(left, right): names[rule] for left, right, rule in found}
    assert rules[(0, 1)] == "pinyin_birth_month", "her former name and birth month, under the census record's alias"
    assert (0, 2) not in rules, "no alias, no pair"
    assert all(left != right for left, right, _ in found), "a record never pairs with its own alias"


def test_the_pairs_inside_components_are_those_whose_two_records_share_a_label() -> None:
    from dedup.backend import DuckDBBackend
    from dedup.blocking import PAIRS_TABLE

    rng = np.random.default_rng(3)
    n = 300
    labels = rng.integers(0, 40, n)
    pairs = np.unique(np.sort(rng.integers(0, n, (5000, 2)), axis=1), axis=0)
    pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    with duckdb.connect() as con:
        frame = pd.DataFrame({"rid_l": pairs[:, 0].astype(np.int32), "rid_r": pairs[:, 1].astype(np.int32),
                              "rule": np.zeros(len(pairs), dtype=np.int16)})
        con.register("given", frame)
        con.execute(f"CREATE TABLE {PAIRS_TABLE} AS SELECT * FROM given")
        rid_l, rid_r = DuckDBBackend(con).pairs_inside(labels)
    expected = {(int(a), int(b)) for a, b in pairs if labels[a] == labels[b]}
    assert 0 < len(expected) < len(pairs)
    assert sorted(zip(rid_l.tolist(), rid_r.tolist(), strict=True)) == sorted(expected)
