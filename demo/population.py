"""The demo district's true population: households, people, IDs, flats and key-population flags.

:func:`build_population` invents a district of ``n`` persons, vectorised so that a million take a
few seconds. What the departments later hold about these people (and get wrong) is decided in
:mod:`demo.generate`; this module is the truth they are measured against.

The rates below shape the district; each comment says what the share is of and why this figure.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from demo import vocabulary as V
from demo.idcard import build_ids
from demo.strings import STRING, cat, numbered

__all__ = [
    "CASE_TYPES",
    "CHRONIC_DISEASES",
    "REFERENCE_DATE",
    "Addresses",
    "GridLayout",
    "Population",
    "build_population",
    "former_names",
]

REFERENCE_DATE = np.datetime64("2026-11-01", "D")
"""The demo's "today": ages, visit dates and consent decisions are counted back from it."""

# --- who lives in the district -------------------------------------------------------------------
MEAN_HOUSEHOLD_SIZE = 2.6  # persons per household (2020 census: 2.62)
ELDERLY_ALONE_SHARE = 0.12  # of persons aged 60+: living alone (urban surveys: 10-15 %)
YOUNG_SINGLE_SHARE = 0.25  # of household heads under 60 living alone (2020: a quarter of households are single)
MIGRANT_ADULT_SHARE = 0.15  # of adults in local households: ID first issued elsewhere (spouses)
LOCAL_HOUSEHOLD_SHARE = 0.72  # households whose IDs carry the district's area code 330106
MINORITY_HOUSEHOLD_SHARE = 0.01  # households with transliterated names (阿依古丽·买买提)
CHILD_TAKES_HEAD_SURNAME = 0.85  # minors carrying the household head's surname
TWIN_SHARE = 0.005  # persons who are one of a pair of twins (about 1 birth in 90 is a twin birth)
TWIN_SAME_SEX = 0.6  # twin pairs of the same sex
TWIN_SHARED_FIRST_CHARACTER = 0.7  # twins with 2-character given names sharing the first (子涵/子轩)
MOVED_HOUSEHOLD_SHARE = 0.05  # households that moved: census/health/justice know the new address
FORMER_NAME_SHARE = 0.02  # people who changed their given name (改名): 曾用名 in the census and justice
LOW_INCOME_HOUSEHOLD_SHARE = 0.03  # households on 低保 (minimum-living subsidy)
LOW_INCOME_ALONE_SHARE = 0.10  # the same for an elderly person living alone
DISABILITY_BY_AGE = ((0, 0.01), (18, 0.03), (45, 0.06), (60, 0.12), (80, 0.22))  # (from age, share); ~6 %
DISABILITY_GRADE_WEIGHTS = (0.12, 0.18, 0.30, 0.40)  # grade 一级 (most severe) .. 四级
CHRONIC_BY_AGE = ((0, 0.0), (18, 0.01), (35, 0.08), (50, 0.25), (65, 0.45))  # (from age, share)
CHRONIC_DISEASES = (("高血压", 0.55), ("糖尿病", 0.25), ("冠心病", 0.12), ("慢阻肺", 0.08))
PREGNANT_BY_AGE = ((0, 0.0), (18, 0.01), (20, 0.07), (30, 0.05), (40, 0.01), (46, 0.0))  # women only
CORRECTIONS_SHARE = 0.02  # persons in community corrections (as briefed; real districts are lower)
CORRECTIONS_MALE_SHARE = 0.87
CORRECTIONS_AGES = (18, 70)
CASE_TYPES = (("管制", 0.02), ("缓刑", 0.88), ("假释", 0.06), ("暂予监外执行", 0.04))
OWN_PHONE_BY_AGE = ((0, 0.0), (12, 0.7), (18, 0.98), (70, 0.8), (85, 0.5))  # (from age, share)
GUARDIAN_PHONE_SHARE = 0.8  # of persons without a phone: a department records the head's number


