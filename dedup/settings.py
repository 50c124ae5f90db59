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

Every class validates itself when constructed and says, on failure, what a correct value looks like.

Example:
    >>> settings = LinkSettings(match_threshold=10.0)
    >>> [rule.name for rule in settings.blocking_rules][:2]
    ['id_number', 'pinyin_birth_month']
    >>> settings.comparison("name").labels[:4]
    ('null', 'exact', 'homophone', 'shape')
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

from core.errors import ConfigError

__all__ = [
    "BLOCKING_KEYS",
    "ELSE",
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
    "default_blocking_rules",
    "default_comparisons",
]

#: Columns of :func:`dedup.prepare.prepare_records` output that a blocking rule may use as a key.
BLOCKING_KEYS: frozenset[str] = frozenset(
    {
        "id_number",
        "name",
        "name_pinyin",
        "surname_pinyin",
        "given_pinyin",
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

#: Vetoes the scorer can apply; a vetoed pair never links whatever its score.
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
    "same_source_mismatch": (
        "one source holds both records, under names that differ beyond a homophone or at different "
        "addresses, and the ID numbers do not agree"
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
            not isinstance(self.max_block_size, int) or self.max_block_size < 2
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
                f"{type(self).__name__} has no level {label!r}{_suggest(label, labels)}; its levels are {', '.join(labels)}"
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
                f"{type(self).__name__} has no level {unknown[0]!r}{_suggest(str(unknown[0]), self.labels)}; "
                f"its levels are {', '.join(self.labels)}; e.g. {{'{self.labels[1]}': {self.levels[1].weight}}}"
            )
        levels = tuple(
            replace(level, weight=weights[level.label]) if level.label in weights else level for level in self.levels
        )
        return replace(self, levels=levels)


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
    - ``typo`` — a Latin name with a letter or two mistyped: Jaro–Winkler similarity, in either word
      order, at least ``word_threshold``;
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
        ComparisonLevel("typo", 3.0, test="name.typo"),
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
    see :func:`dedup.prepare.household_key`), or a Latin address's words in another order; ``similar`` —
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


#: Fields whose exact level can take a term-frequency adjustment: text compared whole.
_TF_FIELDS: frozenset[str] = frozenset({"name", "phone", "address", "community"})

#: Where the u probabilities (P(level | two different people)) of a trained model come from.
U_SOURCES: tuple[str, ...] = ("random", "candidates")


@dataclass(frozen=True)
class ModelSpec:
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
        seed: random seed for the samples, so a run is reproducible.

    Example:
        >>> ModelSpec(u_source="random", em_iterations=10).em_iterations
        10
    """

    estimate: bool = True
    u_source: str = "random"
    u_sample_pairs: int = 1_000_000
    em_sample_pairs: int = 500_000
    em_iterations: int = 25
    em_tolerance: float = 1e-4
    em_fix_u: bool = False
    min_training_pairs: int = 1_000
    min_level_pairs: int = 10
    fixed_levels: tuple[str, ...] = ()
    term_frequency: tuple[str, ...] = ("name", "community")
    max_level_weight: float = 20.0
    seed: int = 20261123

    def __post_init__(self) -> None:
        if not isinstance(self.estimate, bool):
            raise ConfigError(f"ModelSpec.estimate must be true or false, got {self.estimate!r}; e.g. ModelSpec(estimate=False)")
        if not isinstance(self.em_fix_u, bool):
            raise ConfigError(f"ModelSpec.em_fix_u must be true or false, got {self.em_fix_u!r}; e.g. ModelSpec(em_fix_u=True)")
        if self.u_source not in U_SOURCES:
            raise ConfigError(f"ModelSpec.u_source must be one of {U_SOURCES}, got {self.u_source!r}; e.g. ModelSpec(u_source='random')")
        for name in ("u_sample_pairs", "em_sample_pairs", "em_iterations", "min_training_pairs", "min_level_pairs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ModelSpec.{name} must be a positive integer, got {value!r}; e.g. ModelSpec({name}=10)")
        for name in ("em_tolerance", "max_level_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"ModelSpec.{name} must be a positive number, got {value!r}; e.g. ModelSpec({name}=1e-4)")
        for name in ("fixed_levels", "term_frequency"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, tuple | list):
                raise ConfigError(f"ModelSpec.{name} must be a tuple of strings, got {value!r}; e.g. {name}=('name',)")
            object.__setattr__(self, name, tuple(value))
        bad = [label for label in self.fixed_levels if not isinstance(label, str) or label.count(".") != 1]
        if bad:
            raise ConfigError(f"ModelSpec.fixed_levels: {bad} are not 'field.level' labels; e.g. fixed_levels=('name.similar',)")


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
        BlockingRule("community_house_number", keys=("community", "house_number"), max_block_size=50),
    )


def default_comparisons() -> tuple[Comparison, ...]:
    """One comparison per canonical field, with hand-set weights in bits."""
    return (
        IdNumberComparison(),
        NameComparison(),
        BirthDateComparison(),
        SexComparison(),
        PhoneComparison(),
        AddressComparison(),
        CommunityComparison(),
    )


@dataclass(frozen=True)
class LinkSettings:
    """Everything the engine needs to link person records, as data.

    Args:
        blocking_rules: which pairs are compared at all.
        comparisons: how a pair is compared, field by field; at most one per field.
        match_threshold: a pair whose match weight (bits: the model's prior plus every comparison's
            contribution) reaches this, and that no veto forbids, is linked. The default, 10 bits, is a
            match probability of 0.999; say it as a probability with ``match_probability``.
        match_probability: the threshold as a match probability; when given it sets ``match_threshold``
            to ``log2(p / (1 - p))``.
        model: how the Fellegi–Sunter model (m, u, prior, term frequencies) is fitted to the input;
            see :class:`ModelSpec`. With ``ModelSpec(estimate=False)`` the declared level weights score.
        review_margin: pairs within this many bits below the threshold are kept in
            :attr:`dedup.engine.LinkResult.pairs` as near misses, to explain and to tune.
        max_block_size: default cap on records per block (see :class:`BlockingRule`).
        vetoes: vetoes to apply, keys of :data:`VETOES`. A vetoed pair is never linked, and clustering
            never puts its two records in one person, however they are chained.
        chunk_size: candidate pairs compared per batch; bounds memory whatever the data size.

    Example:
        >>> LinkSettings(match_threshold=12.0, max_block_size=500).match_threshold
        12.0
    """

    blocking_rules: tuple[BlockingRule, ...] = field(default_factory=default_blocking_rules)
    comparisons: tuple[Comparison, ...] = field(default_factory=default_comparisons)
    match_threshold: float = 10.0
    review_margin: float = 4.0
    max_block_size: int = 1000
    vetoes: tuple[str, ...] = tuple(VETOES)
    chunk_size: int = 1_000_000
    model: ModelSpec = field(default_factory=ModelSpec)
    match_probability: float | None = None

    def __post_init__(self) -> None:
        if self.match_probability is not None:
            p = self.match_probability
            if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 < p < 1.0:
                raise ConfigError(
                    f"LinkSettings.match_probability must be a probability strictly between 0 and 1, got {p!r}; "
                    "e.g. match_probability=0.999"
                )
            object.__setattr__(self, "match_threshold", math.log2(p / (1.0 - p)))
        if not isinstance(self.model, ModelSpec):
            raise ConfigError(f"LinkSettings.model must be a ModelSpec, got {type(self.model).__name__}; e.g. model=ModelSpec()")
        for name in ("blocking_rules", "comparisons", "vetoes"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, tuple | list):
                raise ConfigError(f"LinkSettings.{name} must be a tuple, got {type(value).__name__}")
            object.__setattr__(self, name, tuple(value))
        if not self.blocking_rules or not all(isinstance(rule, BlockingRule) for rule in self.blocking_rules):
            raise ConfigError(
                "LinkSettings.blocking_rules must hold at least one BlockingRule, e.g. "
                "blocking_rules=(BlockingRule('id_number', keys=('id_number',)),)"
            )
        names = [rule.name for rule in self.blocking_rules]
        if len(set(names)) != len(names):
            raise ConfigError(f"LinkSettings.blocking_rules: names must be unique, got {names}")
        if not self.comparisons or not all(isinstance(c, Comparison) and c.field for c in self.comparisons):
            raise ConfigError(
                "LinkSettings.comparisons must hold at least one comparison such as NameComparison(), "
                "e.g. comparisons=(IdNumberComparison(), NameComparison(), BirthDateComparison())"
            )
        fields = [c.field for c in self.comparisons]
        if len(set(fields)) != len(fields):
            raise ConfigError(f"LinkSettings.comparisons: one comparison per field, got fields {fields}")
        for name in ("match_threshold", "review_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"LinkSettings.{name} must be a finite number of bits, got {value!r}; e.g. {name}=10.0")
        if self.review_margin < 0:
            raise ConfigError(f"LinkSettings.review_margin must be >= 0, got {self.review_margin!r}; e.g. review_margin=4.0")
        if isinstance(self.max_block_size, bool) or not isinstance(self.max_block_size, int) or self.max_block_size < 2:
            raise ConfigError(
                f"LinkSettings.max_block_size must be an integer >= 2, got {self.max_block_size!r}; e.g. max_block_size=1000"
            )
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            raise ConfigError(
                f"LinkSettings.chunk_size must be a positive integer, got {self.chunk_size!r}; e.g. chunk_size=1_000_000"
            )
        unknown = [veto for veto in self.vetoes if veto not in VETOES]
        if unknown:
            raise ConfigError(f"LinkSettings.vetoes: unknown veto(es) {unknown}; choose from {list(VETOES)}")
        needs = {
            "distinct_valid_ids": "id_number",
            "different_sex": "sex",
            "contradicting_birth_dates": "birth_date",
            "same_source_mismatch": "name",
        }
        tf_fields = [name for name in self.model.term_frequency if name not in _TF_FIELDS]
        if tf_fields:
            raise ConfigError(
                f"ModelSpec.term_frequency: {tf_fields} cannot be adjusted; choose text fields among "
                f"{sorted(_TF_FIELDS)}, e.g. term_frequency=('name',)"
            )
        for veto in self.vetoes:
            if needs[veto] not in fields:
                raise ConfigError(
                    f"LinkSettings: veto {veto!r} needs a {needs[veto]} comparison; add it to comparisons "
                    f"or drop the veto from vetoes"
                )

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
