"""The publication gate: build the candidate, validate it, and publish it or keep the last publication.

The gate is a plain function returning a typed :class:`PublicationResult`; the Dagster asset only
turns that result into a blocking check and materialisations, and the CLI or a test can call it
directly.

Example:
    >>> result = publish_if_valid(home, inputs, load_policy("demo/policy.yaml"))   # doctest: +SKIP
    >>> result.published, result.reason                                           # doctest: +SKIP
    (True, None)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from core.home import HomeLike
from publish.policy import SharingPolicy
from publish.products import ProductFile
from publish.warehouse import PublicationInputs, Warehouse
from quality.expectations import (
    ValidationSummary,
    unified_population_suite,
    validate_frame,
)

__all__ = ["PublicationResult", "publish_if_valid"]

log = logging.getLogger(__name__)

# What the unified table's expectation suite reads from the candidate.
_VALIDATED_COLUMNS = "person_id, name, id_number, record_count"


@dataclass(frozen=True)
class PublicationResult:
    """What the gate decided for one run.

    Attributes:
        run_id: the run.
        published: whether the candidate replaced the published warehouse and products.
        validation: the unified table's expectation suite on the candidate.
        warehouse: the published warehouse file (the new one, or the one kept).
        counts: rows of the main tables of the candidate.
        products: the products written (published only when ``published``).
    """

    run_id: str
    published: bool
    validation: ValidationSummary
    warehouse: Path
    counts: dict[str, int] = field(default_factory=dict)
    products: tuple[ProductFile, ...] = ()

    @property
    def reason(self) -> str | None:
        """Why nothing was published (each failed expectation and what it means), else ``None``."""
        if self.published:
            return None
        failed = "; ".join(f"{o.kind}({o.column}): {o.unexpected_count} unexpected, {o.why}"
                           for o in self.validation.failed_expectations())
        return f"unified_population failed its expectations ({failed}); the previous warehouse stays published"


def publish_if_valid(home: HomeLike, inputs: PublicationInputs, policy: SharingPolicy) -> PublicationResult:
    """Build ``inputs`` into a candidate beside the published warehouse; publish it only if the unified
    table passes its expectations, else discard it and keep the last publication untouched."""
    warehouse = Warehouse(home)
    candidate = warehouse.build_candidate(inputs, policy)
    validation = validate_frame(
        candidate.read(f"SELECT {_VALIDATED_COLUMNS} FROM unified_population"), unified_population_suite()
    )
    if validation.success:
        warehouse.publish(candidate)
    else:
        warehouse.discard(candidate)
        # Info: the reason is the run's failure (PublicationResult.reason), which every caller reports; a warning too
        # told a blocked night's summary the same news twice.
        log.info("run %s: candidate failed its expectations; the previous publication stays", inputs.run_id)
    return PublicationResult(inputs.run_id, validation.success, validation, warehouse.path,
                             dict(candidate.counts), tuple(candidate.products))