_COMMON_GIVEN_SHARE = 0.4  # given names drawn from the common heads (the rest: combinations)
_COMMON_GIVEN_ZIPF = 0.8  # how steeply the heads' popularity falls: 伟 >> 亮
_SINGLE_GIVEN_SHARE = 0.1  # one-character given names from the long tail
_UNITS_PER_BUILDING = 3
_ROOMS_PER_FLOOR = 4
_FLOOR_CHOICES = (6, 11, 18)
_BUILDING_FILL = 0.7  # share of flats occupied by a household the demo knows about
_AGE_BANDS = (  # (from age, share %) by five-year band, close to a Chinese city's 2020 pyramid
    (0, 5.4), (5, 6.3), (10, 6.0), (15, 5.2), (20, 5.3), (25, 6.4), (30, 8.8), (35, 6.9), (40, 6.6),
    (45, 8.1), (50, 8.6), (55, 7.2), (60, 5.2), (65, 5.1), (70, 3.5), (75, 2.2), (80, 1.5), (85, 0.8),
    (90, 0.3), (95, 0.08),
)  # fmt: skip


@dataclass(frozen=True)
class Addresses:
    """Flats, one entry per address: street, community (0..29 over the district), grid, flat."""

    street: np.ndarray
    community: np.ndarray
    grid: np.ndarray
    building: np.ndarray
    unit: np.ndarray
    room: np.ndarray

    def take(self, index: np.ndarray) -> Addresses:
        """The addresses at ``index`` (one per entry of ``index``)."""
        return Addresses(*(getattr(self, f.name)[index] for f in fields(self)))

    def where(self, condition: np.ndarray, other: Addresses) -> Addresses:
        """Per entry, ``other``'s address where ``condition`` holds, else this one's."""
        return Addresses(*(np.where(condition, getattr(other, f.name), getattr(self, f.name)) for f in fields(self)))

    def street_names(self) -> np.ndarray:
        """街道 of each address, e.g. 西溪街道."""
        return np.array(V.STREETS, dtype=STRING)[self.street]

    def community_names(self) -> np.ndarray:
        """社区 of each address, e.g. 翠苑社区."""
        return np.array([c for street in V.COMMUNITIES for c in street], dtype=STRING)[self.community]

    def grid_names(self) -> np.ndarray:
        """网格 of each address, named within its community: 翠苑社区第1网格."""
        return cat(self.community_names(), "第", self.grid.astype(STRING), "网格")

    def text(self, style: str) -> np.ndarray:
        """Address text in a style: ``full`` 示范区西溪街道翠苑社区3幢2单元501室, ``no_district`` (without
        示范区), ``dong`` (栋 for 幢), ``short`` 西溪街道翠苑社区3-2-501, and two a clerk abbreviates to the
        compound's name alone (no district, street or 社区): ``abbreviated`` 翠苑3-2-501 and
        ``abbreviated_no_unit`` 翠苑3幢501."""
        b, u, r = self.building.astype(STRING), self.unit.astype(STRING), self.room.astype(STRING)
        place = cat(self.street_names(), self.community_names())
        if style.startswith("abbreviated"):
            compound = np.strings.replace(self.community_names(), "社区", "")
            return cat(compound, b, "幢", r) if style == "abbreviated_no_unit" else cat(compound, b, "-", u, "-", r)
        if style == "short":
            return cat(place, b, "-", u, "-", r)
        flat = cat(b, "栋" if style == "dong" else "幢", u, "单元", r, "室")
        return cat(place, flat) if style == "no_district" else cat(V.DISTRICT, place, flat)


