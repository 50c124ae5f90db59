"""What a ``run`` or ``demo`` tells the operator at the end: one typed summary, printed as lines or as JSON.

Both forms come from :func:`build_summary`, so the JSON a scheduler parses says exactly what the
human summary says: the counts per source, why the run was blocked (each failed ``error`` rule or
guard, with the fix), each failed step, every warning, what was put in order before the run, and the
publication in force afterwards — this run's, or the previous one kept because this run failed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from connectors import load_sources
from publish import Generations, WarehouseReader

if TYPE_CHECKING:
    from pipelines.cli import RunOutcome

__all__ = ["Finding", "Publication", "SourceCounts", "SyncSummary", "build_summary"]


@dataclass(frozen=True)
class SourceCounts:
    """One declared source: its rows this run (``read`` false: the run did not get to read it), and what its
    department corrected since the previous publication (``rows_fixed``: quarantined rows now staged;
    ``conflicts_fixed``: records that disagreed with another department, corrected; ``None`` where not
    measured — the first run, a failed run)."""

    source: str
    department: str
    read: bool
    extracted: int | None = None
    staged: int | None = None
    quarantined: int | None = None
    rows_fixed: int | None = None
    conflicts_fixed: int | None = None


@dataclass(frozen=True)
class Finding:
    """Something the operator must see: ``level`` is ``BLOCKED``, ``FAILED``, ``WARNING`` or ``ACCEPTED``;
    ``subject`` the source (or, for ``FAILED``, the step); ``fix`` the command that puts it right, if one does."""

    level: str
    subject: str
    message: str
    department: str | None = None
    check: str | None = None
    fix: str | None = None

    def lines(self) -> list[str]:
        """The finding as the human summary prints it."""
        where = f" ({self.department})" if self.department else ""
        check = f"{self.check}: " if self.check else ""
        return [f"{self.level} {self.subject}{where}: {check}{self.message}"] + ([f"  {self.fix}"] if self.fix else [])


@dataclass(frozen=True)
class Publication:
    """The publication in force after the run: ``by_this_run`` false when this run failed and the previous
    one was kept."""

    run_id: str
    generation: str | None
    by_this_run: bool
    persons: int
    records: int
    tables: tuple[str, ...]
    products: dict[str, int]
    warehouse: str
    shared_dir: str
    entries: tuple[tuple[str, int, int], ...] = ()
    areas: dict[str, int] | None = None
    area_register: str | None = None


@dataclass(frozen=True)
class SyncSummary:
    """The end of a run, for :meth:`lines` (stdout) or :meth:`as_dict` (``--json``)."""

    run_id: str
    success: bool
    sources: tuple[SourceCounts, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    publication: Publication | None = None
    report: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """One JSON-ready document; findings grouped by level (``blocked``, ``failures``, ``warnings``, ``accepted``)."""
        by_level = {level: [_finding_dict(f) for f in self.findings if f.level == level]
                    for level in ("BLOCKED", "FAILED", "WARNING", "ACCEPTED")}
        return {
            "run_id": self.run_id,
            "success": self.success,
            "sources": [asdict(s) for s in self.sources],
            "blocked": by_level["BLOCKED"],
            "failures": by_level["FAILED"],
            "warnings": by_level["WARNING"],
            "accepted": by_level["ACCEPTED"],
            "notes": list(self.notes),
            "publication": asdict(self.publication) if self.publication else None,
            "report": self.report,
        }

    def lines(self) -> list[str]:
        """The human summary."""
        lines = [f"\nsilobreaker run {self.run_id}: {'SUCCESS' if self.success else 'FAILED'}",
                 f"{'source':<20}{'extracted':>10}{'staged':>10}{'quarantined':>13}{'rows fixed':>12}"
                 f"{'conflicts fixed':>17}"]
        for s in self.sources:
            fixed = f"{_or_dash(s.rows_fixed):>12}{_or_dash(s.conflicts_fixed):>17}"
            lines.append(f"{s.source:<20}{s.extracted:>10}{s.staged:>10}{s.quarantined:>13}{fixed}" if s.read
                         else f"{s.source:<20}{'not read in this run':>33}")
        lines += [f"RECOVERED {note}" for note in self.notes]
        for finding in self.findings:
            lines += finding.lines()
        p = self.publication
        if p is not None:
            note = "" if p.by_this_run else "  (previous publication, kept because this run failed)"
            lines += [f"people resolved: {p.persons} from {p.records} staged records{note}",
                      f"tables published: {', '.join(p.tables)}"]
            if p.areas is not None:
                a = p.areas
                lines.append(
                    f"areas:         {a['placed_only_by_address']} people placed by their address alone (area register "
                    f"{p.area_register or 'none: set SILOBREAKER_AREAS'}); {a['without_community']} without a community "
                    f"(their address names none in the register), {a['without_grid']} without a grid; "
                    f"{a['in_conflict']} with disagreeing areas, resolved by recency (table area_conflicts)")
            shared = [f"{name} ({rows} rows)" if not areas else f"{name}: {areas} area products ({rows} rows)"
                      for name, areas, rows in p.entries] or [f"{r} ({n} rows)" for r, n in p.products.items()]
            lines += [f"warehouse:     {p.warehouse}", f"shared tables: {p.shared_dir}  " + ", ".join(shared)]
        if self.report:
            lines.append(f"report:        {self.report}")
        return lines


def _or_dash(count: int | None) -> str:
    return "-" if count is None else str(count)


def _finding_dict(finding: Finding) -> dict[str, Any]:
    document = asdict(finding)
    del document["level"]
    return document


def build_summary(outcome: RunOutcome) -> SyncSummary:
    """The summary of ``outcome``, read from its staging reports and the data home's publication."""
    settings = outcome.settings
    assert settings is not None
    home = settings.home
    sources = []
    fixes = WarehouseReader(home).fixes(outcome.run_id) if outcome.success else {}
    for source in load_sources(settings.sources_file).sources:
        report = outcome.reports.get(source.name)
        fixed = fixes.get(source.name)
        sources.append(SourceCounts(source.name, source.department, False) if report is None else SourceCounts(
            source.name, report.department, True, report.extracted, report.staged, report.quarantined,
            fixed.rows if fixed else None, fixed.conflicts if fixed else None))
    return SyncSummary(
        run_id=outcome.run_id,
        success=outcome.success,
        sources=tuple(sources),
        findings=tuple(_findings(outcome)),
        notes=tuple(outcome.notes),
        publication=_publication(home, outcome.success, settings.area_register_file),
        report=str(home.latest_report) if home.latest_report.exists() else None,
    )


