"""The generator's own resident-ID arithmetic agrees with GB 11643 (table-driven)."""

from __future__ import annotations

import numpy as np
import pytest

from demo.idcard import build_ids, check_characters, digit_matrix, to_15_digit
from tests.demo.demo_helpers import id_is_valid


@pytest.mark.parametrize(
    ("first17", "check"),
    [
        ("11010519491231002", "X"),  # the standard's own example
        ("44052418800101001", "4"),
        ("33010619800102123", "0"),
        ("33010620000229456", "4"),
        ("65010219700615002", "8"),
    ],
)
def test_check_character_follows_mod_11_2(first17: str, check: str) -> None:
    assert chr(check_characters(digit_matrix(np.array([first17.encode()]))[:, :17])[0]) == check
    assert id_is_valid(first17 + check)


def test_built_ids_embed_area_birth_date_and_sex_parity() -> None:
    area = np.array([b"330106", b"650102", b"110105"])
    birth = np.array(["1980-01-02", "2000-02-29", "1926-12-31"], dtype="datetime64[D]")
    ids = build_ids(area, birth, np.array([1, 2, 999])).astype("U18").tolist()
    assert [i[:14] for i in ids] == ["33010619800102", "65010220000229", "11010519261231"]
    assert [i[14:17] for i in ids] == ["001", "002", "999"]
    assert all(id_is_valid(i) for i in ids)


def test_old_form_drops_the_century_and_the_check_character() -> None:
    old = to_15_digit(np.array([b"33010619800102123X"])).astype("U15").tolist()
    assert old == ["330106800102123"]