@dataclass(frozen=True)
class GridLayout:
    """How each community (0..29 over the district) is cut into grids: buildings 1..``buildings[c]``
    in ``grids[c]`` runs of consecutive buildings, as :func:`build_population` placed the flats."""

    grids: np.ndarray
    buildings: np.ndarray

    def grid_of(self, community: np.ndarray, building: np.ndarray) -> np.ndarray:
        """The grid number (1-based, within its community) of a building: the rule flats were placed by."""
        return (building - 1) * self.grids[community] // self.buildings[community] + 1

    def register(self) -> dict[str, np.ndarray]:
        """The district's area register: one line per grid, ``街道, 社区, 网格, 楼栋`` (``"1-3"``), as a
        district clerk keeps it (see :mod:`publish.areas`)."""
        community = np.repeat(np.arange(len(self.buildings)), self.buildings)
        building = np.concatenate([np.arange(1, n + 1) for n in self.buildings])
        grid = self.grid_of(community, building)
        first = np.r_[True, (community[1:] != community[:-1]) | (grid[1:] != grid[:-1])]
        starts = np.flatnonzero(first)
        ends = np.r_[starts[1:], len(building)] - 1
        places = Addresses(community[starts] // len(V.COMMUNITIES[0]), community[starts], grid[starts],
                           building[starts], building[starts], building[starts])
        return {
            "街道": places.street_names(),
            "社区": places.community_names(),
            "网格": places.grid_names(),
            "楼栋": cat(building[starts].astype(STRING), "-", building[ends].astype(STRING)),
        }


@dataclass(frozen=True)
class Population:
    """The true district: one entry per person (index = person number)."""

    person_id: np.ndarray  # "P0000001"
    surname: np.ndarray  # Han surname; for a transliterated name the father's-name part
    given: np.ndarray  # given name; for a transliterated name the own-name part
    name: np.ndarray
    minority: np.ndarray  # transliterated name with a middle dot
    male: np.ndarray
    birth: np.ndarray  # datetime64[D]
    age: np.ndarray
    id18: np.ndarray  # S18
    phone: np.ndarray  # own mobile or ""
    contact: np.ndarray  # number a department records: own, else often the household head's
    household: np.ndarray
    households: int
    registered: Addresses  # where civil affairs has them
    current: Addresses  # where they live now (differs for movers)
    layout: GridLayout  # which buildings of each community form each grid
    moved: np.ndarray
    lives_alone: np.ndarray
    low_income: np.ndarray
    disability: np.ndarray  # 0 none, 1..4 grade
    chronic: np.ndarray  # -1 none, else index into CHRONIC_DISEASES
    pregnant: np.ndarray
    corrections: np.ndarray
    case_type: np.ndarray  # -1 none, else index into CASE_TYPES
    twin_of: np.ndarray  # -1, or the other twin
    homophone_ok: np.ndarray  # the given name has a character with a common homophone

    @property
    def n(self) -> int:
        """Number of persons."""
        return len(self.person_id)


