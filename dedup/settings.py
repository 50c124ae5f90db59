"""What the identity-resolution engine should do, declared as data.

Nothing here runs a comparison or a query: :mod:`dedup.blocking` turns :class:`BlockingRule` into SQL,
:mod:`dedup.compare` runs each comparison's level tests vectorised, :mod:`dedup.score` adds up the level
weights and applies the vetoes, and :mod:`dedup.model` fits the Fellegi–Sunter model that
:class:`ModelSpec` declares (m by EM, u from random pairs, a prior, term frequencies), starting from the
declared weights — the same split Splink makes between its comparison creators and its backends.

A comparison is a list of :class:`ComparisonLevel` in priority order, as a SQL ``CASE WHEN``: a pair
reaches the first level whose test it passes. Each level carries its label, its default weight and the
name of its vectorised test (implemented in :mod:`dedup.compare`); a level's code is its position in
that list and is never written anywhere else, so adding a level is one declaration and one test.

:class:`LinkSettings` is a pydantic model: built in Python, or read from ``linking.yaml`` by
:func:`load_link_settings` (see ``demo/linking.yaml``, which holds the defaults). Every class validates
itself when constructed and says, on failure, which key is wrong and what a correct value looks like.

Example:
    >>> settings = LinkSettings(match_threshold=10.0)
    >>> [rule.name for rule in settings.blocking_rules][:2]
    ['id_number', 'pinyin_birth_month']
    >>> settings.comparison("name").labels[:4]
    ('null', 'exact', 'homophone', 'shape')
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    InstanceOf,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from core.config import key_error, load_yaml_model, suggest
from core.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "BLOCKING_KEYS",
    "ELSE",
    "DEFAULT_VETOES",
    "VETOES",
    "AddressComparison",
    "BirthDateComparison",
    "BlockingRule",
    "CommunityComparison",
    "Comparison",
    "ComparisonLevel",
    "IdNumberComparison",
    "LinkSettings",
    "ModelSpec",
    "NameComparison",
    "PhoneComparison",
    "SexComparison",
    "SourceComparison",
    "SparkSpec",
    "default_blocking_rules",
    "default_comparisons",
    "load_link_settings",
]

#: Columns of :func:`dedup.prepare.prepare_records` output that a blocking rule may use as a key.
BLOCKING_KEYS: frozenset[str] = frozenset(
    {
        "id_number",
        "name",
        "name_pinyin",
        "surname_pinyin",
        "given_pinyin",
        "name_words",
        "birth_date",
        "birth_ym",
        "birth_year",
        "birth_md",
        "sex",
        "phone",
        "community",
        "grid",
        "household",
        "house_number",
    }
)

#: Vetoes the scorer can apply; a vetoed pair never links whatever its score. :mod:`dedup.score` says
#: which levels each one looks at, by label.
VETOES: dict[str, str] = {
    "distinct_valid_ids": "both ID numbers carry a valid check digit and differ",
    "different_sex": (
        "the sexes differ, at least one of them is the sex a valid ID number carries (which overrides the "
        "stated sex), and the ID numbers are not equal"
    ),
    "contradicting_birth_dates": (
        "birth dates differ at their common precision by more than a slip, at least one of them is the date "
        "a valid ID number carries, and the ID numbers do not agree"
    ),
    "id_sharing_conflict": (
        "both records carry the same valid ID number, but the names differ beyond a slip and the birth "
        "dates each record states differ by more than a slip: one of them was keyed with another "
        "resident's ID number"
    ),
}

#: The vetoes applied unless ``linking.yaml`` lists others: those conclusive by construction. Two valid
#: numbers cannot both be one person's, and one valid number under another name *and* another stated
#: birth date is another resident keyed with it. ``different_sex`` and ``contradicting_birth_dates``
#: hold a valid number's sex or date against what the *other* record states, and a stated 男/女 or date
#: is a slip often enough (a form filled in by a relative, a re-keyed visit) that the model weighs it
#: instead; a district whose registers never slip may list them.
DEFAULT_VETOES: tuple[str, ...] = ("distinct_valid_ids", "id_sharing_conflict")

#: The comparisons each veto reads besides the ID numbers (which it does without when none is declared).
_VETO_NEEDS: dict[str, tuple[str, ...]] = {
    "distinct_valid_ids": ("id_number",),
    "different_sex": ("sex",),
    "contradicting_birth_dates": ("birth_date",),
    "id_sharing_conflict": ("id_number", "name", "birth_date"),
}

#: Vetoes that existed once, and why they are gone: a file that still lists one is told what replaced it.
_REMOVED_VETOES: dict[str, str] = {
    "same_source_mismatch": (
        "it assumed a department copies its own spelling and address, which re-keyed repeat visits and census "
        "double counts do not; whether two records come from one source is now the `source` comparison, whose "
        "weights the model learns from the data (docs/identity.md)"
    ),
}

#: The test of the catch-all level that ends every comparison: every pair no earlier level took.
ELSE = "else"

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_TEST_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


@dataclass(frozen=True)
class BlockingRule:
    """Records that agree exactly on every key become candidate pairs.

    Args:
        name: snake_case label, reported per candidate pair as the first rule that produced it.
        keys: prepared columns (see :data:`BLOCKING_KEYS`) that must all be present and equal.
        max_block_size: a block (records sharing one key value) larger than this is skipped and logged,
            because it would cost n²/2 comparisons for little evidence (a placeholder phone number,
            a common name in one birth month). ``None`` uses :attr:`LinkSettings.max_block_size`.

    Example:
        >>> BlockingRule("pinyin_birth_month", keys=("name_pinyin", "birth_ym")).keys
        ('name_pinyin', 'birth_ym')
    """

    name: str
    keys: tuple[str, ...]
    max_block_size: int | None = None

    def __post_init__(self) -> None:
        example = 'BlockingRule("pinyin_birth_month", keys=("name_pinyin", "birth_ym"))'
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(f"blocking rule name {self.name!r} must be snake_case, e.g. {example}")
        if isinstance(self.keys, str) or not isinstance(self.keys, tuple | list) or not self.keys:
            raise ConfigError(
                f"blocking rule {self.name!r}: keys must be a non-empty tuple of column names, e.g. {example}"
            )
        object.__setattr__(self, "keys", tuple(self.keys))
        unknown = [key for key in self.keys if key not in BLOCKING_KEYS]
        if unknown:
            raise ConfigError(
                f"blocking rule {self.name!r}: unknown key(s) {unknown}; choose from {sorted(BLOCKING_KEYS)}, "
                f"e.g. {example}"
            )
        if len(set(self.keys)) != len(self.keys):
            raise ConfigError(f"blocking rule {self.name!r}: keys {self.keys} repeat a column, e.g. {example}")
        if self.max_block_size is not None and (
            isinstance(self.max_block_size, bool) or not isinstance(self.max_block_size, int) or self.max_block_size < 2
        ):
            raise ConfigError(
                f"blocking rule {self.name!r}: max_block_size must be an integer >= 2 or None, "
                f"got {self.max_block_size!r}; e.g. BlockingRule('phone', keys=('phone',), max_block_size=50)"
            )


@dataclass(frozen=True)
class ComparisonLevel:
    """One outcome of a comparison: its label, the evidence it carries, and the test a pair must pass.

    ``weight`` is in bits (log2 of the likelihood ratio m/u, as Fellegi–Sunter has it): positive
    supports "same person", negative supports "different people", zero is no evidence (e.g. a value
    missing on either side).
    The declared weight is the starting point of the EM (:mod:`dedup.model`), the weight kept for a
    level too rare to estimate or listed in :attr:`ModelSpec.fixed_levels`, and the whole model when
    estimation is off.

    ``test`` names a vectorised test registered in :mod:`dedup.compare` (``missing``, ``equal``,
    ``name.homophone`` …; :data:`ELSE` for the catch-all). Tests are tried in the order the levels are
    declared and each sees only the pairs no earlier level took, so a test need not exclude them.

    Example:
        >>> ComparisonLevel("homophone", 4.0, test="name.homophone").label
        'homophone'
    """

    label: str
    weight: float
    test: str

    def __post_init__(self) -> None:
        example = "ComparisonLevel('homophone', 4.0, test='name.homophone')"
        if not isinstance(self.label, str) or not _NAME_RE.match(self.label):
            raise ConfigError(f"comparison level label {self.label!r} must be snake_case, e.g. {example}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, int | float) or not math.isfinite(self.weight):
            raise ConfigError(
                f"comparison level {self.label!r}: weight must be a finite number of bits, got {self.weight!r}; "
                f"e.g. {example}"
            )
        if not isinstance(self.test, str) or not _TEST_RE.match(self.test):
            raise ConfigError(
                f"comparison level {self.label!r}: test must name a level test of dedup.compare, got {self.test!r}; "
                f"e.g. {example}"
            )


@dataclass(frozen=True)
class Comparison:
    """Base of the declared comparisons: a field and its levels, in the order they are tested.

    The first level is always ``null`` (a value missing on either side: no evidence, which the model
    relies on) and the last is the catch-all (test :data:`ELSE`). A level's code is its position in
    ``levels``; code and label go together through :meth:`code` and :attr:`labels`, so nothing outside
    this declaration depends on the order. Every field named ``*_threshold`` is a similarity in (0, 1]
    and is checked as one; the level tests of the comparison read them.

    Attributes:
        field: the prepared field compared, and the column of its level in the pair output.
        exact_label: the level two equal values reach: the one whose u comes from value frequencies and
            which a term-frequency adjustment scales (:mod:`dedup.model`); ``None`` if there is none.
    """

    field: ClassVar[str] = ""
    exact_label: ClassVar[str | None] = "exact"
    levels: tuple[ComparisonLevel, ...] = ()

    def __post_init__(self) -> None:
        owner = type(self).__name__
        example = (
            "(ComparisonLevel('null', 0.0, test='missing'), ComparisonLevel('equal', 3.0, test='equal'), "
            "ComparisonLevel('different', -1.0, test='else'))"
        )
        if (
            isinstance(self.levels, str)
            or not isinstance(self.levels, tuple | list)
            or not all(isinstance(level, ComparisonLevel) for level in self.levels)
        ):
            raise ConfigError(f"{owner}: levels must be a tuple of ComparisonLevel, e.g. levels={example}")
        object.__setattr__(self, "levels", tuple(self.levels))
        labels = self.labels
        if len(labels) < 2 or labels[0] != "null" or self.levels[-1].test != ELSE:
            raise ConfigError(
                f"{owner}: levels must start with 'null' and end with a level whose test is {ELSE!r}, got "
                f"{[(level.label, level.test) for level in self.levels]}; e.g. levels={example}"
            )
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{owner}: level labels must be unique, got {labels}")
        if self.exact_label is not None and self.exact_label not in labels:
            raise ConfigError(f"{owner}: the level {self.exact_label!r} (exact_label) must be declared, got {labels}")
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name.endswith("_threshold") and (
                isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0
            ):
                raise ConfigError(
                    f"{owner}: {spec.name} must be a similarity in (0, 1], got {value!r}; "
                    f"e.g. {owner}({spec.name}={spec.default})"
                )

    @classmethod
    def thresholds(cls) -> tuple[str, ...]:
        """Names of the ``*_threshold`` parameters this comparison takes."""
        return tuple(spec.name for spec in fields(cls) if spec.name.endswith("_threshold"))

    @property
    def labels(self) -> tuple[str, ...]:
        """Level labels, in the order the levels are tested (the label of code ``i`` is ``labels[i]``)."""
        return tuple(level.label for level in self.levels)

    def code(self, label: str) -> int:
        """The code of the level called ``label`` (its position in :attr:`levels`).

        Raises:
            ConfigError: this comparison declares no such level.
        """
        labels = self.labels
        if label not in labels:
            raise ConfigError(
                f"{type(self).__name__} has no level {label!r}{suggest(label, labels)}; its levels are {', '.join(labels)}"
            )
        return labels.index(label)

    def weights(self) -> tuple[float, ...]:
        """Declared weight per level code."""
        return tuple(level.weight for level in self.levels)

    def weight(self, label: str) -> float:
        """Declared weight of the level called ``label``."""
        return self.levels[self.code(label)].weight

    def with_weights(self, weights: Mapping[str, float]) -> Comparison:
        """A copy whose levels named in ``weights`` (label → bits) weigh that much instead.

        Example:
            >>> NameComparison().with_weights({"similar": -2.0}).weight("similar")
            -2.0
        """
        unknown = [label for label in weights if label not in self.labels]
        if unknown:
            raise ConfigError(
                f"{type(self).__name__} has no level {unknown[0]!r}{suggest(str(unknown[0]), self.labels)}; "
                f"its levels are {', '.join(self.labels)}; e.g. {{'{self.labels[1]}': {self.levels[1].weight}}}"
            )
        levels = tuple(
            replace(level, weight=weights[level.label]) if level.label in weights else level for level in self.levels
        )
        return replace(self, levels=levels)

    def with_level(self, level: ComparisonLevel, *, before: str) -> Comparison:
        """A copy with ``level`` tested just before the level ``before``, so it takes the pairs both
        would accept. No other level changes; codes are positions, so they follow.

        Example:
            >>> extra = ComparisonLevel("initials", 2.0, test="name.initials")
            >>> NameComparison().with_level(extra, before="typo").labels[3:6]
            ('shape', 'initials', 'typo')
        """
        position = self.code(before)
        return replace(self, levels=(*self.levels[:position], level, *self.levels[position:]))


@dataclass(frozen=True)
class IdNumberComparison(Comparison):
    """Resident ID numbers (18-character GB 11643 form after staging).

    Levels: ``exact``; ``typo`` — one substituted character or two adjacent characters swapped, the
    keying errors MOD 11-2 is designed to catch (so at least one of the two is invalid); ``close`` — two
    edits apart (two slips, or one slip in a number copied from a neighbouring row), never two valid
    numbers (twins); ``different``. Identifiers of another scheme (a social-security number) are compared
    as strings at the same levels.
    """

    field: ClassVar[str] = "id_number"
    levels: tuple[ComparisonLevel, ...] = (
        ComparisonLevel("null", 0.0, test="id_number.missing"),
        ComparisonLevel("exact", 14.0, test="id_number.exact"),
        ComparisonLevel("typo", 8.0, test="id_number.typo"),
        ComparisonLevel("close", 2.0, test="id_number.close"),
        ComparisonLevel("different", -6.0, test=ELSE),
    )


@dataclass(frozen=True)
class NameComparison(Comparison):
    """Names in Chinese characters, with pinyin to see through homophones and input-method slips; names in
    Latin letters by their words.

    Levels:

    - ``exact`` — the same characters (after traditional → simplified and full-width folding);
    - ``homophone`` — the same toneless pinyin (张玮 / 张伟), or a Latin name's words in another order;
    - ``shape`` — a look-alike character read differently (形近字: 吴 / 昊, 宇 / 字; see
      :mod:`dedup.shapes`), a slip of the eye on a handwritten or scanned form;
    - ``near_homophone`` — the same pinyin once the sounds input methods offer to confuse (模糊音) are
      folded: front and back nasals (玲 ling / 琳 lin, 晨 chen / 晟 cheng) and flat and retroflex
      initials (z/zh, c/ch, s/sh), n/l (:func:`dedup.prepare.fuzzy_pinyin`) — a slip of the ear or of a
      pinyin input method set for a southern accent;
    - ``typo`` — a Latin name with a letter or two mistyped: Jaro–Winkler similarity, in either word
      order, at least ``word_threshold``;
    - ``alias`` — one record's name is a former name or alias the other gives (曾用名: ``alias``), as
      written or with the same pinyin, or the two give one alias;
    - ``similar`` — a Chinese name one character away (normalised Levenshtein at least
      ``similar_threshold``: one character wrong, missing or extra in a three-character name) or with a
      pinyin similarity at least ``pinyin_threshold``;
    - ``shared`` — one name is part of the other: a minority name's given-name-only form (阿依古丽·买买提 /
      阿依古丽), or a Latin name with a word in common (the surname kept, the given name dropped or
      replaced);
    - ``partial`` — as ``shared``, but the word in common is a letter or two off (Jaro–Winkler at least
      ``word_threshold``);
    - ``different``.

    ``similar`` weighs *against* a match by default: within a household, Chinese names one character
    apart (王明轩 / 王明林) are far more often twins or siblings than a typing slip, which input methods
    make as homophones. A similar name still links when the ID numbers agree.
    """

    field: ClassVar[str] = "name"
    levels: tuple[ComparisonLevel, ...] = (
        ComparisonLevel("null", 0.0, test="missing"),
        ComparisonLevel("exact", 5.0, test="equal"),
        ComparisonLevel("homophone", 4.0, test="name.homophone"),
        ComparisonLevel("shape", 3.0, test="name.shape"),
        ComparisonLevel("near_homophone", 3.0, test="name.near_homophone"),
        ComparisonLevel("typo", 3.0, test="name.typo"),
        ComparisonLevel("alias", 3.0, test="name.alias"),
        ComparisonLevel("similar", -3.0, test="name.similar"),
        ComparisonLevel("shared", 0.0, test="name.shared"),
        ComparisonLevel("partial", -1.0, test="name.partial"),
        ComparisonLevel("different", -6.0, test=ELSE),
    )
    similar_threshold: float = 0.6
    pinyin_threshold: float = 0.85
    word_threshold: float = 0.88


@dataclass(frozen=True)
class BirthDateComparison(Comparison):
    """Birth dates compared at the precision both sides state (the census gives year-month only).

    Levels: ``day`` — equal to the day; ``month`` — equal, month is the common precision; ``year`` —
    equal, year is the common precision; ``swapped`` — day and month transposed (03-04 / 04-03);
    ``near`` — off by one slip: one digit of YYYYMMDD mistyped or two neighbouring digits swapped, one to
    three days apart, or the same day of a neighbouring year (at month precision: the neighbouring month,
    or the same month of a neighbouring year); ``different``. A record without a stated birth date, or
    with a valid ID number, takes the date embedded in its ID number (the check character protects it; a
    stated date does not have one).
    """

    field: ClassVar[str] = "birth_date"
    exact_label: ClassVar[str | None] = "day"
    levels: tuple[ComparisonLevel, ...] = (
        ComparisonLevel("null", 0.0, test="birth_date.missing"),
        ComparisonLevel("day", 6.0, test="birth_date.day"),
        ComparisonLevel("month", 3.0, test="birth_date.month"),
        ComparisonLevel("year", 1.0, test="birth_date.year"),
        ComparisonLevel("swapped", 1.0, test="birth_date.swapped"),
        ComparisonLevel("near", 1.0, test="birth_date.near"),
        ComparisonLevel("different", -8.0, test=ELSE),
    )


@dataclass(frozen=True)
class SexComparison(Comparison):
    """Sex (``M``/``F``): the one a valid ID number encodes, else the one stated.

    A valid ID is trusted over the stated sex because a wrong sex digit would break the check
    character, while a wrong 男/女 on a form breaks nothing.
    """

    field: ClassVar[str] = "sex"
    exact_label: ClassVar[str | None] = "equal"
    levels: tuple[ComparisonLevel, ...] = (
        ComparisonLevel("null", 0.0, test="missing"),
        ComparisonLevel("equal", 0.5, test="equal"),
        ComparisonLevel("different", -10.0, test=ELSE),
    )


@dataclass(frozen=True)
class PhoneComparison(Comparison):
    """Phone numbers after normalisation (digits only).

    Equal numbers are household evidence more than personal evidence (children and the elderly give a
    guardian's number), so they weigh no more than a shared address; different numbers are weak
    evidence against, since people change them.
    """

    field: ClassVar[str] = "phone"
    exact_label: ClassVar[str | None] = "equal"
    levels: tuple[ComparisonLevel, ...] = (
        ComparisonLevel("null", 0.0, test="missing"),
        ComparisonLevel("equal", 3.0, test="equal"),
        ComparisonLevel("different", -1.0, test=ELSE),
    )


@dataclass(frozen=True)
class AddressComparison(Comparison):
    """Normalised address text. Family members share an address, so even ``exact`` is modest evidence.

    Levels: ``exact`` text; ``household`` — the same flat written another way (3幢2单元501室 / 3-2-501,
    see :func:`dedup.prepare.household_key`), or a Latin address's words in another order;
    ``building_room`` — the same building and room where one record leaves the unit out (翠苑3幢501 /
    翠苑社区3幢2单元501室: likely one flat, though each stairwell has a 501); ``moved`` —
    two flats that records under one valid ID number place one person at (a home and the one before it:
    a register not caught up with a move, a census double count at the registered address);
    ``registered`` — one record's 户籍地址 is the other's address, or both are registered at one flat
    (a register keeps the registered home, the census counts where the person lives); ``similar`` —
    Indel similarity at least ``similar_threshold``; ``partial`` — an address in Latin letters with words
    in common (token-set similarity at least ``partial_threshold``: a street kept, a suburb mistyped);
    ``different`` (people move, so this is weak evidence against). The community is compared on its own
    (:class:`CommunityComparison`).
    """

    field: ClassVar[str] = "address"
    levels: tuple[ComparisonLevel, ...] = (
        ComparisonLevel("null", 0.0, test="missing"),
        ComparisonLevel("exact", 3.0, test="equal"),
        ComparisonLevel("household", 3.0, test="address.household"),
        ComparisonLevel("building_room", 2.0, test="address.building_room"),
        ComparisonLevel("moved", 3.0, test="address.moved"),
        ComparisonLevel("registered", 3.0, test="address.registered"),
        ComparisonLevel("similar", 1.0, test="address.similar"),
        ComparisonLevel("partial", 0.5, test="address.partial"),
        ComparisonLevel("different", -2.0, test=ELSE),
    )
    similar_threshold: float = 0.8
    partial_threshold: float = 0.7


@dataclass(frozen=True)
class CommunityComparison(Comparison):
    """The community a record is registered in (社区/村, or a postcode in data from elsewhere).

    Agreement is evidence of its own beside the address: a record that names the community but writes
    the flat differently, or a postcode beside a mistyped street, still places the two records together.
    Two records at the same flat (address ``exact`` or ``household``) compare as ``null`` here: the flat
    implies the community, and counting it twice would make household members look alike twice over.
    """

    field: ClassVar[str] = "community"
    exact_label: ClassVar[str | None] = "equal"
    levels: tuple[ComparisonLevel, ...] = (
        ComparisonLevel("null", 0.0, test="community.missing"),
        ComparisonLevel("equal", 2.0, test="equal"),
        ComparisonLevel("different", -1.0, test=ELSE),
    )


@dataclass(frozen=True)
class SourceComparison(Comparison):
    """Whether the two records come from one source (department) or from two.

    How a department types its own records is not assumed: a register that copies a person's entry
    makes within-source repeats look alike, one whose clerks re-key every visit makes them look no more
    alike than records of two departments, and a pair of files each deduplicated already (FEBRL4's A
    and B) holds no within-source match at all. The model learns which from the data: ``same`` and
    ``different`` start at no evidence (0 bits) and the EM weighs them — m from the candidate pairs it
    finds to be matches, u from random record pairs (Σ of each source's share squared for ``same``).
    ``null``: a record without a source (no evidence).
    """

    field: ClassVar[str] = "source"
    exact_label: ClassVar[str | None] = "same"
    levels: tuple[ComparisonLevel, ...] = (
        ComparisonLevel("null", 0.0, test="missing"),
        ComparisonLevel("same", 0.0, test="equal"),
        ComparisonLevel("different", 0.0, test=ELSE),
    )


#: The comparison ``linking.yaml`` builds for each field it names under ``comparisons``.
_COMPARISONS: dict[str, type[Comparison]] = {
    kind.field: kind
    for kind in (
        IdNumberComparison,
        NameComparison,
        BirthDateComparison,
        SexComparison,
        PhoneComparison,
        AddressComparison,
        CommunityComparison,
        SourceComparison,
    )
}

#: Fields whose exact level can take a term-frequency adjustment: text compared whole.
_TF_FIELDS: frozenset[str] = frozenset({"name", "phone", "address", "community"})

#: Where the u probabilities (P(level | two different people)) of a trained model come from.
U_SOURCES: tuple[str, ...] = ("random", "candidates")

#: What executes the candidate pairs: DuckDB on this machine, or an Apache Spark cluster (:mod:`dedup.spark`).
ENGINES: tuple[str, ...] = ("duckdb", "spark")


# ------------------------------------------------------------------------ checks shared by the models


def _invalid(message: str, *key: str | int) -> PydanticCustomError:
    """A validation error whose message is ``message`` as written, reported at ``key`` below the model
    that raises it (a model-level check can still name the setting it is about)."""
    return key_error(message, *key)


def _require(accepted: bool, value: Any, expected: str, info: ValidationInfo, example: Any) -> Any:
    """``value`` if ``accepted``; else an error saying what was expected, with a correct value of the field."""
    if not accepted:
        raise _invalid(f"must be {expected}, got {value!r}; e.g. {info.field_name}: {_yaml(example)}")
    return value


def _yaml(value: Any) -> str:
    """A setting's value as it is written in ``linking.yaml``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_strings(value: Any) -> bool:
    return isinstance(value, tuple | list) and all(isinstance(item, str) for item in value)


#: Former names of settings, so an old file or call is told the new one.
_RENAMED = {"hard_rules": "vetoes"}


class _Meta(type(BaseModel)):  # type: ignore[misc]
    """Constructing a settings model in Python raises :class:`ConfigError`, like every declaration here.

    A metaclass and not ``__init__``: pydantic routes ``model_validate`` through a custom ``__init__``,
    and the YAML loader must still see pydantic's error to name the file and the key path.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" if error["loc"] else error["msg"]
                for error in e.errors()
            )
            raise ConfigError(f"{cls.__name__}: {problems}") from e


class _Settings(BaseModel, metaclass=_Meta):
    """Base of the settings models: immutable, and an unknown key is refused with the nearest known one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    hint = f" (renamed {_RENAMED[key]!r})" if key in _RENAMED else suggest(str(key), list(cls.model_fields))
                    raise _invalid(f"unknown setting {key!r}{hint}; expected one of: {', '.join(cls.model_fields)}", key)
        return data

    @classmethod
    def _default(cls, name: str) -> Any:
        field_info = cls.model_fields[name]
        return field_info.default_factory() if field_info.default_factory else field_info.default


class ModelSpec(_Settings):
    """How the Fellegi–Sunter model is fitted to the records being linked (no labels needed).

    :func:`dedup.model.train_model` carries it out on every run, so the engine adapts to data it has
    never seen. m (P(level | same person)) is estimated by expectation–maximisation over a sample of
    the candidate pairs, starting from the declared level weights; u comes from ``u_source``:
    ``"random"`` — random record pairs, as Splink does (the prior is then the chance that two random
    records match) — or ``"candidates"`` — the non-match class of the EM over candidate pairs (the
    prior is then the share of candidate pairs that match). Names get a term-frequency adjustment: an
    exact match on a common name (王伟) is weaker evidence than on a rare one.

    Args:
        estimate: fit m and u to the data; ``False`` scores with the declared level weights as they are.
        u_source: ``"random"`` or ``"candidates"`` (see above).
        u_sample_pairs: random record pairs compared to estimate u.
        em_sample_pairs: candidate pairs (at most) the EM runs over.
        em_iterations: EM iterations at most; it stops earlier once no m moves by ``em_tolerance``.
        em_tolerance: convergence threshold on the largest change of any m or u probability.
        em_fix_u: with ``u_source="random"``, hold u at its random-pair estimate during EM and estimate
            only m and λ (as Splink does); otherwise EM also fits a u of its own to the candidate pairs.
        min_training_pairs: with fewer candidate pairs than this there is too little to learn from, and
            the declared weights are used (tiny inputs, tests).
        min_level_pairs: a level reached by fewer training pairs than this keeps its declared weight.
        fixed_levels: ``"field.level"`` labels whose declared weight is domain knowledge EM must not
            override, e.g. ``("name.similar",)``.
        term_frequency: fields (``name``, ``phone``, ``address``, ``community``) whose exact level is
            adjusted by how common the value is: a shared 王伟 or a shared large community says less than
            a rare name or a village. A field without a comparison is skipped.
        max_level_weight: bound (in bits, either sign) on any estimated level weight, so one sparse
            level cannot outvote every other comparison.
        household_context: for two records at one flat (address ``exact`` or ``household``), weigh the
            name, birth date, sex and phone by how two *different* people of one flat compare — measured
            on flatmates whose valid ID numbers differ (:func:`dedup.model.flatmate_u`) — instead of how
            two random records do: a shared phone, a generation character or a birthday (twins) is
            common among flatmates and says little there.
        flatmate_pairs: at most this many such flatmate pairs are compared (a random sample).
        min_flatmate_pairs: with fewer, the household context is not used.
        min_born_together_pairs: flatmates born the same day (twins with two valid ID numbers) needed to
            weigh the names of two records at one flat born the same day or month by theirs; with fewer,
            such names weigh as any flatmates' do.
        max_flat_size: a flat with more records carrying a valid ID number than this (a dormitory, a
            placeholder address) is not taken as a household.
        m_from_shared_ids: measure m of every comparison but the ID number and the birth date on records
            that share one valid ID number — one person by construction — instead of keeping the EM's, which learns
            only from the matches it already finds (:func:`dedup.model.shared_id_m`): a changed phone or
            a mover's two addresses are then weighed as often as one person's records show them.
        min_shared_id_pairs: with fewer pairs sharing a valid ID number, m stays the EM's.
        seed: random seed for the samples, so a run is reproducible.

    Example:
        >>> ModelSpec(u_source="random", em_iterations=10).em_iterations
        10
    """

    estimate: bool = Field(default=True, description="fit m and u to the data; false scores with the declared weights")
    u_source: str = Field(default="random", description="where u comes from: random record pairs, or the EM's non-match class")
    u_sample_pairs: int = Field(default=1_000_000, description="random record pairs compared to estimate u")
    em_sample_pairs: int = Field(default=500_000, description="candidate pairs (at most) the EM runs over")
    em_iterations: int = Field(default=25, description="EM iterations at most")
    em_tolerance: float = Field(default=1e-4, description="EM stops once no m or u probability moves by more than this")
    em_fix_u: bool = Field(default=False, description="with u from random pairs, hold u fixed and estimate only m and λ")
    min_training_pairs: int = Field(default=1_000, description="fewer candidate pairs than this: declared weights")
    min_level_pairs: int = Field(default=10, description="a level reached by fewer training pairs keeps its declared weight")
    fixed_levels: tuple[str, ...] = Field(default=(), description="'field.level' labels whose declared weight EM keeps")
    term_frequency: tuple[str, ...] = Field(
        default=("name", "community"), description="fields whose exact level is adjusted by how common the value is"
    )
    max_level_weight: float = Field(default=20.0, description="bound (bits, either sign) on any estimated level weight")
    household_context: bool = Field(
        default=True, description="weigh name, birth date, sex and phone of two records at one flat by how flatmates compare"
    )
    flatmate_pairs: int = Field(default=100_000, description="flatmates with two valid ID numbers compared, at most")
    min_flatmate_pairs: int = Field(default=500, description="fewer flatmates than this: no household context")
    min_born_together_pairs: int = Field(
        default=20, description="fewer flatmates born the same day than this: names of twins weigh as flatmates'"
    )
    max_flat_size: int = Field(default=40, description="flats with more records than this are no household")
    m_from_shared_ids: bool = Field(
        default=True, description="measure m of the comparisons but ID number and birth date on records sharing a valid ID number"
    )
    min_shared_id_pairs: int = Field(default=1_000, description="fewer such pairs than this: m stays the EM's")
    seed: int = Field(default=20261123, description="random seed of the samples, so a run is reproducible")

    @field_validator("estimate", "em_fix_u", "household_context", "m_from_shared_ids", mode="before")
    @classmethod
    def _flag(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(isinstance(value, bool), value, "true or false", info, not cls._default(info.field_name))

    @field_validator("u_source", mode="before")
    @classmethod
    def _u_source(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(value in U_SOURCES, value, f"one of {', '.join(U_SOURCES)}", info, "random")

    @field_validator(
        "u_sample_pairs", "em_sample_pairs", "em_iterations", "min_training_pairs", "min_level_pairs", "flatmate_pairs",
        "min_flatmate_pairs", "min_born_together_pairs", "max_flat_size", "min_shared_id_pairs", mode="before",
    )
    @classmethod
    def _count(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(_is_integer(value, 1), value, "a positive integer", info, cls._default(info.field_name))

    @field_validator("em_tolerance", "max_level_weight", mode="before")
    @classmethod
    def _positive(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(_is_number(value) and value > 0, value, "a positive number", info, cls._default(info.field_name))

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(_is_integer(value, 0), value, "a non-negative integer", info, cls._default(info.field_name))

    @field_validator("fixed_levels", mode="before")
    @classmethod
    def _field_levels(cls, value: Any, info: ValidationInfo) -> Any:
        accepted = _is_strings(value) and all(label.count(".") == 1 for label in value)
        return _require(accepted, value, "a list of 'field.level' labels", info, ["name.similar"])

    @field_validator("term_frequency", mode="before")
    @classmethod
    def _text_fields(cls, value: Any, info: ValidationInfo) -> Any:
        accepted = _is_strings(value) and set(value) <= _TF_FIELDS
        expected = f"a list of text fields among {', '.join(sorted(_TF_FIELDS))}"
        return _require(accepted, value, expected, info, cls._default(info.field_name))


def default_blocking_rules() -> tuple[BlockingRule, ...]:
    """The blocking rules that suit the canonical person record.

    Each rule catches pairs the others miss, and each keeps its blocks small as the district grows
    (a rule whose blocks grow with the population, such as surname + birth date alone, makes the
    number of pairs grow with its square): the ID number catches name changes and mistyped names;
    pinyin + birth month catches mistyped ID numbers, homophones and records without an ID (the census
    gives year-month only); the phone catches records without a usable birth date; flat + birth month
    catches a mistyped name together with a mistyped or missing ID; surname + birth date + community
    catches mistyped given names in the registers that record the community.

    Three more rules rely on no Chinese structure, so data the engine has never seen (Latin names,
    another identifier scheme, postcodes in ``community``) still gets candidate pairs when the name
    *and* the identifier are mistyped: surname + birth date, given name + birth date, community +
    birth date, each capped at 50 records a block so common surnames and large communities cost little.
    Three more catch records without a usable birth date whose identifier is mistyped: name + community
    (a 社区, or a postcode), community + house number (the street number of a Latin address), and the
    name alone where it is rare (at most 20 records share it: a common name costs nothing).
    """
    return (
        BlockingRule("id_number", keys=("id_number",)),
        BlockingRule("pinyin_birth_month", keys=("name_pinyin", "birth_ym")),
        BlockingRule("phone", keys=("phone",), max_block_size=50),
        BlockingRule("household_birth_month", keys=("household", "birth_ym")),
        BlockingRule("surname_birth_date_community", keys=("surname_pinyin", "birth_date", "community")),
        BlockingRule("surname_birth_date", keys=("surname_pinyin", "birth_date"), max_block_size=50),
        BlockingRule("given_birth_date", keys=("given_pinyin", "birth_date"), max_block_size=50),
        BlockingRule("community_birth_date", keys=("community", "birth_date"), max_block_size=50),
        BlockingRule("name_community", keys=("name_pinyin", "community"), max_block_size=50),
        BlockingRule("name", keys=("name_pinyin",), max_block_size=20),
        BlockingRule("name_words", keys=("name_words",), max_block_size=20),
        BlockingRule("community_house_number", keys=("community", "house_number"), max_block_size=50),
        BlockingRule("name_household", keys=("name_pinyin", "household")),
    )


def default_comparisons() -> tuple[Comparison, ...]:
    """One comparison per canonical field, with hand-set weights in bits."""
    return tuple(kind() for kind in _COMPARISONS.values())


_RULE_EXAMPLE = "blocking_rules: [{name: pinyin_birth_month, keys: [name_pinyin, birth_ym]}]"
_COMPARISON_EXAMPLE = "comparisons: {id_number: {}, name: {similar_threshold: 0.6, weights: {similar: -3.0}}}"


def _blocking_rule(item: Mapping[str, Any], index: int) -> BlockingRule:
    """A blocking rule of ``linking.yaml`` (``{name, keys, max_block_size}``)."""
    unknown = [str(key) for key in item if key not in ("name", "keys", "max_block_size")]
    if unknown:
        raise _invalid(
            f"rule {index + 1}: unknown key {unknown[0]!r}; a rule takes name, keys and max_block_size, "
            "e.g. {name: phone, keys: [phone], max_block_size: 50}"
        )
    try:
        return BlockingRule(item.get("name"), keys=item.get("keys"), max_block_size=item.get("max_block_size"))
    except ConfigError as e:
        raise _invalid(f"rule {index + 1}: {e}; in linking.yaml: {{name: pinyin_birth_month, keys: [name_pinyin, birth_ym]}}") from e


def _comparison(name: Any, spec: Any) -> Comparison:
    """The comparison of field ``name`` from its ``linking.yaml`` entry: thresholds and weights by label."""
    kind = _COMPARISONS.get(name)
    if kind is None:
        raise _invalid(
            f"unknown comparison {name!r}{suggest(str(name), list(_COMPARISONS))}; compare fields among "
            f"{', '.join(_COMPARISONS)}, e.g. {_COMPARISON_EXAMPLE}"
        )
    spec = {} if spec is None else spec
    allowed = (*kind.thresholds(), "weights")
    example = f"{name}: {{weights: {{{kind().labels[1]}: {kind().levels[1].weight}}}}}"
    if not isinstance(spec, Mapping):
        raise _invalid(f"{name}: must map {', '.join(allowed)} to values, got {spec!r}; e.g. {example}")
    unknown = [str(key) for key in spec if key not in allowed]
    if unknown:
        raise _invalid(f"{name}: unknown key {unknown[0]!r}; {name} takes {', '.join(allowed)}, e.g. {example}")
    weights = spec.get("weights") or {}
    if not isinstance(weights, Mapping):
        raise _invalid(f"{name}.weights: must map level labels to bits, got {weights!r}; e.g. {example}")
    if None in weights:
        # YAML reads a bare `null:` key as nothing at all, not as the label.
        raise _invalid(f"{name}.weights: write the null level's label in quotes ('null': 0.0); e.g. {example}")
    for label, weight in weights.items():
        if not _is_number(weight):
            raise _invalid(f"{name}.weights.{label}: must be a finite number of bits, got {weight!r}; e.g. {example}")
    try:
        return kind(**{key: spec[key] for key in kind.thresholds() if key in spec}).with_weights(weights)
    except ConfigError as e:
        raise _invalid(str(e), name) from e


_SPARK_MASTER = re.compile(r"local(\[(\d+|\*)(,\d+)?\])?|spark://\S+|k8s://\S+|yarn")
_SPARK_MEMORY = re.compile(r"(?i)(\d+)([kmgt]?)b?")


def _spark_memory_bytes(value: Any) -> int:
    """Bytes of a Spark memory setting (``4g``, ``512m``; a bare number is MiB as Spark reads it), -1 if unreadable."""
    found = _SPARK_MEMORY.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None:
        return -1
    return int(found.group(1)) * 2 ** {"k": 10, "m": 20, "g": 30, "t": 40, "": 20}[found.group(2).lower()]


class SparkSpec(_Settings):
    """Where and with what the Spark engine runs (``engine: spark``; see :mod:`dedup.spark` and docs/deploy.md).

    Spark is an optional extra (``pip install 'silobreaker[spark]'``) and needs a Java runtime. Nothing
    is downloaded when the session starts: packages named in ``spark.jars.packages`` are fetched from
    Maven at start-up, which an air-gapped government intranet cannot do, so that setting is refused.

    Args:
        master: the Spark master URL: ``local[2]`` (this machine, two cores), ``spark://host:7077``
            (a standalone cluster) or ``k8s://https://host:6443`` (Kubernetes).
        driver_memory: memory of the driver (this process's JVM), as Spark writes it (``4g``).
        executor_memory: memory of each executor.
        partitions: shuffle partitions (``spark.sql.shuffle.partitions``): the pairs are split into
            this many tasks; a few per executor core.
        stage_rows: rows of a source's extract one Spark task stages (:mod:`staging.spark`); a source
            no longer than this is staged by the Dagster run itself.
        conf: any other Spark setting, ``{name: value}``.

    Example:
        >>> SparkSpec(master="spark://10.1.2.3:7077", executor_memory="8g").partitions
        8
    """

    master: str = Field(default="local[2]", description="Spark master URL: local[2], spark://host:7077, k8s://https://host:6443")
    driver_memory: str = Field(default="2g", description="memory of the driver JVM, e.g. 4g")
    executor_memory: str = Field(default="2g", description="memory of each executor, e.g. 8g")
    partitions: int = Field(default=8, description="shuffle partitions (spark.sql.shuffle.partitions): a few per executor core")
    stage_rows: int = Field(default=50_000, description="rows of a source's extract one Spark task stages")
    conf: dict[str, str] = Field(default_factory=dict, description="other Spark settings {name: value}")

    @field_validator("master", mode="before")
    @classmethod
    def _master(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(isinstance(value, str) and _SPARK_MASTER.fullmatch(value.strip()) is not None, value,
                        "a Spark master URL: local[N], spark://host:port, k8s://https://host:port or yarn", info,
                        cls._default(info.field_name))

    @field_validator("driver_memory", "executor_memory", mode="before")
    @classmethod
    def _memory(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(_spark_memory_bytes(value) >= 2**29, value,
                        "an amount of memory as Spark writes it, at least 512m (512m, 4g)", info,
                        cls._default(info.field_name))

    @field_validator("partitions", "stage_rows", mode="before")
    @classmethod
    def _partitions(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(_is_integer(value, 1), value, "a positive integer", info, cls._default(info.field_name))

    @field_validator("conf", mode="before")
    @classmethod
    def _offline(cls, value: Any) -> Any:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _invalid(f"must map Spark setting names to values, got {value!r}; e.g. conf: {{spark.local.dir: /data/spark}}")
        if "spark.jars.packages" in value:
            raise _invalid("spark.jars.packages downloads from Maven when Spark starts, which an intranet without "
                           "internet access cannot; install the jars on the cluster and name them in spark.jars",
                           "spark.jars.packages")
        return {str(k): str(v) for k, v in value.items()}

    def session(self) -> SparkSession:
        """The Spark session this spec describes (:func:`dedup.spark.spark_session`), started on first use.

        Raises:
            ConfigError: PySpark is not installed, or Spark did not start with these settings (a master
                nobody answers at, a JVM that cannot get its memory): the message names the settings and
                Spark's own first line.
        """
        try:
            from dedup.spark import spark_session
        except ImportError as e:
            raise ConfigError(
                "linking.yaml asks for engine: spark, but PySpark is not installed; install the Spark extra "
                "(pip install 'silobreaker[spark]', and a Java 17 runtime) or set engine: duckdb"
            ) from e
        try:
            return spark_session(self)
        except Exception as e:  # Py4J and PySpark raise several kinds; each means the same thing here
            said = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
            raise ConfigError(
                f"Spark did not start with linking.yaml's spark settings (master {self.master}, driver_memory "
                f"{self.driver_memory}, executor_memory {self.executor_memory}, conf): {said[:300].rstrip('.')}. "
                "Check that the master runs and this host reaches it, and that the memory settings fit the "
                "machines; or set engine: duckdb"
            ) from e


class LinkSettings(_Settings):
    """Everything the engine needs to link person records, as data; in Python or from ``linking.yaml``.

    In ``linking.yaml`` (see :func:`load_link_settings` and ``demo/linking.yaml``) every key is optional
    and takes its default when left out. ``blocking_rules`` is a list of ``{name, keys, max_block_size}``.
    ``comparisons`` maps a field to its thresholds and its level weights by label, e.g.
    ``name: {similar_threshold: 0.6, weights: {similar: -3.0}}``: the fields listed are compared, in that
    order, each with the defaults of what it leaves out (``sex: {}``); a field not listed is not compared;
    no ``comparisons`` key at all compares every field with its defaults.

    Args:
        blocking_rules: which pairs are compared at all.
        comparisons: how a pair is compared, field by field; at most one per field.
        match_threshold: a pair whose match weight (bits: the model's prior plus every comparison's
            contribution) reaches this, and that no veto forbids, is linked. The default, 10 bits, is a
            match probability of 0.999; say it as a probability with ``match_probability``.
        match_probability: the threshold as a match probability; when given it sets ``match_threshold``
            to ``log2(p / (1 - p))`` (give one or the other).
        model: how the Fellegi–Sunter model (m, u, prior, term frequencies) is fitted to the input;
            see :class:`ModelSpec`. With ``ModelSpec(estimate=False)`` the declared level weights score.
        review_margin: pairs within this many bits below the threshold are kept in
            :attr:`dedup.engine.LinkResult.pairs` as near misses, to explain and to tune.
        max_block_size: default cap on records per block (see :class:`BlockingRule`).
        vetoes: vetoes to apply, keys of :data:`VETOES`. A vetoed pair is never linked, and clustering
            never puts its two records in one person, however they are chained.
        chunk_size: candidate pairs compared per batch; bounds memory whatever the data size.
        engine: what stages the sources and executes the candidate pairs — ``duckdb`` (this machine) or
            ``spark`` (a Spark cluster, :mod:`staging.spark` and :mod:`dedup.spark`); both run the same
            staging, rules, levels and model.
        spark: where and with what Spark runs (:class:`SparkSpec`), read with ``engine: spark``.
        version: format version of ``linking.yaml``; currently 1.

    Raises:
        ConfigError: a value is out of range or the settings contradict each other; the message names
            the setting and shows a correct value.

    Example:
        >>> LinkSettings(match_threshold=12.0, max_block_size=500).match_threshold
        12.0
        >>> LinkSettings(comparisons=(NameComparison(), BirthDateComparison()), vetoes=()).comparison("sex") is None
        True
    """

    version: Literal[1] = Field(default=1, description="format version of linking.yaml; currently 1")
    blocking_rules: tuple[InstanceOf[BlockingRule], ...] = Field(
        default_factory=default_blocking_rules,
        description="which pairs are compared: [{name, keys, max_block_size}], see dedup.settings.BLOCKING_KEYS",
    )
    comparisons: tuple[InstanceOf[Comparison], ...] = Field(
        default_factory=default_comparisons,
        description="field -> {<thresholds>, weights: {level label: bits}}; the fields listed are compared",
    )
    match_threshold: float = Field(
        default=10.0, description="match weight (bits) a pair needs to link; 10 bits is a probability of 0.999"
    )
    match_probability: float | None = Field(
        default=None, description="the threshold as a match probability instead of bits, e.g. 0.999"
    )
    review_margin: float = Field(default=4.0, description="pairs this many bits below the threshold are near misses")
    max_block_size: int = Field(default=1000, description="default cap on records per block; larger ones are skipped")
    vetoes: tuple[str, ...] = Field(
        default=DEFAULT_VETOES, description=f"vetoes to apply, among {', '.join(VETOES)}"
    )
    chunk_size: int = Field(default=1_000_000, description="candidate pairs compared per batch; bounds memory")
    model: ModelSpec = Field(default_factory=ModelSpec, description="how the Fellegi–Sunter model is fitted")
    engine: str = Field(default="duckdb",
                        description="what stages the sources and executes the candidate pairs: duckdb (this machine) or spark")
    spark: SparkSpec = Field(default_factory=SparkSpec, description="the Spark master and resources, for engine: spark")

    @field_validator("match_threshold", mode="before")
    @classmethod
    def _bits(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(_is_number(value), value, "a finite number of bits", info, cls._default(info.field_name))

    @field_validator("review_margin", mode="before")
    @classmethod
    def _margin(cls, value: Any, info: ValidationInfo) -> Any:
        accepted = _is_number(value) and value >= 0
        return _require(accepted, value, "a number of bits >= 0", info, cls._default(info.field_name))

    @field_validator("max_block_size", mode="before")
    @classmethod
    def _block_size(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(_is_integer(value, 2), value, "an integer >= 2", info, cls._default(info.field_name))

    @field_validator("chunk_size", mode="before")
    @classmethod
    def _chunk(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(_is_integer(value, 1), value, "a positive integer", info, cls._default(info.field_name))

    @field_validator("model", mode="before")
    @classmethod
    def _model_spec(cls, value: Any, info: ValidationInfo) -> Any:
        accepted = isinstance(value, ModelSpec | Mapping)
        return _require(accepted, value, "a ModelSpec or a mapping of its settings", info, "{estimate: false}")

    @field_validator("engine", mode="before")
    @classmethod
    def _engine(cls, value: Any, info: ValidationInfo) -> Any:
        return _require(value in ENGINES, value, f"one of {', '.join(ENGINES)}", info, "spark")

    @field_validator("spark", mode="before")
    @classmethod
    def _spark_spec(cls, value: Any, info: ValidationInfo) -> Any:
        accepted = isinstance(value, SparkSpec | Mapping)
        return _require(accepted, value, "a mapping of Spark settings", info, "{master: 'spark://10.1.2.3:7077'}")

    @model_validator(mode="before")
    @classmethod
    def _threshold_from_probability(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or data.get("match_probability") is None:
            return data
        p = data["match_probability"]
        if not _is_number(p) or not 0.0 < p < 1.0:
            raise _invalid(
                f"match_probability must be a probability strictly between 0 and 1, got {p!r}; "
                "e.g. match_probability: 0.999", "match_probability"
            )
        if "match_threshold" in data:
            raise _invalid("give match_threshold (bits) or match_probability, not both; e.g. match_probability: 0.999",
                           "match_threshold")
        return {**data, "match_threshold": math.log2(p / (1.0 - p))}

    @field_validator("blocking_rules", mode="before")
    @classmethod
    def _rules_from_file(cls, value: Any) -> Any:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise _invalid(f"must be a list of blocking rules, got {value!r}; e.g. {_RULE_EXAMPLE}")
        return tuple(_blocking_rule(item, i) if isinstance(item, Mapping) else item for i, item in enumerate(value))

    @field_validator("comparisons", mode="before")
    @classmethod
    def _comparisons_from_file(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return tuple(_comparison(name, spec) for name, spec in value.items())
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise _invalid(f"must map each compared field to its settings, got {value!r}; e.g. {_COMPARISON_EXAMPLE}")
        return value

    @field_validator("vetoes", mode="before")
    @classmethod
    def _known_vetoes(cls, value: Any) -> Any:
        if not _is_strings(value):
            raise _invalid(f"must be a list of veto names, got {value!r}; e.g. vetoes: [distinct_valid_ids, different_sex]")
        removed = [name for name in value if name in _REMOVED_VETOES]
        if removed:
            raise _invalid(
                f"the veto {removed[0]!r} was removed: {_REMOVED_VETOES[removed[0]]}; drop it from vetoes, "
                f"e.g. vetoes: [{', '.join(VETOES)}]"
            )
        unknown = [name for name in value if name not in VETOES]
        if unknown:
            raise _invalid(
                f"unknown veto {unknown[0]!r}{suggest(unknown[0], list(VETOES))}; choose from {', '.join(VETOES)}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LinkSettings:
        if not self.blocking_rules:
            raise _invalid(f"blocking_rules must hold at least one BlockingRule, e.g. {_RULE_EXAMPLE}", "blocking_rules")
        names = [rule.name for rule in self.blocking_rules]
        if len(set(names)) != len(names):
            raise _invalid(f"blocking_rules: names must be unique, got {names}", "blocking_rules")
        if not self.comparisons or not all(c.field for c in self.comparisons):
            raise _invalid(
                "comparisons must hold at least one comparison such as NameComparison(), "
                f"e.g. {_COMPARISON_EXAMPLE}"
            )
        compared = [c.field for c in self.comparisons]
        if len(set(compared)) != len(compared):
            raise _invalid(f"comparisons: one comparison per field, got fields {compared}", "comparisons")
        for veto in self.vetoes:
            for needed in _VETO_NEEDS[veto]:
                if needed not in compared:
                    raise _invalid(
                        f"veto {veto!r} needs a {needed} comparison; add it to comparisons or drop the "
                        "veto from vetoes", "vetoes"
                    )
        for label in self.model.fixed_levels:
            field_name, level = label.split(".")
            comparison = self.comparison(field_name)
            if comparison is None or level not in comparison.labels:
                known = [f"{c.field}.{lbl}" for c in self.comparisons for lbl in c.labels]
                raise _invalid(
                    f"model.fixed_levels: {label!r} is no declared level{suggest(label, known)}; "
                    "e.g. fixed_levels: [name.similar]", "model", "fixed_levels"
                )
        return self

    @property
    def threshold_probability(self) -> float:
        """The match threshold as a match probability: ``2**t / (1 + 2**t)`` for a threshold of ``t`` bits."""
        return 1.0 / (1.0 + 2.0 ** -self.match_threshold)

    def comparison(self, field_name: str) -> Comparison | None:
        """The declared comparison for ``field_name``, or ``None``."""
        return next((c for c in self.comparisons if c.field == field_name), None)

    def block_size_limit(self, rule: BlockingRule) -> int:
        """The block-size cap that applies to ``rule``."""
        return rule.max_block_size if rule.max_block_size is not None else self.max_block_size


def load_link_settings(path: str | Path) -> LinkSettings:
    """Read the linking settings from a ``linking.yaml`` file.

    Raises:
        ConfigError: the file is missing, is not YAML, or holds a setting that is unknown or out of
            range; the message names the file, the key and what a correct value looks like.

    Example:
        >>> load_link_settings("demo/linking.yaml") == LinkSettings()  # doctest: +SKIP
        True
    """
    return load_yaml_model(path, LinkSettings, "linking settings", like="demo/linking.yaml")
