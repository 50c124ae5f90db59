"""Household context: two records at one flat are weighed by how flatmates compare, not strangers.

A district of families: each person has a record in two departments; family members share the flat and
the home phone; some siblings are twins (one birthday, names a character apart). Half the twins carry
valid ID numbers (the model learns from them what twins look like); the other half carry none, so only
the household context can keep them apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dedup import LinkSettings, link_records
from dedup.compare import RecordArrays
from dedup.model import FellegiSunterModel, PairContext, flatmate_pairs, flatmate_u
from dedup.prepare import prepare_records
from dedup.settings import ModelSpec, PhoneComparison
from tests.dedup.dedup_helpers import records, valid_id

SURNAMES = "李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑"
FIRST = "子梓思雨欣浩宇俊嘉文"
SECOND = "涵轩琪萱睿航辰泽晨阳"
HOMOPHONE = {"涵": "晗", "轩": "萱", "琪": "淇", "睿": "瑞", "晨": "辰"}


def district(households: int = 300, seed: int = 5) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Records of ``households`` families of three, and the twin pairs that carry no ID number
    (person ids of both twins)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, str]] = []
    hidden_twins: list[tuple[str, str]] = []
    sequence = 0
    for h in range(households):
        surname = SURNAMES[h % len(SURNAMES)]
        flat = f"示范区西溪街道翠苑社区{h // 12 + 1}幢{h % 3 + 1}单元{101 + h % 12}室"
        short = f"西溪街道翠苑社区{h // 12 + 1}-{h % 3 + 1}-{101 + h % 12}"
        phone = f"0571{h:08d}"
        twins = h % 5 == 0  # the two children are twins
        births = [f"19{60 + h % 20}0{1 + h % 9}1{h % 10}", f"19{62 + h % 20}0{1 + (h + 3) % 9}2{h % 10}"]
        child = f"20{10 + h % 10:02d}{1 + h % 12:02d}{10 + h % 18:02d}"
        births += [child, child if twins else f"20{12 + h % 8:02d}{1 + (h + 5) % 12:02d}{10 + h % 17:02d}"]
        names = [surname + FIRST[h % 10] + SECOND[(h + 1) % 10], "王" + FIRST[(h + 2) % 10] + SECOND[(h + 3) % 10],
                 surname + FIRST[(h + 4) % 10] + SECOND[(h + 5) % 10]]
        # A twin's name shares the first character and differs in the second (子涵 / 子轩).
        names.append(names[2][:2] + SECOND[(h + 8) % 10] if twins else surname + FIRST[(h + 7) % 10] + SECOND[(h + 6) % 10])
        hide = twins and h % 10 == 5
        for member, (name, birth) in enumerate(zip(names, births, strict=True)):
            person = f"p{h}-{member}"
            sequence += 1
            odd = (1, 0, h % 2, h % 2)[member]  # the sequence number's parity is the sex: twins of one sex
            id_number = valid_id("330106", birth, f"{(2 * sequence + odd) % 1000:03d}")
            sex = "M" if int(id_number[16]) % 2 else "F"
            iso = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
            no_id = hide and member >= 2
            # The second department slips: a homophone (晗 for 涵) or, now and then, another character.
            slip = rng.random()
            slipped = name[:-1] + HOMOPHONE[name[-1]] if name[-1] in HOMOPHONE and slip < 0.3 else name
            slipped = name[:-1] + SECOND[(SECOND.index(name[-1]) + 1) % 10] if slip > 0.92 else slipped
            rows.append({"record_id": f"a:{person}", "source": "a", "name": name, "sex": sex, "birth_date": iso,
                         "id_number": "" if no_id else id_number, "phone": phone, "address": flat})
            rows.append({"record_id": f"b:{person}", "source": "b", "name": slipped, "sex": sex, "birth_date": iso,
                         "id_number": "" if no_id or rng.random() < 0.3 else id_number, "phone": phone, "address": short})
        if hide:
            hidden_twins.append((f"p{h}-2", f"p{h}-3"))
    return records(rows), hidden_twins


SETTINGS = LinkSettings(model=ModelSpec(u_sample_pairs=100_000))


@pytest.fixture(scope="module")
def families() -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    return district()


def person_of(result) -> dict[str, str]:
    return dict(zip(result.mapping["record_id"], result.mapping["person_id"], strict=True))


def merged(result, twins: list[tuple[str, str]]) -> int:
    person = person_of(result)
    return sum(person[f"a:{a}"] == person[f"a:{b}"] or person[f"b:{a}"] == person[f"b:{b}"] for a, b in twins)


def test_twins_without_id_numbers_stay_two_people(families) -> None:
    frame, twins = families
    result = link_records(frame, SETTINGS)
    assert len(twins) == 30
    assert result.stats["model"]["context_one_flat_pairs"] > 500
    assert result.stats["model"]["context_born_together_pairs"] >= 20
    assert merged(result, twins) == 0
    person = person_of(result)
    name = dict(zip(frame["record_id"], frame["name"], strict=True))
    alike = [t for pair in twins for t in pair if name[f"a:{t}"] == name[f"b:{t}"]]
    assert len(alike) > 40 and all(person[f"a:{t}"] == person[f"b:{t}"] for t in alike), "a twin's own records join"


def test_without_the_household_context_the_same_twins_merge(families) -> None:
    # Random pairs say a shared flat, phone and birthday are near-conclusive; among flatmates they are not.
    frame, twins = families
    strangers = LinkSettings(model=ModelSpec(u_sample_pairs=100_000, household_context=False))
    assert merged(link_records(frame, strangers), twins) > 0


def test_explained_pairs_name_the_context_their_weights_come_from(families) -> None:
    frame, twins = families
    pairs = link_records(frame, SETTINGS.model_copy(update={"review_margin": 20.0})).pairs  # keep the twins' pair
    a, b = twins[0]
    across = pairs[(pairs["record_id_l"] == f"a:{a}") & (pairs["record_id_r"] == f"b:{b}")]
    assert across["context"].tolist() == ["born_together"]
    assert across["w_name"].iloc[0] < 0 and across["decision"].iloc[0] != "link"


def test_flatmates_are_pairs_at_one_flat_with_two_valid_ids_that_vouch_for_them() -> None:
    flat = "示范区西溪街道翠苑社区1幢1单元101室"
    him, her = valid_id("330106", "19600101", "011"), valid_id("330106", "19620202", "022")
    frame = records([
        {"record_id": "1", "source": "a", "name": "张伟", "birth_date": "1960-01-01", "id_number": him, "address": flat},
        {"record_id": "2", "source": "a", "name": "李娜", "birth_date": "1962-02-02", "id_number": her, "address": flat},
        {"record_id": "3", "source": "b", "name": "张伟", "birth_date": "1960-01-01", "id_number": him, "address": flat},
        # keyed with his number but stating her own birthday: no voucher for the number it carries
        {"record_id": "4", "source": "b", "name": "李娜", "birth_date": "1962-02-02", "id_number": him, "address": flat},
        {"record_id": "5", "source": "b", "name": "赵敏", "birth_date": "1970-05-05", "address": flat},
        {"record_id": "6", "source": "a", "name": "孙丽", "birth_date": "1980-06-06",
         "id_number": valid_id("330106", "19800606", "044"), "address": "示范区西溪街道翠苑社区2幢1单元101室"},
    ])
    arrays = RecordArrays.from_prepared(prepare_records(frame))
    rid_l, rid_r = flatmate_pairs(arrays, max_flat_size=40, max_pairs=100, seed=1)
    assert sorted(zip(rid_l.tolist(), rid_r.tolist(), strict=True)) == [(0, 1), (1, 2)]
    assert len(flatmate_pairs(arrays, max_flat_size=2, max_pairs=100, seed=1)[0]) == 0, "a flat too large is no household"


def test_a_phone_flatmates_share_says_little_at_one_flat() -> None:
    rows = []
    for h in range(40):
        flat = f"示范区西溪街道翠苑社区{h + 1}幢1单元101室"
        for member in range(2):
            birth = f"19{60 + member * 5 + h % 5}0{1 + h % 9}1{member}"
            rows.append({"record_id": f"{h}-{member}", "source": "a", "name": f"张{'伟强'[member]}{h}",
                         "birth_date": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}", "phone": f"0571{h:08d}",
                         "id_number": valid_id("330106", birth, f"{h:02d}{member}"), "address": flat})
    arrays = RecordArrays.from_prepared(prepare_records(records(rows)))
    rid_l, rid_r = flatmate_pairs(arrays, max_flat_size=40, max_pairs=1000, seed=1)
    phone = PhoneComparison()
    strangers = np.array([0.0, 0.0001, 0.9999])
    u = flatmate_u(arrays, (phone,), rid_l, rid_r, prior={"phone": strangers})["phone"]
    assert len(rid_l) == 40
    assert u[phone.code("equal")] == pytest.approx((40 + 20 * 0.0001) / 60)


def test_a_context_weighs_only_the_pairs_in_it() -> None:
    one_flat = PairContext("one_flat", (("address", (1,)),), {"phone": np.array([0.0, 2.0, -3.0])}, {}, pairs=600)
    model = FellegiSunterModel(weights={"phone": np.array([0.0, 13.0, -7.0]), "address": np.array([0.0, 12.0, -5.0])},
                               contexts=(one_flat,))
    levels = pd.DataFrame({"phone": [1, 1, 2], "address": [1, 2, 1]})
    got = model.contributions(levels, None, np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64))
    assert got["phone"].tolist() == [2.0, 13.0, -3.0]
    assert got["address"].tolist() == [12.0, -5.0, 12.0]
    assert model.context_of(levels).tolist() == ["one_flat", None, "one_flat"]
