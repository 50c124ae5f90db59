"""Golden records, consent status, the atomically published warehouse, its products and its read side."""

from publish.audit import AuditLog, Verification
from publish.crypto import product_key, read_product
from publish.gate import PublicationResult, publish_if_valid
from publish.generations import KEEP, DiskSpaceError, Generation, Generations
from publish.policy import (
    CONSENT_CATEGORIES,
    KEY_POPULATIONS,
    SENSITIVE_COLUMNS,
    SHAREABLE_COLUMNS,
    Aggregate,
    Recipient,
    SharingPolicy,
    load_policy,
)
from publish.products import ProductFile, build_product, product_query_sql, pseudonym_key
from publish.reader import PublishedRun, RunSummary, WarehouseReader
from publish.warehouse import Candidate, PublicationInputs, Warehouse

__all__ = [
    "CONSENT_CATEGORIES",
    "KEEP",
    "KEY_POPULATIONS",
    "SENSITIVE_COLUMNS",
    "SHAREABLE_COLUMNS",
    "Aggregate",
    "AuditLog",
    "Candidate",
    "DiskSpaceError",
    "Generation",
    "Generations",
    "ProductFile",
    "PublicationInputs",
    "PublicationResult",
    "PublishedRun",
    "Recipient",
    "RunSummary",
    "SharingPolicy",
    "Verification",
    "Warehouse",
    "WarehouseReader",
    "build_product",
    "load_policy",
    "product_key",
    "product_query_sql",
    "publish_if_valid",
    "pseudonym_key",
    "read_product",
]
