"""A level is one declaration and one test: a new name level takes its pairs and nothing else moves.

The ``initials`` level below exists only in this module. It is declared on a copy of
:class:`NameComparison` without touching any other level's code, and the spec of every other level
(the name cases of ``test_dedup_compare``) still holds; vetoes and the model find their levels by label
wherever the new one sits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from dedup.compare import PairBatch, RecordArrays, compare_pairs, level_labels, level_test
from dedup.model import random_pair_u, term_frequencies
from dedup.prepare import prepare_records
from dedup.score import score_pairs
from dedup.settings import ComparisonLevel, LinkSettings, NameComparison
from tests.dedup.dedup_helpers import records, valid_id
from tests.dedup.test_dedup_compare import NAME_CASES


@level_test("tests.name_initials")
def _initials(c: NameComparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """Latin names with as many words and the same initials, one of them written with initials (j smith)."""
    latin_l, latin_r = batch.pair("latin_name")
    count_l, count_r = batch.pair("name_word_count")
    where = np.flatnonzero(undecided & latin_l & latin_r & (count_l == count_r))
    words_l = batch.arrays.name_words[batch.rid_l[where]].astype(str)
    words_r = batch.arrays.name_words[batch.rid_r[where]].astype(str)
    same_initials = (words_l.astype("U1") == words_r.astype("U1")).all(axis=1)
    abbreviated = ((np.char.str_len(words_l) == 1) | (np.char.str_len(words_r) == 1)).any(axis=1)
    reached = np.zeros(len(batch), dtype=bool)
    reached[where] = same_initials & abbreviated
    return reached


@level_test("tests.never")
def _never(c: NameComparison, batch: PairBatch, undecided: np.ndarray) -> np.ndarray:
    """No pair: a level that only shifts the codes of the levels after it."""
    return np.zeros(len(batch), dtype=bool)


INITIALS = ComparisonLevel("initials", 2.0, test="tests.name_initials")
WITH_INITIALS = NameComparison().with_level(INITIALS, before="typo")


def name_level(comparison: NameComparison, left: str, right: str) -> str:
    settings = LinkSettings(comparisons=(comparison,), vetoes=())
    prepared = prepare_records(records([{"record_id": "t:1", "name": left}, {"record_id": "t:2", "name": right}]))
    codes = compare_pairs(RecordArrays.from_prepared(prepared), np.array([0]), np.array([1]), settings.comparisons)
    return level_labels(comparison, codes[comparison.field]).iloc[0]


def test_the_new_level_sits_where_it_was_declared_and_every_other_level_keeps_its_label() -> None:
    default = NameComparison()
    at = default.labels.index("typo")
    assert WITH_INITIALS.labels == (*default.labels[:at], "initials", *default.labels[at:])
    assert WITH_INITIALS.levels[:at] == default.levels[:at]
    assert WITH_INITIALS.levels[at + 1 :] == default.levels[at:]
    # Codes are positions: the levels after the new one move up by one, and nothing says otherwise.
    assert WITH_INITIALS.code("typo") == default.code("typo") + 1
    assert WITH_INITIALS.weight("initials") == 2.0


INITIALS_CASES = [
    # (left, right, level with the initials level, level without it, why)
    ("john smith", "j smith", "initials", "shared", "a given name written as its initial"),
    ("j k smith", "john kevin smith", "initials", "shared", "two given names as initials"),
    ("smith john", "smith j", "initials", "typo", "the initial last: before the new level it read as a typo"),
    ("john smith", "jane smith", "typo", "typo", "same initials, but no name is written with initials"),
    ("john smith", "k smith", "shared", "shared", "another initial"),
    ("john smith", "john smith", "exact", "exact", "an earlier level keeps its pairs"),
]


@pytest.mark.parametrize(("left", "right", "with_it", "without_it", "why"), INITIALS_CASES, ids=[c[4] for c in INITIALS_CASES])
def test_pairs_reach_the_new_level_only_where_it_is_first_to_accept_them(
    left: str, right: str, with_it: str, without_it: str, why: str
) -> None:
    assert name_level(WITH_INITIALS, left, right) == with_it, why
    assert name_level(NameComparison(), left, right) == without_it, why


@pytest.mark.parametrize(("left", "right", "expected", "why"), NAME_CASES, ids=[case[3] for case in NAME_CASES])
def test_the_spec_of_every_other_name_level_still_holds(left: str, right: str, expected: str, why: str) -> None:
    assert name_level(WITH_INITIALS, left, right) == expected, why


HOME = "示范区西溪街道翠苑社区3幢2单元501室"


def veto_of(name: NameComparison, left: str, right: str) -> str | None:
    """The veto (if any) of two records under one valid ID number, named ``left`` and ``right``, that
    state different sexes and birth dates: only the name decides whether it is a slip the number overrules."""
    settings = LinkSettings(comparisons=(*LinkSettings().comparisons[:1], name, *LinkSettings().comparisons[2:]))
    shared = valid_id("330106", "19850312", "011")
    him = {"source": "census", "sex": "M", "birth_date": "1985-03-12", "address": HOME, "id_number": shared}
    her = {**him, "sex": "F", "birth_date": "1953-07-15"}
    prepared = prepare_records(records([{"record_id": "c:1", **him, "name": left}, {"record_id": "c:2", **her, "name": right}]))
    levels = compare_pairs(RecordArrays.from_prepared(prepared), np.array([0]), np.array([1]), settings.comparisons)
    veto = score_pairs(levels, settings).veto.iloc[0]
    return None if pd.isna(veto) else veto


def test_vetoes_name_levels_by_label_wherever_a_new_level_sits() -> None:
    # A level declared before `homophone` moves its code; the veto still reads "homophone".
    shifted = NameComparison().with_level(ComparisonLevel("never", 0.0, test="tests.never"), before="homophone")
    assert shifted.code("homophone") == NameComparison().code("homophone") + 1
    assert veto_of(shifted, "张伟", "张玮") is None, "a homophone of the holder's name is a slip the number overrules"
    assert veto_of(shifted, "张伟", "李秀英") == "id_sharing_conflict", "another name and birth date: another resident"
    # The new level is not among the levels the veto reads as a slip, so a name that reaches it counts
    # as another name, like any level the veto does not list.
    assert veto_of(WITH_INITIALS, "john smith", "j smith") == "id_sharing_conflict"


def test_the_model_finds_the_exact_level_by_label_wherever_it_sits() -> None:
    names = ["张伟", "张伟", "李娜", "王芳", "王芳", "王芳", "刘洋", "陈静"]
    prepared = prepare_records(records([{"record_id": f"t:{i}", "name": name} for i, name in enumerate(names)]))
    arrays = RecordArrays.from_prepared(prepared)
    first = NameComparison().with_level(ComparisonLevel("never", 0.0, test="tests.never"), before="exact")
    assert first.code("exact") == 2
    u = random_pair_u(arrays, (first,), n_pairs=2_000, seed=7)[0]
    # u of exact agreement is known from the value frequencies (Σ f²), at the exact level's code.
    assert u[first.code("exact")] == pytest.approx(np.square(term_frequencies(arrays.name)).sum())
    assert u.sum() == pytest.approx(1.0)


def test_a_level_naming_an_unregistered_test_is_refused_with_how_to_fix_it() -> None:
    unknown = NameComparison().with_level(ComparisonLevel("initials", 2.0, test="tests.absent"), before="typo")
    with pytest.raises(ConfigError, match=r"level 'initials' names the test 'tests.absent'.*@level_test"):
        name_level(unknown, "john smith", "j smith")


def test_a_test_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="'tests.name_initials' is already registered"):
        level_test("tests.name_initials")(_never)


def id_sharing_veto_of(name: NameComparison, left: str, right: str) -> str | None:
    """The veto (if any) of two records under one valid ID number, named ``left`` and ``right``, that
    state another sex and another birth date."""
    settings = LinkSettings(comparisons=(*LinkSettings().comparisons[:1], name, *LinkSettings().comparisons[2:]))
    shared = valid_id("330106", "19850312", "011")
    prepared = prepare_records(records([
        {"record_id": "a:1", "source": "a", "name": left, "sex": "M", "birth_date": "1985-03-12", "id_number": shared},
        {"record_id": "b:1", "source": "b", "name": right, "sex": "F", "birth_date": "1953-07-15", "id_number": shared},
    ]))
    levels = compare_pairs(RecordArrays.from_prepared(prepared), np.array([0]), np.array([1]), settings.comparisons)
    veto = score_pairs(levels, settings).veto.iloc[0]
    return None if pd.isna(veto) else veto


def test_the_id_sharing_veto_reads_name_levels_by_label_wherever_a_new_level_sits() -> None:
    shifted = NameComparison().with_level(ComparisonLevel("never", 0.0, test="tests.never"), before="homophone")
    assert veto_of(shifted, "张伟", "张伟") is None
    assert id_sharing_veto_of(shifted, "张伟", "张玮") is None, "a homophone is a slip the shared number overrules"
    assert id_sharing_veto_of(shifted, "张伟", "李秀英") == "id_sharing_conflict"
    # A level the veto does not list among the slips counts as another name.
    assert id_sharing_veto_of(WITH_INITIALS, "john smith", "j smith") == "id_sharing_conflict"
    assert id_sharing_veto_of(NameComparison(), "john smith", "jon smith") is None, "a Latin typo is a slip"
