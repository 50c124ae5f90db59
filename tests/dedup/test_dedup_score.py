"""Scores and vetoes, table-driven: which pairs may never link, whatever their score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dedup.compare import RecordArrays, compare_pairs
from dedup.prepare import prepare_records
from dedup.score import score_pairs
from dedup.settings import DEFAULT_VETOES, VETOES, LinkSettings
from tests.dedup.dedup_helpers import mistype, records, valid_id

#: Every veto on, to test what each one forbids; the defaults apply only the conclusive ones.
SETTINGS = LinkSettings(vetoes=tuple(VETOES))
ID_A = valid_id("330106", "19850312", "011")
ID_B = valid_id("330106", "19850312", "013")
HOME = "示范区西溪街道翠苑社区3幢2单元501室"
PERSON = {"name": "张伟", "sex": "M", "birth_date": "1985-03-12", "address": HOME}
# Another resident of the same flat: another name, a woman, born 1953.
STRAY = {"name": "李秀英", "sex": "F", "birth_date": "1953-07-15", "address": HOME}


def decide(left: dict[str, str], right: dict[str, str]) -> tuple[str | None, str | None, float]:
    """(veto, decision, score) for one pair; sources differ unless the rows say otherwise."""
    rows = records([{"record_id": "a:1", "source": "a", **left}, {"record_id": "b:1", "source": "b", **right}])
    prepared = prepare_records(rows)
    levels = compare_pairs(RecordArrays.from_prepared(prepared), np.array([0]), np.array([1]), SETTINGS.comparisons)
    scored = score_pairs(levels, SETTINGS)
    veto = scored.veto.iloc[0]
    decision = scored.decision.iloc[0]
    return (None if pd.isna(veto) else veto), (None if pd.isna(decision) else decision), float(scored.score[0])


CASES = [
    # (left, right, expected veto, expected link, why)
    ({**PERSON, "id_number": ID_A}, {**PERSON, "id_number": ID_A}, None, True, "everything agrees"),
    ({**PERSON, "id_number": ID_A}, {**PERSON, "id_number": ID_B}, "distinct_valid_ids", False,
     "twins: same name, birthday and flat, two valid IDs"),
    ({**PERSON, "id_number": ID_A}, {**PERSON, "id_number": mistype(ID_A, 8)}, None, True,
     "a mistyped ID is invalid, so it does not veto"),
    ({**PERSON, "id_number": ID_A}, {**PERSON, "sex": "F"}, "different_sex", False,
     "a valid ID says a man, the other record a woman"),
    ({**PERSON}, {**PERSON, "sex": "F"}, None, False,
     "two stated sexes differ: either may be a slip, so the model weighs it (strongly) rather than a veto"),
    ({**PERSON, "sex": "F", "id_number": ID_A}, {**PERSON, "id_number": ID_A}, None, True,
     "a wrong 男/女 under the same valid ID is a slip: the ID's sex digit is used"),
    ({**PERSON, "id_number": ID_A}, {**PERSON, "birth_date": "1987-06-20"}, "contradicting_birth_dates", False,
     "同名同姓 in one flat, the one with a valid ID born two years before the other"),
    ({**PERSON}, {**PERSON, "birth_date": "1987-06-20"}, None, False,
     "two stated dates apart: a stated date can be wholly wrong, so the model weighs it rather than a veto"),
    ({**PERSON, "id_number": ID_A}, {**PERSON, "birth_date": "1985-03-13"}, None, False,
     "a stated date one day off the valid ID's is a slip, not a contradiction: weighed, not vetoed"),
    ({**PERSON, "id_number": ID_A}, {**PERSON, "birth_date": "1985-03-13", "id_number": ID_A}, None, True,
     "a birth-date slip under the same ID"),
    ({**PERSON, "birth_date": "1985-03"}, {**PERSON}, None, True, "census year-month agrees with the day"),
    ({**PERSON, "name": "张明轩", "source": "census"}, {**PERSON, "name": "张明林", "source": "census"},
     None, False, "one census lists 张明轩 and 张明林 in one flat on one birthday: weighed (twins), not vetoed"),
    ({**PERSON, "source": "census"}, {**PERSON, "name": "张玮", "source": "census"}, None, True,
     "one census lists 张伟 twice, once typed as the homophone 张玮: an input-method slip"),
    ({**PERSON, "id_number": "1234567"}, {**PERSON, "id_number": "7654321"}, None, False,
     "two different identifiers of another scheme carry no check digit: evidence against, not a veto"),
    ({**PERSON, "name": "张子涵", "source": "census", "id_number": ID_A},
     {**PERSON, "name": "张梓涵", "source": "census", "id_number": ID_B}, "distinct_valid_ids", False,
     "homophone twins in one census still part on their two valid IDs"),
    ({**PERSON, "source": "census"}, {**PERSON, "address": "示范区东湖街道和睦社区9幢1单元1101室", "source": "census"},
     None, False, "one census lists 张伟 in two flats: a namesake or a double count, weighed rather than vetoed"),
    ({**PERSON, "name": "吴伟", "source": "health", "phone": "13800000001"},
     {**PERSON, "name": "昊伟", "source": "health", "phone": "13800000001", "address": "西溪街道翠苑社区3-2-501"},
     None, True, "a visit re-keyed with a look-alike slip and the flat written another way: one person "
     "(the removed same-source veto split them)"),
    ({**PERSON, "name": "张伟明", "source": "health", "id_number": ID_A},
     {**PERSON, "source": "health", "id_number": ID_A, "address": "示范区东湖街道和睦社区9幢1单元1101室"},
     None, True, "a re-keyed visit with a character left out, at a new flat, under the same valid ID: one person"),
    ({**PERSON, "name": "张子涵", "source": "health", "id_number": ID_A},
     {**PERSON, "name": "张子涵", "source": "health", "id_number": ID_B}, "distinct_valid_ids", False,
     "two valid ID numbers are two people even when one department holds both under one name"),
    ({**PERSON, "source": "health", "id_number": ID_A}, {**PERSON, "name": "张玮", "source": "health", "id_number": ID_A},
     None, True, "the same ID overrules a differently written name in one source"),
    ({**PERSON}, {**PERSON, "name": "张玮"}, None, True, "a homophone slip across departments"),
    ({"name": "张伟", "sex": "M"}, {"name": "张伟", "sex": "M"}, None, False, "a name alone is not enough"),
    # One valid ID number under two records: a slip in the name or the birth date is overruled by the
    # number; another name and another birth date at once are another resident keyed with it.
    ({**PERSON, "id_number": ID_A}, {**STRAY, "id_number": ID_A}, "id_sharing_conflict", False,
     "民政 keyed 李秀英 (a woman born 1953) with 张伟's ID number: name, sex and birth date all contradict"),
    ({**PERSON, "id_number": ID_A, "source": "civil_affairs"}, {**STRAY, "id_number": ID_A, "source": "civil_affairs"},
     "id_sharing_conflict", False, "the same within one department (a spouse's number copied onto her record)"),
    ({**PERSON, "id_number": ID_A}, {**STRAY, "birth_date": "1985-03-15", "id_number": ID_A}, None, True,
     "a birth date three days off is a slip: the number overrules the name and the 男/女"),
    ({**PERSON, "id_number": ID_A}, {**STRAY, "sex": "M", "id_number": ID_A}, "id_sharing_conflict", False,
     "another name and birth date under his number, the same sex: a son keyed with his father's number"),
    ({**PERSON, "id_number": ID_A}, {**STRAY, "sex": "", "id_number": ID_A}, "id_sharing_conflict", False,
     "a record that states no sex still states another name and birth date"),
    ({**PERSON, "id_number": ID_A}, {**STRAY, "birth_date": "", "id_number": ID_A}, None, True,
     "a record that states no birth date contradicts the number on its name alone: the number overrules it"),
    ({**PERSON, "id_number": ID_A}, {**PERSON, "name": "张建国", "birth_date": "1985-03-13", "id_number": ID_A},
     None, True, "another name (曾用名) with a birth date a day off: one slip, and the number overrules it"),
    ({**PERSON, "id_number": ID_A}, {**STRAY, "name": "张玮", "id_number": ID_A}, None, True,
     "a homophone of the holder's name is a slip, whatever else the record states"),
    ({**PERSON, "id_number": ID_A}, {**STRAY, "name": "张伟明", "id_number": ID_A}, None, True,
     "one character more (similar) is still read as his name"),
    ({**PERSON, "id_number": ID_A}, {**STRAY, "id_number": mistype(ID_A, 8)}, "different_sex", False,
     "a mistyped (invalid) number is not a shared one: the valid ID's sex digit contradicts her"),
]


@pytest.mark.parametrize(("left", "right", "veto", "linked", "why"), CASES, ids=[case[4] for case in CASES])
def test_vetoes(left: dict[str, str], right: dict[str, str], veto: str | None, linked: bool, why: str) -> None:
    got_veto, got_decision, _ = decide(left, right)
    assert (got_veto, got_decision == "link") == (veto, linked), why


def test_every_veto_is_exercised() -> None:
    assert {case[2] for case in CASES} - {None} == set(VETOES)


def test_by_default_only_the_vetoes_conclusive_by_construction_apply() -> None:
    assert LinkSettings().vetoes == DEFAULT_VETOES == ("distinct_valid_ids", "id_sharing_conflict")


def _scored(right: dict[str, str], settings: LinkSettings):
    """The pair (PERSON with a valid ID, ``right``) scored under ``settings``."""
    rows = records([{"record_id": "a:1", "source": "a", **PERSON, "id_number": ID_A},
                    {"record_id": "b:1", "source": "b", **right}])
    arrays = RecordArrays.from_prepared(prepare_records(rows))
    return score_pairs(compare_pairs(arrays, np.array([0]), np.array([1]), settings.comparisons), settings)


@pytest.mark.parametrize(
    ("right", "why"),
    [({**PERSON, "sex": "F"}, "the other record states 女: a slip the model weighs"),
     ({**PERSON, "birth_date": "1987-06-20"}, "the other record states another year: weighed, not vetoed")],
)
def test_a_stated_value_against_a_valid_id_is_weighed_by_default(right: dict[str, str], why: str) -> None:
    assert _scored(right, SETTINGS).veto.notna().all(), "the veto, when listed, still recognises the pair"
    default = _scored(right, LinkSettings())
    assert default.veto.isna().all(), why
    assert default.score[0] < _scored(PERSON, LinkSettings()).score[0], "the disagreement weighs against the match"


def test_score_is_the_sum_of_level_weights() -> None:
    _, _, score = decide({**PERSON, "id_number": ID_A}, {**PERSON, "id_number": ID_A})
    expected = sum(
        SETTINGS.comparison(field).weight(label)
        for field, label in [("id_number", "exact"), ("name", "exact"), ("birth_date", "day"), ("sex", "equal"),
                             ("phone", "null"), ("address", "exact")]
    )
    assert score == pytest.approx(expected)


def test_dropping_a_veto_lets_the_pair_link() -> None:
    settings = LinkSettings(vetoes=("different_sex", "contradicting_birth_dates", "id_sharing_conflict"))
    rows = records([{"record_id": "c:1", "source": "census", **PERSON, "id_number": ID_A},
                    {"record_id": "c:2", "source": "census", **PERSON, "id_number": ID_B}])
    prepared = prepare_records(rows)
    levels = compare_pairs(RecordArrays.from_prepared(prepared), np.array([0]), np.array([1]), settings.comparisons)
    assert score_pairs(levels, SETTINGS).decision.tolist() == ["vetoed"]
    assert score_pairs(levels, settings).decision.tolist() == ["near_miss"], "weighed: IDs different, all else alike"



def test_each_veto_reads_only_the_comparisons_it_names() -> None:
    from dedup.score import VETO_FIELDS, veto_comparisons, violates

    assert set(VETO_FIELDS) == set(VETOES)
    # Every case's two records at once, each paired with every other: what each veto forbids is the same on
    # the comparisons it names as on all of them.
    rows = [{"record_id": f"{side}:{i}", "source": side, **case[k]}
            for i, case in enumerate(CASES) for k, side in ((0, "a"), (1, "b"))]
    arrays = RecordArrays.from_prepared(prepare_records(records(rows)))
    rid_l, rid_r = np.triu_indices(len(rows), k=1)
    every = compare_pairs(arrays, rid_l, rid_r, SETTINGS.comparisons)
    for veto in VETOES:
        mask = violates(veto, every, SETTINGS)
        assert mask.any(), veto
        assert (violates(veto, compare_pairs(arrays, rid_l, rid_r, veto_comparisons(SETTINGS, (veto,))), SETTINGS)
                == mask).all(), veto


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    """A demo district's records, as prepared for comparing, and the model linking them fits."""
    from dedup import link_records, load_link_settings
    from pipelines.settings import DEMO_LINKING
    from tests.dedup.dedup_helpers import staged_demo

    staged = staged_demo(tmp_path_factory.mktemp("bound_home"), persons=400, seed=11)
    settings = load_link_settings(DEMO_LINKING)
    model = link_records(staged, settings).kept.model
    return RecordArrays.from_prepared(prepare_records(staged)), settings, model


