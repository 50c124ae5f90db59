"""Damage a source's rows the way real registers are damaged, and remember which row got what.

:class:`SourceRows` holds one source's rows before they are written: the true person behind each
row and the values as the clerk typed them. :func:`damage` applies a table of rates (the source's
column of ``demo.generate.MESS_RATES``) and flags each affected row with the defect's name, so the
ground truth can say which rows staging must quarantine, which IDs are typos, which names are
homophones. Selection is vectorised; the few per-row string edits run on the affected rows only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import opencc

from demo import vocabulary as V
from demo.idcard import digit_matrix, from_digit_matrix, to_15_digit
from demo.population import REFERENCE_DATE, Population
from demo.strings import STRING

__all__ = ["DEFECTS", "QUARANTINE_DEFECTS", "REKEY_ADDRESS_STYLES", "SourceRows", "choose", "damage"]

DEFECTS = (
    "duplicate",  # a second row for a person already in the source, under another key
    "moved",  # the address is the new one; civil affairs still has the old
    "address_variant",  # a duplicate's address written another way (栋 for 幢, no district)
    "homophone",  # a given-name character replaced by a homophone (晓 -> 小)
    "shape_slip",  # a name character misread as a look-alike on a handwritten form (吴 -> 昊)
    "traditional",  # name and address in traditional characters
    "fullwidth_space",  # full-width digits/letters, or a stray space (ASCII or U+3000)
    "dot_variant",  # a transliterated name's middle dot typed as • ・ . ．
    "id_typo",  # one ID digit substituted, or two adjacent ones swapped
    "id_15_digit",  # the pre-1999 15-digit ID
    "id_missing",
    "borrowed_id",  # keyed with another member of the household's valid ID (a spouse's; a parent's for a child)
    "phone_missing",
    "sex_error",  # the stated sex is the wrong one
    "birth_date_typo",  # a birth date a few days or a year off
    "bad_birth_date",  # quarantine: 不详, 1980-13-45
    "missing_name",  # quarantine: no name
    "malformed_id",  # quarantine: wrong length, letters, 3.30106E+17
    "name_typo",  # a re-keyed row: a given-name character typed as another (not a homophone) or left out
    "former_name",  # keyed under the name the person had before changing it (曾用名), in an older register
)
"""Every defect name that can appear in the ground truth's ``defects`` column."""

QUARANTINE_DEFECTS = ("bad_birth_date", "missing_name", "malformed_id")
"""Defects that break a quarantine rule: staging must quarantine these rows, not stage them."""

QUARANTINE_MINIMUM_ROWS = 100
"""A source with at least this many rows gets at least one row of each quarantine defect, so that
even a small demo exercises the quarantine."""

REKEY_ADDRESS_STYLES = ("full", "no_district", "dong", "short")
"""How a clerk re-keying a person from scratch may write the flat, whatever the source's own habit."""

#: Given-name characters a re-keying clerk's slip may land on instead of the right one.
_GIVEN_CHARACTERS = sorted(set(V.GIVEN_MALE_FIRST + V.GIVEN_MALE_SECOND + V.GIVEN_FEMALE_FIRST + V.GIVEN_FEMALE_SECOND))

_FULLWIDTH = str.maketrans("0123456789X-", "０１２３４５６７８９Ｘ－")


