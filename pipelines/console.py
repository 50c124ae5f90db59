"""The operator's console: progress lines on stderr, and ``--json`` documents on stdout.

A long command (``run``, ``demo``, ``dedup``) says each stage as it finishes, with what it produced
and the time since the command started, on stderr::

    [   4.3 s] 抽取 extract health: 1,947 行 (0.2 s)
    [   5.9 s] 清洗 stage health: 入库 1,931 行，隔离 16 行 (1.1 s)

so stdout carries only the summary — or, with ``--json``, one JSON document a script can parse. The
pipeline's lines come from Dagster's own events (:meth:`Progress.dagster_listener`, registered with
``DagsterInstance.add_event_listener`` for the run); ``dedup`` reports its phases through
``dedup.link_records(on_phase=…)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

__all__ = ["DEDUP_PHASES", "Progress", "add_json_flag", "print_json"]

log = logging.getLogger(__name__)

#: What each step of the sync job is called on the console: Chinese first, then the English stage name.
_STEP_NAMES: dict[str, tuple[str, str]] = {
    "raw": ("抽取", "extract"),
    "stage": ("清洗", "stage"),
    "link": ("归并", "link"),
    "publish": ("发布", "publish"),
    "quality_report": ("质量报告", "report"),
}

#: ``dedup`` phases: console name, and what the count it is told means.
DEDUP_PHASES: dict[str, tuple[str, str]] = {
    "read": ("读取 read", "条记录"),
    "prepare": ("准备 prepare", "条记录"),
    "blocking": ("分块 blocking", "对候选"),
    "train": ("训练 train", "对训练样本"),
    "compare_score": ("比对评分 compare", "对保留"),
    "cluster": ("聚类 cluster", "人"),
    "write": ("写出 write", "行"),
}


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """``--json`` on a subcommand: its answer as one JSON document on stdout."""
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout instead of the text (progress stays on stderr)")


def print_json(document: Any) -> None:
    """The one JSON document a ``--json`` command prints on stdout (Chinese as written, paths as text)."""
    print(json.dumps(document, ensure_ascii=False, indent=2, default=str), flush=True)


_LINES = threading.Lock()  # a progress line is written whole


@dataclass
class _Step:
    started: float | None = None
    materialized: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    warned_checks: list[str] = field(default_factory=list)


class Progress:
    """Stage lines on ``stream`` (stderr), timed from the moment the command started.

    Example:
        >>> progress = Progress()
        >>> progress.line("生成 generate demo", "2,000 人")   # doctest: +SKIP
        [   0.7 s] 生成 generate demo: 2,000 人
    """

    def __init__(self, stream: IO[str] | None = None, clock: Callable[[], float] = time.time) -> None:
        self._stream = stream
        self._clock = clock
        self.started = clock()
        self._steps: dict[str, _Step] = {}
        self._phase_started = self.started
        self._broken = False

    def elapsed(self) -> float:
        """Seconds since the command started."""
        return self._clock() - self.started

    def line(self, stage: str, detail: str = "", *, took: float | None = None, at: float | None = None) -> None:
        """Print ``[elapsed] stage: detail (took)``; ``at`` is when it happened (default: now)."""
        elapsed = (self._clock() if at is None else at) - self.started
        text = f"[{elapsed:6.1f} s] {stage}" + (f": {detail}" if detail else "")
        if took is not None:
            text += f" ({took:.1f} s)"
        stream = self._stream or sys.stderr
        # One write per line, under a lock: Dagster may call the listener from more than one thread, and
        # print() writes the text and its newline apart (a CI run once read two lines run together).
        with _LINES:
            stream.write(text + "\n")
            stream.flush()

    def phase(self, name: str, count: int) -> None:
        """A ``dedup`` phase finished having produced ``count`` (see :data:`DEDUP_PHASES`)."""
        stage, unit = DEDUP_PHASES.get(name, (name, ""))
        now = self._clock()
        self.line(stage, f"{count:,} {unit}".rstrip(), took=now - self._phase_started, at=now)
        self._phase_started = now

    def dagster_listener(self) -> Callable[[Any], None]:
        """A callback for ``DagsterInstance.add_event_listener(run_id, …)``: a line when the run starts, one
        as each step succeeds, fails or is skipped, with the counts its materialisations report, and one
        when the run ends."""
        import dagster as dg

        kinds = dg.DagsterEventType

        def on_event(entry: dg.EventLogEntry) -> None:
            # Dagster calls this inside the step that logged the event: an error here would fail that
            # step, and a progress line is never worth a publication. Said once, then the lines stop.
            if self._broken:
                return
            try:
                follow(entry)
            except Exception as e:  # noqa: BLE001 - see above
                self._broken = True
                log.warning("progress lines stopped: %s", e, exc_info=True)

        def follow(entry: dg.EventLogEntry) -> None:
            event = entry.dagster_event
            if event is None:
                return
            kind, key = event.event_type, event.step_key
            if kind == kinds.RUN_START:
                self.line("运行开始 run started", entry.run_id, at=entry.timestamp)
                return
            if kind in (kinds.RUN_SUCCESS, kinds.RUN_FAILURE):
                # Dagster says nothing of the steps a failure kept from running; the operator needs to know.
                order = list(_STEP_NAMES)
                not_run = [self._stage(k) for k in sorted(
                    (k for k, s in self._steps.items() if s.started is None),
                    key=lambda k: (order.index(_split(k)[0]) if _split(k)[0] in order else len(order), k))]
                if not_run:
                    self.line("未运行 not run", f"{', '.join(not_run)}（上游未通过 upstream failed）", at=entry.timestamp)
                self.line("运行结束 run finished", "成功 success" if kind == kinds.RUN_SUCCESS else "失败 failed",
                          at=entry.timestamp)
                return
            if key is None:
                return
            step = self._steps.setdefault(key, _Step())  # from the plan's events on: a step that never starts shows
            if kind == kinds.STEP_START:
                step.started = entry.timestamp
            elif kind == kinds.ASSET_MATERIALIZATION:
                materialization = event.materialization
                step.materialized[materialization.asset_key.to_user_string()] = {
                    name: getattr(value, "value", value) for name, value in materialization.metadata.items()}
            elif kind == kinds.ASSET_CHECK_EVALUATION:
                evaluation = event.asset_check_evaluation_data
                if not evaluation.passed:
                    warns = evaluation.severity == dg.AssetCheckSeverity.WARN
                    (step.warned_checks if warns else step.failed_checks).append(evaluation.check_name)
            elif kind in (kinds.STEP_SUCCESS, kinds.STEP_FAILURE, kinds.STEP_SKIPPED, kinds.STEP_UP_FOR_RETRY):
                self._step_line(key, step, kind, entry.timestamp)

        return on_event

    @staticmethod
    def _stage(key: str) -> str:
        prefix, subject = _split(key)
        zh, en = _STEP_NAMES.get(prefix, ("步骤", key))
        return f"{zh} {en}" + (f" {subject}" if subject else "")

    def _step_line(self, key: str, step: _Step, kind: Any, at: float) -> None:
        import dagster as dg

        kinds = dg.DagsterEventType
        prefix, subject = _split(key)
        stage = self._stage(key)
        parts = [_counts(prefix, subject, step.materialized)] if step.materialized else []
        if step.failed_checks:
            parts.append("未通过检查 failed check: " + ", ".join(step.failed_checks))
        if step.warned_checks:
            parts.append("有警告 warning: " + ", ".join(step.warned_checks))
        if kind == kinds.STEP_FAILURE:
            parts.append("失败 FAILED（原因见汇总 see the summary）")
        elif kind == kinds.STEP_SKIPPED:
            parts.append("跳过 skipped（上游未通过 upstream blocked）")
        elif kind == kinds.STEP_UP_FOR_RETRY:
            parts.append("稍后重试 retrying")
        took = at - step.started if step.started is not None else None
        self.line(stage, "；".join(p for p in parts if p), took=took, at=at)


def _split(key: str) -> tuple[str, str]:
    """A step key as (kind of step, source): ``raw_health`` → ``("raw", "health")``, ``link`` → ``("link", "")``."""
    prefix, _, subject = key.partition("_") if key.startswith(("raw_", "stage_")) else (key, "", "")
    return prefix, subject


def _counts(prefix: str, subject: str, materialized: Mapping[str, Mapping[str, Any]]) -> str:
    """What a step produced, from the metadata its assets report (``dagster/row_count`` and the like)."""
    def number(asset: str, name: str = "dagster/row_count") -> int | None:
        value = materialized.get(asset, {}).get(name)
        return int(value) if isinstance(value, int | float) else None

    if prefix == "raw" and (rows := number(f"raw_{subject}")) is not None:
        # a file with the bytes of the last staged read: hashed, not parsed
        return f"{rows:,} 行" + ("，未变（未重新解析）" if materialized.get(f"raw_{subject}", {}).get("unchanged") else "")
    if prefix == "stage" and (staged := number(f"staged_{subject}")) is not None:
        # a grid-update form: this form's rows, and the earlier reports kept beside them
        form = number(f"staged_{subject}", "this_form")
        kept = f"（另保留此前上报 {staged - form:,} 条）" if form is not None and staged > form else ""
        reused = "，沿用上次清洗结果" if materialized.get(f"staged_{subject}", {}).get("staging_reused") else ""
        return f"入库 {form if form is not None else staged:,} 行，隔离 {number(f'quarantine_{subject}') or 0:,} 行{kept}{reused}"
    if prefix == "link" and (records := number("record_person_map")) is not None:
        persons, queued = number("record_person_map", "persons"), number("review_queue")
        return (f"{records:,} 条记录 → {persons:,} 人" if persons is not None else f"{records:,} 条记录") + (
            f"，待审核 {queued:,} 对" if queued else "")
    if prefix == "publish" and (persons := number("unified_population")) is not None:
        shared = materialized.get("shared_products", {})
        products = shared.get("product_count", len(shared))
        # built on the last publication (publish.carry): how many persons' rows were written again
        written = number("unified_population", "persons_written")
        carried = f"，在上次发布上更新 {written:,} 人" if number("unified_population", "carried") and written is not None else ""
        return f"{persons:,} 人，{products} 份共享数据产品{carried}"
    if prefix == "quality_report" and (path := materialized.get("quality_report", {}).get("path")):
        return str(path)
    return ""
