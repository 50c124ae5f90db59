"""Preparing many records reads the address columns in another process (dedup.prepare.address_columns beside
the rest): the prepared records are the same as when everything is read in this one."""

from __future__ import annotations

import pandas as pd
import pytest

import dedup.prepare as prepare
from core.processes import Beside
from tests.dedup.dedup_helpers import staged_demo


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> pd.DataFrame:
    return staged_demo(tmp_path_factory.mktemp("prepare_apart_home"), persons=300, seed=13)


@pytest.mark.parametrize("communities", ["given", "read from the address"])
def test_addresses_read_apart_give_the_same_prepared_records(staged, communities, monkeypatch) -> None:
    records = staged if communities == "given" else staged.drop(columns=["community"])
    here, here_facts = prepare.prepare_with_facts(records)

    started = []
    monkeypatch.setattr(prepare, "_ADDRESSES_APART_FROM", 1)
    monkeypatch.setattr(prepare, "cores", lambda: 2)
    monkeypatch.setattr(prepare, "Beside", lambda *a, **k: started.append(a[0]) or Beside(*a, **k))
    apart, apart_facts = prepare.prepare_with_facts(records)

    assert started == [prepare.address_columns]
    pd.testing.assert_frame_equal(apart, here)
    pd.testing.assert_frame_equal(apart_facts, here_facts)
    assert apart["household"].notna().any() and apart["community"].notna().any()
