"""The Fellegi–Sunter model: EM recovers known parameters, term frequencies, the waterfall, ``--explain``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from dedup import LinkSettings, link_records
from dedup.model import (
    FellegiSunterModel,
    TermFrequencies,
    declared_model,
    expectation_maximisation,
    match_probability,
)
from dedup.settings import ModelSpec
from pipelines.cli import main as cli_main
from tests.dedup.dedup_helpers import records, valid_id

# Three comparisons; level 0 is null. Each row sums to 1 over the non-null levels.
TRUE_M = [np.array([0, 0.90, 0.07, 0.03]), np.array([0, 0.80, 0.20]), np.array([0, 0.60, 0.30, 0.05, 0.05])]
TRUE_U = [np.array([0, 0.02, 0.08, 0.90]), np.array([0, 0.10, 0.90]), np.array([0, 0.05, 0.15, 0.30, 0.50])]
TRUE_LAMBDA = 0.3
NULL_SHARE = 0.1


def synthetic_levels(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Level codes drawn from the true model (with some nulls), and the true class of each row."""
    rng = np.random.default_rng(seed)
    is_match = rng.random(n) < TRUE_LAMBDA
    codes = np.zeros((n, len(TRUE_M)), dtype=np.int64)
    for c, (m, u) in enumerate(zip(TRUE_M, TRUE_U, strict=True)):
        levels = np.arange(len(m))
        codes[is_match, c] = rng.choice(levels, size=is_match.sum(), p=m)
        codes[~is_match, c] = rng.choice(levels, size=(~is_match).sum(), p=u)
        codes[rng.random(n) < NULL_SHARE, c] = 0
    return codes, is_match


def flat(n_levels: int) -> np.ndarray:
    p = np.full(n_levels, 1.0 / (n_levels - 1))
    p[0] = 0.0
    return p


def test_em_recovers_known_m_u_and_lambda() -> None:
    codes, _ = synthetic_levels(60_000)
    n_levels = [len(m) for m in TRUE_M]
    # Rough start: "agreeing" levels (code 1) a little likelier among matches, otherwise flat.
    m_start = [flat(n) for n in n_levels]
    for m in m_start:
        m[1] += 0.3
        m /= m.sum()
    fit = expectation_maximisation(codes, n_levels, m_start, [flat(n) for n in n_levels], 0.5, iterations=200, tolerance=1e-7)
    assert fit.lam == pytest.approx(TRUE_LAMBDA, abs=0.02)
    for got, want in zip(fit.m, TRUE_M, strict=True):
        np.testing.assert_allclose(got, want, atol=0.025)
    for got, want in zip(fit.u, TRUE_U, strict=True):
        np.testing.assert_allclose(got, want, atol=0.025)


