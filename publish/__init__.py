"""Golden records, consent status, the atomically published warehouse, its products, the audit trail and the read side."""

from publish.anchors import TrailVerification, verify_trail
from publish.areas import AreaRegister, address_areas, load_area_register
from publish.audit import AuditLog, Head, ProductAnchor, Verification
from publish.crypto import (
    KeyIdMismatchError,
    KeyRotation,
    product_key,
    product_keys,
    read_product,
    rotate_product_key,
)
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
from publish.populations import Category, KeyPopulations, default_populations, load_populations
from publish.products import (
    ProductFile,
    build_product,
    product_query_sql,
    pseudonym_key,
)
from publish.reader import AuditAnchor, PublishedRun, RunSummary, WarehouseReader
from publish.warehouse import Candidate, PublicationInputs, Warehouse

__all__ = [
    "CONSENT_CATEGORIES",
    "KEEP",
    "KEY_POPULATIONS",
    "SENSITIVE_COLUMNS",
    "SHAREABLE_COLUMNS",
    "Aggregate",
    "AreaRegister",
    "AuditAnchor",
    "AuditLog",
    "Candidate",
    "Category",
    "DiskSpaceError",
    "Generation",
    "Generations",
    "Head",
    "KeyIdMismatchError",
    "KeyPopulations",
    "KeyRotation",
    "ProductAnchor",
    "ProductFile",
    "PublicationInputs",
    "PublicationResult",
    "PublishedRun",
    "Recipient",
    "RunSummary",
    "SharingPolicy",
    "TrailVerification",
    "Verification",
    "Warehouse",
    "WarehouseReader",
    "address_areas",
    "build_product",
    "default_populations",
    "load_area_register",
    "load_policy",
    "load_populations",
    "product_key",
    "product_keys",
    "product_query_sql",
    "pseudonym_key",
    "publish_if_valid",
    "read_product",
    "rotate_product_key",
    "verify_trail",
]
