"""What staging one source produced, as one typed record: counts, lineage, validation, soft problems.

Built by the staged asset from the extract, the staging result and the source's Great Expectations
run, then read by the publication (extraction log, validation results, quality measures), by the
blocked-run report and by the CLI summary — always through these attributes, never by dict key.

Example:
    >>> report = build_staging_report(source, extract, stage_result, validation)   # doctest: +SKIP
    >>> report.extracted == report.staged + report.quarantined                     # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.config import SourceConfig
from connectors.lineage import Extract, Lineage
from quality.expectations import ValidationSummary
from staging.stage import StageResult

__all__ = ["StagingReport", "build_staging_report"]


@dataclass(frozen=True)
class StagingReport:
    """One source's staging in one run.

    Attributes:
        source: the source name from ``sources.yaml``.
        department: the department label (民政, 卫健 …).
        role: ``person``, ``grid_updates`` or ``consent``.
        lineage: where, when and how the extract was read.
        extracted: rows read from the source.
        staged: rows that passed the quarantine rules.
        quarantined: rows held back.
        quarantine_rules: quarantine rule -> rows it held back (first rule broken per row).
        validation: the source's expectation suite run on the staged rows.
        fields: the canonical fields the source declares (``columns`` in sources.yaml).
        expected: those every row is expected to state (:attr:`connectors.config.SourceConfig.expected_fields`:
            of a grid-update form only 姓名, 变更类型 and 填报日期, the rest told when known); empty: ``fields``.
        soft_problems: soft problem -> staged rows with it (see :class:`staging.StageResult`).
        one_row_per: what one of its rows stands for (``one_row_per`` in sources.yaml): ``person``, or
            ``visit``/``case``/``event`` for a log with many rows per person by design.
    """

    source: str
    department: str
    role: str
    lineage: Lineage
    extracted: int
    staged: int
    quarantined: int
    validation: ValidationSummary
    quarantine_rules: Mapping[str, int] = field(default_factory=dict)
    fields: tuple[str, ...] = ()
    soft_problems: Mapping[str, int] = field(default_factory=dict)
    one_row_per: str = "person"
    expected: tuple[str, ...] = ()

    @property
    def conserved(self) -> bool:
        """Every extracted row is staged or quarantined."""
        return self.extracted == self.staged + self.quarantined

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able form (kept by the IO manager and in Dagster's event log)."""
        return {
            "source": self.source,
            "department": self.department,
            "role": self.role,
            "lineage": self.lineage.as_metadata(),
            "extracted": self.extracted,
            "staged": self.staged,
            "quarantined": self.quarantined,
            "quarantine_rules": dict(self.quarantine_rules),
            "validation": self.validation.as_dict(),
            "fields": list(self.fields),
            "soft_problems": dict(self.soft_problems),
            "one_row_per": self.one_row_per,
            "expected": list(self.expected),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StagingReport:
        """Inverse of :meth:`as_dict`.

        Raises:
            KeyError: a required key is missing.
        """
        return cls(
            source=data["source"],
            department=data["department"],
            role=data["role"],
            lineage=Lineage.from_metadata(data["lineage"]),
            extracted=int(data["extracted"]),
            staged=int(data["staged"]),
            quarantined=int(data["quarantined"]),
            quarantine_rules={str(k): int(v) for k, v in data["quarantine_rules"].items()},
            validation=ValidationSummary.from_dict(data["validation"]),
            fields=tuple(data["fields"]),
            soft_problems={str(k): int(v) for k, v in data["soft_problems"].items()},
            # Reports kept in the event log by earlier versions do not say; they declared registers.
            one_row_per=str(data.get("one_row_per", "person")),
            expected=tuple(data.get("expected", ())),
        )


def build_staging_report(
    source: SourceConfig, extract: Extract, result: StageResult, validation: ValidationSummary
) -> StagingReport:
    """The report of staging ``extract`` of ``source`` into ``result``, validated as ``validation``."""
    return StagingReport(
        source=source.name,
        department=source.department,
        role=source.role,
        lineage=extract.lineage,
        extracted=extract.lineage.row_count,
        staged=len(result.staged),
        quarantined=len(result.quarantine),
        quarantine_rules={str(k): int(v) for k, v in result.quarantine["rule"].value_counts().items()},
        validation=validation,
        fields=tuple(source.columns),
        soft_problems={k: int(v) for k, v in result.soft_problems.items()},
        one_row_per=source.one_row_per,
        expected=tuple(source.expected_fields),
    )
