"""Turn canonical person records into the features the engine blocks and compares on.

Raw records (``silobreaker dedup`` on a department's export) and staged records (the pipeline) take the
same path: every derived column is recomputed with the staging normalisers, which are idempotent, so a
staged value comes back unchanged and a raw one is normalised exactly as staging would have done it.
Normalisation itself lives in :mod:`staging.normalize`; this module only derives blocking keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import TerminalError
from core.threads import beside
from core.vocabulary import (
    DATE_FORMATS,
    PARTIAL_DATE_FORMATS,
    SEX_CODES,
    STAGED_DATE_FORMATS,
)
from staging._arrow import as_arrow, to_series
from staging.normalize import (
    ALIAS_SEPARATOR,
    name_pinyin,
    normalize_address,
    normalize_aliases,
    normalize_name,
    normalize_phone,
    parse_dates,
    parse_id_numbers,
)

__all__ = [
    "BIRTH_DATE_FORMATS",
    "HAN_CHARACTER",
    "READING_FACTS",
    "ColumnReading",
    "OPTIONAL_COLUMNS",
    "PREPARED_COLUMNS",
    "REQUIRED_COLUMNS",
    "TEXT",
    "fuzzy_pinyin",
    "generic_identifier",
    "household_key",
    "normalize_sex",
    "prepare_records",
    "prepare_with_facts",
    "sorted_words",
    "text_at",
]

#: The text dtype of every string column the engine produces: Arrow-backed, missing is ``pd.NA``.
#: Spelled out rather than ``"str"``, which means a different dtype on pandas 2 and pandas 3.
TEXT = pd.StringDtype("pyarrow")

#: Columns every input must have (values may be empty).
REQUIRED_COLUMNS: tuple[str, ...] = ("record_id", "source", "name", "sex", "birth_date", "id_number", "phone", "address")

#: A regular expression matching one Chinese (Han) character; a name without any is read as Latin words.
HAN_CHARACTER = "[\u3400-\u9fff\uf900-\ufaff]"

#: Columns the engine reads when present: ``community`` (compared, and a blocking key), ``grid`` (a
#: blocking key a ``linking.yaml`` may use), ``birth_date_precision`` (``day``, ``month`` or ``year``:
#: how much of ``birth_date`` the source really knows, so a census ``1964-05-01`` given at ``month``
#: is compared as 1964-05, not as a day), ``hukou_address`` (户籍地址: compared with the other record's
#: address, so a register that keys the registered flat meets a census that counts the person where
#: they live) and ``alias`` (曾用名 and other names a person is known by, several separated by 、:
#: blocked on and compared with the other record's names). Every other column is ignored; derived ones
#: (pinyin, ID validity, the ID's sex and birth date) are recomputed from the required columns.
OPTIONAL_COLUMNS: tuple[str, ...] = ("community", "grid", "birth_date_precision", "hukou_address", "alias")

#: Date layouts accepted in ``birth_date``: staged ISO values at every precision first, then the
#: day-precision forms staging reads by default, then month and year forms (the census).
BIRTH_DATE_FORMATS: tuple[str, ...] = tuple(dict.fromkeys((*STAGED_DATE_FORMATS, *DATE_FORMATS, *PARTIAL_DATE_FORMATS)))

#: Columns of :func:`prepare_records` output, in order.
PREPARED_COLUMNS: tuple[str, ...] = (
    "rid",
    "record_id",
    "source",
    "name",
    "name_pinyin",
    "surname_pinyin",
    "given_pinyin",
    "name_words",
    "aliases",
    "sex",
    "birth_date",
    "birth_precision",
    "birth_from_id",
    "birth_year",
    "birth_ym",
    "birth_md",
    "stated_sex",
    "stated_birth_date",
    "stated_birth_precision",
    "id_number",
    "id_number_valid",
    "phone",
    "address",
    "address_words",
    "household",
    "house_number",
    "hukou_address",
    "hukou_household",
    "community",
    "grid",
)

#: Precision codes: a pair is compared at the smaller of its two codes.
_PRECISION_CODES = {"year": 1, "month": 2, "day": 3}

#: Values of the ``birth_date_precision`` column, as staging writes them and as a clerk might.
_DECLARED_PRECISION = {**_PRECISION_CODES, "日": 3, "月": 2, "年": 1}

#: Characters of an ISO date per precision code (none, year, month, day).
_ISO_LENGTH = (0, 4, 7, 10)


def normalize_sex(values: pd.Series) -> pd.Series:
    """Map the sex codes departments use (M/F, 男/女, 男性/女性, GB/T 2261.1 ``1``/``2``) to ``M``/``F``;
    else null. The codes are the canonical vocabulary's (:data:`core.vocabulary.SEX_CODES`), as in staging.

    Example:
        >>> normalize_sex(pd.Series(["男", "2", "m", "男性", "未知"])).tolist()
        ['M', 'F', 'M', 'M', <NA>]
    """
    text = _text(values).str.strip().str.upper()
    return text.map(dict(SEX_CODES)).astype(TEXT)


#: A resident ID column: at least this share of its present values parse as GB 11643 numbers.
_RESIDENT_ID_SHARE = 0.5


#: Per record, what decides how a whole column is read (:class:`ColumnReading`): whether it gives an
#: ID number, whether that number is in resident-ID form, whether it gives a community.
READING_FACTS: tuple[str, ...] = ("id_given", "id_resident_form", "community_given")


@dataclass(frozen=True)
class ColumnReading:
    """How two columns are read, decided over all the records being linked, not record by record.

    Attributes:
        resident_ids: ``id_number`` holds resident ID numbers (most given values parse as such), so a
            malformed one is missing; else every value is an identifier of another scheme.
        communities_given: some record gives a ``community``, so records are compared on the ones given;
            else (a raw export without the column) on the place each address names
            (:func:`address_place`). Records that give none beside records that do keep none: their
            source simply does not say, and the place read from every address of a whole register found
            no pair the given communities did not, at a third more candidate pairs (demo, 1M records).
    """

    resident_ids: bool
    communities_given: bool

    @staticmethod
    def of(facts: pd.DataFrame) -> ColumnReading:
        """The reading :data:`READING_FACTS` of all the records call for."""
        given = int(facts["id_given"].sum())
        resident = given == 0 or int(facts["id_resident_form"].sum()) >= _RESIDENT_ID_SHARE * given
        return ColumnReading(resident_ids=resident, communities_given=ColumnReading.gives_communities(facts["community_given"]))

    @staticmethod
    def gives_communities(community_given: pd.Series) -> bool:
        """Whether records are compared on the communities they give: some record gives one (``community_given``,
        one flag per record). The one rule of :attr:`communities_given`, for a caller that has no facts yet."""
        return bool(community_given.any())


def prepare_records(records: pd.DataFrame, reading: ColumnReading | None = None) -> pd.DataFrame:
    """Normalise canonical person records and derive blocking keys.

    Args:
        records: one row per record with at least :data:`REQUIRED_COLUMNS` (strings, any may be empty);
            :data:`OPTIONAL_COLUMNS` are used when present, other columns are ignored. ``record_id``
            must be present and unique.
        reading: how the ID number and community columns are read; by default as these records call
            for (:meth:`ColumnReading.of`). Records prepared apart from the others they are linked with
            (:mod:`dedup.incremental`, :mod:`dedup.id_sharing`) are read as the whole.

    Returns:
        A frame with :data:`PREPARED_COLUMNS`, one row per input row in input order. ``rid`` is the
        row position (int32), the handle blocking and clustering use. Missing values are null, never
        empty strings, so they never block together or compare equal. The birth date is the one
        embedded in a valid ID number, else the stated one, else the one in an ID number whose check
        character fails; ``birth_precision`` is 0 (none), 1 (year), 2 (month) or 3 (day). ``sex`` is the
        one a valid ID encodes, else the stated one. ``stated_sex``, ``stated_birth_date`` and
        ``stated_birth_precision`` are what the record says of itself, where its ID number would
        overrule it (the ID's where it says nothing): they tell a record keyed with another
        resident's ID number from a slip (see the ``id_sharing_conflict`` veto). ``id_number`` holds
        resident ID numbers (18-character form) when
        most present values are such, else every value as a :func:`generic_identifier`. Names and
        addresses without Chinese characters keep their words: ``name_pinyin`` holds a Latin name's
        lower-case words in order (first word as ``surname_pinyin``), ``address_words`` an address's
        words sorted, and ``house_number`` its first number.

    Raises:
        TerminalError: a required column is missing, or ``record_id`` is empty or repeated.
    """
    return prepare_with_facts(records, reading)[0]


def prepare_with_facts(records: pd.DataFrame, reading: ColumnReading | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`prepare_records`, and per record its :data:`READING_FACTS` (boolean columns, input order)."""
    missing = [column for column in REQUIRED_COLUMNS if column not in records.columns]
    if missing:
        raise TerminalError(
            f"person records lack column(s) {missing}; dedup needs {list(REQUIRED_COLUMNS)} (values may be empty)"
        )
    record_id = _text(records["record_id"]).reset_index(drop=True)
    if record_id.isna().any():
        row = int(np.flatnonzero(record_id.isna().to_numpy())[0])
        raise TerminalError(f"record_id is empty in row {row}; every record needs a unique record_id such as 'census:42'")
    repeated = record_id[record_id.duplicated()]
    if len(repeated):
        raise TerminalError(
            f"record_id {repeated.iloc[0]!r} occurs more than once ({len(repeated)} repeats); record ids must be unique"
        )
    frame = records.reset_index(drop=True)
    given_community = _optional_text(frame, "community")
    communities_given = reading.communities_given if reading else ColumnReading.gives_communities(given_community.notna())
    # The addresses are read in a thread beside the names, ID numbers and dates (core.threads.beside).
    with beside(_address_columns, frame, given_community, communities_given) as addresses:
        prepared, facts = _person_columns(frame, record_id, given_community, reading)
        prepared = prepared.assign(**addresses.result())
    return prepared.loc[:, list(PREPARED_COLUMNS)], facts


def _person_columns(frame: pd.DataFrame, record_id: pd.Series, given_community: pd.Series,
                    reading: ColumnReading | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The prepared columns read from a record's names, ID number, dates, sex and phone, and its reading facts."""
    names = name_keys(_text(frame["name"]))
    # Each alias as typed, split but not yet normalised: a Latin alias keeps its words for name_keys.
    aliases = normalize_aliases(_optional_text(frame, "alias"), lambda names: names.str.strip()).astype(TEXT)

    raw_ids = _text(frame["id_number"])
    ids = parse_id_numbers(raw_ids)
    id_number = _blank_to_na(ids["id_number"].astype(TEXT))
    id_valid = ids["id_number_valid"].fillna(False).astype(bool).to_numpy()
    facts = pd.DataFrame({"id_given": raw_ids.notna().to_numpy(dtype=bool),
                          "id_resident_form": id_number.notna().to_numpy(dtype=bool),
                          "community_given": given_community.notna().to_numpy(dtype=bool)})
    reading = reading or ColumnReading.of(facts)
    if not reading.resident_ids:
        id_number = generic_identifier(raw_ids)

    stated = parse_dates(_text(frame["birth_date"]), list(BIRTH_DATE_FORMATS))
    birth, precision = _at_declared_precision(
        stated["date"].astype(TEXT),
        stated["precision"].map(_PRECISION_CODES).fillna(0).astype("int8").to_numpy(),
        _declared_precision(frame),
    )
    id_birth = ids["id_birth_date"].astype(TEXT).to_numpy(dtype=object)
    # A valid ID's birth digits are protected by its check character, a stated date is not: a record
    # whose stated date contradicts its own valid ID (a slip on a form) takes the ID's date, as its sex.
    from_id = ((precision == 0) | id_valid) & pd.notna(id_birth)
    stated_birth, stated_precision = _stated_or(birth, precision, id_birth)
    birth = np.where(from_id, id_birth, birth)
    precision = np.where(from_id, np.int8(3), precision).astype("int8")
    birth = pd.Series(birth, dtype=TEXT)

    # A valid ID's sex digit is protected by the check character; a stated 男/女 is not.
    id_sex = ids["id_sex"].astype(TEXT).reset_index(drop=True)
    stated_sex = normalize_sex(frame["sex"]).reset_index(drop=True)
    sex = id_sex.where(pd.Series(id_valid), stated_sex)

    prepared = pd.DataFrame(
        {
            "rid": np.arange(len(frame), dtype=np.int32),
            "record_id": record_id,
            "source": _text(frame["source"]),
            **names,
            "aliases": _blank_to_na(aliases),
            "sex": sex,
            "birth_date": birth.where(precision > 0),
            "birth_precision": precision,
            "birth_from_id": from_id,
            "birth_year": birth.str[:4].where(precision >= 1),
            "birth_ym": birth.str[:7].where(precision >= 2),
            "birth_md": birth.str[5:10].where(precision >= 3),
            "stated_sex": stated_sex.fillna(id_sex).astype(TEXT),
            "stated_birth_date": stated_birth,
            "stated_birth_precision": stated_precision,
            "id_number": id_number,
            "id_number_valid": id_valid & id_number.notna().to_numpy(),
            "phone": _blank_to_na(normalize_phone(_text(frame["phone"])).astype(TEXT)),
            "grid": _optional_text(frame, "grid"),
        }
    )
    return prepared, facts


def _address_columns(frame: pd.DataFrame, given_community: pd.Series, communities_given: bool) -> dict[str, pd.Series]:
    """The prepared columns read from a record's address and 户籍地址, and its community (the given one, or the place
    its address names where no record gives one: :class:`ColumnReading`)."""
    raw_address = _text(frame["address"])
    address = _blank_to_na(normalize_address(raw_address).astype(TEXT))
    address_words = sorted_words(_latin_words(raw_address, address))
    flats = _flat_parts(address)
    hukou_address = _blank_to_na(normalize_address(_optional_text(frame, "hukou_address")).astype(TEXT))
    return {
        "address": address,
        "address_words": address_words,
        "household": _flat_key(*flats),
        "house_number": _house_number(raw_address, address_words),
        "hukou_address": hukou_address,
        "hukou_household": household_key(hukou_address),
        "community": given_community if communities_given else address_place(address, raw_address, address_words, flats),
    }


#: The prepared columns derived from a name: what an alias stands in for when it is blocked and compared.
NAME_KEYS: tuple[str, ...] = ("name", "name_pinyin", "surname_pinyin", "given_pinyin", "name_words")

#: Aliases per record the engine blocks and compares on; more in one cell are ignored (a register lists
#: one or two 曾用名).
MAX_ALIASES = 3


def name_keys(raw: pd.Series) -> dict[str, pd.Series]:
    """The :data:`NAME_KEYS` of names as typed: the normalised name, its toneless pinyin (a Latin name's
    lower-case words in order), the first syllable or word as ``surname_pinyin`` and the rest as
    ``given_pinyin``, and a Latin name's words in alphabetical order (``name_words``)."""
    raw = _text(raw)
    name = normalize_name(raw).astype(TEXT)
    latin = _latin_words(raw, name)
    pinyin = latin.fillna(name_pinyin(name).astype(TEXT)).astype(TEXT)
    surname, given = _split_pinyin(pinyin)
    return {
        "name": _blank_to_na(name),
        "name_pinyin": _blank_to_na(pinyin),
        "surname_pinyin": _blank_to_na(surname),
        "given_pinyin": _blank_to_na(given),
        "name_words": sorted_words(latin),
    }


def alias_rows(prepared: pd.DataFrame) -> pd.DataFrame:
    """One row per alias of each record (at most :data:`MAX_ALIASES`): ``rid``, ``alias`` (its position
    in the record's cell, from 0) and the :data:`NAME_KEYS` of the alias, so a record can be blocked and
    compared under each name it is known by."""
    cells = prepared["aliases"]
    present = cells.notna().to_numpy()
    split = cells[present].str.split(ALIAS_SEPARATOR)
    rid = np.repeat(prepared["rid"].to_numpy()[present], split.str.len().to_numpy(dtype=np.int64))
    names = pd.Series(np.concatenate(split.to_list()) if len(split) else [], dtype=TEXT)
    position = names.groupby(rid).cumcount().to_numpy() if len(names) else np.zeros(0, dtype=np.int64)
    rows = pd.DataFrame({"rid": rid.astype(np.int32), "alias": position.astype(np.int8)})
    rows = pd.concat([rows, pd.DataFrame(name_keys(names))], axis=1)
    return rows[rows["alias"] < MAX_ALIASES].reset_index(drop=True)


def _declared_precision(frame: pd.DataFrame) -> np.ndarray | None:
    """Precision codes of the optional ``birth_date_precision`` column (0 where empty), or ``None``.

    Raises:
        TerminalError: a value is none of ``day``, ``month``, ``year`` (or 日, 月, 年).
    """
    if "birth_date_precision" not in frame.columns:
        return None
    text = _text(frame["birth_date_precision"]).str.lower()
    codes = text.map(_DECLARED_PRECISION)
    unknown = text.notna() & codes.isna()
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise TerminalError(
            f"birth_date_precision {text.iloc[row]!r} in row {row} is not a precision; write day, month or year "
            "(or leave it empty when the date says its own precision, e.g. 1964-05)"
        )
    return codes.fillna(0).astype("int8").to_numpy()


def _at_declared_precision(
    birth: pd.Series, precision: np.ndarray, declared: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """ISO dates and their precision codes, cut to the precision the source declares where it declares a
    coarser one than the text shows: an export that writes a census year-month as ``1964-05-01`` with
    ``birth_date_precision = month`` knows no day, and ``-01`` must not be compared as one."""
    if declared is not None:
        coarser = (declared > 0) & (declared < precision)
        precision = np.where(coarser, declared, precision).astype("int8")
        birth = birth.copy()
        for code in (1, 2):
            cut = coarser & (precision == code)
            birth[cut] = birth[cut].str[: _ISO_LENGTH[code]]
    return birth.to_numpy(dtype=object), precision


def _stated_or(birth: np.ndarray, precision: np.ndarray, id_birth: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """The birth date a record states and its precision code; the one its ID number carries where it
    states none (a record that says nothing contradicts nothing)."""
    from_id = (precision == 0) & pd.notna(id_birth)
    stated = pd.Series(np.where(from_id, id_birth, birth), dtype=TEXT)
    stated_precision = np.where(from_id, np.int8(3), precision).astype("int8")
    return stated.where(stated_precision > 0), stated_precision


def generic_identifier(values: pd.Series) -> pd.Series:
    """Identifiers of another scheme (a social-security or patient number): upper-case letters and digits.

    Used when the ``id_number`` column does not hold resident ID numbers (see :func:`prepare_records`).
    Separators are dropped (``123-45 67`` is ``1234567``); values shorter than four characters or made of
    one repeated character are placeholders (``0``, ``000000``, ``无``) and become null.

    Example:
        >>> generic_identifier(pd.Series(["soc 123-4567", "0000", "x1"])).tolist()
        ['SOC1234567', <NA>, <NA>]
    """
    text = _text(values).str.upper().str.replace(r"[^0-9A-Z]+", "", regex=True).astype(TEXT)
    codes, distinct = pd.factorize(text, use_na_sentinel=True)
    # One repeated character (000000, XXXX): checked once per distinct value, which is cheap.
    repeated = np.asarray([len(set(value)) <= 1 for value in distinct], dtype=bool)
    placeholder = (text.str.len() < 4).fillna(True).to_numpy(dtype=bool) | (repeated[codes] & (codes >= 0))
    return _blank_to_na(text.where(~placeholder))


def household_key(addresses: pd.Series) -> pd.Series:
    """The flat an address points to, whatever way it is written: ``place|building-unit-room``.

    Departments write one flat as 示范区西溪街道翠苑社区3幢2单元501室, 西溪街道翠苑社区3栋2单元501室,
    西溪街道翠苑小区3-2-501 or — a clerk who abbreviates to the compound's name alone — 翠苑3-2-501; all give
    ``翠苑|3-2-501``. The place is the last 社区/小区/村 name (one without 区, 道, 镇 or 乡 in it), a 社区 or
    小区 kept without that suffix (a 社区 is commonly named after its main 小区; a 村 keeps its own, since its
    组/号 numbers are not a 社区's buildings and rooms); where an address names none, it is the
    Chinese name just before the first number, after the last 区/道/镇/乡/路/街/号 — and then the address
    must give at least two numbers (西溪路88号 is a building, not a flat). The numbers are every digit run
    after the place. Addresses without a place give null, and are compared as text only.

    Example:
        >>> household_key(pd.Series(["示范区西溪街道翠苑社区3幢2单元501室", "翠苑3-2-501", "西溪路88号"])).tolist()
        ['翠苑|3-2-501', '翠苑|3-2-501', <NA>]
    """
    return _flat_key(*_flat_parts(addresses))


def _flat_key(encoded: pa.DictionaryArray, named: pa.StructArray) -> pd.Series:
    """:func:`household_key` of addresses already split by :func:`_flat_parts`. The abbreviated form is
    looked for only in the distinct addresses that name no 社区/小区/村 (a few in most registers)."""
    is_named = pc.is_valid(named)
    unnamed = pc.invert(is_named)
    abbreviated = pc.extract_regex(pc.filter(encoded.dictionary, unnamed), _ABBREVIATED_FLAT)
    place = pc.if_else(is_named, pc.replace_substring_regex(_part(named, "place"), r"(社区|小区)$", ""),
                       _scattered(unnamed, _part(abbreviated, "place")))
    rest = pc.if_else(is_named, _part(named, "rest"), _scattered(unnamed, _part(abbreviated, "rest")))
    numbers = pc.utf8_trim(pc.replace_substring_regex(rest, r"[^0-9]+", "-"), "-")
    enough = pc.if_else(is_named, pc.greater(pc.utf8_length(numbers), 0), pc.match_substring(numbers, "-"))
    key = pc.binary_join_element_wise(place, numbers, pa.scalar("|", pa.large_string()))
    key = pc.if_else(pc.and_kleene(pc.is_valid(place), enough), key, pa.scalar(None, key.type))
    return pd.Series(pc.take(key, encoded.indices).to_pandas(), dtype=TEXT)


def _scattered(mask: pa.Array, values: pa.Array) -> pa.Array:
    """``values`` (one per true position of ``mask``) at those positions of a ``len(mask)`` array, null elsewhere."""
    empty = pa.nulls(len(mask), pa.large_string())
    return pc.replace_with_mask(empty, mask, values.cast(pa.large_string())) if len(values) else empty


def _flat_parts(addresses: pd.Series) -> tuple[pa.DictionaryArray, pa.StructArray]:
    """The addresses dictionary-encoded, and each distinct one split by :data:`_HOUSEHOLD` into its place
    (the last 社区/小区/村) and the rest (null where it names no such place)."""
    encoded = pc.dictionary_encode(_arrow_text(addresses))
    return encoded, pc.extract_regex(encoded.dictionary, _HOUSEHOLD)


def _part(parts: pa.StructArray, name: str) -> pa.Array:
    """One field of regex matches, null where the regex did not match."""
    return pc.if_else(pc.is_valid(parts), parts.field(name), pa.scalar(None, pa.large_string()))


def address_place(address: pd.Series, raw: pd.Series, words: pd.Series,
                  flats: tuple[pa.DictionaryArray, pa.StructArray] | None = None) -> pd.Series:
    """The community an address names, for a record that gives none: the last 社区/小区/村 of a Chinese
    address (normalised, ``address``), the postcode of one in Latin letters (``raw`` where it has
    ``words``: its last number of 4 to 6 digits that is not the first word); else null.

    Example:
        >>> raw = pd.Series(["西溪街道翠苑社区3-2-501", "16 officer crescent berwick 3806 vic", "12 main st"])
        >>> address_place(raw, raw, pd.Series([None, "x", "x"])).tolist()
        ['翠苑社区', '3806', <NA>]

    ``flats`` is :func:`_flat_parts` of ``address`` where the caller has it already.
    """
    encoded, parts = flats or _flat_parts(address)
    chinese = pd.Series(pc.take(_part(parts, "place"), encoded.indices).to_pandas(), dtype=TEXT)
    latin = _text(raw.where(words.notna())).str.extract(r"\s(\d{4,6})(?:\s+\D*)?$", expand=False)
    return _blank_to_na(chinese.fillna(latin.astype(TEXT)))


def _latin_words(raw: pd.Series, normalised: pd.Series) -> pd.Series:
    """For values without Chinese characters, the lower-case words in their written order, space-joined
    (``"Smith, John"`` → ``"smith john"``); null for Chinese text.

    Normalised text loses its spaces, which Chinese names and addresses do not need but ``"van der berg
    anna"`` does: its words are how given name and surname are told apart and compared in either
    order. For a name the words stand in for pinyin.
    """
    latin = normalised.notna() & ~normalised.str.contains(HAN_CHARACTER, regex=True).fillna(True)
    folded = pc.utf8_lower(pc.utf8_normalize(_arrow_text(raw.where(latin)), "NFKC"))
    words = pc.utf8_trim_whitespace(pc.replace_substring_regex(folded, r"[^\pL\pN]+", " "))
    return _blank_to_na(pd.Series(words.to_pandas(), dtype=TEXT))


def sorted_words(words: pd.Series) -> pd.Series:
    """Space-separated words put in alphabetical order, so two orders of the same words are equal;
    null stays null. Sorted once per distinct value.

    Example:
        >>> sorted_words(pd.Series(["smith john", None])).tolist()
        ['john smith', <NA>]
    """
    codes, distinct = pd.factorize(words, use_na_sentinel=True)
    ordered = np.asarray([" ".join(sorted(value.split(" "))) for value in distinct], dtype=object)
    out = pd.Series(pd.NA, index=words.index, dtype=TEXT)
    present = codes >= 0
    out[present] = ordered[codes[present]]
    return out


#: Sounds pinyin input methods let a user confuse (模糊音), folded one way: retroflex initials to flat
#: ones, n to l, and back nasal finals to front ones (ang → an covers iang and uang). Applied to each
#: space-separated syllable of toneless pinyin.
_FUZZY_SOUNDS: tuple[tuple[str, str], ...] = (
    (r"\b([zcs])h", r"\1"),
    (r"\bn", "l"),
    (r"([aei])ng\b", r"\1n"),
)


def fuzzy_pinyin(pinyin: pd.Series) -> pd.Series:
    """Toneless pinyin with the sounds of :data:`_FUZZY_SOUNDS` folded, so names a southern accent or a
    fuzzy input method confuses (刘玲 liu ling / 刘琳 liu lin, 周晨 / 周晟, 张 zhang / 臧 zang) fold alike.

    Example:
        >>> fuzzy_pinyin(pd.Series(["liu ling", "liu lin", "zhou cheng", "niu ming", None])).tolist()
        ['liu lin', 'liu lin', 'zou cen', 'liu min', <NA>]
    """
    folded = pc.dictionary_encode(_arrow_text(pinyin))
    values = folded.dictionary
    for pattern, replacement in _FUZZY_SOUNDS:
        values = pc.replace_substring_regex(values, pattern, replacement)
    return pd.Series(pc.take(values, folded.indices).to_pandas(), dtype=TEXT)


def _house_number(raw: pd.Series, words: pd.Series) -> pd.Series:
    """The first number of an address in Latin letters (its street number, ``16 officer crescent`` → ``16``);
    null for Chinese addresses, whose flat :func:`household_key` identifies, and for those without one."""
    first = _text(raw.where(words.notna())).str.extract(r"(\d+)", expand=False)
    return _blank_to_na(first.astype(TEXT))


def _split_pinyin(pinyin: pd.Series) -> tuple[pd.Series, pd.Series]:
    """First syllable (the surname's reading, or the first of a compound surname) and the rest."""
    encoded = pc.dictionary_encode(_arrow_text(pinyin))
    parts = pc.extract_regex(encoded.dictionary, r"^(?P<surname>\S+)(?: (?P<given>.+))?$")
    return tuple(pd.Series(pc.take(_part(parts, part), encoded.indices).to_pandas(), dtype=TEXT)
                 for part in ("surname", "given"))


def text_at(values: Sequence[str] | pd.Series, positions: np.ndarray) -> pd.Series:
    """``values`` at ``positions`` as a text Series (index 0..n-1), taken by Arrow: no Python string per
    row, where pandas would build one for each (level labels and record ids of a million pairs).

    Example:
        >>> text_at(["none", "exact"], np.array([1, 0, 1])).tolist()
        ['exact', 'none', 'exact']
    """
    taken = pc.take(as_arrow(pd.Series(values, dtype=TEXT)), pa.array(np.asarray(positions, dtype=np.int64)))
    return to_series(taken, pd.RangeIndex(len(taken)))


def _arrow_text(values: pd.Series) -> pa.Array:
    return as_arrow(values.astype(TEXT)).cast(pa.large_string())


# RE2 (Arrow) syntax. The place may not contain 区/道/镇/乡, so the match starts after the district
# or street rather than swallowing it.
_HOUSEHOLD = r"(?P<place>[^区道镇乡县市]{1,12}?(?:社区|小区|村))(?P<rest>.*)$"
# An address abbreviated to the compound's name (翠苑3-2-501, 西溪街道翠苑3幢501): the name runs from the start
# or the last 区/道/镇/乡/县/市/路/街/巷/号 to the first number, Chinese only (a Latin address's words are
# not a place).
_ABBREVIATED_FLAT = r"(?:^|[区道镇乡县市路街巷号])(?P<place>[^0-9A-Za-z\s区道镇乡县市路街巷号弄-]{2,12})(?P<rest>[0-9].*)$"


def _text(values: pd.Series) -> pd.Series:
    """Strings with empty and whitespace-only values as null; integral floats lose their ``.0``."""
    series = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_float_dtype(series.dtype):
        whole = series.dropna()
        if (whole == np.floor(whole)).all():
            series = series.astype("Int64")
    text = series.astype(TEXT)
    return _blank_to_na(text.str.strip())


def _blank_to_na(values: pd.Series) -> pd.Series:
    values = values.astype(TEXT)
    return values.where(values.str.len() > 0)


def _optional_text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column in frame.columns:
        return _text(frame[column])
    return pd.Series([None] * len(frame), dtype=TEXT)