def build_population(rng: np.random.Generator, n: int, moved_share: float = MOVED_HOUSEHOLD_SHARE) -> Population:
    """Invent ``n`` residents: households in flats, names, valid distinct IDs, phones, key populations.

    Args:
        rng: the generator every draw comes from (the same state gives the same district).
        n: persons, twins included.
        moved_share: households that moved (what makes civil affairs' addresses stale); a stress
            test raises it, see :class:`demo.generate.MessSettings`.
    """
    n_pairs = round(n * TWIN_SHARE / 2)
    n_base = n - n_pairs
    age = _ages(rng, n_base)
    male = rng.random(n_base) < np.select([age >= 80, age >= 60], [0.40, 0.46], 0.51)
    household, heads, closed = _households(rng, age)

    # Twins: a second person with the first one's birth, household and surname.
    weight = np.where(age < 60, 1.0, 0.3) * ~closed
    first_twin = rng.choice(n_base, size=n_pairs, replace=False, p=weight / weight.sum())
    second_twin = np.arange(n_base, n)
    age = np.concatenate([age, age[first_twin]])
    male = np.concatenate([male, np.where(rng.random(n_pairs) < TWIN_SAME_SEX, male[first_twin], ~male[first_twin])])
    household = np.concatenate([household, household[first_twin]])
    twin_of = np.full(n, -1)
    twin_of[first_twin], twin_of[second_twin] = second_twin, first_twin
    within_year = rng.random(n_base)
    within_year = np.concatenate([within_year, within_year[first_twin]])
    birth = REFERENCE_DATE - (age * 365.25 + within_year * 365).astype(np.int64)
    age = ((REFERENCE_DATE - birth).astype(np.int64) / 365.25).astype(np.int64)

    n_households = len(heads)
    size = np.bincount(household, minlength=n_households)
    minority_household = rng.random(n_households) < MINORITY_HOUSEHOLD_SHARE
    minority = minority_household[household]

    surname, given, name = _names(rng, male, birth, minority, household, heads, age)
    surname, given, name = _twin_names(rng, surname, given, name, male, birth, minority, first_twin, second_twin)

    id18 = _ids(rng, male, birth, household, minority_household, age)
    phone, contact = _phones(rng, age, household, heads)

    registered, current, moved_household, layout = _addresses(rng, n_households, moved_share)
    lives_alone = (age >= 60) & (size[household] == 1)
    alone_household = np.zeros(n_households, dtype=bool)
    alone_household[household[lives_alone]] = True
    low_income_share = np.where(alone_household, LOW_INCOME_ALONE_SHARE, LOW_INCOME_HOUSEHOLD_SHARE)
    low_income = (rng.random(n_households) < low_income_share)[household]

    disabled = rng.random(n) < _by_age(DISABILITY_BY_AGE, age)
    disability = np.where(disabled, rng.choice(4, size=n, p=DISABILITY_GRADE_WEIGHTS) + 1, 0).astype(np.int8)
    chronic_weights = np.array([w for _, w in CHRONIC_DISEASES])
    has_chronic = rng.random(n) < _by_age(CHRONIC_BY_AGE, age)
    chronic = np.where(has_chronic, rng.choice(len(CHRONIC_DISEASES), size=n, p=chronic_weights), -1).astype(np.int8)
    pregnant = ~male & (rng.random(n) < _by_age(PREGNANT_BY_AGE, age))
    corrections, case_type = _corrections(rng, age, male)

    width = max(7, len(str(n)))
    return Population(
        person_id=numbered("P", n, width),
        surname=surname,
        given=given,
        name=name,
        minority=minority,
        male=male,
        birth=birth,
        age=age,
        id18=id18,
        phone=phone,
        contact=contact,
        household=household,
        households=n_households,
        registered=registered.take(household),
        current=current.take(household),
        layout=layout,
        moved=moved_household[household],
        lives_alone=lives_alone,
        low_income=low_income,
        disability=disability,
        chronic=chronic,
        pregnant=pregnant,
        corrections=corrections,
        case_type=case_type,
        twin_of=twin_of,
        homophone_ok=~minority & _has_homophone(given),
    )


def _ages(rng: np.random.Generator, n: int) -> np.ndarray:
    starts = np.array([a for a, _ in _AGE_BANDS])
    weights = np.array([w for _, w in _AGE_BANDS])
    band = rng.choice(len(starts), size=n, p=weights / weights.sum())
    width = np.where(band == len(starts) - 1, 6, 5)  # the last band is 95-100
    return starts[band] + (rng.random(n) * width).astype(np.int64)


def _by_age(table: tuple[tuple[int, float], ...], age: np.ndarray) -> np.ndarray:
    """Look up a (from age, value) step table for every age."""
    starts = np.array([a for a, _ in table])
    values = np.array([v for _, v in table])
    return values[np.searchsorted(starts, age, side="right") - 1]


