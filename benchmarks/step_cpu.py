"""How much of the machine each step of a night keeps busy: CPU seconds per wall second, step by step.

A night on two cores that runs a step at 100% leaves one core idle through it: that is where reading in a thread
beside (or a second process) can help, and a step at ~200% has nothing to gain. ``silobreaker run`` runs on a fresh
copy of ``--home`` (a generated home before any night gives a whole first night); the CPU seconds of its process
tree (workers included) are read from ``/proc`` every ``--every`` seconds, and each progress line
(``[ t ] 抽取 extract census: … (d s)``) gets the CPU seconds spent in its ``d`` seconds. Linux only.

    .venv/bin/python benchmarks/step_cpu.py --home /work/bench/h1m.gen
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

_STEP = re.compile(r"\] (.*)\(([\d.]+) s\)$")
_TICK = os.sysconf("SC_CLK_TCK")
BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"


def _stat(pid: int) -> tuple[int, float] | None:
    """``(parent pid, CPU seconds)`` of ``pid`` — its own and its reaped children's — or ``None`` once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / _TICK


def tree_cpu(root: int) -> float:
    """CPU seconds (user and system) of ``root`` and its living descendants."""
    stats = {int(pid): stat for pid in os.listdir("/proc") if pid.isdigit() and (stat := _stat(int(pid)))}
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        total += stats[pid][1] if pid in stats else 0.0
        pending.extend(children.get(pid, []))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a data home, copied before the run")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between samples")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="step-cpu-", dir=args.home.parent) as scratch:
        home = Path(scratch) / "home"
        shutil.copytree(args.home, home, symlinks=True)
        os.sync()
        started = time.monotonic()
        night = subprocess.Popen([str(BIN / "silobreaker"), "run", "--home", str(home)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, env={**os.environ, "SILOBREAKER_HOME": str(home)})
        lines: list[tuple[float, str]] = []
        reader = threading.Thread(target=lambda: lines.extend((time.monotonic() - started, line.rstrip())
                                                              for line in night.stderr))
        reader.start()
        samples: list[tuple[float, float]] = [(0.0, 0.0)]
        while night.poll() is None:
            samples.append((time.monotonic() - started, tree_cpu(night.pid)))
            time.sleep(args.every)
        reader.join()
    times = [t for t, _ in samples]

    def cpu_at(moment: float) -> float:
        return samples[min(bisect.bisect_left(times, moment), len(samples) - 1)][1]

    print(f"exit {night.returncode}, wall {time.monotonic() - started:.1f} s\n\n| step | wall s | CPU s | CPU % |\n"
          "|---|---:|---:|---:|")
    for moment, line in lines:
        found = _STEP.search(line)
        if found:
            wall = float(found.group(2))
            cpu = cpu_at(moment) - cpu_at(moment - wall)
            print(f"| {found.group(1).strip()[:60]} | {wall:.1f} | {cpu:.1f} | {100 * cpu / max(wall, 0.01):.0f} |")


if __name__ == "__main__":
    main()
