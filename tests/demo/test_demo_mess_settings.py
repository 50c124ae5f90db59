"""MessSettings: the default is the demo district byte for byte; a stress setting changes what it says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demo.generate import (
    ABBREVIATED_ADDRESS_STYLES,
    ADDRESS_STYLES,
    MESS_RATES,
    REKEY_RATES,
    MessSettings,
    generate_demo,
)
from tests.demo.demo_helpers import files_under


def test_default_settings_give_the_demo_district_byte_for_byte(tmp_path: Path) -> None:
    generate_demo(tmp_path / "a", persons=400, seed=5)
    generate_demo(tmp_path / "b", persons=400, seed=5, mess=MessSettings(scale=1.0, duplicates="copied"))
    a, b = files_under(tmp_path / "a" / "demo"), files_under(tmp_path / "b" / "demo")
    assert [name for name in a if a[name] != b[name]] == []


def test_scale_multiplies_the_chosen_rates_and_caps_them() -> None:
    doubled = MessSettings(scale=2.0, defects=("homophone", "id_missing")).rates("census")
    assert doubled["homophone"] == 2 * MESS_RATES["census"]["homophone"]
    assert doubled["id_typo"] == MESS_RATES["census"]["id_typo"], "a defect not named keeps its rate"
    assert MessSettings(scale=3.0).rates("census")["id_missing"] == 0.95, "0.40 x 3 stops at 95 % of the rows"
    assert MessSettings(scale=3.0).rates("census")["malformed_id"] == MESS_RATES["census"]["malformed_id"]
    assert MessSettings(scale=2.0).moved_share == pytest.approx(0.10)
    assert MessSettings().rekey_rates() is None
    assert MessSettings(duplicates="rekeyed").rekey_rates() == REKEY_RATES
    assert MessSettings(addresses="abbreviated").address_styles("justice") == ABBREVIATED_ADDRESS_STYLES["justice"]
    assert MessSettings(addresses="abbreviated").address_styles("census") == ADDRESS_STYLES["census"]
    assert not MessSettings(addresses="abbreviated").is_default


@pytest.mark.parametrize(
    "kwargs", [{"scale": -1.0}, {"scale": True}, {"defects": ("bad_birth_date",)}, {"defects": "homophone"},
               {"duplicates": "retyped"}, {"addresses": "short"}]
)
def test_impossible_settings_are_refused_with_an_example(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. MessSettings\("):
        MessSettings(**kwargs)


@pytest.fixture(scope="module")
def rekeyed(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    summary = generate_demo(tmp_path_factory.mktemp("rekeyed"), persons=3000, seed=7,
                            mess=MessSettings(duplicates="rekeyed"))
    return pd.read_parquet(summary.ground_truth), pd.read_parquet(summary.persons_truth)


def test_rekeyed_repeat_entries_are_marked_and_carry_their_own_keying_errors(rekeyed) -> None:
    truth, _ = rekeyed
    duplicate = truth["defects"].str.contains("duplicate")
    health = truth[truth["source"] == "health"]
    repeat = health["true_person_id"].duplicated()
    assert (health["defects"].str.contains("duplicate") == repeat).all(), "every visit after the first, no other"
    assert truth.loc[truth["source"] == "justice", "defects"].str.contains("duplicate").any(), "second case files"
    typos = truth["defects"].str.contains("name_typo")
    assert typos.any() and (typos <= duplicate).all(), "a wrong character only where a clerk re-keyed the person"


def test_rekeyed_census_double_counts_are_movers_at_their_registered_address(rekeyed) -> None:
    truth, persons = rekeyed
    census = truth[(truth["source"] == "census") & truth["defects"].str.contains("duplicate")]
    assert len(census) > 0
    movers = set(persons.loc[persons["moved"], "person_id"])
    assert census["true_person_id"].isin(movers).all()
    assert not census["defects"].str.contains("moved").any(), "shown at the old flat, not the new one"


def test_abbreviating_clerks_write_the_compound_name_alone() -> None:
    from demo.population import Addresses

    flat = Addresses(*(np.array([v]) for v in (0, 3, 1, 3, 2, 501)))
    community = flat.community_names()[0]
    assert flat.text("full")[0].endswith(f"{community}3幢2单元501室")
    assert flat.text("abbreviated")[0] == f"{community.removesuffix('社区')}3-2-501"
    assert flat.text("abbreviated_no_unit")[0] == f"{community.removesuffix('社区')}3幢501"
