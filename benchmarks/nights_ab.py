"""The same incremental night under two commits, alternating (A B B A …): what a change saves a data team.

A whole night at 1M people moves by seconds with the machine's speed from one hour to the next, so a
change is measured against the code before it on the same night, run for run in turn. ``--home`` is a
data home after a night and a day's changes (``benchmarks/sync.py`` makes one: the home it copies
before the incremental run); each run takes a fresh copy of it, runs ``silobreaker run`` with one
commit's code (a ``git worktree`` of it, on this venv) under GNU time, and the table gives wall, peak
memory and the link and publish stages. ``--setup-after`` runs on the after-side copy first, when what
the home keeps changed form between the commits (``{home}`` is the copy): without it that side's night
would redo what the kept state would have spared it. ``--own-base`` gives each side a home of its own
first: one night of that side's code on a copy of ``--home``, then another day's changes
(``sync.change_a_day``, the same on both sides); the measured nights run on copies of those. Use it when
the change touches what a carried publication depends on (``publish.carry.fingerprint``): the after
side's first night on a publication the before code built would build whole, not carried.

    .venv/bin/python benchmarks/nights_ab.py --home /work/bench/h1m.day2 --before 58bbc10 --after HEAD
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync import REPO, change_a_day, timed_run  # noqa: E402

_STAGES = ("extract", "stage", "link", "publish")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--runs", type=int, default=2, help="nights per side, in the order A B B A A B B A …")
    parser.add_argument("--setup-after", default="", help="a shell command run on the after-side copy ({home})")
    parser.add_argument("--tmp", type=Path, default=None, help="where the copies go (default: beside --home)")
    parser.add_argument("--own-base", action="store_true",
                        help="each side first runs a night of its own code and takes another day's changes")
    parser.add_argument("--seed", type=int, default=8, help="the seed of the further day's changes (--own-base)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="nights-ab-", dir=args.tmp or args.home.parent))
    commits = {side: subprocess.run(["git", "rev-parse", "--short", ref], cwd=REPO, check=True, capture_output=True,
                                    text=True).stdout.strip() for side, ref in (("A", args.before), ("B", args.after))}
    code = {}
    for side, commit in commits.items():
        code[side] = tmp / f"code_{side}"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(code[side]), commit], cwd=REPO, check=True)
    rows = []
    try:
        base = {side: args.home for side in code}
        if args.own_base:
            for side in code:
                base[side] = tmp / f"base_{side}"
                shutil.copytree(args.home, base[side], symlinks=True)
                os.sync()
                print(f"base {side}", timed_run(base[side], code=code[side]), flush=True)
                change_a_day(base[side] / "demo", args.seed)
        order = ("ABBA" * args.runs)[: 2 * args.runs]
        for number, side in enumerate(order, start=1):
            run_home = tmp / "home"
            shutil.rmtree(run_home, ignore_errors=True)
            shutil.copytree(base[side], run_home, symlinks=True)
            os.sync()  # the copy's pages written out now, not while the night runs
            if side == "B" and args.setup_after:
                subprocess.run(args.setup_after.format(home=shlex.quote(str(run_home))), shell=True, check=True)
            result = timed_run(run_home, code=code[side])
            stages = result["stages"]
            rows.append(f"| {side}{number} | {commits[side]} | {result['wall']:.1f} | {result['cpu']:.1f} | "
                        f"{result['peak_mb']:,.0f} | " + " | ".join(f"{stages.get(kind, 0):.1f}" for kind in _STAGES) + " |")
            print(rows[-1], flush=True)
    finally:
        for side in code:
            subprocess.run(["git", "worktree", "remove", "--force", str(code[side])], cwd=REPO, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    own = f" (each side on its own night of it and day {args.seed}'s changes)" if args.own_base else ""
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, home {args.home}{own}, A = {commits['A']}, B = {commits['B']}\n")
    print("| run | code | wall s | CPU s | peak MB | " + " | ".join(f"{kind} s" for kind in _STAGES) + " |\n"
          "|---|---|---:|---:|---:|" + "---:|" * len(_STAGES))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