def _households(rng: np.random.Generator, age: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group persons into households: each has an adult head; children join heads of parent age.

    Returns the household of each person, the head of each household and which persons head a
    household nobody else joins (the elderly living alone and young singles).
    """
    n = len(age)
    adults = np.flatnonzero(age >= 18)
    n_households = min(len(adults), max(1, round(n / MEAN_HOUSEHOLD_SIZE)))
    weight = np.where(age[adults] >= 25, 1.0, 0.3)
    heads = np.sort(rng.choice(adults, size=n_households, replace=False, p=weight / weight.sum()))
    household = np.full(n, -1)
    household[heads] = np.arange(n_households)

    elderly_heads = heads[age[heads] >= 60]
    young_heads = heads[age[heads] < 60]
    n_alone = min(len(elderly_heads), round(ELDERLY_ALONE_SHARE * np.count_nonzero(age >= 60)))
    n_single = round(YOUNG_SINGLE_SHARE * len(young_heads))
    closed = np.zeros(n, dtype=bool)
    closed[rng.choice(elderly_heads, size=n_alone, replace=False)] = True
    closed[rng.choice(young_heads, size=n_single, replace=False)] = True
    open_heads = heads[~closed[heads]]
    if len(open_heads) == 0:
        open_heads = heads
    parents = open_heads[(age[open_heads] >= 22) & (age[open_heads] <= 65)]
    if len(parents) == 0:
        parents = open_heads

    members = np.flatnonzero(household < 0)
    minors = members[age[members] < 18]
    others = rng.permutation(members[age[members] >= 18])
    # Every open household gets a partner of about the head's age (ranks of age + noise paired),
    # so that only the closed households are single-person ones; the other adults and the
    # children are spread over the households at random.
    partners, others = others[: len(open_heads)], others[len(open_heads) :]
    by_age_heads = open_heads[np.argsort(age[open_heads] + rng.normal(0, 4, len(open_heads)))]
    by_age_partners = partners[np.argsort(age[partners] + rng.normal(0, 4, len(partners)))]
    if len(partners) < len(open_heads):  # few adults to go round: partner a random subset of heads
        by_age_heads = np.sort(rng.choice(by_age_heads, size=len(partners), replace=False))
        by_age_heads = by_age_heads[np.argsort(age[by_age_heads] + rng.normal(0, 4, len(partners)))]
    household[by_age_partners] = household[by_age_heads]
    household[minors] = household[rng.choice(parents, size=len(minors))]
    household[others] = household[rng.choice(open_heads, size=len(others))]
    return household, heads, closed


def _names(
    rng: np.random.Generator,
    male: np.ndarray,
    birth: np.ndarray,
    minority: np.ndarray,
    household: np.ndarray,
    heads: np.ndarray,
    age: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(male)
    surnames = np.array([s for s, _ in V.SURNAMES], dtype=STRING)
    weights = np.array([w for _, w in V.SURNAMES])
    surname = surnames[rng.choice(len(surnames), size=n, p=weights / weights.sum())]
    head = heads[household]
    takes_head = (age < 18) & (rng.random(n) < CHILD_TAKES_HEAD_SURNAME)
    surname[takes_head] = surname[head[takes_head]]
    given = _given_names(rng, male, birth)

    # Transliterated names: own name · father's name; the father's name plays the surname's part.
    idx = np.flatnonzero(minority)
    own_m, own_f = np.array(V.MINORITY_MALE, dtype=STRING), np.array(V.MINORITY_FEMALE, dtype=STRING)
    own = np.where(male[idx], _draw(rng, own_m, len(idx)), _draw(rng, own_f, len(idx)))
    father = np.array(V.MINORITY_FATHER, dtype=STRING)[rng.integers(0, len(V.MINORITY_FATHER), len(idx))]
    given[idx], surname[idx] = own, father
    name = np.strings.add(surname, given)
    name[idx] = cat(own, "·", father)
    return surname, given, name


def former_names(rng: np.random.Generator, pop: Population, share: float = FORMER_NAME_SHARE) -> np.ndarray:
    """Each person's former name (曾用名), or ``""``: ``share`` of the people with a Han name changed their
    given name — the surname stays, the old given name is another of their sex and era."""
    changed = np.flatnonzero(~pop.minority & (rng.random(pop.n) < share))
    given = _given_names(rng, pop.male[changed], pop.birth[changed])
    former = np.strings.add(pop.surname[changed], given)
    kept = former != pop.name[changed]
    out = np.full(pop.n, "", dtype=STRING)
    out[changed[kept]] = former[kept]
    return out


def _given_names(rng: np.random.Generator, male: np.ndarray, birth: np.ndarray) -> np.ndarray:
    """Given names by sex and era: a heavy head of common names, then a long tail of combinations."""
    n = len(male)
    year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    era = np.where(year < 1960, "old", np.where(year < 1990, "mid", "young"))
    kind = rng.random(n)
    given = np.full(n, "", dtype=STRING)
    pools = {
        "M": (np.array(list(V.GIVEN_MALE_FIRST), dtype=STRING), np.array(list(V.GIVEN_MALE_SECOND), dtype=STRING)),
        "F": (np.array(list(V.GIVEN_FEMALE_FIRST), dtype=STRING), np.array(list(V.GIVEN_FEMALE_SECOND), dtype=STRING)),
    }
    for sex, sex_mask in (("M", male), ("F", ~male)):
        first, second = pools[sex]
        for era_name in ("old", "mid", "young"):
            idx = np.flatnonzero(sex_mask & (era == era_name))
            heads = np.array(V.GIVEN_HEADS[(sex, era_name)], dtype=STRING)
            zipf = 1.0 / (np.arange(len(heads)) + 1.0) ** _COMMON_GIVEN_ZIPF
            common = idx[kind[idx] < _COMMON_GIVEN_SHARE]
            given[common] = heads[rng.choice(len(heads), size=len(common), p=zipf / zipf.sum())]
            combined = idx[(kind[idx] >= _COMMON_GIVEN_SHARE) & (kind[idx] < 1 - _SINGLE_GIVEN_SHARE)]
            given[combined] = np.strings.add(
                first[rng.integers(0, len(first), len(combined))], second[rng.integers(0, len(second), len(combined))]
            )
            single = idx[kind[idx] >= 1 - _SINGLE_GIVEN_SHARE]
            given[single] = second[rng.integers(0, len(second), len(single))]
    return given


def _twin_names(
    rng: np.random.Generator,
    surname: np.ndarray,
    given: np.ndarray,
    name: np.ndarray,
    male: np.ndarray,
    birth: np.ndarray,
    minority: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give the second twin the first's surname and a different, often similar, given name."""
    surname[second] = surname[first]
    han = ~minority[second]
    a, b = first[han], second[han]
    similar = (np.strings.str_len(given[a]) == 2) & (rng.random(len(a)) < TWIN_SHARED_FIRST_CHARACTER)
    candidate = _twin_given(rng, given[a], male[b], birth[b], similar)
    for _ in range(20):  # redraw the few that came out equal to the first twin's name
        clash = np.flatnonzero(candidate == given[a])
        if len(clash) == 0:
            break
        candidate[clash] = _twin_given(rng, given[a[clash]], male[b[clash]], birth[b[clash]], similar[clash])
    given[b] = candidate
    name[b] = np.strings.add(surname[b], given[b])

    # Transliterated twins share the father's name and differ in their own.
    a, b = first[~han], second[~han]
    for is_male, pool in ((True, V.MINORITY_MALE), (False, V.MINORITY_FEMALE)):
        idx = np.flatnonzero(male[b] == is_male)
        own = np.array(pool, dtype=STRING)
        draw = rng.integers(0, len(own), len(idx))
        draw = np.where(own[draw] == given[a[idx]], (draw + 1) % len(own), draw)
        given[b[idx]] = own[draw]
    name[b] = cat(given[b], "·", surname[b])
    return surname, given, name


def _twin_given(
    rng: np.random.Generator, sibling: np.ndarray, male: np.ndarray, birth: np.ndarray, similar: np.ndarray
) -> np.ndarray:
    """A twin's given name: the sibling's first character + another second one, or a fresh name."""
    pool_m = np.array(list(V.GIVEN_MALE_SECOND), dtype=STRING)
    pool_f = np.array(list(V.GIVEN_FEMALE_SECOND), dtype=STRING)
    second = np.where(male, _draw(rng, pool_m, len(male)), _draw(rng, pool_f, len(male)))
    return np.where(similar, np.strings.add(np.strings.slice(sibling, 0, 1), second), _given_names(rng, male, birth))


def _draw(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    """``n`` items drawn uniformly, with replacement, from ``pool``."""
    return pool[rng.integers(0, len(pool), n)]


def _has_homophone(given: np.ndarray) -> np.ndarray:
    unique, inverse = np.unique(given, return_inverse=True)
    ok = np.array([any(ch in V.HOMOPHONES for ch in g) for g in unique.tolist()], dtype=bool)
    return ok[inverse]


def _ids(
    rng: np.random.Generator,
    male: np.ndarray,
    birth: np.ndarray,
    household: np.ndarray,
    minority_household: np.ndarray,
    age: np.ndarray,
) -> np.ndarray:
    """Valid, distinct 18-digit IDs: area code by household, sequence unique per area, day and sex."""
    n = len(male)
    n_households = len(minority_household)
    elsewhere = np.array([a for a, _ in V.AREA_CODES_ELSEWHERE])
    weights = np.array([w for _, w in V.AREA_CODES_ELSEWHERE])
    area_household = np.where(
        rng.random(n_households) < LOCAL_HOUSEHOLD_SHARE,
        V.AREA_CODE_LOCAL,
        elsewhere[rng.choice(len(elsewhere), size=n_households, p=weights / weights.sum())],
    )
    minority_codes = np.array(V.AREA_CODES_MINORITY)
    area_household[minority_household] = minority_codes[rng.integers(0, len(minority_codes), minority_household.sum())]
    area = area_household[household]
    migrant = (age >= 18) & (area == V.AREA_CODE_LOCAL) & (rng.random(n) < MIGRANT_ADULT_SHARE)
    area[migrant] = elsewhere[rng.choice(len(elsewhere), size=migrant.sum(), p=weights / weights.sum())]

    # Rank people within (area, birth day, sex); a coprime stride over 499 spreads the sequence
    # numbers over 001-999 while keeping them distinct within a group.
    key = area.astype(np.int64) * 10**7 + (birth.astype(np.int64) + 30_000) * 2 + male
    order = np.lexsort((rng.random(n), key))
    sorted_key = key[order]
    starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    group = np.cumsum(starts) - 1
    rank = np.arange(n) - np.flatnonzero(starts)[group]
    if rank.max(initial=0) >= 499:
        raise ValueError("more than 499 persons share an area code, birth day and sex; lower persons or add area codes")
    half = (rank * 37 + rng.integers(0, 499, group[-1] + 1)[group]) % 499
    sequence = np.empty(n, dtype=np.int64)
    sequence[order] = 2 * half + np.where(male[order], 1, 2)
    return build_ids(area.astype("S6"), birth, sequence)


def _phones(
    rng: np.random.Generator, age: np.ndarray, household: np.ndarray, heads: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = len(age)
    prefixes = np.array(V.PHONE_PREFIXES, dtype=STRING)
    number = np.strings.add(
        prefixes[rng.integers(0, len(prefixes), n)], np.strings.zfill(rng.integers(0, 10**8, n).astype(STRING), 8)
    )
    own = np.where(rng.random(n) < _by_age(OWN_PHONE_BY_AGE, age), number, "")
    head_phone = own[heads[household]]
    contact = np.where((own == "") & (rng.random(n) < GUARDIAN_PHONE_SHARE), head_phone, own)
    return own, contact


HOUSEHOLDS_PER_COMMUNITY = 200
"""Households per community a small demo district is cut into (a 3,000-person demo has 6 communities, one
per street; the 20,000-person demo all 30)."""


def _addresses(
    rng: np.random.Generator, n_households: int, moved_share: float
) -> tuple[Addresses, Addresses, np.ndarray, GridLayout]:
    """Place households in flats; movers get a second flat. Returns registered, current, moved and the
    grid layout of every community."""
    moved = rng.random(n_households) < moved_share
    n_moved = int(moved.sum())
    n_addresses = n_households + n_moved
    # A smaller district has fewer communities: about HOUSEHOLDS_PER_COMMUNITY households each, at least
    # three, at most every community of the vocabulary (the 20,000-person demo has all 30), spread over
    # the streets (the first community of each street, then the second, ...).
    total = sum(len(c) for c in V.COMMUNITIES)
    n_communities = int(np.clip(round(n_households / HOUSEHOLDS_PER_COMMUNITY), 3, total))
    per_street = len(V.COMMUNITIES[0])
    spread = np.arange(total).reshape(len(V.COMMUNITIES), per_street).T.ravel()
    chosen = np.arange(total) if n_communities == total else np.sort(spread[:n_communities])
    popularity = rng.uniform(0.6, 1.4, n_communities)
    community = chosen[rng.choice(n_communities, size=n_addresses, p=popularity / popularity.sum())]
    grids = np.zeros(total, dtype=np.int64)
    grids[chosen] = rng.integers(4, 9, n_communities)
    floors = np.zeros(total, dtype=np.int64)
    floors[chosen] = rng.choice(_FLOOR_CHOICES, size=n_communities)
    building, unit, room, grid = (np.zeros(n_addresses, dtype=np.int64) for _ in range(4))
    layout = GridLayout(grids, np.zeros(total, dtype=np.int64))
    for c in chosen:
        idx = np.flatnonzero(community == c)
        per_floor, per_building = _ROOMS_PER_FLOOR, _UNITS_PER_BUILDING * floors[c] * _ROOMS_PER_FLOOR
        n_buildings = max(2 * grids[c], int(np.ceil(len(idx) / (per_building * _BUILDING_FILL))))
        slot = rng.choice(n_buildings * per_building, size=len(idx), replace=False)
        building[idx] = slot // per_building + 1
        within = slot % per_building
        unit[idx] = within // (floors[c] * per_floor) + 1
        room[idx] = (within % (floors[c] * per_floor)) // per_floor * 100 + 101 + within % per_floor
        layout.buildings[c] = n_buildings
        grid[idx] = layout.grid_of(community[idx], building[idx])
    places = Addresses(community // len(V.COMMUNITIES[0]), community, grid, building, unit, room)
    registered = places.take(np.arange(n_households))
    current_index = np.arange(n_households)
    current_index[moved] = n_households + np.arange(n_moved)
    return registered, places.take(current_index), moved, layout


def _corrections(rng: np.random.Generator, age: np.ndarray, male: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(age)
    low, high = CORRECTIONS_AGES
    eligible = (age >= low) & (age <= high)
    n_male, n_female = np.count_nonzero(eligible & male), np.count_nonzero(eligible & ~male)
    weight = np.where(male, CORRECTIONS_MALE_SHARE / max(n_male, 1), (1 - CORRECTIONS_MALE_SHARE) / max(n_female, 1))
    weight = weight * eligible
    k = min(round(CORRECTIONS_SHARE * n), np.count_nonzero(eligible))
    chosen = rng.choice(n, size=k, replace=False, p=weight / weight.sum())
    corrections = np.zeros(n, dtype=bool)
    corrections[chosen] = True
    case_weights = np.array([w for _, w in CASE_TYPES])
    case_type = np.full(n, -1, dtype=np.int8)
    case_type[chosen] = rng.choice(len(CASE_TYPES), size=k, p=case_weights)
    return corrections, case_type
