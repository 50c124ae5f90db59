"""Identity resolution: which person records, within and across departments, are the same resident.

Declaring and executing are kept apart: :mod:`dedup.settings` says which blocking rules, comparisons
(levels in priority order, each with its label, weight and named test), thresholds and vetoes apply,
in Python or in ``linking.yaml`` (:func:`load_link_settings`); :mod:`dedup.blocking` (DuckDB SQL),
:mod:`dedup.compare` (the level tests: rapidfuzz and numpy, batched), :mod:`dedup.model` (Fellegi–Sunter
m/u by EM on the input itself), :mod:`dedup.score` and :mod:`dedup.cluster` carry them out;
:mod:`dedup.id_sharing` first sets apart records keyed with another resident's ID number;
:func:`link_records` runs them in order, on every record or, with the state the last run kept
(:mod:`dedup.incremental`), on the records that changed; the pair-sized steps run on the backend
``linking.yaml`` names (:mod:`dedup.backend`: DuckDB here, or Apache Spark, :mod:`dedup.spark`). Nothing here imports Dagster: assets call in, never the other way.

Example:
    >>> from dedup import LinkSettings, link_records
    >>> result = link_records(staged_records, LinkSettings(match_threshold=10.0))  # doctest: +SKIP
    >>> result.mapping.head()                                                     # doctest: +SKIP
"""

from dedup.engine import LinkResult, link_records
from dedup.files import dedup_file
from dedup.ids import PreviousLinking, StableIds, assign_stable_ids
from dedup.prepare import REQUIRED_COLUMNS, prepare_records
from dedup.review import DecisionLog, build_review_queue
from dedup.settings import (
    AddressComparison,
    BirthDateComparison,
    BlockingRule,
    CommunityComparison,
    Comparison,
    ComparisonLevel,
    IdNumberComparison,
    LinkSettings,
    ModelSpec,
    NameComparison,
    PhoneComparison,
    SexComparison,
    load_link_settings,
)

__all__ = [
    "REQUIRED_COLUMNS",
    "AddressComparison",
    "BirthDateComparison",
    "BlockingRule",
    "CommunityComparison",
    "Comparison",
    "ComparisonLevel",
    "DecisionLog",
    "IdNumberComparison",
    "LinkResult",
    "LinkSettings",
    "ModelSpec",
    "NameComparison",
    "PhoneComparison",
    "PreviousLinking",
    "SexComparison",
    "StableIds",
    "assign_stable_ids",
    "build_review_queue",
    "dedup_file",
    "link_records",
    "load_link_settings",
    "prepare_records",
]
