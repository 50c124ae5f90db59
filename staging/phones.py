"""Phone numbers: digits only, country code stripped, implausible numbers dropped."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from staging._arrow import as_arrow, on_unique, replace_where, to_series

__all__ = ["normalize_phone"]


def normalize_phone(values: pd.Series) -> pd.Series:
    """Reduce phone numbers to their digits and keep only plausible Chinese numbers.

    Full-width digits count as digits; every other character (spaces, ``+``, ``-``, brackets)
    is dropped. A 13-digit number starting ``86`` or a 15-digit one starting ``0086`` loses that
    country code. What is left must be a mobile number (11 digits starting ``13`` to ``19``) or a
    landline (``0``, an area code and the local number: 10 to 12 digits); anything else becomes
    missing.

    Args:
        values: phone numbers as text, missing values allowed.

    Returns:
        A ``string`` Series on the same index.

    Example:
        ``normalize_phone(pd.Series(["+86 138-0013-8000", "(010)6512 3456", "12345"]))`` gives
        ``["13800138000", "01065123456", <NA>]``.
    """
    return to_series(on_unique(as_arrow(values), _normalize, arrow_only=True), values.index)


def _normalize(phones: pa.Array) -> pa.Array:
    normalized = pc.utf8_normalize(phones, form="NFKC")
    # Most numbers are digits already; only the others pay for a regex pass.
    digits = replace_where(normalized, pc.invert(pc.ascii_is_decimal(normalized)), r"[^0-9]+", "")
    length = pc.utf8_length(digits)
    for prefix in ("86", "0086"):
        with_code = pc.fill_null(pc.and_(pc.equal(length, 11 + len(prefix)), pc.starts_with(digits, prefix)), False)
        digits = pc.replace_with_mask(
            digits, with_code, pc.utf8_slice_codeunits(pc.filter(digits, with_code), len(prefix))
        )
    length = pc.utf8_length(digits)
    mobile = pc.and_(
        pc.equal(length, 11),
        pc.and_(pc.starts_with(digits, "1"), pc.is_in(pc.utf8_slice_codeunits(digits, 1, 2), _MOBILE_SECOND_DIGITS)),
    )
    landline = pc.and_(pc.starts_with(digits, "0"), pc.and_(pc.greater_equal(length, 10), pc.less_equal(length, 12)))
    return pc.if_else(pc.fill_null(pc.or_(mobile, landline), False), digits, pa.scalar(None, digits.type))


# Mobile numbers start 13 to 19.
_MOBILE_SECOND_DIGITS = pa.array(list("3456789"), type=pa.large_string())
