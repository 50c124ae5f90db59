"""The night's office files (the xlsx clerks and grid workers open, the AES zips of CSV) written again from a home's
delivered products: what a night spends making them, and one commit's writer against another's.

Every product of ``--home``'s current publication with an office file beside it is decrypted (its Parquet product,
with the recipient's key) and its office file written again, ``--rounds`` times, by
``publish.office.write_office_files`` (a process per core, as a night writes them) into a scratch folder, each
recipient's password derivation kept there as a night keeps it (the first round derives them: it is reported apart).
A 待续同意 sheet is not in the Parquet product and is left out; the 说明 is a fixed text of a night's length. With
``--code DIR`` (a checkout of another commit, e.g. a ``git worktree``) that checkout's ``publish.office`` writes them.
Then every file is written once more one after the other in this process: the CPU they cost without the pool's start.

    .venv/bin/python benchmarks/office_files.py --home /work/bench/h1m.day2 --rounds 3
    .venv/bin/python benchmarks/office_files.py --home /work/bench/h1m.day2 --code /tmp/wt_before --rounds 3
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a data home after a night (its shared products)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--code", type=Path, default=None, help="a checkout whose publish.office writes the files")
    args = parser.parse_args()
    code = str(args.code or Path(__file__).resolve().parents[1])
    sys.path.insert(0, code)
    # and the pool's processes: its forkserver imports publish.office by name and does not take this sys.path
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (code, os.environ.get("PYTHONPATH"))))

    from core.home import DataHome
    from publish import office
    from publish.crypto import product_key, read_product

    home = DataHome.at(args.home)
    about = {"接收方": "网格员", "用途": "服务提供", "法律依据": "法定职责（社会救助暂行办法）", "数据范围": "本网格",
             "运行": "0" * 36, "发布时间": "2026-12-06T00:00:00+00:00", "密钥编号": "0" * 16, "记录数": "0"}
    formats = {".xlsx": "xlsx", ".zip": "csv"}
    files, rows = [], 0
    with tempfile.TemporaryDirectory(prefix="office-files-", dir=args.home.parent) as scratch:
        for office_path in sorted(p for p in home.shared_dir.iterdir() if p.suffix in formats):
            recipient = office_path.stem
            key = product_key(args.home, recipient)
            table = read_product(home.product_file(recipient), key)
            rows += table.num_rows
            files.append(office.OfficeFile(
                formats[office_path.suffix], table, Path(scratch) / office_path.name, office.office_password(key), about,
                kept=office.KeptDerivation(Path(scratch) / "kept" / f"{recipient}.derivation", key, recipient)))
        seconds = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            office.write_office_files(files)
            seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        for file in files:  # one after the other in this process: the CPU the files cost, without the pool's start
            file.write()
        serial = time.perf_counter() - started
        size = sum(f.path.stat().st_size for f in files)
        shutil.rmtree(Path(scratch) / "kept", ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"code: {args.code or 'this checkout'}; {len(files)} files, {rows:,} rows, {size / 1e6:.1f} MB; "
          f"rounds (s): {', '.join(f'{s:.2f}' for s in seconds)} (the first derives the passwords); "
          f"one after the other in one process: {serial:.2f} s; "
          f"peak of this process {peak:,.0f} MB; {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")


if __name__ == "__main__":
    main()
