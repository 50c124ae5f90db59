"""Golden records, consent status, the atomically published warehouse and per-recipient products."""

from publish.policy import KEY_POPULATIONS, SHAREABLE_COLUMNS, Recipient, SharingPolicy, load_policy
from publish.products import ProductFile, build_product, product_query_sql, pseudonym_key
from publish.warehouse import Candidate, PublicationInputs, Warehouse

__all__ = [
    "KEY_POPULATIONS",
    "SHAREABLE_COLUMNS",
    "Candidate",
    "ProductFile",
    "PublicationInputs",
    "Recipient",
    "SharingPolicy",
    "Warehouse",
    "build_product",
    "load_policy",
    "product_query_sql",
    "pseudonym_key",
]
