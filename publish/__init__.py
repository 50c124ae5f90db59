"""Golden records, consent status, the atomically published warehouse, its products, the audit trail and the read side.

The names below are imported from their modules when first used, not with the package: a process that needs one
module does not import them all (a night's office files are written by processes forked from one that imports
:mod:`publish.office`: with every module of the package that took 1.6 s of a night, now 0.4 s).
"""

from __future__ import annotations

import importlib

_WHERE = {
    **dict.fromkeys(("TrailVerification", "verify_trail"), "publish.anchors"),
    **dict.fromkeys(("AreaRegister", "address_areas", "load_area_register"), "publish.areas"),
    **dict.fromkeys(("AuditLog", "Head", "ProductAnchor", "Verification"), "publish.audit"),
    **dict.fromkeys(("KeyIdMismatchError", "KeyRotation", "product_key", "product_keys", "read_product",
                     "rotate_product_key"), "publish.crypto"),
    **dict.fromkeys(("PublicationResult", "publish_if_valid"), "publish.gate"),
    **dict.fromkeys(("DiskSpaceError", "Generation", "Generations", "KEEP"), "publish.generations"),
    **dict.fromkeys(("Aggregate", "CONSENT_CATEGORIES", "KEY_POPULATIONS", "Recipient", "SENSITIVE_COLUMNS",
                     "SHAREABLE_COLUMNS", "SharingPolicy", "load_policy"), "publish.policy"),
    **dict.fromkeys(("Category", "KeyPopulations", "default_populations", "load_populations"), "publish.populations"),
    **dict.fromkeys(("ProductFile", "build_product", "product_query_sql", "pseudonym_key"), "publish.products"),
    **dict.fromkeys(("AuditAnchor", "PublishedRun", "RunSummary", "WarehouseReader"), "publish.reader"),
    **dict.fromkeys(("Candidate", "PublicationInputs", "Warehouse"), "publish.warehouse"),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name not in _WHERE:  # a submodule (publish.audit after import publish), as when the package imported them all
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'publish' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
