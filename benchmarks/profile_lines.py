"""Where a py-spy profile of a night spends its time: seconds per line of silobreaker's own code.

Reads py-spy's raw (collapsed) output — one line per distinct stack, ``frame;frame;… count`` — and gives
seconds (samples / rate) either per function of silobreaker's packages at the deepest such frame of each
stack (``own``: where the project's code waited on DuckDB, Arrow or a library), or, for one function, per line
of it and the call that line made (``in FUNCTION``: what a step is made of). A sample of a worker process
(``py-spy record --subprocesses``) counts as its own, so work done in parallel adds up to more than the wall.

    py-spy record --idle --subprocesses --format raw -r 20 -o night.raw -- .venv/bin/silobreaker run --home <home>
    .venv/bin/python benchmarks/profile_lines.py night.raw own --rate 20
    .venv/bin/python benchmarks/profile_lines.py night.raw in Warehouse._build --rate 20
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_OWN = re.compile(r"\((assets|connectors|core|dedup|pipelines|publish|quality|staging)/[^:]+:\d+\)$")


def stacks(path: Path):
    """Each stack's frames (``function (file:line)``) and its sample count."""
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            yield stack.split(";"), int(count)


def own(path: Path) -> Counter:
    """Samples per deepest frame of the project's own code."""
    seconds: Counter = Counter()
    for frames, count in stacks(path):
        ours = [frame for frame in frames if _OWN.search(frame)]
        if ours:
            seconds[ours[-1]] += count
    return seconds


def within(path: Path, function: str) -> Counter:
    """Samples of the outermost call of ``function``, per line of it and the function that line called."""
    seconds: Counter = Counter()
    for frames, count in stacks(path):
        for i, frame in enumerate(frames):
            if frame.startswith(f"{function} ("):
                line = frame.rsplit(":", 1)[-1].rstrip(")")
                callee = frames[i + 1].split(" (")[0] if i + 1 < len(frames) else "(itself)"
                seconds[f"line {line} -> {callee}"] += count
                break
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("mode", choices=("own", "in"))
    parser.add_argument("function", nargs="?", help="with 'in': a function as py-spy names it, e.g. Warehouse._build")
    parser.add_argument("--rate", type=float, default=100.0, help="py-spy's -r (samples per second)")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if args.mode == "in" and not args.function:
        parser.error("'in' needs a function")
    seconds = own(args.profile) if args.mode == "own" else within(args.profile, args.function)
    print(f"{sum(seconds.values()) / args.rate:.1f} s in all")
    for name, count in seconds.most_common(args.top):
        print(f"{count / args.rate:7.1f} s  {name}")


if __name__ == "__main__":
    main()
