"""Resident ID numbers (GB 11643-1999) for the demo district, built and damaged in bulk.

An 18-character ID is area code (6 digits) + birth date ``YYYYMMDD`` + sequence (3 digits, odd for
men, even for women) + a check character, ISO 7064 MOD 11-2 over the first 17 digits
(``0-9`` or ``X``). The pre-1999 15-digit form is area + ``YYMMDD`` + sequence, with no check.

IDs travel as fixed-width byte arrays (``S18``/``S15``): viewed as a ``(n, 18)`` matrix of ASCII
codes, computing check digits or swapping two digits is one numpy expression for a million IDs.
The generator keeps its own implementation on purpose: the demo must not share code with the
staging normaliser it is meant to test.
"""

from __future__ import annotations

import numpy as np

__all__ = ["build_ids", "check_characters", "digit_matrix", "from_digit_matrix", "to_15_digit"]

_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_ZERO = ord("0")


def digit_matrix(ids: np.ndarray) -> np.ndarray:
    """View fixed-width byte IDs (``S18``) as a writable ``(n, width)`` matrix of ASCII codes."""
    width = ids.dtype.itemsize
    return np.frombuffer(ids.tobytes(), dtype=np.uint8).reshape(-1, width).copy()


def from_digit_matrix(matrix: np.ndarray) -> np.ndarray:
    """Inverse of :func:`digit_matrix`: a ``(n, width)`` ASCII matrix back to ``S<width>`` IDs."""
    width = matrix.shape[1]
    return np.ascontiguousarray(matrix, dtype=np.uint8).view(f"S{width}").reshape(-1)


def check_characters(first17: np.ndarray) -> np.ndarray:
    """The MOD 11-2 check character (ASCII code) for each row of a ``(n, 17)`` ASCII-digit matrix.

    Example:
        ``check_characters(digit_matrix(np.array([b"11010519491231002"])))`` gives ``[ord("X")]``.
    """
    total = (first17.astype(np.int64) - _ZERO) @ _WEIGHTS
    return _CHECK[total % 11]


def build_ids(area: np.ndarray, birth: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """Assemble valid 18-character IDs.

    Args:
        area: ``S6`` area codes.
        birth: ``datetime64[D]`` birth dates.
        sequence: integers 1-999; odd for men, even for women.

    Returns:
        ``S18`` IDs with correct check characters.
    """
    n = len(area)
    matrix = np.empty((n, 18), dtype=np.uint8)
    matrix[:, :6] = digit_matrix(area.astype("S6"))
    iso = np.datetime_as_string(birth.astype("datetime64[D]")).astype("S10")
    ymd = digit_matrix(iso)
    matrix[:, 6:10] = ymd[:, 0:4]
    matrix[:, 10:12] = ymd[:, 5:7]
    matrix[:, 12:14] = ymd[:, 8:10]
    seq = np.asarray(sequence, dtype=np.int64)
    matrix[:, 14] = _ZERO + seq // 100
    matrix[:, 15] = _ZERO + (seq // 10) % 10
    matrix[:, 16] = _ZERO + seq % 10
    matrix[:, 17] = check_characters(matrix[:, :17])
    return from_digit_matrix(matrix)


def to_15_digit(ids: np.ndarray) -> np.ndarray:
    """The pre-1999 15-digit form of 18-character IDs of people born 1900-1999 (``S15``)."""
    matrix = digit_matrix(ids.astype("S18"))
    return from_digit_matrix(np.concatenate([matrix[:, :6], matrix[:, 8:17]], axis=1))