def _one_flat_weighs_more(model, field: str):
    """The model with a context in which ``field`` weighs far more than its usual weights: the bound must
    take the most a level weighs in any context, since whether a pair is in one rests on the address,
    which is compared last."""
    from dataclasses import replace

    from dedup.model import PairContext

    heavy = model.weights[field] + 100.0
    context = PairContext("one_flat", conditions=(("address", (1, 2)),), weights={field: heavy}, u={}, pairs=1)
    return replace(model, contexts=(*model.contexts, context))


@pytest.mark.parametrize("variant", ["fitted", "a context weighing names", "a context weighing birth dates", "declared"])
def test_pairs_left_out_before_names_and_addresses_are_those_scoring_too_low_to_keep(demo_model, variant,
                                                                                      monkeypatch) -> None:
    import dedup.backend as backend
    from dedup.model import declared_model

    arrays, settings, model = demo_model
    if variant.startswith("a context"):
        model = _one_flat_weighs_more(model, "name" if variant.endswith("names") else "birth_date")
    elif variant == "declared":
        model = declared_model(settings)
    # Every pair of the first 400 records: mostly strangers, and the people the demo gave two records.
    rid_l, rid_r = np.triu_indices(400, k=1)
    rule = np.zeros(len(rid_l), dtype=np.int16)
    levels = compare_pairs(arrays, rid_l, rid_r, settings.comparisons)
    whole = score_pairs(levels, settings, model.contributions(levels, arrays, rid_l, rid_r), model.prior_weight)

    compared: dict[str, int] = {}

    def counting(arrays, rid_l, rid_r, comparisons):
        for comparison in comparisons:
            compared[comparison.field] = compared.get(comparison.field, 0) + len(rid_l)
        return compare_pairs(arrays, rid_l, rid_r, comparisons)
    monkeypatch.setattr(backend, "compare_pairs", counting)
    batch = backend.scored_batch(arrays, settings, model, rid_l, rid_r, rule)

    kept = whole.kept
    assert 0 < kept.sum() < len(kept)
    assert batch["rid_l"].tolist() == rid_l[kept].tolist() and batch["rid_r"].tolist() == rid_r[kept].tolist()
    assert np.array_equal(batch["score"].to_numpy(), whole.score[kept])
    assert batch["decision"].tolist() == whole.decision[kept].tolist()
    for column in levels.columns:
        assert batch[column].tolist() == levels.loc[kept, column].tolist(), column
    # Names and addresses were compared on fewer pairs than the rest (unless a context can weigh a pair up by
    # 100 bits); the addresses on no more than the names.
    assert compared["id_number"] == len(rid_l) and compared["address"] <= compared["name"]
    assert compared["name"] < len(rid_l) or variant.startswith("a context")
