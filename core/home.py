"""The data home: the one place that knows where everything silobreaker writes lives.

A deployment keeps all its state under one directory (``$SILOBREAKER_HOME``, default ``./var``)::

    <home>/
      warehouse/silobreaker.duckdb     the published warehouse (restricted zone)      } through current/,
      shared/<recipient>.parquet       one encrypted product per recipient            } the generation
      current -> generations/<gen>     the published generation, switched atomically
      generations/<gen>/               the last published generations (warehouse/ and shared/ each)
      publication.journal.json         a publication being committed (recovered by the next run)
      run.lock                         held by the run using the home (who holds it, inside)
      runs/<run_id>/assets/            each run's intermediate assets (IO manager)
      kept/staging/<source>/           each source's last staging and the lineage of its extract, reused
                                       while the source is unchanged (staging.reuse)
      kept/extracts/<source>/          a watermark table's rows as last read (connectors.increments)
      kept/linking/                    the last linking's model, prepared records, blocking keys and kept
                                       pairs: the next run links only what changed (dedup.incremental)
      releases/<recipient>/<sha>.parquet  what an analyst row product last showed, class by class, and who
                                       each row is: the next release is held against it (publish.releases)
      reports/quality-<run>.html       the supervisors' report of each run, latest.html the newest
      review/decisions.parquet         clerical review decisions, read by every later run
      warnings/actions.parquet         what workers did with risk warnings, applied by every later run
      audit/publication_log.jsonl      the signed, hash-chained publication log, audit/members/<seq>.txt,
                                       audit/audit_signing.pub (the key its signatures verify with)
      keys/                            key files (mode 600 in a mode-700 folder)
      corrections/<source>.csv|.xlsx   what a department is asked to correct: its held-back rows and
                                       its records other departments disagree with
      demo/                            the generated demo district's source systems, area register
                                       (demo/areas.csv) and truth
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

__all__ = ["HOME_ENV", "OFFICE_SUFFIXES", "DataHome", "HomeLike", "private_files"]

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

    # -- the published warehouse and products (links into the current generation) ---------

    @property
    def warehouse_dir(self) -> Path:
        """Folder of the published warehouse (a link to the current generation's)."""
        return self.root / _WAREHOUSE

    @property
    def warehouse_file(self) -> Path:
        """The published DuckDB warehouse."""
        return self.warehouse_dir / _WAREHOUSE_FILE

    @property
    def shared_dir(self) -> Path:
        """Folder of the published per-recipient products (a link to the current generation's)."""
        return self.root / _SHARED

    def product_file(self, recipient: str) -> Path:
        """The published product of ``recipient``."""
        return self.shared_dir / _product_name(recipient)

    def office_file(self, recipient: str, format: str = "xlsx") -> Path:
        """The published password-protected file of ``recipient`` beside its product: the xlsx of
        ``format: xlsx``, the AES zip holding the CSV of ``format: csv``."""
        return self.shared_dir / f"{recipient}{OFFICE_SUFFIXES[format]}"

    # -- generations: what one publication consists of --------------------------------------

    @property
    def generations_dir(self) -> Path:
        """Folder of the published generations (and of the one a run is building)."""
        return self.root / "generations"

    def generation_dir(self, name: str) -> Path:
        """One generation: its warehouse and its products."""
        return self.generations_dir / name

    def generation_warehouse_file(self, name: str) -> Path:
        """A generation's warehouse."""
        return self.generation_dir(name) / _WAREHOUSE / _WAREHOUSE_FILE

    def generation_shared_dir(self, name: str) -> Path:
        """A generation's products folder."""
        return self.generation_dir(name) / _SHARED

    def generation_product_file(self, name: str, recipient: str) -> Path:
        """``recipient``'s product in a generation."""
        return self.generation_shared_dir(name) / _product_name(recipient)

    def generation_product_files(self, name: str) -> dict[str, Path]:
        """The products a generation holds, by recipient."""
        folder = self.generation_shared_dir(name)
        found = sorted(folder.glob(f"*{_PRODUCT_SUFFIX}")) if folder.is_dir() else []
        return {path.name.removesuffix(_PRODUCT_SUFFIX): path for path in found}

    def generation_record(self, name: str) -> Path:
        """What a generation is (run, time): written when it is committed, absent from an unfinished build."""
        return self.generation_dir(name) / "generation.json"

    @property
    def current_link(self) -> Path:
        """The link naming the published generation; switching it publishes one whole."""
        return self.root / "current"

    def current_target(self, name: str) -> str:
        """What :attr:`current_link` holds for generation ``name`` (relative, so the home can move)."""
        return str(self.generation_dir(name).relative_to(self.root))

    def published_link_targets(self) -> dict[Path, str]:
        """The fixed paths readers use and what each links to, through :attr:`current_link`."""
        current = self.current_link.name
        return {self.warehouse_dir: f"{current}/{_WAREHOUSE}", self.shared_dir: f"{current}/{_SHARED}"}

    @property
    def publication_journal(self) -> Path:
        """The journal of a publication being committed; the next run finishes or undoes it."""
        return self.root / "publication.journal.json"

    # -- one run at a time, each in its own folder ------------------------------------------

    @property
    def lock_file(self) -> Path:
        """The run lock (``flock``); it holds the run id, PID and start time of its holder."""
        return self.root / "run.lock"

    @property
    def runs_dir(self) -> Path:
        """Folder of the runs' own working folders."""
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        """One run's working folder."""
        return self.runs_dir / run_id

    def run_finished_marker(self, run_id: str) -> Path:
        """Present once a run has ended (successfully or not); a folder without it was killed."""
        return self.run_dir(run_id) / "finished"

    # -- reports ----------------------------------------------------------------------------

    @property
    def reports_dir(self) -> Path:
        """Folder of the supervisors' quality reports."""
        return self.root / "reports"

    @property
    def report_script_file(self) -> Path:
        """plotly.js, once beside the reports (each report loads it from there; copy it with a report)."""
        return self.reports_dir / "plotly.min.js"

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
    def warning_actions_file(self) -> Path:
        """Workers' actions on risk warnings (``silobreaker warnings close``), applied by every later run."""
        return self.root / "warnings" / "actions.parquet"

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
    def audit_public_key_file(self) -> Path:
        """The public key the audit log's signatures verify with (PEM), beside the log for anyone to check."""
        return self.audit_dir / "audit_signing.pub"

    def audit_export_file(self, seq: int) -> Path:
        """Default file ``silobreaker audit export`` writes the log up to entry ``seq`` to."""
        return self.audit_dir / "exports" / f"audit-{seq:06d}.json"

    @property
    def keys_dir(self) -> Path:
        """Folder of key files (mode 700)."""
        return self.root / "keys"

    @property
    def audit_key_file(self) -> Path:
        """The key of the audit log's membership hashes."""
        return self.keys_dir / "audit.key"

    @property
    def audit_signing_key_file(self) -> Path:
        """The private key (Ed25519 seed) the audit log's entries are signed with."""
        return self.keys_dir / "audit_signing.key"

    @property
    def person_id_key_file(self) -> Path:
        """The key new person ids are derived with (opaque: not computable from record keys)."""
        return self.keys_dir / "person_id.key"

    def pseudonym_key_file(self, recipient: str) -> Path:
        """The key of ``recipient``'s pseudonyms."""
        return self.keys_dir / f"{recipient}.key"

    def product_key_file(self, recipient: str) -> Path:
        """The master key ``recipient``'s product is encrypted under."""
        return self.keys_dir / f"{recipient}.product.key"

    def retired_product_key_file(self, recipient: str, key_id: str) -> Path:
        """A product key of ``recipient`` replaced by ``silobreaker keys rotate``, kept by its key id so the
        products encrypted under it stay readable."""
        return self.keys_dir / f"{recipient}.product.key.{key_id}"

    def retired_product_key_files(self, recipient: str) -> dict[str, Path]:
        """Every retired product key file of ``recipient``, by key id."""
        prefix = self.product_key_file(recipient).name + "."
        found = sorted(self.keys_dir.glob(f"{prefix}*")) if self.keys_dir.is_dir() else []
        return {path.name.removeprefix(prefix): path for path in found}

    # -- a run's intermediate files ---------------------------------------------------------

    def asset_base(self, run_id: str, key_path: Sequence[str]) -> Path:
        """Where run ``run_id`` stores an intermediate asset, without suffix (the IO manager adds one)."""
        return self.run_dir(run_id).joinpath("assets", *key_path)

    def kept_staging_dir(self, source: str) -> Path:
        """Where ``source``'s last staging is kept for the next run (:mod:`staging.reuse`)."""
        return self.kept_dir / "staging" / source

    def kept_extract_dir(self, source: str) -> Path:
        """Where the rows of ``source`` (a table read by watermark) are kept for its next read
        (:mod:`connectors.increments`)."""
        return self.kept_dir / "extracts" / source

    def kept_office_derivation_file(self, recipient: str) -> Path:
        """Where ``recipient``'s xlsx password derivation is kept, sealed (:class:`publish.office.KeptDerivation`)."""
        return self.kept_dir / "office" / f"{recipient}.derivation"

    @property
    def kept_linking_dir(self) -> Path:
        """Where the last linking's state is kept for the next run (:mod:`dedup.incremental`)."""
        return self.kept_dir / "linking"

    def release_rows_dir(self, recipient: str) -> Path:
        """Where ``recipient``'s analyst row releases are kept as they were shown, with who each row is (restricted
        zone; not removed by ``--full``: the next release is held against them, :mod:`publish.releases`)."""
        return self.root / "releases" / recipient

    def release_rows_file(self, recipient: str, content_hash: str) -> Path:
        """The kept rows of ``recipient``'s release whose product file has sha256 ``content_hash``."""
        return self.release_rows_dir(recipient) / f"{content_hash}.parquet"

    @property
    def kept_dir(self) -> Path:
        """Everything kept between runs to spare work (``silobreaker run --full`` removes it)."""
        return self.root / "kept"

    def corrections_file(self, source: str, suffix: str) -> Path:
        """Default file ``silobreaker corrections export`` (and its alias ``quarantine export``) writes
        ``source``'s corrections to."""
        return self.root / "corrections" / f"{source}{suffix}"

    # -- the demo and the Dagster instance --------------------------------------------------

    @property
    def demo_dir(self) -> Path:
        """The generated demo district's source systems (``demo/sources.yaml`` points here)."""
        return self.root / "demo"

    @property
    def demo_area_register(self) -> Path:
        """The demo district's area register (streets, communities, grids and their buildings), written
        with its sources; the pipeline's register when ``SILOBREAKER_AREAS`` names none."""
        return self.demo_dir / "areas.csv"

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


def private_files() -> None:
    """Make everything this process writes from now on readable by its owner only (umask 077): the data
    home holds restricted data, keys and the audit trail."""
    os.umask(0o077)


_WAREHOUSE = "warehouse"
_WAREHOUSE_FILE = "silobreaker.duckdb"
_SHARED = "shared"
_PRODUCT_SUFFIX = ".parquet"


OFFICE_SUFFIXES: dict[str, str] = {"xlsx": ".xlsx", "csv": ".zip"}
"""The suffix of the password-protected file each product ``format`` delivers beside the Parquet."""


def _product_name(recipient: str) -> str:
    return f"{recipient}{_PRODUCT_SUFFIX}"


HomeLike = DataHome | str | os.PathLike[str]
"""A data home, or a directory to treat as one."""
