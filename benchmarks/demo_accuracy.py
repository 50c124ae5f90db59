"""Accuracy and speed of identity resolution on the generated demo district.

One command generates the demo in a temporary data home, reads and stages every person source as the
pipeline does, links the staged records, and scores the result against the generator's ground truth:

    .venv/bin/python benchmarks/demo_accuracy.py --persons 20000 --seed 20261123

Pairwise precision / recall / F1 are computed from the contingency table of (predicted person, true
person) — true-positive pairs are sum C(n, 2) over its cells — so evaluation is linear in the number of
records, never quadratic. Twins, 同名同姓 namesakes and the people a record was keyed with a household
member's ID number for, with that member (``hard_negatives.parquet``), count as merged when any record
of one shares a predicted person with any record of the other. Quarantined records are not
linked, so evaluation covers staged records only.

The result, with the command, data size, machine and timings, is appended to
``benchmarks/results/demo_accuracy.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from connectors import load_sources, read_source  # noqa: E402
from dedup import LinkSettings, ModelSpec, link_records  # noqa: E402
from demo.generate import SOURCES_YAML, generate_demo  # noqa: E402
from staging.stage import ChunkRunner, stage_person_records  # noqa: E402

log = logging.getLogger("benchmarks.demo_accuracy")

RESULTS = ROOT / "benchmarks" / "results" / "demo_accuracy.md"


def stage_demo(home: Path, runner: ChunkRunner | None = None) -> tuple[pd.DataFrame, dict[str, int], dict[str, float]]:
    """Read and stage every person source of the demo (chunks staged by ``runner`` when given, e.g. on Spark);
    return staged records, quarantine counts, timings."""
    sources = load_sources(SOURCES_YAML)
    staged: list[pd.DataFrame] = []
    quarantined: dict[str, int] = {}
    seconds = {"read": 0.0, "stage": 0.0}
    for cfg in sources.person_sources:
        started = time.perf_counter()
        extract = read_source(cfg, home)
        seconds["read"] += time.perf_counter() - started
        started = time.perf_counter()
        result = stage_person_records(
            extract.frame,
            source=cfg.name,
            primary_key=cfg.primary_key,
            columns=cfg.columns,
            values=cfg.values,
            date_formats=cfg.date_formats,
            extracted_at=extract.lineage.extracted_at,
            runner=runner,
        )
        seconds["stage"] += time.perf_counter() - started
        staged.append(result.staged)
        quarantined[cfg.name] = len(result.quarantine)
    return pd.concat(staged, ignore_index=True), quarantined, {k: round(v, 2) for k, v in seconds.items()}


def _pairs(sizes: pd.Series) -> int:
    sizes = sizes.astype("int64")
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise_scores(mapping: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float | int]:
    """Pairwise precision, recall and F1 of ``mapping`` (record_id, person_id) against ``truth``
    (record_id, true_person_id), over the records both hold, in linear time."""
    joined = mapping.merge(truth[["record_id", "true_person_id"]], on="record_id", how="inner", validate="one_to_one")
    true_positive = _pairs(joined.groupby(["person_id", "true_person_id"]).size())
    predicted = _pairs(joined.groupby("person_id").size())
    actual = _pairs(joined.groupby("true_person_id").size())
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "records": len(joined),
        "true_pairs": actual,
        "predicted_pairs": predicted,
        "true_positive_pairs": true_positive,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_persons": int(joined["true_person_id"].nunique()),
        "predicted_persons": int(joined["person_id"].nunique()),
    }


def merged_hard_negatives(mapping: pd.DataFrame, truth: pd.DataFrame, negatives: pd.DataFrame) -> dict[str, int]:
    """Per kind: hard-negative pairs with staged records on both sides, and how many were merged."""
    cells = (
        mapping.merge(truth[["record_id", "true_person_id"]], on="record_id")
        .loc[:, ["true_person_id", "person_id"]]
        .drop_duplicates()
    )
    present = set(cells["true_person_id"])
    evaluable = negatives[negatives["person_a"].isin(present) & negatives["person_b"].isin(present)]
    merged = (
        evaluable.merge(cells.rename(columns={"true_person_id": "person_a"}), on="person_a")
        .merge(cells.rename(columns={"true_person_id": "person_b"}), on=["person_b", "person_id"])
        .drop_duplicates(["person_a", "person_b"])
    )
    out: dict[str, int] = {}
    for kind in ("twin", "namesake", "borrowed_id"):
        out[f"{kind}_pairs"] = int((evaluable["kind"] == kind).sum())
        out[f"{kind}_merged"] = int((merged["kind"] == kind).sum())
    return out


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GB RAM, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


RESULTS_HEADER = (
    "# Identity resolution on the demo district\n\n"
    "Appended by `benchmarks/demo_accuracy.py`, newest last. Pairwise precision / recall / F1 over "
    "staged records against the generator's ground truth; twins and namesakes from "
    "`hard_negatives.parquet` (a pair counts as merged if any of their records share a person).\n"
)


def append_result(path: Path, entry: str, header: str = RESULTS_HEADER) -> None:
    """Append ``entry`` to the results file at ``path``, starting it with ``header`` if it is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(header, encoding="utf-8")
    with path.open("a", encoding="utf-8") as handle:
        handle.write(entry)


