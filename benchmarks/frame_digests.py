"""What the sha256 beside every Arrow frame costs a night (``core.frames``): one ``silobreaker run`` in this process,
every digest it takes (writing and reading frames, kept state and the run's own) timed, with the bytes hashed.

    .venv/bin/python benchmarks/frame_digests.py --home <a data home>

Run it on a home after a night and a day's changes (``benchmarks/sync.py``'s ``change_a_day``) for an incremental
night; a home whose kept frames predate their digests stages and links whole once (the night after an upgrade).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args()

    import core.frames as frames
    from pipelines.cli import main as silobreaker

    spent = {"seconds": 0.0, "bytes": 0, "files": 0}
    digest = frames._sha256

    def timed(path: Path) -> str:
        started = time.perf_counter()
        try:
            return digest(path)
        finally:
            spent["seconds"] += time.perf_counter() - started
            spent["bytes"] += path.stat().st_size
            spent["files"] += 1

    frames._sha256 = timed
    started = time.perf_counter()
    try:
        silobreaker(["run", "--home", str(args.home)])
    finally:
        print(f"sha256 of frames: {spent['seconds']:.2f} s over {spent['files']} files, {spent['bytes'] / 1e9:.2f} GB, "
              f"in a night of {time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":  # the office files' worker processes import this module again
    main()