class SourceRows:
    """One source's rows before formatting: the person behind each row and the values as typed.

    Args:
        source: the source name.
        pop: the true population.
        person: the person behind each row (a person may have several rows).
        duplicate: rows that are a second entry of a person already in the source.
        registered: the source knows the registered address (civil affairs), not where a person
            who moved lives now.
    """

    def __init__(
        self, source: str, pop: Population, person: np.ndarray, duplicate: np.ndarray, *, registered: bool = False
    ) -> None:
        self.source = source
        self.person = person
        self.n = len(person)
        self.name = pop.name[person].copy()
        self.surname_length = np.strings.str_len(pop.surname[person])
        self.male = pop.male[person].copy()
        self.birth = pop.birth[person].copy()
        self.id = pop.id18[person].astype(STRING)
        self.lender = np.full(self.n, -1)  # whose ID number a row was keyed with, if not its own
        self.phone = pop.contact[person].copy()
        self.places = (pop.registered if registered else pop.current).take(person)
        self.address_style = np.full(self.n, "full", dtype=STRING)
        self.address_text = np.full(self.n, "", dtype=STRING)  # written by damage()
        self.keys = np.full(self.n, "", dtype=STRING)  # set when the source is written
        self.bad_birth_date = np.zeros(self.n, dtype=bool)
        self.defects = {name: np.zeros(self.n, dtype=bool) for name in DEFECTS}
        self.defects["duplicate"][:] = duplicate
        if not registered:
            self.defects["moved"][:] = pop.moved[person]

    def flag(self, defect: str, index: np.ndarray) -> None:
        """Record that the rows at ``index`` carry ``defect``."""
        self.defects[defect][index] = True

    def address(self) -> np.ndarray:
        """Each row's address text in its row's style."""
        out = np.full(self.n, "", dtype=STRING)
        for style in np.unique(self.address_style).tolist():
            idx = np.flatnonzero(self.address_style == style)
            out[idx] = self.places.take(idx).text(style)
        return out