def run(persons: int, seed: int, keep: Path | None, model: str = "em") -> str:
    with tempfile.TemporaryDirectory(prefix="silobreaker-bench-") as scratch:
        home = keep or Path(scratch)
        started = time.perf_counter()
        summary = generate_demo(home, persons=persons, seed=seed)
        generate_seconds = time.perf_counter() - started

        staged, quarantined, stage_seconds = stage_demo(home)
        log.info("staged %d records (%d quarantined)", len(staged), sum(quarantined.values()))

        started = time.perf_counter()
        result = link_records(staged, LinkSettings(model=ModelSpec(estimate=model == "em")))
        link_seconds = time.perf_counter() - started

        truth = pd.read_parquet(summary.ground_truth)
        negatives = pd.read_parquet(summary.hard_negatives)
    scores = pairwise_scores(result.mapping, truth)
    hard = merged_hard_negatives(result.mapping, truth, negatives)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    phases = ", ".join(f"{phase} {seconds:.2f}" for phase, seconds in result.stats["seconds"].items())
    command = "python benchmarks/demo_accuracy.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return (
        f"\n## {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} — {persons:,} persons, seed {seed}, "
        f"{'EM-trained model' if model == 'em' else 'declared weights'}\n\n"
        f"- command: `{command}`\n"
        f"- machine: {machine()}\n"
        f"- data: {sum(summary.counts[s] for s in quarantined):,} source rows, {len(staged):,} staged records "
        f"({sum(quarantined.values()):,} quarantined), {scores['true_persons']:,} true persons\n"
        f"- **precision {scores['precision']:.4f}, recall {scores['recall']:.4f}, F1 {scores['f1']:.4f}** "
        f"({scores['true_positive_pairs']:,} of {scores['predicted_pairs']:,} predicted pairs correct, "
        f"{scores['true_pairs']:,} true pairs); {scores['predicted_persons']:,} persons predicted\n"
        f"- hard negatives merged: twins {hard['twin_merged']} of {hard['twin_pairs']}, "
        f"namesakes {hard['namesake_merged']} of {hard['namesake_pairs']}, "
        f"a person with a row under a household member's ID and that member {hard['borrowed_id_merged']} of "
        f"{hard['borrowed_id_pairs']}\n"
        f"- link step: **{link_seconds:.2f} s** ({phases}); candidate pairs {result.stats['candidate_pairs']:,}, "
        f"links {result.stats['links']:,}, cut {result.stats['links_cut']:,}, vetoed {result.stats['vetoed_pairs']:,}, "
        f"ID-sharing conflicts {result.stats.get('id_sharing_conflicts', 0):,}\n"
        f"- other steps: generate {generate_seconds:.1f} s, read {stage_seconds['read']:.1f} s, "
        f"stage {stage_seconds['stage']:.1f} s; peak RSS {peak_gb:.2f} GB (whole process)\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=20_000, help="residents in the demo district")
    parser.add_argument("--seed", type=int, default=20261123, help="generator seed")
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file the result is appended to")
    parser.add_argument("--keep", type=Path, default=None, help="generate into this data home and keep it")
    parser.add_argument("--model", choices=("em", "declared"), default="em",
                        help="em: fit the Fellegi-Sunter model to the data (default); declared: the hand-set weights")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    entry = run(args.persons, args.seed, args.keep, args.model)
    append_result(args.results, entry)
    log.info("appended to %s:%s", args.results, entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
