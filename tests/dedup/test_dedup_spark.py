"""The Spark engine runs the declarations the DuckDB engine runs, and finds the same persons.

Spark runs as ``local[2]`` on this machine (a Java runtime is installed when absent, see
:mod:`tests.debian`). The level cases of ``test_dedup_compare`` — one table — go through both backends;
the 20,000-person demo district is linked on both and must give the same persons, pairs and model.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from dedup import link_records
from dedup.backend import PairBackend, open_backend
from dedup.cluster import components
from dedup.compare import RecordArrays, level_labels
from dedup.model import declared_model
from dedup.prepare import TEXT, prepare_records
from dedup.settings import BlockingRule, LinkSettings, SparkSpec, load_link_settings
from tests.debian import JAVA, require_packages
from tests.dedup import test_dedup_compare as spec
from tests.dedup.dedup_helpers import ID_KEY, records, staged_demo
from tests.spark import SPARK

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEMO_LINKING = ROOT / "demo" / "linking.yaml"


def _two(left: dict[str, str], right: dict[str, str]) -> list[dict[str, str]]:
    return [left, right]


def _cases() -> list[tuple[list[dict[str, str]], tuple[int, int], str, str, str]]:
    """Every level case of ``test_dedup_compare``: ``(records, pair, column, expected label, why)``."""
    cases = [(_two({"id_number": a}, {"id_number": b}), (0, 1), "id_number", e, w) for a, b, e, w in spec.ID_CASES]
    cases += [(_two({"id_number": a}, {"id_number": b}), (0, 1), "id_number", e, w) for a, b, e, w in spec.GENERIC_ID_CASES]
    cases += [(_two({"birth_date": a}, {"birth_date": b}), (0, 1), "birth_date", e, w) for a, b, e, w in spec.BIRTH_CASES]
    cases += [(_two({"name": a}, {"name": b}), (0, 1), "name", e, w) for a, b, e, w in spec.NAME_CASES]
    cases += [(_two({f: a}, {f: b}), (0, 1), f, e, f"{f}: {a} / {b}") for f, a, b, e in spec.OTHER_CASES]
    cases += [(_two({"address": a, "community": ac}, {"address": b, "community": bc}), (0, 1), "community", e, w)
              for a, b, ac, bc, e, w in spec.COMMUNITY_CASES]
    cases += [(_two(a, b), (0, 1), "address", e, w) for a, b, e, w in spec.REGISTERED_CASES]
    cases += [(_two(a, b), (0, 1), "name", e, w) for a, b, e, w in spec.ALIAS_CASES]
    for a, b, sex, birth, w in spec.STATED_CASES:
        cases += [(_two(a, b), (0, 1), "stated_sex", sex, w), (_two(a, b), (0, 1), "stated_birth_date", birth, w)]
    cases += [(rows, pair, "address", e, w) for rows, pair, e, w in spec.MOVE_CASES]
    return cases


def _levels_on(backend: PairBackend, cases: list) -> list[str]:
    """The level each case's pair reaches, compared by ``backend``.

    Each case is prepared on its own, as in ``test_dedup_compare`` (a whole-column reading — communities
    given, the kind of ID number — is decided per case), and blocked with its own records only (one
    ``grid`` per case). A valid ID number and a flat together make a move known to every record
    (:attr:`RecordArrays.moves`), so the cases where both occur are compared apart.
    """
    together = [i for i, case in enumerate(cases) if not _places_a_number(case[0])]
    groups = [together, *([i] for i in range(len(cases)) if i not in together)]
    labels: list[str] = [""] * len(cases)
    for group in groups:
        frames, starts = [], []
        for i in group:
            rows = [{**row, "record_id": f"c{i}:{j}", "grid": f"case{i}"} for j, row in enumerate(cases[i][0])]
            starts.append(sum(len(frame) for frame in frames))
            frames.append(prepare_records(records(rows)))
        prepared = pd.concat(frames, ignore_index=True)
        prepared["rid"] = np.arange(len(prepared), dtype=np.int32)
        # Every pair of a case is kept (no threshold, no veto), so every level can be read back.
        settings = LinkSettings(blocking_rules=(BlockingRule("case", keys=("grid",)),), match_threshold=-1000.0, vetoes=())
        report = backend.candidate_pairs(prepared, settings)
        scored = backend.scored_pairs(RecordArrays.from_prepared(prepared), settings, declared_model(settings),
                                      report.candidate_pairs).set_index(["rid_l", "rid_r"])
        for i, start in zip(group, starts, strict=True):
            left, right = cases[i][1]
            column = cases[i][2]
            comparison = settings.comparison(column.removeprefix("stated_"))
            labels[i] = level_labels(comparison, scored.loc[[(start + left, start + right)], column]).iloc[0]
    return labels


def _places_a_number(rows: list[dict[str, str]]) -> bool:
    return any(row.get("id_number") and row.get("address") for row in rows)


def test_every_level_case_reaches_its_level_on_both_backends(spark) -> None:
    cases = _cases()
    with open_backend(LinkSettings()) as duck:
        on_duckdb = _levels_on(duck, cases)
    with open_backend(LinkSettings(engine="spark", spark=SPARK)) as distributed:
        on_spark = _levels_on(distributed, cases)
    expected = [case[3] for case in cases]
    wrong = [(case[4], case[2], e, d, s) for case, e, d, s in zip(cases, expected, on_duckdb, on_spark, strict=True)
             if not e == d == s]
    assert not wrong, f"(why, column, expected, duckdb, spark): {wrong}"
    assert len(cases) > 90  # the whole table, not a slice of it


def test_spark_connected_components_are_scipys(spark) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    link_l, link_r = rng.integers(0, n, 2000), rng.integers(0, n, 2000)
    chain = np.arange(2000, 2025)  # a path of 25 records: many rounds of propagation
    link_l, link_r = np.r_[link_l, chain[:-1]], np.r_[link_r, chain[1:]]
    with open_backend(LinkSettings(engine="spark", spark=SPARK)) as backend:
        found = backend.components(n, link_l, link_r)
    expected = components(n, link_l, link_r)
    assert found.max() < n
    assert pd.factorize(found)[0].tolist() == pd.factorize(expected)[0].tolist()
    assert len(set(found[chain].tolist())) == 1


def test_the_training_sample_is_a_share_of_the_pairs_counted_alike_on_both_engines(spark) -> None:
    # Three grids of 100 records; in each, names cycle through five, so a grid holds 5 × C(20, 2) = 950 pairs
    # agreeing on the name, each name 190 of them.
    names = ["张伟", "王芳", "李娜", "刘洋", "陈静"]
    prepared = prepare_records(records([{"record_id": f"r{i}", "name": names[i % 5], "grid": f"g{i % 3}"} for i in range(300)]))
    settings = LinkSettings(blocking_rules=(BlockingRule("grid", keys=("grid",)),), engine="spark", spark=SPARK)
    arrays = RecordArrays.from_prepared(prepared)
    exact = settings.comparison("name").code("exact")
    with open_backend(settings) as backend:
        total = backend.candidate_pairs(prepared, settings).candidate_pairs
        everything = backend.training_patterns(arrays, settings, 1.0, 7)
        half, other_seed = (backend.training_patterns(arrays, settings, 0.5, seed) for seed in (7, 8))
    with open_backend(LinkSettings()) as duck:
        duck.candidate_pairs(prepared, settings)
        on_duckdb = {keep: duck.training_patterns(arrays, settings, keep, 7) for keep in (1.0, 0.5)}
    assert total == 3 * 100 * 99 // 2 == everything.pairs.sum()
    name_exact = everything.patterns[:, [c.field for c in settings.comparisons].index("name")] == exact
    assert everything.pairs[name_exact].sum() == 3 * 950
    shared_names = everything.exact_values["name"].groupby("value")["pairs"].sum()
    assert sorted(arrays.name.values[shared_names.index]) == sorted(names) and set(shared_names) == {3 * 190}
    assert 0.45 < half.pairs.sum() / total < 0.55 and half.pairs.sum() != other_seed.pairs.sum()
    for on_spark, duck_counted in ((everything, on_duckdb[1.0]), (half, on_duckdb[0.5])):
        np.testing.assert_array_equal(on_spark.patterns, duck_counted.patterns)
        np.testing.assert_array_equal(on_spark.pairs, duck_counted.pairs)
        pd.testing.assert_frame_equal(on_spark.exact_values["name"], duck_counted.exact_values["name"])


def test_the_demo_district_gives_the_same_persons_on_both_engines(spark, tmp_path) -> None:
    staged = staged_demo(tmp_path / "home", persons=20_000, seed=11)
    declared = load_link_settings(DEMO_LINKING)
    # The EM fits on a sample of the candidate pairs (as at a city's size), drawn alike on both engines.
    duckdb_settings = declared.model_copy(update={"model": declared.model.model_copy(update={"em_sample_pairs": 40_000})})
    on_duckdb = link_records(staged, duckdb_settings, id_key=ID_KEY)
    on_spark = link_records(staged, duckdb_settings.model_copy(update={"engine": "spark", "spark": SPARK}), id_key=ID_KEY)
    assert on_duckdb.stats["persons"] > 15_000
    assert 30_000 < on_duckdb.stats["model"]["training_pairs"] < on_duckdb.stats["candidate_pairs"] / 2
    pd.testing.assert_frame_equal(on_spark.mapping, on_duckdb.mapping)
    pd.testing.assert_frame_equal(on_spark.pairs, on_duckdb.pairs)
    pd.testing.assert_frame_equal(on_spark.review_queue, on_duckdb.review_queue)
    for count in ("candidate_pairs", "pairs_per_rule", "skipped_blocks", "skipped_block_records", "links", "links_cut",
                  "vetoed_pairs", "split_components", "model"):
        assert on_spark.stats[count] == on_duckdb.stats[count], count


def test_the_spark_engine_without_pyspark_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dedup.spark", None)
    with pytest.raises(ConfigError, match=r"silobreaker\[spark\]"), open_backend(LinkSettings(engine="spark")):
        pass


def test_a_spark_that_cannot_start_says_which_settings_and_keeps_stdout_clean(tmp_path_factory) -> None:
    require_packages(JAVA, tmp_path_factory.getbasetemp().parent)
    # A fresh process: a worker's running session would be reused whatever the settings. The JVM cannot get
    # its heap, and says so on the standard output it inherits — the run's JSON document under --json.
    code = ("from dedup.settings import SparkSpec\n"
            "SparkSpec(conf={'spark.driver.memory': '1k'}).session()\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and done.stdout == ""
    assert "ConfigError: Spark did not start with linking.yaml's spark settings (master local[2]" in done.stderr
    assert "or set engine: duckdb" in done.stderr and "Too small maximum heap" in done.stderr


def test_a_spark_setting_that_downloads_at_start_is_refused() -> None:
    with pytest.raises(ConfigError, match="spark.jars.packages.*intranet"):
        SparkSpec(conf={"spark.jars.packages": "graphframes:graphframes:0.8.3-spark3.5-s_2.12"})


def test_an_unknown_engine_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="one of duckdb, spark"):
        LinkSettings(engine="flink")


def test_text_pandas_holds_in_several_arrow_chunks_crosses_to_spark(spark) -> None:
    # What a concatenation leaves; PySpark's conversion failed the whole scoring job on it at 1M people.
    from dedup.spark import _sendable

    def batches(frames):
        for frame in frames:
            text = pd.concat([pd.Series(["link"] * 2, dtype=TEXT), pd.Series([None] * (len(frame) - 2), dtype=TEXT)],
                             ignore_index=True)
            assert text.array._pa_array.num_chunks == 2
            yield _sendable(pd.DataFrame({"rid": frame["rid"].to_numpy(), "decision": text}))

    rows = spark.createDataFrame(pd.DataFrame({"rid": np.arange(6, dtype=np.int32)})).coalesce(1)
    got = rows.mapInPandas(batches, "rid int, decision string").toPandas()
    assert got["decision"].iloc[:2].tolist() == ["link", "link"] and got["decision"].iloc[2:].isna().all()
