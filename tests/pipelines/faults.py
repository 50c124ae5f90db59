"""Run the sync from the command line with one fault injected, as a child process the tests can kill.

    python -m tests.pipelines.faults POINT HOME [silobreaker run arguments]

POINT is where the process dies (SIGKILL, as ``kill -9`` or a power cut would) or fails:

- ``build``: while the new generation is being built (after its tables, before its products);
- ``journal``: after the publication journal is written, before the switch of ``current``;
- ``switch``: after the switch, before the audit entries are appended;
- ``audit-fails``: appending the audit entries raises (a full disk, a read-only log);
- ``disk-full``: the disk fills up while the generation is built;
- ``run-storage-full``: Dagster's run storage under the home cannot write (SQLite's "disk I/O error");
- ``hold``: holds the data home's lock and waits to be killed (prints ``held`` once it holds it).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time


def _die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    point, home, *rest = sys.argv[1:]
    import publish.audit
    import publish.generations
    import publish.warehouse

    if point == "hold":
        from core.lock import hold_data_home

        with hold_data_home(home, "run-held-by-the-test"):
            print("held", flush=True)
            time.sleep(600)
        return 0
    if point == "build":
        publish.warehouse.write_quality_metrics = _die
    elif point == "journal":
        publish.generations.Generations._switch = _die
    elif point == "switch":
        publish.audit.AuditLog.write = _die
    elif point == "audit-fails":
        def refuse(*_args, **_kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        publish.audit.AuditLog.write = refuse
    elif point == "disk-full":
        def full(*_args, **_kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        publish.warehouse.write_quality_metrics = full
    elif point == "run-storage-full":
        import sqlite3

        import sqlalchemy.exc

        import pipelines.cli

        def storage_full(*_args, **_kwargs):
            raise sqlalchemy.exc.OperationalError('PRAGMA main.table_xinfo("runs")', {},
                                                  sqlite3.OperationalError("disk I/O error"))

        pipelines.cli._execute_without_capture = storage_full
    else:
        raise SystemExit(f"unknown fault {point!r}")
    from pipelines.cli import main as cli

    return cli(["run", "--home", home, *rest])


if __name__ == "__main__":
    sys.exit(main())
