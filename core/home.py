"""The data home: the one place that knows where everything silobreaker writes lives.

A deployment keeps all its state under one directory (``$SILOBREAKER_HOME``, default ``./var``)::

    <home>/
      warehouse/silobreaker.duckdb     the published warehouse (restricted zone)
      shared/<recipient>.parquet       one encrypted product per recipient
      reports/quality-<run>.html       the supervisors' report of each run, latest.html the newest
      review/decisions.parquet         clerical review decisions, read by every later run
      audit/publication_log.jsonl      the hash-chained publication log, audit/members/<seq>.txt
      keys/                            key files (mode 600 in a mode-700 folder)
      staging/                         intermediate assets of the last run (IO manager)
      quarantine/<source>.csv|.xlsx    held-back rows exported for a department to correct
      demo/                            the generated demo district's source systems and truth
      dagster/                         the Dagster instance of CLI runs and ``make dev``

Every other module asks a :class:`DataHome` for a path; none joins folder or file names under the
home itself, so moving a folder is a change to this file alone.

Example:
    >>> home = DataHome.at("/srv/silobreaker")
    >>> str(home.warehouse_file)
    '/srv/silobreaker/warehouse/silobreaker.duckdb'
    >>> str(home.product_file("grid_cuiyuan_3"))
    '/srv/silobreaker/shared/grid_cuiyuan_3.parquet'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HOME_ENV", "DataHome", "HomeLike"]

HOME_ENV = "SILOBREAKER_HOME"
"""Environment variable naming the data home."""

_DEFAULT_HOME = "var"


@dataclass(frozen=True)
class DataHome:
    """One deployment's data home and every path under it.

    Build it with :meth:`resolve` (explicit path, else ``$SILOBREAKER_HOME``, else ``./var``;
    created if missing) where a command or resource starts, and :meth:`at` to wrap a directory
    already chosen (tests, callers holding a path).
    """

    root: Path

    @classmethod
    def resolve(cls, explicit: str | os.PathLike[str] | None = None) -> DataHome:
        """The data home: ``explicit`` if given, else ``$SILOBREAKER_HOME``, else ``./var``; created if missing.

        Read at call time, never at import.
        """
        chosen = explicit or os.environ.get(HOME_ENV) or _DEFAULT_HOME
        root = Path(chosen).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    @classmethod
    def at(cls, home: HomeLike) -> DataHome:
        """Wrap ``home`` (a :class:`DataHome` is returned as it is); nothing is created or read."""
        return home if isinstance(home, DataHome) else cls(Path(home).expanduser().absolute())

    def __fspath__(self) -> str:
        return str(self.root)

    def __str__(self) -> str:
        return str(self.root)

    def declared_path(self, path: str | os.PathLike[str]) -> Path:
        """A path a configuration file declares: absolute as given, relative ones under the home."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else (self.root / path).absolute()

    # -- the published warehouse ------------------------------------------------------------

    @property
    def warehouse_dir(self) -> Path:
        """Folder of the published warehouse and the candidates being built beside it."""
        return self.root / "warehouse"

    @property
    def warehouse_file(self) -> Path:
        """The published DuckDB warehouse."""
        return self.warehouse_dir / "silobreaker.duckdb"

    def warehouse_candidate(self, run_id: str) -> Path:
        """The warehouse a run builds before it is swapped in."""
        return self.warehouse_dir / f".candidate-{run_id}.duckdb"

    # -- shared products --------------------------------------------------------------------

    @property
    def shared_dir(self) -> Path:
        """Folder of the published per-recipient products."""
        return self.root / "shared"

    def product_file(self, recipient: str) -> Path:
        """The published product of ``recipient``."""
        return self.shared_dir / f"{recipient}.parquet"

    def products_candidate_dir(self, run_id: str) -> Path:
        """Folder where a run writes its products before they are swapped in."""
        return self.shared_dir / f".candidate-{run_id}"

    def product_candidate_file(self, run_id: str, recipient: str) -> Path:
        """``recipient``'s product as a run writes it, before it is swapped in."""
        return self.products_candidate_dir(run_id) / self.product_file(recipient).name

    # -- reports ----------------------------------------------------------------------------

    @property
    def reports_dir(self) -> Path:
        """Folder of the supervisors' quality reports."""
        return self.root / "reports"

    def report_file(self, run_id: str) -> Path:
        """The quality report of one run."""
        return self.reports_dir / f"quality-{run_id}.html"

    @property
    def latest_report(self) -> Path:
        """A copy of the newest quality report, at a fixed name to bookmark."""
        return self.reports_dir / "latest.html"

    # -- review, audit, keys ----------------------------------------------------------------

    @property
    def review_decisions_file(self) -> Path:
        """Clerical review decisions (``silobreaker review decide``), read by every later run."""
        return self.root / "review" / "decisions.parquet"

    @property
    def audit_dir(self) -> Path:
        """Folder of the hash-chained publication log and its membership files."""
        return self.root / "audit"

    @property
    def audit_log_file(self) -> Path:
        """The hash-chained publication log, one JSON entry per published product."""
        return self.audit_dir / "publication_log.jsonl"

    @property
    def audit_members_dir(self) -> Path:
        """Folder of the membership files (keyed hashes of who was in each product)."""
        return self.audit_dir / "members"

    def audit_members_file(self, seq: int) -> Path:
        """Membership file of audit entry ``seq``."""
        return self.audit_members_dir / f"{seq}.txt"

    @property
    def keys_dir(self) -> Path:
        """Folder of key files (mode 700)."""
        return self.root / "keys"

    @property
    def audit_key_file(self) -> Path:
        """The key of the audit log's membership hashes."""
        return self.keys_dir / "audit.key"

    def pseudonym_key_file(self, recipient: str) -> Path:
        """The key of ``recipient``'s pseudonyms."""
        return self.keys_dir / f"{recipient}.key"

    def product_key_file(self, recipient: str) -> Path:
        """The master key ``recipient``'s product is encrypted under."""
        return self.keys_dir / f"{recipient}.product.key"

    # -- a run's intermediate files ---------------------------------------------------------

    @property
    def staging_dir(self) -> Path:
        """Intermediate assets of the last run, written by the IO manager."""
        return self.root / "staging"

    def asset_base(self, key_path: Sequence[str]) -> Path:
        """Where an intermediate asset is stored, without suffix (the IO manager adds one)."""
        return self.staging_dir.joinpath(*key_path)

    def quarantine_export_file(self, source: str, suffix: str) -> Path:
        """Default file ``silobreaker quarantine export`` writes ``source``'s held-back rows to."""
        return self.root / "quarantine" / f"{source}{suffix}"

    # -- the demo and the Dagster instance --------------------------------------------------

    @property
    def demo_dir(self) -> Path:
        """The generated demo district's source systems (``demo/sources.yaml`` points here)."""
        return self.root / "demo"

    @property
    def demo_truth_dir(self) -> Path:
        """The demo district's ground truth (who is whom), for benchmarks and tests."""
        return self.demo_dir / "truth"

    @property
    def dagster_dir(self) -> Path:
        """The Dagster instance (``DAGSTER_HOME``) of CLI runs and ``make dev``."""
        return self.root / "dagster"

    @property
    def dagster_config_file(self) -> Path:
        """The Dagster instance's settings (a copy of the repository's ``dagster.yaml``)."""
        return self.dagster_dir / "dagster.yaml"


HomeLike = DataHome | str | os.PathLike[str]
"""A data home, or a directory to treat as one."""