def _publication(home, success: bool, area_register) -> Publication | None:
    reader = WarehouseReader(home)
    last = reader.last_run()
    summary = reader.summary(last.run_id) if last else None
    if last is None or summary is None:
        return None
    current = Generations(home).current()
    return Publication(
        run_id=last.run_id, generation=current.name if current else None, by_this_run=success,
        persons=summary.persons, records=summary.records, tables=summary.tables, products=dict(summary.products),
        warehouse=str(reader.path), shared_dir=str(home.shared_dir), entries=summary.entries,
        areas=asdict(areas) if (areas := reader.area_summary()) is not None else None,
        area_register=str(area_register) if area_register else None,
    )


def _findings(outcome: RunOutcome) -> list[Finding]:
    """Why the run was blocked (each failed ``error`` rule or guard, with the fix), each failed step's
    message, then every warning: nothing a nightly sync notices stays silent."""
    found = []
    for name, report in outcome.reports.items():
        for o in report.validation.failed_expectations():
            fix = (f"if {name} really shrank, confirm it: silobreaker run --accept-drop {name}"
                   if o.kind == "row_drop" else None)
            found.append(Finding("BLOCKED", name, f"{o.observed()}; allowed: {o.threshold()}. {o.why}",
                                 report.department, _check(o), fix))
    found += [Finding("FAILED", step, message) for step, message in outcome.failures.items()]
    for name, report in outcome.reports.items():
        found += [Finding("WARNING", name, f"{o.observed()}; expected: {o.threshold()}. {o.why}", report.department,
                          _check(o)) for o in report.validation.warnings()]
        if report.role == "consent" and report.quarantined:
            found.append(Finding(
                "WARNING", name, f"{report.quarantined} consent decision(s) cannot be read; the people they name are "
                "left out of every product a withdrawal or a deletion would keep them from until the rows are "
                "corrected", report.department, "consent_unreadable",
                f"write them out for the registry to correct: silobreaker corrections export --source {name}"))
        if report.soft_problems:
            problems = ", ".join(f"{problem} {count}" for problem, count in sorted(report.soft_problems.items()))
            found.append(Finding("WARNING", name, "staged with problems kept as flags or left empty (see the report): "
                                 + problems, report.department))
        found += [Finding("ACCEPTED", name, f"{o.observed()} ({o.why.rsplit('; ', 1)[-1]})", report.department, o.kind)
                  for o in report.validation.outcomes if "accepted by" in o.why]
    # What the run found and put in order before it began is logged too, where it was done (a run the UI starts shows
    # it there), and is the summary's RECOVERED lines already: not a WARNING besides.
    noted = tuple(f": {note}" for note in outcome.notes)
    found += [Finding("WARNING", _STEPS.get(logger.split(".", 1)[0], logger), message) for logger, message in outcome.logged
              if not message.endswith(noted)]
    return found


#: The step a warning logged by a package's code is told under in the summary.
_STEPS = {"connectors": "extract", "staging": "stage", "quality": "quality", "dedup": "linking", "publish": "publish",
          "assets": "run", "pipelines": "run", "core": "run", "demo": "run"}


def _check(outcome) -> str:
    return outcome.kind + (f"({outcome.column})" if outcome.column else "")