def choose(rng: np.random.Generator, eligible: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct positions (sorted) where ``eligible`` is true; fewer if there are not enough."""
    candidates = np.flatnonzero(eligible)
    k = min(max(int(k), 0), len(candidates))
    return np.sort(rng.choice(candidates, size=k, replace=False)) if k else np.empty(0, dtype=np.int64)


def damage(
    rng: np.random.Generator,
    rows: SourceRows,
    pop: Population,
    rates: Mapping[str, float],
    address_styles: Mapping[str, float],
    *,
    gbk: bool,
    rekey: Mapping[str, float] | None = None,
) -> None:
    """Apply every defect at its rate; record which rows got which; write the address text.

    Args:
        rng: the source's random generator.
        rows: the rows to damage, in place.
        pop: the true population.
        rates: defect -> share of the rows (see :data:`DEFECTS`; ``dot_variant``: of rows with a
            transliterated name; ``id_missing``/``phone_missing``: the share left without one).
        address_styles: address style (see :meth:`demo.population.Addresses.text`) -> share of rows.
        gbk: the source is written in GBK, so only GBK characters may be introduced.
        rekey: how a ``duplicate`` row came to be. ``None`` (the demo's default): a clerk copied the
            person's entry and changed one small thing (a homophone, the phone or ID left out, the
            address written another way). Else the row was keyed again from scratch, and every keying
            error happens to it independently at these rates (keys ``homophone``, ``name_typo``,
            ``id_typo``, ``id_missing``, ``birth_date_typo``, ``sex_error``, ``phone_missing``, and
            ``address_style``: the share written in a style of :data:`REKEY_ADDRESS_STYLES` of the
            clerk's own), on top of the source's own defects.
    """
    n = rows.n
    styles = np.array(list(address_styles), dtype=STRING)
    rows.address_style[:] = styles[rng.choice(len(styles), size=n, p=list(address_styles.values()))]

    # Rows staging must quarantine, one hard defect each.
    minimum = 1 if n >= QUARANTINE_MINIMUM_ROWS else 0
    counts = [max(int(rng.binomial(n, rates[d])), minimum) for d in QUARANTINE_DEFECTS]
    hard = rng.choice(n, size=min(n, sum(counts)), replace=False)
    bad_date, no_name, bad_id = np.split(hard, np.cumsum(counts)[:-1])
    rows.flag("bad_birth_date", bad_date)
    rows.bad_birth_date[bad_date] = True
    rows.flag("missing_name", no_name)
    rows.flag("malformed_id", bad_id)
    usable_id = ~rows.defects["malformed_id"]
    named = ~rows.defects["missing_name"]

    dup = np.flatnonzero(rows.defects["duplicate"])
    if rekey is None:
        _copy_with_a_variation(rng, rows, pop, dup, usable_id, named)
    else:
        # A generator of its own: the rest of the source's defects are drawn as they would be.
        _rekey(rng.spawn(1)[0], rows, pop, dup[named[dup]], rekey, usable_id)

    missing = rows.id == ""
    _drop_id(rows, choose(rng, ~missing & usable_id, round(rates["id_missing"] * n) - missing.sum()))
    birth = pop.birth[rows.person]
    born_1900s = (birth >= np.datetime64("1900-01-01")) & (birth < np.datetime64("2000-01-01"))
    present = (rows.id != "") & usable_id
    _old_ids(rows, choose(rng, present & born_1900s, rng.binomial(n, rates["id_15_digit"])))
    full = present & ~rows.defects["id_15_digit"] & ~rows.defects["id_typo"]  # a second typo could undo the first
    _id_typos(rng, rows, choose(rng, full, rng.binomial(n, rates["id_typo"])))
    _malformed_ids(rng, rows, pop, bad_id)

    has_phone = rows.phone != ""
    _drop_phone(rows, choose(rng, has_phone, round(rates["phone_missing"] * n) - (~has_phone).sum()))

    eligible = pop.homophone_ok[rows.person] & named & ~rows.defects["homophone"]  # twice could undo it: 晓 小 晓
    _homophone(rng, rows, choose(rng, eligible, rng.binomial(n, rates["homophone"])))
    distinct, inverse = np.unique(rows.name, return_inverse=True)
    has_lookalike = np.array([any(ch in V.LOOKALIKES for ch in name) for name in distinct.tolist()], dtype=bool)
    lookalike = named & has_lookalike[inverse.reshape(-1)]
    _shape_slip(rng, rows, choose(rng, lookalike, rng.binomial(n, rates["shape_slip"])))
    address = rows.address()
    traditional = choose(rng, named, rng.binomial(n, rates["traditional"]))
    _traditional(rows, address, traditional)
    minority_rows = pop.minority[rows.person] & named
    _dot_variants(rng, rows, choose(rng, minority_rows, rng.binomial(minority_rows.sum(), rates["dot_variant"])), gbk)
    _fullwidth_and_spaces(rng, rows, address, choose(rng, named, rng.binomial(n, rates["fullwidth_space"])))
    rows.address_text = address

    sex_error = choose(rng, np.ones(n, dtype=bool), rng.binomial(n, rates["sex_error"]))
    rows.male[sex_error] = ~rows.male[sex_error]
    rows.flag("sex_error", sex_error)
    _birth_date_typos(rng, rows, choose(rng, ~rows.bad_birth_date, rng.binomial(n, rates["birth_date_typo"])))

    rows.name[no_name] = ""
    if rekey is None:
        _tell_duplicates_apart(rows)
    # Drawn from a generator of its own, so every other defect falls where it did before this one existed.
    borrower_rng = rng.spawn(1)[0]
    sound_id = present & named & ~rows.bad_birth_date & ~rows.defects["id_15_digit"] & ~rows.defects["id_typo"]
    sound_id &= ~rows.defects["duplicate"]
    _borrowed_ids(borrower_rng, rows, pop, choose(borrower_rng, sound_id, borrower_rng.binomial(n, rates["borrowed_id"])))


def _copy_with_a_variation(
    rng: np.random.Generator, rows: SourceRows, pop: Population, dup: np.ndarray, usable_id: np.ndarray, named: np.ndarray
) -> None:
    """A within-source duplicate copied from its first entry, differing from it in one small way."""
    variation = rng.integers(0, 4, len(dup))
    _homophone(rng, rows, dup[(variation == 0) & pop.homophone_ok[rows.person[dup]] & named[dup]])
    _drop_phone(rows, dup[variation == 1])
    _drop_id(rows, dup[(variation == 2) & usable_id[dup]])
    varied = rows.defects["homophone"] | rows.defects["phone_missing"] | rows.defects["id_missing"]
    restyled = dup[(variation == 3) | ~varied[dup]]  # and where the drawn variation had nothing to change
    rows.address_style[restyled] = np.where(rows.address_style[restyled] == "dong", "no_district", "dong")
    rows.flag("address_variant", restyled)


def _rekey(
    rng: np.random.Generator,
    rows: SourceRows,
    pop: Population,
    dup: np.ndarray,
    rates: Mapping[str, float],
    usable_id: np.ndarray,
) -> None:
    """Rows keyed again from scratch by a clerk who did not look at the first entry: each keying error
    independently, at ``rates`` (see :func:`damage`). Rows headed for quarantine keep their hard defect."""

    def some(eligible: np.ndarray, rate: float) -> np.ndarray:
        return dup[eligible & (rng.random(len(dup)) < rate)]

    person = rows.person[dup]
    _homophone(rng, rows, some(pop.homophone_ok[person], rates["homophone"]))
    han = ~pop.minority[person] & ~rows.defects["homophone"][dup]
    _name_typos(rng, rows, some(han, rates["name_typo"]))
    full_id = usable_id[dup] & (rows.id[dup] != "")
    _id_typos(rng, rows, some(full_id, rates["id_typo"]))
    _drop_id(rows, some(usable_id[dup] & ~rows.defects["id_typo"][dup], rates["id_missing"]))
    _birth_date_typos(rng, rows, some(~rows.bad_birth_date[dup], rates["birth_date_typo"]))
    flipped = some(np.ones(len(dup), dtype=bool), rates["sex_error"])
    rows.male[flipped] = ~rows.male[flipped]
    rows.flag("sex_error", flipped)
    _drop_phone(rows, some(np.ones(len(dup), dtype=bool), rates["phone_missing"]))
    restyled = some(np.ones(len(dup), dtype=bool), rates["address_style"])
    styles = np.array(REKEY_ADDRESS_STYLES, dtype=STRING)
    rows.address_style[restyled] = styles[rng.integers(0, len(styles), len(restyled))]
    rows.flag("address_variant", restyled[rows.address_style[restyled] != "full"])


def _name_typos(rng: np.random.Generator, rows: SourceRows, index: np.ndarray) -> None:
    """One given-name character typed as another given-name character, or (one time in five, in a
    two-character given name) left out: 王明轩 -> 王明宇, 王轩."""
    pool = np.array(_GIVEN_CHARACTERS, dtype=STRING)
    out = []
    names, cuts = rows.name[index].tolist(), rows.surname_length[index].tolist()
    positions, drops, picks = rng.random(len(index)).tolist(), rng.random(len(index)).tolist(), rng.integers(0, len(pool), len(index))
    for name, cut, u, drop, pick in zip(names, cuts, positions, drops, picks.tolist(), strict=True):
        given = name[cut:]
        p = int(u * len(given))
        if drop < 0.2 and len(given) >= 2:
            out.append(name[:cut] + given[:p] + given[p + 1 :])
            continue
        replacement = str(pool[pick])
        if replacement in (given[p], V.HOMOPHONES.get(given[p]), V.LOOKALIKES.get(given[p])):
            replacement = str(pool[(pick + 1) % len(pool)])
        out.append(name[:cut] + given[:p] + replacement + given[p + 1 :])
    rows.name[index] = np.array(out, dtype=STRING)
    rows.flag("name_typo", index)


def _birth_date_typos(rng: np.random.Generator, rows: SourceRows, typo: np.ndarray) -> None:
    """A birth date a few days or a year off."""
    shift = np.where(rng.random(len(typo)) < 0.7, rng.integers(1, 4, len(typo)), 365) * rng.choice([-1, 1], len(typo))
    rows.birth[typo] = rows.birth[typo] + shift
    rows.birth = np.minimum(rows.birth, REFERENCE_DATE - 1)
    rows.flag("birth_date_typo", typo)


def _tell_duplicates_apart(rows: SourceRows) -> None:
    """A second entry the same as the first in name, ID, phone and address gets 栋 for 幢.

    The variation drawn for a duplicate can be cancelled by the first entry's own mess (both lost
    the phone, both got the same homophone); a clerk re-typing the address would still differ.
    """
    dup = np.flatnonzero(rows.defects["duplicate"])
    if len(dup) == 0:
        return
    first_entry = np.full(rows.person.max() + 1, -1)
    originals = np.flatnonzero(~rows.defects["duplicate"])
    first_entry[rows.person[originals]] = originals
    first = first_entry[rows.person[dup]]
    same = np.ones(len(dup), dtype=bool)
    for values in (rows.name, rows.id, rows.phone, rows.address_text):
        same &= values[dup] == values[first]
    rows.address_text[dup[same]] = np.strings.replace(rows.address_text[dup[same]], "幢", "栋")
    rows.flag("address_variant", dup[same])


def _drop_phone(rows: SourceRows, index: np.ndarray) -> None:
    index = index[rows.phone[index] != ""]
    rows.phone[index] = ""
    rows.flag("phone_missing", index)


def _drop_id(rows: SourceRows, index: np.ndarray) -> None:
    index = index[rows.id[index] != ""]
    rows.id[index] = ""
    rows.flag("id_missing", index)


def _borrowed_ids(rng: np.random.Generator, rows: SourceRows, pop: Population, index: np.ndarray) -> None:
    """The row keyed with the valid ID number of another member of its person's household, drawn at
    random: a spouse's copied from the form above, a parent's used for a child. Single households lend
    nothing. The row keeps its own name, sex and birth date; the truth keeps its own person."""
    size = np.bincount(pop.household, minlength=pop.households)
    index = index[size[pop.household[rows.person[index]]] > 1]
    members = np.argsort(pop.household, kind="stable")
    first = np.r_[0, np.cumsum(size)[:-1]]
    household = pop.household[rows.person[index]]
    position = np.empty(pop.n, dtype=np.int64)
    position[members] = np.arange(pop.n)
    offset = position[rows.person[index]] - first[household]
    other = (offset + 1 + rng.integers(0, size[household] - 1)) % size[household]
    lender = members[first[household] + other]
    rows.id[index] = pop.id18[lender].astype(STRING)
    rows.lender[index] = lender
    rows.flag("borrowed_id", index)


def _old_ids(rows: SourceRows, index: np.ndarray) -> None:
    rows.id[index] = to_15_digit(rows.id[index].astype("S18")).astype(STRING)
    rows.flag("id_15_digit", index)


def _id_typos(rng: np.random.Generator, rows: SourceRows, index: np.ndarray) -> None:
    """One digit of the first 17 substituted, or two adjacent ones swapped (when they differ)."""
    matrix = digit_matrix(rows.id[index].astype("S18"))
    r = np.arange(len(index))
    pos = rng.integers(0, 16, len(index))
    left, right = matrix[r, pos], matrix[r, pos + 1]
    swap = (rng.random(len(index)) < 0.5) & (left != right) & (left != ord("X")) & (right != ord("X"))
    matrix[r[swap], pos[swap]], matrix[r[swap], pos[swap] + 1] = right[swap], left[swap]
    sub = ~swap
    old = matrix[r[sub], pos[sub]].astype(np.int64) - ord("0")
    matrix[r[sub], pos[sub]] = ord("0") + (old + rng.integers(1, 10, sub.sum())) % 10
    rows.id[index] = from_digit_matrix(matrix).astype(STRING)
    rows.flag("id_typo", index)


def _malformed_ids(rng: np.random.Generator, rows: SourceRows, pop: Population, index: np.ndarray) -> None:
    """IDs no normaliser can repair: a digit lost or added, a letter typed, Excel's 3.30106E+17."""
    out = []
    for true_id, kind, at, digit in zip(
        pop.id18[rows.person[index]].astype("U18").tolist(),
        rng.integers(0, 4, len(index)).tolist(),
        rng.integers(1, 17, len(index)).tolist(),
        rng.integers(0, 10, len(index)).tolist(),
        strict=True,
    ):
        if kind == 0:
            out.append(true_id[:at] + true_id[at + 1 :])
        elif kind == 1:
            out.append(true_id[:at] + str(digit) + true_id[at:])
        elif kind == 2:
            out.append(true_id[:at] + "OlABZ"[digit % 5] + true_id[at + 1 :])
        else:
            out.append(f"{float(true_id[:17] + '0'):.5E}")  # how Excel displays an ID typed as a number
    rows.id[index] = np.array(out, dtype=STRING)


def _homophone(rng: np.random.Generator, rows: SourceRows, index: np.ndarray) -> None:
    """Replace one given-name character by a homophone (晓 -> 小)."""
    out, changed = [], []
    names, cuts, draws = rows.name[index].tolist(), rows.surname_length[index].tolist(), rng.random(len(index)).tolist()
    for name, cut, u in zip(names, cuts, draws, strict=True):
        given = name[cut:]
        positions = [i for i, ch in enumerate(given) if ch in V.HOMOPHONES]
        if positions:  # none left if an earlier variant already replaced the only candidate (静 -> 婧)
            p = positions[int(u * len(positions))]
            name = name[:cut] + given[:p] + V.HOMOPHONES[given[p]] + given[p + 1 :]
        out.append(name)
        changed.append(bool(positions))
    rows.name[index] = np.array(out, dtype=STRING)
    rows.flag("homophone", index[np.array(changed, dtype=bool)])


def _shape_slip(rng: np.random.Generator, rows: SourceRows, index: np.ndarray) -> None:
    """Replace one name character by a look-alike read differently (吴 -> 昊, 宇 -> 字)."""
    out = []
    for name, u in zip(rows.name[index].tolist(), rng.random(len(index)).tolist(), strict=True):
        positions = [i for i, ch in enumerate(name) if ch in V.LOOKALIKES]
        p = positions[int(u * len(positions))]
        out.append(name[:p] + V.LOOKALIKES[name[p]] + name[p + 1 :])
    rows.name[index] = np.array(out, dtype=STRING)
    rows.flag("shape_slip", index)


@functools.cache
def _s2t() -> opencc.OpenCC:
    """OpenCC's simplified-to-traditional converter, loaded once per process."""
    return opencc.OpenCC("s2t")


def _to_traditional(values: list[str]) -> list[str]:
    """OpenCC s2t, keeping any character the GBK export could not hold in its simplified form."""
    if not values:
        return []
    converted = _s2t().convert("\n".join(values)).split("\n")
    if len(converted) != len(values):  # a phrase rule merged lines; convert one at a time instead
        converted = [_s2t().convert(v) for v in values]
    out = []
    for simple, traditional in zip(values, converted, strict=True):
        if _gbk_ok(traditional):
            out.append(traditional)
        elif len(simple) == len(traditional):
            out.append("".join(t if _gbk_ok(t) else s for s, t in zip(simple, traditional, strict=True)))
        else:
            out.append(simple)
    return out


def _gbk_ok(text: str) -> bool:
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


def _traditional(rows: SourceRows, address: np.ndarray, index: np.ndarray) -> None:
    rows.name[index] = np.array(_to_traditional(rows.name[index].tolist()), dtype=STRING)
    address[index] = np.array(_to_traditional(address[index].tolist()), dtype=STRING)
    rows.flag("traditional", index)


def _dot_variants(rng: np.random.Generator, rows: SourceRows, index: np.ndarray, gbk: bool) -> None:
    variants = V.DOT_VARIANTS_GBK if gbk else V.DOT_VARIANTS
    pick = rng.integers(0, len(variants), len(index))
    for i, variant in enumerate(variants):
        idx = index[pick == i]
        rows.name[idx] = np.strings.replace(rows.name[idx], "·", variant)
    rows.flag("dot_variant", index)


def _fullwidth_and_spaces(rng: np.random.Generator, rows: SourceRows, address: np.ndarray, index: np.ndarray) -> None:
    """Full-width digits in an ID, phone or address; spaces (ASCII or U+3000) in a name or address."""
    names, ids, phones, addresses = (a[index].tolist() for a in (rows.name, rows.id, rows.phone, address))
    cuts = rows.surname_length[index].tolist()
    kinds = rng.integers(0, 6, len(index)).tolist()
    spaces = rng.choice([" ", "\u3000"], len(index)).tolist()
    for i, kind in enumerate(kinds):
        if (kind == 1 and not ids[i]) or (kind == 2 and not phones[i]):
            kind = 0
        if kind == 1:
            ids[i] = ids[i].translate(_FULLWIDTH)
        elif kind == 2:
            phones[i] = phones[i].translate(_FULLWIDTH)
        elif kind == 3:
            addresses[i] = addresses[i].translate(_FULLWIDTH)
        elif kind == 4:
            first_digit = next((j for j, ch in enumerate(addresses[i]) if ch.isdigit()), len(addresses[i]))
            addresses[i] = addresses[i][:first_digit] + spaces[i] + addresses[i][first_digit:]
        elif kind == 5:
            names[i] = names[i] + " " if spaces[i] == " " else "\u3000" + names[i]
        else:
            cut = names[i].find("·") if "·" in names[i] else cuts[i]
            names[i] = names[i][:cut] + spaces[i] + names[i][cut:]
    for target, values in ((rows.name, names), (rows.id, ids), (rows.phone, phones), (address, addresses)):
        target[index] = np.array(values, dtype=STRING)
    rows.flag("fullwidth_space", index)