def test_em_with_u_fixed_recovers_m_and_separates_the_classes() -> None:
    codes, is_match = synthetic_levels(40_000, seed=11)
    n_levels = [len(m) for m in TRUE_M]
    fit = expectation_maximisation(
        codes, n_levels, [flat(n) for n in n_levels], TRUE_U, 0.5, fix_u=True, iterations=200, tolerance=1e-7
    )
    for got, want in zip(fit.u, TRUE_U, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(fit.m, TRUE_M, strict=True):
        np.testing.assert_allclose(got, want, atol=0.025)
    assert ((fit.posterior > 0.5) == is_match).mean() > 0.9


def test_em_on_counted_patterns_is_the_em_on_the_pairs() -> None:
    # What a backend hands the model: each distinct pattern once with how many pairs show it.
    codes, _ = synthetic_levels(20_000, seed=5)
    n_levels = [len(m) for m in TRUE_M]
    patterns, counts = np.unique(codes, axis=0, return_counts=True)
    start = dict(m=[flat(n) for n in n_levels], u=[flat(n) for n in n_levels], lam=0.3)
    on_pairs = expectation_maximisation(codes, n_levels, start["m"], start["u"], start["lam"])
    on_counts = expectation_maximisation(patterns, n_levels, start["m"], start["u"], start["lam"], counts=counts)
    assert len(patterns) < 200 and on_counts.iterations == on_pairs.iterations
    assert on_counts.lam == pytest.approx(on_pairs.lam, rel=1e-9)
    for got, want in zip(on_counts.m + on_counts.u, on_pairs.m + on_pairs.u, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9)
    row = {tuple(pattern): i for i, pattern in enumerate(patterns.tolist())}
    np.testing.assert_allclose(on_counts.posterior[[row[tuple(c)] for c in codes.tolist()]], on_pairs.posterior, rtol=1e-9)


def test_fixed_level_keeps_its_weight_and_null_carries_no_evidence() -> None:
    codes = np.array([[0, 1], [0, 1], [1, 2], [2, 2]])
    fixed = [np.array([np.nan, 5.0, np.nan]), np.full(3, np.nan)]
    fit = expectation_maximisation(codes, [3, 3], [flat(3), flat(3)], [flat(3), flat(3)], 0.5, fixed_weights=fixed)
    # Rows 0 and 1 differ from each other in nothing, and their first comparison is null: same posterior.
    assert fit.posterior[0] == pytest.approx(fit.posterior[1])
    assert fit.m[0][0] == 0.0 and fit.u[0][0] == 0.0


def test_match_probability_of_weights() -> None:
    np.testing.assert_allclose(match_probability(np.array([0.0, 10.0, -10.0])), [0.5, 1024 / 1025, 1 / 1025])


def test_term_frequency_makes_a_common_name_weigh_less() -> None:
    # A made-up name comparison of three levels: null, exact (code 1, which the frequencies adjust), other.
    tf = TermFrequencies(field="name", frequency=np.array([0.2, 0.001]), scale=1.0, exact_code=1)
    model = FellegiSunterModel(
        weights={"name": np.array([0.0, 10.0, 2.0])}, term_frequencies={"name": tf}, exact_m={"name": 0.9}
    )
    levels = pd.DataFrame({"name": np.array([1, 1, 2], dtype=np.int8)})

    class Arrays:
        name = type("Codes", (), {"codes": np.array([0, 1, 0, 1], dtype=np.int32)})()

    contributions = model.contributions(levels, Arrays(), np.array([0, 1, 0]), np.array([2, 3, 2]))["name"]
    assert contributions[0] == pytest.approx(np.log2(0.9 / 0.2))
    assert contributions[1] == pytest.approx(np.log2(0.9 / 0.001))
    assert contributions[2] == pytest.approx(2.0)


GIVEN = "明华国强军平东文辉力永健世广志义兴良海山仁波宁贵福生龙元全"
SURNAMES = "李张刘陈杨黄赵吴周徐"
COMMON = "王伟"


def population(persons: int = 300, common: int = 60) -> pd.DataFrame:
    """Two records (sources a and b) per person; the first ``common`` persons are all called 王伟."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(persons):
        name = COMMON if i < common else SURNAMES[i % 10] + GIVEN[(i // 10) % len(GIVEN)] + GIVEN[(i // 300) % len(GIVEN)]
        birth = f"19{50 + i % 45:02d}{1 + i % 12:02d}{1 + rng.integers(0, 28):02d}"
        id_number = valid_id("330106", birth, f"{i % 1000:03d}")
        sex = "M" if int(id_number[16]) % 2 else "F"
        phone = f"138{i:08d}"
        address = f"示范区西溪街道翠苑社区{i % 40 + 1}幢{i % 6 + 1}单元{100 + i}室"
        iso = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
        rows.append({"record_id": f"a:{i}", "source": "a", "name": name, "sex": sex, "birth_date": iso,
                     "id_number": id_number, "phone": phone, "address": address})
        rows.append({"record_id": f"b:{i}", "source": "b", "name": name, "sex": sex, "birth_date": iso[:7],
                     "id_number": id_number if i % 3 else "", "phone": phone if i % 2 else "", "address": address})
    return records(rows)


TRAINED = LinkSettings(model=ModelSpec(min_training_pairs=10, u_sample_pairs=50_000))


@pytest.fixture(scope="module")
def trained():
    return link_records(population(), TRAINED)


def test_trained_model_is_reported_and_links_every_person(trained) -> None:
    assert trained.stats["model"]["model"] == "em/random"
    assert trained.stats["persons"] == 300


def test_waterfall_adds_up_to_the_match_weight(trained) -> None:
    pairs = trained.pairs
    contributions = pairs["w_prior"] + sum(pairs[f"w_{c.field}"] for c in TRAINED.comparisons)
    np.testing.assert_allclose(contributions, pairs["match_weight"], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(pairs["match_probability"], match_probability(pairs["match_weight"]), rtol=1e-6)
    assert (pairs["match_weight"] == pairs["score"]).all()
    linked = pairs[pairs["decision"] == "link"]
    assert (linked["match_probability"] >= TRAINED.threshold_probability - 1e-6).all()


def test_trained_common_name_match_weighs_less_than_a_rare_one(trained) -> None:
    pairs = trained.pairs
    exact = pairs[pairs["name"] == "exact"]
    same_person = exact["record_id_l"].str[2:] == exact["record_id_r"].str[2:]
    common = exact[same_person & (exact["record_id_l"].str[2:].astype(int) < 60)]
    rare = exact[same_person & (exact["record_id_l"].str[2:].astype(int) >= 60)]
    assert len(common) and len(rare)
    assert common["w_name"].max() < rare["w_name"].min()


def test_u_from_the_candidates_weighs_a_common_name_less_too() -> None:
    settings = LinkSettings(model=ModelSpec(min_training_pairs=10, u_source="candidates", em_fix_u=False))
    pairs = link_records(population(), settings).pairs
    exact = pairs[(pairs["name"] == "exact") & (pairs["record_id_l"].str[2:] == pairs["record_id_r"].str[2:])]
    common = exact["record_id_l"].str[2:].astype(int) < 60
    assert common.any() and (~common).any()
    assert exact.loc[common, "w_name"].max() < exact.loc[~common, "w_name"].min()


def test_declared_model_scores_with_the_declared_weights() -> None:
    settings = LinkSettings()
    model = declared_model(settings)
    assert model.prior_weight == 0.0 and not model.trained
    assert model.weights["name"].tolist() == list(settings.comparison("name").weights())


def test_small_input_falls_back_to_declared_weights() -> None:
    result = link_records(population(persons=5, common=0))
    assert result.stats["model"] == {"model": "declared"}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ModelSpec(u_source="labels"), "u_source"),
        (lambda: ModelSpec(em_iterations=0), "em_iterations"),
        (lambda: ModelSpec(fixed_levels=("name",)), "field.level"),
        (lambda: LinkSettings(match_probability=1.0), "match_probability"),
        (lambda: LinkSettings(model="em"), "ModelSpec"),
        (lambda: LinkSettings(model=ModelSpec(term_frequency=("sex",))), "term_frequency"),
    ],
)
def test_bad_model_settings_are_refused(build, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_match_probability_sets_the_threshold_in_bits() -> None:
    settings = LinkSettings(match_probability=0.999)
    assert settings.match_threshold == pytest.approx(np.log2(999))
    assert settings.threshold_probability == pytest.approx(0.999)


def test_cli_explain_writes_the_waterfall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.parquet"
    population(persons=40, common=5).to_parquet(source)
    output = tmp_path / "persons.parquet"
    assert cli_main(["dedup", str(source), str(output), "--explain", "--why", "a:7"]) == 0
    explained = pd.read_parquet(tmp_path / "persons.explain.parquet")
    fields = [c.field for c in LinkSettings().comparisons]
    assert {"record_id_l", "record_id_r", "decision", "match_weight", "match_probability", "w_prior"} <= set(explained.columns)
    assert {f"w_{field}" for field in fields} <= set(explained.columns)
    total = explained["w_prior"] + sum(explained[f"w_{field}"] for field in fields)
    np.testing.assert_allclose(total, explained["match_weight"], rtol=1e-5, atol=1e-3)
    printed = capsys.readouterr().out
    assert "a:7  ~  b:7" in printed and "= weight" in printed and "-> link" in printed


def people_with_two_records(n: int, phone_changed_every: int, sex_slip_every: int) -> pd.DataFrame:
    """``n`` people, each with a civil-affairs and a health record under one valid ID number; every
    ``phone_changed_every``-th changed phone between them, every ``sex_slip_every``-th health record states
    the wrong sex, and every fourth moved (two flats)."""
    rows = []
    for i in range(n):
        birth = f"19{50 + i % 40:02d}{1 + i % 12:02d}{1 + i % 28:02d}"
        number = valid_id("330106", birth, f"{i % 500:03d}"[:2] + ("1" if i % 2 else "2"))
        sex = "M" if i % 2 else "F"
        flat = f"示范区西溪街道翠苑社区{1 + i % 30}幢{1 + i % 3}单元{100 + i}室"
        base = {"name": f"张{chr(0x4E00 + i)}", "birth_date": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}", "id_number": number}
        rows.append({**base, "record_id": f"civil_affairs:{i}", "source": "civil_affairs", "sex": sex,
                     "phone": f"139{i:08d}", "address": flat})
        rows.append({**base, "record_id": f"health:{i}", "source": "health",
                     "sex": ("F" if sex == "M" else "M") if i % sex_slip_every == 0 else sex,
                     "phone": f"137{i:08d}" if i % phone_changed_every == 0 else f"139{i:08d}",
                     "address": f"示范区东湖街道和睦社区{1 + i % 9}幢1单元{200 + i}室" if i % 4 == 0 else flat})
    return records(rows)


def test_m_is_measured_on_records_that_share_a_valid_id_number() -> None:
    from dedup.compare import RecordArrays
    from dedup.model import same_id_pairs, shared_id_levels, shared_id_m
    from dedup.prepare import prepare_records

    arrays = RecordArrays.from_prepared(prepare_records(people_with_two_records(2000, 5, 20)))
    rid_l, rid_r = same_id_pairs(arrays, 1_000_000, seed=1)
    assert len(rid_l) == 2000, "one pair per number on two records: linear, never all pairs"
    assert (arrays.id_text.codes[rid_l] == arrays.id_text.codes[rid_r]).all()

    settings = LinkSettings()
    comparisons = settings.comparisons
    # What an EM that never found the movers and changed phones would say.
    m_em = [np.r_[0.0, np.full(len(c.labels) - 1, 1e-6)] for c in comparisons]
    for i, c in enumerate(comparisons):
        m_em[i][c.code(c.exact_label or c.labels[1])] = 1.0
    m, pairs = shared_id_m(comparisons, m_em, shared_id_levels(arrays, comparisons, settings.model))
    assert pairs == 2000
    by_field = {c.field: (c, m[i]) for i, c in enumerate(comparisons)}

    def share(field: str, label: str) -> float:
        comparison, probabilities = by_field[field]
        return float(probabilities[comparison.code(label)])

    assert share("phone", "different") == pytest.approx(0.2, abs=0.01), "one in five changed phone"
    assert share("sex", "different") == pytest.approx(0.05, abs=0.01), "the health record's stated sex slips 1 in 20"
    assert share("address", "different") == pytest.approx(0.25, abs=0.01), "a mover's two flats: not read as 'moved'"
    assert share("address", "moved") == pytest.approx(1e-6), "the level those pairs define keeps the EM's m"
    for field in ("id_number", "birth_date"):
        assert (by_field[field][1] == m_em[[c.field for c in comparisons].index(field)]).all(), field

    off, _ = shared_id_m(comparisons, m_em,
                         shared_id_levels(arrays, comparisons, settings.model.model_copy(update={"m_from_shared_ids": False})))
    assert all((a == b).all() for a, b in zip(off, m_em, strict=True))
    few, _ = shared_id_m(comparisons, m_em,
                         shared_id_levels(arrays, comparisons, settings.model.model_copy(update={"min_shared_id_pairs": 2001})))
    assert all((a == b).all() for a, b in zip(few, m_em, strict=True))
