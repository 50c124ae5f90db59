"""Generate the demo district: four departments' systems, a consent registry, and the truth.

:func:`generate_demo` invents a district (示范区) of households and people, then writes what each
department would hold about them, in the form its system really takes:

========================  ===========================  ===========================================
source                    file under ``<home>/demo/``  form
========================  ===========================  ===========================================
``civil_affairs`` 民政     ``civil_affairs.sqlite``     SQLite table ``mz_resident``, columns xm, sfzh..
``health`` 卫健            ``health_visits.csv``        GBK CSV, one row per visit
``justice`` 司法           ``justice_cases.xlsx``       Excel sheet ``在册人员``, date cells
``census`` 人口普查        ``census_extract.csv``       UTF-8 CSV with BOM, birth year-month only, 户籍地址
``consent_registry``       ``consent_registry.parquet`` decisions per purpose and recipient
``grid_updates`` 网格      ``grid_updates.xlsx``        the grid-update form: died, moved, lives alone
========================  ===========================  ===========================================

and the district's area register, ``areas.csv`` (street, community, grid and the buildings each grid
covers, as a 街道 clerk keeps it; the pipeline places addresses with it, :mod:`publish.areas`), and,
for tests and benchmarks only (the pipeline never reads them), ``truth/ground_truth.parquet``
(every person-source row -> the true person), ``truth/hard_negatives.parquet`` (twins, 同名同姓
namesakes, and a person whose row was keyed with a household member's ID number with that member:
pairs that must not be merged) and ``truth/persons.parquet`` (the people themselves).

The rates of everything that makes the data realistic and messy are the constants right below;
a record's defects are listed in the ground truth, so a test can ask, e.g., whether every row with
``bad_birth_date`` was quarantined. All randomness flows from one seed through ``numpy``
generators spawned per stage, and work is vectorised, so a million persons take about a minute.

Example:
    >>> summary = generate_demo(tmp_path, persons=500)         # doctest: +SKIP
    >>> summary.counts["civil_affairs"]                         # doctest: +SKIP
    306
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa

from core.home import DataHome, HomeLike
from demo.grid import GridUpdates, Hukou, build_hukou, census_hukou, write_grid_updates
from demo.mess import DEFECTS, QUARANTINE_DEFECTS, SourceRows, damage
from demo.population import (
    CASE_TYPES,
    CHRONIC_DISEASES,
    MOVED_HOUSEHOLD_SHARE,
    REFERENCE_DATE,
    Population,
    build_population,
    former_names,
)
from demo.strings import STRING, date_parts, format_dates, numbered
from demo.writers import XlsxColumn, write_csv, write_parquet, write_sqlite, write_xlsx

__all__ = [
    "DEFECTS",
    "FILES",
    "MESS_RATES",
    "PERSON_SOURCES",
    "QUARANTINE_DEFECTS",
    "REFERENCE_DATE",
    "REKEY_RATES",
    "SCALABLE_DEFECTS",
    "SOURCES_YAML",
    "DemoSummary",
    "MessSettings",
    "generate_demo",
]

logger = logging.getLogger(__name__)

# ================================================================================================
# The rates. Shares are of persons unless said otherwise; the comments say why each figure.
# (What the district itself looks like - households, ages, twins, key populations - is set by the
# rates at the top of demo/population.py.)
# ================================================================================================

# --- who is in which source (share of persons) ---------------------------------------------------
CIVIL_AFFAIRS_SHARE = 0.60  # overall; the vulnerable (60+, 低保, disabled) are nearly all in it:
CIVIL_AFFAIRS_VULNERABLE_SHARE = 0.95
HEALTH_SHARE = 0.50  # overall; chronic patients and pregnant women are nearly all in it:
HEALTH_PATIENT_SHARE = 0.95
HEALTH_VISITS_PATIENT = (0.15, 0.30, 0.30, 0.25)  # P(1..4 visits) for chronic patients
HEALTH_VISITS_OTHER = (0.60, 0.25, 0.10, 0.05)  # P(1..4 visits) for everyone else
HEALTH_CHRONIC_VISIT_SHARE = 0.8  # a patient's visits coded with the chronic disease (else 普通门诊)
HEALTH_WINDOW_DAYS = 3 * 365  # visits in the last three years
CENSUS_SHARE = 0.90
CONSENT_SHARE = 0.70  # persons with at least one consent decision; the people grid workers serve
CONSENT_SERVED_SHARE = 0.90  # (60+, disabled, 低保, chronic, pregnant) are asked on home visits:
CONSENT_SERVED_GRID_FIRST = 0.90  # and their first decision is on service delivery by the grid
CONSENT_PAIRS_PER_PERSON = (0.5, 0.3, 0.2)  # P(1, 2, 3 purpose-recipient pairs)
CONSENT_FIRST_GRANTED = 0.85  # first decision 同意 (else 拒绝)
CONSENT_LATER_WITHDRAWN = 0.12  # of grants: 撤回 later
CONSENT_REGRANTED = 0.20  # of withdrawals: 同意 again later
CONSENT_REFUSED_THEN_GRANTED = 0.10  # of refusals: 同意 later
CONSENT_CHANNELS = (("线下窗口", 0.5), ("政务APP", 0.35), ("电话", 0.15))
CONSENT_SENSITIVE_NAMED = 0.5  # of decisions by a patient / person in corrections: also names health / judicial
CONSENT_EXPIRING = 0.25  # of decisions: valid for 1-3 years only (some have expired by now)
CONSENT_GUARDIAN_RECORDED = 0.85  # of a child's (under 14) decisions: made and signed by the guardian
CONSENT_DELETION = 0.005  # of persons with decisions: later asked to be deleted (删除)

# --- how each source's rows are damaged (share of that source's rows) ----------------------------
PERSON_SOURCES = ("civil_affairs", "health", "justice", "census")
"""The person sources, in the column order of :data:`MESS_RATES`."""

_MESS_TABLE = {
    #                  civil   health  justice census
    "homophone": (0.03, 0.03, 0.03, 0.03),  # 晓/小, 伟/玮 ... in the given name
    "shape_slip": (0.002, 0.002, 0.005, 0.01),  # 吴/昊, 宇/字: misread handwriting (census: paper forms)
    "traditional": (0.02, 0.02, 0.02, 0.02),  # name and address in traditional characters
    "fullwidth_space": (0.03, 0.03, 0.03, 0.03),  # full-width digits/letters, stray spaces, U+3000
    "id_typo": (0.015, 0.015, 0.015, 0.015),  # one digit substituted or two adjacent swapped
    "id_15_digit": (0.02, 0.0, 0.02, 0.0),  # the pre-1999 form (people born 1900-1999)
    "id_missing": (0.05, 0.05, 0.05, 0.40),  # rows without an ID (census: often not recorded)
    "borrowed_id": (0.002, 0.002, 0.0, 0.0),  # keyed with a household member's ID (spouse's; a parent's for a child)
    "phone_missing": (0.15, 0.15, 0.15, 0.0),  # rows without a phone (census has no phone column)
    "sex_error": (0.002, 0.002, 0.002, 0.002),  # the stated sex is the wrong one
    "birth_date_typo": (0.005, 0.005, 0.005, 0.005),  # a birth date a few days or a year off
    "dot_variant": (0.30, 0.30, 0.30, 0.30),  # of transliterated names: • ・ . ． instead of ·
    "duplicate": (0.02, 0.0, 0.0, 0.005),  # of the source's persons: entered twice, other key
    "bad_birth_date": (0.003, 0.003, 0.003, 0.003),  # quarantine: 不详, 1980-13-45
    "missing_name": (0.001, 0.001, 0.001, 0.001),  # quarantine: no name
    "malformed_id": (0.002, 0.002, 0.002, 0.002),  # quarantine: wrong length, letters
}
MESS_RATES: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {
        source: MappingProxyType({defect: rates[i] for defect, rates in _MESS_TABLE.items()})
        for i, source in enumerate(PERSON_SOURCES)
    }
)
"""source -> defect -> share of the source's rows (``duplicate``: of its persons)."""

if not set(_MESS_TABLE) <= set(DEFECTS):
    raise ImportError(f"MESS_RATES names unknown defects: {set(_MESS_TABLE) - set(DEFECTS)}")

# --- a duplicate keyed again from scratch (MessSettings(duplicates="rekeyed"), stress tests only) ---
REKEY_RATES: Mapping[str, float] = MappingProxyType(
    {  # share of the re-keyed rows, each error drawn independently of the others and of the first entry
        "homophone": 0.08,  # the input method offers another character of the same reading (晓 -> 小)
        "name_typo": 0.04,  # another character picked, or one left out (王明轩 -> 王明宇, 王轩)
        "id_typo": 0.04,  # the ID re-typed with a digit wrong or two swapped
        "id_missing": 0.10,  # the ID not asked for this time
        "birth_date_typo": 0.03,  # a few days or a year off
        "sex_error": 0.005,
        "phone_missing": 0.20,
        "address_style": 0.5,  # the flat written the clerk's own way (3-2-501, 栋, no district)
    }
)
"""How a clerk who re-keys a person without looking at the first entry slips (see :func:`demo.mess.damage`)."""

REKEYED_DUPLICATE_SHARE: Mapping[str, float] = MappingProxyType({"justice": 0.10})
"""With re-keyed duplicates, sources whose repeat entries the default demo leaves out get some: justice
opens a new case file (a second sentence, a transfer) for a tenth of the people on its roll."""

SCALABLE_DEFECTS: tuple[str, ...] = tuple(d for d in _MESS_TABLE if d not in QUARANTINE_DEFECTS) + ("moved",)
"""Defects whose rate :class:`MessSettings` can scale: every one that linking has to see through
(``moved``: the share of households whose address civil affairs has not caught up with). Rows that
staging quarantines are not linked, so their rates stay as they are."""

_RATE_CAP = 0.95  # no defect reaches every row: a scaled rate stops here


@dataclass(frozen=True)
class MessSettings:
    """How messy the departments' records are, for stress tests; the default is the demo district.

    Args:
        scale: factor on the rate of every defect in ``defects`` (capped at 0.95 of the rows); 1 keeps
            the rates of :data:`MESS_RATES`, :data:`REKEY_RATES` and ``demo.population.MOVED_HOUSEHOLD_SHARE``.
        defects: the defects ``scale`` applies to, among :data:`SCALABLE_DEFECTS` (``duplicate`` scales
            within-source duplicates, ``moved`` the movers); when omitted, all of them and every rate
            of :data:`REKEY_RATES`.
        duplicates: ``"copied"`` (the default demo): a duplicate is the person's first entry copied with
            one small change. ``"rekeyed"``: every repeat entry — a civil-affairs or census duplicate, a
            health visit after the first, a justice case file (:data:`REKEYED_DUPLICATE_SHARE`) — was
            keyed again from scratch with keying errors of its own (:data:`REKEY_RATES`), and a census
            double count is a person living away from the registered address (人户分离) counted a
            second time there.
        addresses: ``"demo"`` (the demo's address habits, :data:`ADDRESS_STYLES`) or ``"abbreviated"``:
            health and justice clerks write many flats as the compound's name alone, 翠苑3-2-501 or
            翠苑3幢501 (:data:`ABBREVIATED_ADDRESS_STYLES`).

    Raises:
        ValueError: a parameter is out of range; the message shows a correct call.

    Example:
        >>> MessSettings(scale=2.0).rates("census")["id_missing"]
        0.8
    """

    scale: float = 1.0
    defects: tuple[str, ...] | None = None
    duplicates: str = "copied"
    addresses: str = "demo"

    def __post_init__(self) -> None:
        example = 'MessSettings(scale=2.0, defects=("homophone", "id_missing"), duplicates="rekeyed")'
        if isinstance(self.scale, bool) or not isinstance(self.scale, int | float) or not 0 <= self.scale <= 20:
            raise ValueError(f"scale must be a number from 0 to 20, got {self.scale!r}; e.g. {example}")
        if self.defects is not None:
            if isinstance(self.defects, str) or not all(d in SCALABLE_DEFECTS for d in self.defects):
                raise ValueError(
                    f"defects must be a tuple of names among {', '.join(SCALABLE_DEFECTS)}, got {self.defects!r}; "
                    f"e.g. {example}"
                )
            object.__setattr__(self, "defects", tuple(self.defects))
        if self.duplicates not in ("copied", "rekeyed"):
            raise ValueError(f"duplicates must be 'copied' or 'rekeyed', got {self.duplicates!r}; e.g. {example}")
        if self.addresses not in ("demo", "abbreviated"):
            raise ValueError(f"addresses must be 'demo' or 'abbreviated', got {self.addresses!r}; "
                             'e.g. MessSettings(addresses="abbreviated")')

    @property
    def is_default(self) -> bool:
        """Whether these are the demo district's own rates and processes."""
        return self.scale == 1.0 and self.duplicates == "copied" and self.addresses == "demo"

    def _factor(self, defect: str) -> float:
        if self.defects is None:  # every defect linking sees through, a re-keying clerk's slips included
            return self.scale if defect in SCALABLE_DEFECTS or defect in REKEY_RATES else 1.0
        return self.scale if defect in self.defects else 1.0

    def _scaled(self, defect: str, rate: float) -> float:
        factor = self._factor(defect)
        return rate if factor == 1.0 else min(rate * factor, _RATE_CAP)

    def rates(self, source: str) -> Mapping[str, float]:
        """The defect rates of ``source`` (its column of :data:`MESS_RATES`), scaled."""
        rates = {defect: self._scaled(defect, rate) for defect, rate in MESS_RATES[source].items()}
        if self.duplicates == "rekeyed" and source in REKEYED_DUPLICATE_SHARE:
            rates["duplicate"] = self._scaled("duplicate", REKEYED_DUPLICATE_SHARE[source])
        return MappingProxyType(rates)

    def rekey_rates(self) -> Mapping[str, float] | None:
        """The keying errors of a re-keyed duplicate, scaled; ``None`` when duplicates are copied."""
        if self.duplicates != "rekeyed":
            return None
        return MappingProxyType({error: self._scaled(error, rate) for error, rate in REKEY_RATES.items()})

    def address_styles(self, source: str) -> Mapping[str, float]:
        """How ``source`` writes addresses (style -> share of rows, :data:`ADDRESS_STYLES`), or with
        ``addresses="abbreviated"`` as :data:`ABBREVIATED_ADDRESS_STYLES` where it names the source."""
        if self.addresses == "abbreviated" and source in ABBREVIATED_ADDRESS_STYLES:
            return ABBREVIATED_ADDRESS_STYLES[source]
        return ADDRESS_STYLES[source]

    @property
    def moved_share(self) -> float:
        """Share of households that moved."""
        return self._scaled("moved", MOVED_HOUSEHOLD_SHARE)


# How each system writes dates of birth and addresses (share of rows per style).
BIRTH_DATE_STYLES = {
    "civil_affairs": {"iso": 0.9, "compact": 0.1},  # 1950-03-02, 19500302
    "health": {"iso": 0.4, "slash": 0.25, "compact": 0.2, "chinese": 0.15},  # 1980/1/2, 1980年1月2日
    "justice": {"excel": 0.85, "dotted": 0.15},  # a date cell, or text 1980.01.02
    "census": {"year_month": 1.0},  # 198001
}
ADDRESS_STYLES = {
    "civil_affairs": {"full": 1.0},  # 示范区西溪街道翠苑社区3幢2单元501室
    "health": {"full": 0.5, "no_district": 0.3, "short": 0.2},  # 西溪街道翠苑社区3-2-501
    "justice": {"full": 0.8, "dong": 0.2},  # 栋 for 幢
    "census": {"full": 1.0},
}
ABBREVIATED_ADDRESS_STYLES = {
    # Clerks who write the compound's name alone (翠苑3-2-501, 翠苑3幢501): no district, street or 社区.
    "health": {"full": 0.4, "no_district": 0.2, "abbreviated": 0.2, "abbreviated_no_unit": 0.2},
    "justice": {"full": 0.3, "abbreviated": 0.35, "abbreviated_no_unit": 0.35},
}
"""Address styles of ``MessSettings(addresses="abbreviated")`` (a stress variant); other sources as
:data:`ADDRESS_STYLES`."""

SOURCES_YAML = Path(__file__).with_name("sources.yaml")
"""The declarations of the demo's sources, paths relative to the data home."""

FILES: Mapping[str, str] = MappingProxyType(
    {
        "civil_affairs": "civil_affairs.sqlite",
        "health": "health_visits.csv",
        "justice": "justice_cases.xlsx",
        "census": "census_extract.csv",
        "consent_registry": "consent_registry.parquet",
        "grid_updates": "grid_updates.xlsx",
    }
)

_CONSENT_PAIRS = (  # (purpose, recipient, how often it is asked relative to the others)
    ("service_delivery", "grid", 3.0),
    ("service_delivery", "civil_affairs", 2.0),
    ("service_delivery", "health", 2.0),
    ("cross_department_sharing", "*", 2.0),
    ("cross_department_sharing", "civil_affairs", 1.0),
    ("cross_department_sharing", "health", 1.0),
    ("cross_department_sharing", "justice", 1.0),
    ("cross_department_sharing", "grid", 1.0),
    ("statistics", "census", 1.0),
    ("statistics", "*", 1.0),
    ("research", "health", 1.0),
    ("research", "*", 0.5),
)
_MIN_PERSONS = 100


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate_demo` wrote.

    Attributes:
        home: the data home the files are under.
        persons: persons in the district.
        seed: the seed that reproduces these files byte for byte.
        files: source name (as in ``sources.yaml``) -> file written.
        counts: source name -> rows written (health: visits; consent_registry: decisions).
        ground_truth: ``record_id, true_person_id, source, defects`` for every person-source row.
        hard_negatives: ``person_a, person_b, kind`` (``twin`` or ``namesake``).
        persons_truth: one row per person with the true attributes.
        area_register: the district's area register (``街道,社区,网格,楼栋``), consistent with every
            address the sources hold.
        seconds: wall-clock time taken.
    """

    home: Path
    persons: int
    seed: int
    files: Mapping[str, Path]
    counts: Mapping[str, int]
    ground_truth: Path
    hard_negatives: Path
    persons_truth: Path
    seconds: float
    area_register: Path | None = None


def generate_demo(
    home: HomeLike, persons: int = 20_000, seed: int = 20261123, *, mess: MessSettings | None = None
) -> DemoSummary:
    """Write the demo district's source systems and ground truth under ``home/demo/``.

    Existing demo files are replaced. The same ``persons``, ``seed`` and ``mess`` give byte-identical files.

    Args:
        home: the data home (see :class:`core.home.DataHome`).
        persons: residents to invent; at least 100. 20,000 is a district demo, 1,000,000 a benchmark.
        seed: seed of every random choice.
        mess: how messy the records are (:class:`MessSettings`); the demo district's own rates when
            omitted. Stress tests raise the rates or change how duplicates arise.

    Returns:
        A :class:`DemoSummary` with the paths and the row counts per source.

    Raises:
        ValueError: ``persons`` or ``seed`` is not a usable integer.

    Example:
        >>> generate_demo(Path("var"), persons=20_000).counts["census"]   # doctest: +SKIP
        18093
    """
    if isinstance(persons, bool) or not isinstance(persons, int | np.integer) or persons < _MIN_PERSONS:
        raise ValueError(
            f"persons must be an integer >= {_MIN_PERSONS}, got {persons!r}; e.g. generate_demo(home, persons=20_000)"
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}; e.g. generate_demo(home, seed=20261123)")
    mess = mess or MessSettings()
    if not isinstance(mess, MessSettings):
        raise ValueError(f"mess must be a MessSettings, got {mess!r}; e.g. generate_demo(home, mess=MessSettings(scale=2.0))")
    started = time.perf_counter()
    data_home = DataHome.at(home)
    out = data_home.demo_dir
    truth_dir = data_home.demo_truth_dir
    truth_dir.mkdir(parents=True, exist_ok=True)
    # (a generator's children do not depend on how many are spawned: the first ones draw what they always drew)
    rng_people, rng_civil, rng_health, rng_justice, rng_census, rng_consent, rng_hukou, rng_grid, rng_former = \
        np.random.default_rng(int(seed)).spawn(9)

    pop = build_population(rng_people, int(persons), moved_share=mess.moved_share)
    hukou = build_hukou(rng_hukou, pop)
    former = former_names(rng_former, pop)
    logger.info("demo: %d persons in %d households (%.1fs)", pop.n, pop.households, time.perf_counter() - started)

    tables = {
        "civil_affairs": _civil_affairs(rng_civil, pop, out / FILES["civil_affairs"], mess, former, rng_former),
        "health": _health(rng_health, pop, out / FILES["health"], mess),
        "justice": _justice(rng_justice, pop, out / FILES["justice"], mess, former),
        "census": _census(rng_census, pop, out / FILES["census"], mess, hukou, rng_hukou, former),
    }
    counts = {source: rows.n for source, rows in tables.items()}
    counts["consent_registry"] = _consent(rng_consent, pop, out / FILES["consent_registry"])
    known = np.zeros(pop.n, dtype=bool)
    for rows in tables.values():
        known[rows.person] = True
    civil = tables["civil_affairs"]
    civil_alone = np.zeros(pop.n, dtype=bool)
    civil_alone[civil.person[pop.lives_alone[civil.person]]] = True  # 民政 records djlr from the truth
    updates = write_grid_updates(rng_grid, pop, known, civil_alone, hukou, out / FILES["grid_updates"])
    counts["grid_updates"] = len(updates.person)
    write_csv(data_home.demo_area_register, pop.layout.register(), encoding="utf-8-sig")

    truth = {
        "ground_truth": truth_dir / "ground_truth.parquet",
        "hard_negatives": truth_dir / "hard_negatives.parquet",
        "persons": truth_dir / "persons.parquet",
    }
    write_parquet(truth["ground_truth"], _ground_truth(tables, pop, updates))
    write_parquet(truth["hard_negatives"], _hard_negatives(pop, tables))
    write_parquet(truth["persons"], _persons_table(pop, hukou, updates, former))

    seconds = time.perf_counter() - started
    logger.info("demo: wrote %s under %s in %.1fs", counts, out, seconds)
    return DemoSummary(
        home=data_home.root,
        persons=pop.n,
        seed=int(seed),
        files=MappingProxyType({source: out / name for source, name in FILES.items()}),
        counts=MappingProxyType(counts),
        ground_truth=truth["ground_truth"],
        hard_negatives=truth["hard_negatives"],
        persons_truth=truth["persons"],
        seconds=seconds,
        area_register=data_home.demo_area_register,
    )


# ================================================================================================
# Formatting values the way each system writes them
# ================================================================================================


_BAD_DATE = {  # what an impossible date looks like in each style
    "iso": "{y}-13-45",
    "compact": "{y}1345",
    "slash": "{y}/13/45",
    "chinese": "{y}年13月45日",
    "dotted": "{y}.13.45",
    "excel": "{y}.13.45",
    "year_month": "{y}13",
}


def _birth_text(rng: np.random.Generator, rows: SourceRows) -> tuple[np.ndarray, np.ndarray]:
    """Birth dates as the source writes them, and the style of each row (``excel`` = a date cell)."""
    styles = BIRTH_DATE_STYLES[rows.source]
    style = np.array(list(styles), dtype=STRING)[rng.choice(len(styles), size=rows.n, p=list(styles.values()))]
    text = np.full(rows.n, "", dtype=STRING)
    for name in styles:
        idx = np.flatnonzero(style == name)
        if name != "excel":
            text[idx] = format_dates(rows.birth[idx], name)
    bad = np.flatnonzero(rows.bad_birth_date)
    unknown = rng.random(len(bad)) < 0.5
    years = date_parts(rows.birth[bad])[0].tolist()
    pairs = zip(unknown.tolist(), style[bad].tolist(), years, strict=True)
    text[bad] = np.array(["不详" if u else _BAD_DATE[s].format(y=y) for u, s, y in pairs], dtype=STRING)
    return text, style


def _timestamps(days: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS`` from days and seconds since midnight."""
    moments = days.astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    return np.strings.replace(np.datetime_as_string(moments, unit="s").astype(STRING), "T", " ")


def _office_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(8 * 3600 + 1800, 17 * 3600 + 1800, n)


def _day_between(rng: np.random.Generator, first: np.ndarray, last: np.datetime64) -> np.ndarray:
    """A day drawn uniformly from ``first`` (per row) to ``last``."""
    span = (last - first).astype(np.int64)
    return first + (rng.random(len(first)) * np.maximum(span, 0)).astype(np.int64)


def _select_rows(
    rng: np.random.Generator,
    source: str,
    pop: Population,
    chosen: np.ndarray,
    mess: MessSettings,
    shuffle: bool = True,
    twice_among: np.ndarray | None = None,
) -> SourceRows:
    """Rows for ``chosen`` persons plus within-source duplicates, shuffled so keys do not reveal them.

    ``twice_among`` (a mask over persons) says who is entered twice when enough of the chosen are in it."""
    share = mess.rates(source)["duplicate"]
    k = round(share * len(chosen))
    pool = chosen
    if twice_among is not None and twice_among[chosen].sum() >= k:
        pool = chosen[twice_among[chosen]]
    twice = rng.choice(pool, size=k, replace=False) if share else np.empty(0, np.int64)
    person = np.concatenate([chosen, twice])
    duplicate = np.r_[np.zeros(len(chosen), dtype=bool), np.ones(len(twice), dtype=bool)]
    if shuffle:
        order = rng.permutation(len(person))
        person, duplicate = person[order], duplicate[order]
    return SourceRows(source, pop, person, duplicate, registered=source == "civil_affairs")


def _choose_persons(
    rng: np.random.Generator, priority: np.ndarray, overall: float, priority_share: float
) -> np.ndarray:
    """Persons a source holds: ``priority_share`` of the priority group, the rest so the total is ``overall``."""
    n = len(priority)
    rest = (overall * n - priority_share * priority.sum()) / max(n - priority.sum(), 1)
    p = np.where(priority, priority_share, np.clip(rest, 0.05, 0.95))
    return np.flatnonzero(rng.random(n) < p)


# ================================================================================================
# The sources
# ================================================================================================


def _civil_affairs(rng: np.random.Generator, pop: Population, path: Path, mess: MessSettings, former: np.ndarray,
                   rng_former: np.random.Generator) -> SourceRows:
    """民政: residents' register in SQLite, vulnerable people nearly all in it, some entered twice; an
    entry made before a person changed their name still carries the former one."""
    vulnerable = (pop.age >= 60) | pop.low_income | (pop.disability > 0)
    chosen = _choose_persons(rng, vulnerable, CIVIL_AFFAIRS_SHARE, CIVIL_AFFAIRS_VULNERABLE_SHARE)
    rows = _select_rows(rng, "civil_affairs", pop, chosen, mess)
    _damage(rng, rows, pop, mess, gbk=False)
    _keep_former_names(rng_former, rows, former)
    birth, _ = _birth_text(rng, rows)
    p = rows.person
    grades = np.array(["", "一级", "二级", "三级", "四级"], dtype=STRING)
    updated = REFERENCE_DATE - rng.integers(1, 8 * 365, rows.n)
    columns = {
        "jmbh": numbered("MZ", rows.n, 7),
        "xm": rows.name,
        "xb": np.where(rows.male, "男", "女").astype(STRING),
        "csrq": birth,
        "sfzh": rows.id,
        "lxdh": rows.phone,
        "jtzz": rows.address_text,
        "jdmc": rows.places.street_names(),
        "sqmc": rows.places.community_names(),
        "wgmc": rows.places.grid_names(),
        "djlr": np.where(pop.lives_alone[p], "是", "否").astype(STRING),
        "dbh": np.where(pop.low_income[p], "是", "否").astype(STRING),
        "cjdj": grades[pop.disability[p]],
        "gxsj": _timestamps(updated, _office_seconds(rng, rows.n)),
    }
    write_sqlite(path, "mz_resident", columns, primary_key="jmbh", blank_columns=("cjdj",))
    rows.keys = columns["jmbh"]
    return rows


def _health(rng: np.random.Generator, pop: Population, path: Path, mess: MessSettings) -> SourceRows:
    """卫健: one GBK CSV row per visit; patients come back, pregnant women get a 孕产妇建档 visit."""
    patient = (pop.chronic >= 0) | pop.pregnant
    chosen = _choose_persons(rng, patient, HEALTH_SHARE, HEALTH_PATIENT_SHARE)
    visits = np.where(
        patient[chosen],
        rng.choice(4, size=len(chosen), p=HEALTH_VISITS_PATIENT),
        rng.choice(4, size=len(chosen), p=HEALTH_VISITS_OTHER),
    ) + 1
    visits = np.where(pop.pregnant[chosen], np.maximum(visits, 2), visits)
    person = np.repeat(chosen, visits)
    first_visit = np.cumsum(visits) - visits

    day = REFERENCE_DATE - rng.integers(1, HEALTH_WINDOW_DAYS, len(person))
    diseases = np.array([d for d, _ in CHRONIC_DISEASES] + ["普通门诊"], dtype=STRING)
    coded = (pop.chronic[person] >= 0) & (rng.random(len(person)) < HEALTH_CHRONIC_VISIT_SHARE)
    diagnosis = diseases[np.where(coded, pop.chronic[person], len(CHRONIC_DISEASES))]
    filing = first_visit[pop.pregnant[chosen]]
    diagnosis[filing] = "孕产妇建档"
    day[filing] = REFERENCE_DATE - rng.integers(1, 270, len(filing))
    day = np.maximum(day, pop.birth[person] + 1)

    # Visit ids grow with the visit date, as a hospital system numbers them.
    order = np.lexsort((rng.random(len(person)), day))
    person, day, diagnosis = person[order], day[order], diagnosis[order]
    repeat = np.zeros(len(person), dtype=bool)
    if mess.duplicates == "rekeyed":
        # Every visit after a person's first was keyed again at the desk, not taken from the patient index.
        repeat = pd.Series(person).duplicated().to_numpy()
    rows = SourceRows("health", pop, person, repeat)
    _damage(rng, rows, pop, mess, gbk=True)
    birth, _ = _birth_text(rng, rows)
    columns = {
        "visit_id": numbered("WJ", rows.n, 8),
        "patient_name": rows.name,
        "gender": np.where(rows.male, "1", "2").astype(STRING),
        "dob": birth,
        "id_card": rows.id,
        "mobile": rows.phone,
        "home_address": rows.address_text,
        "visit_date": format_dates(day, "iso"),
        "diagnosis": diagnosis,
    }
    write_csv(path, columns, encoding="gbk")
    rows.keys = columns["visit_id"]
    return rows


def _justice(rng: np.random.Generator, pop: Population, path: Path, mess: MessSettings, former: np.ndarray) -> SourceRows:
    """司法: the community-corrections roll as an Excel sheet with date cells and text IDs."""
    chosen = rng.permutation(np.flatnonzero(pop.corrections))
    rows = _select_rows(rng, "justice", pop, chosen, mess, shuffle=False)
    rows.phone = pop.phone[rows.person].copy()  # the justice bureau records the person's own phone
    _damage(rng, rows, pop, mess, gbk=False)
    birth_text, _ = _birth_text(rng, rows)
    adult = pop.birth[rows.person] + 18 * 366
    start = np.maximum(REFERENCE_DATE - rng.integers(30, 5 * 365, rows.n), adult)
    case_types = np.array([c for c, _ in CASE_TYPES], dtype=STRING)
    keys = numbered("SF", rows.n, 5)
    columns = {
        "编号": XlsxColumn(keys),
        "姓名": XlsxColumn(rows.name),
        "性别": XlsxColumn(np.where(rows.male, "男", "女").astype(STRING)),
        "出生日期": XlsxColumn(birth_text, dates=rows.birth),  # '' (date cell) for the excel style
        "身份证号": XlsxColumn(rows.id, as_text=True),
        "联系电话": XlsxColumn(rows.phone, as_text=True),
        "居住地址": XlsxColumn(rows.address_text),
        "曾用名": XlsxColumn(former[rows.person]),
        "矫正类别": XlsxColumn(case_types[pop.case_type[rows.person]]),
        "入矫日期": XlsxColumn(np.full(rows.n, "", dtype=STRING), dates=np.minimum(start, REFERENCE_DATE - 1)),
    }
    write_xlsx(path, "在册人员", columns)
    rows.keys = keys
    return rows


def _census(rng: np.random.Generator, pop: Population, path: Path, mess: MessSettings, hukou: Hukou,
            rng_hukou: np.random.Generator, former: np.ndarray) -> SourceRows:
    """人口普查: nearly everyone, birth year-month only, ID often not recorded, where people live now."""
    chosen = np.flatnonzero(rng.random(pop.n) < CENSUS_SHARE)
    rekeyed = mess.duplicates == "rekeyed"
    rows = _select_rows(rng, "census", pop, chosen, mess, twice_among=pop.moved if rekeyed else None)
    if rekeyed:
        # A double count is a person living away from the registered address, counted there too.
        at_home = rows.defects["duplicate"]
        rows.places = rows.places.where(at_home, pop.registered.take(rows.person))
        rows.defects["moved"][at_home] = False
    rows.phone[:] = ""  # the census form asks for no phone
    _damage(rng, rows, pop, mess, gbk=False)
    birth, _ = _birth_text(rng, rows)
    columns = {
        "普查编号": numbered("PC", rows.n, 9),
        "姓名": rows.name,
        "性别": np.where(rows.male, "1", "2").astype(STRING),
        "出生年月": birth,
        "公民身份号码": rows.id,
        "街道": rows.places.street_names(),
        "社区": rows.places.community_names(),
        "网格": rows.places.grid_names(),
        "住址": rows.address_text,
        "户籍地址": census_hukou(rng_hukou, hukou, rows.person),
        "曾用名": former[rows.person],
    }
    write_csv(path, columns, encoding="utf-8-sig")
    rows.keys = columns["普查编号"]
    return rows


#: A civil-affairs entry of a person who changed their name that still carries the former name: the
#: register was keyed before the change and never updated.
CIVIL_AFFAIRS_FORMER_NAME_SHARE = 0.6

#: Name defects a row keyed under the former name no longer carries (the name is the old one, clean).
_NAME_DEFECTS = ("homophone", "shape_slip", "name_typo", "traditional", "dot_variant")


def _keep_former_names(rng: np.random.Generator, rows: SourceRows, former: np.ndarray) -> None:
    """Put the former name on :data:`CIVIL_AFFAIRS_FORMER_NAME_SHARE` of the rows of people who changed it."""
    old = former[rows.person]
    keep = np.flatnonzero((old != "") & (rng.random(rows.n) < CIVIL_AFFAIRS_FORMER_NAME_SHARE))
    rows.name[keep] = old[keep]
    for defect in _NAME_DEFECTS:
        rows.defects[defect][keep] = False
    rows.flag("former_name", keep)


def _damage(rng: np.random.Generator, rows: SourceRows, pop: Population, mess: MessSettings, *, gbk: bool) -> None:
    """:func:`demo.mess.damage` with the source's rates, address styles and duplicate process."""
    damage(rng, rows, pop, mess.rates(rows.source), mess.address_styles(rows.source), gbk=gbk, rekey=mess.rekey_rates())


def _consent(rng: np.random.Generator, pop: Population, path: Path) -> int:
    """Consent decisions: a first decision per purpose-recipient pair, then later changes of mind."""
    served = (pop.age >= 60) | (pop.disability > 0) | pop.low_income | (pop.chronic >= 0) | pop.pregnant
    chosen = _choose_persons(rng, served, CONSENT_SHARE, CONSENT_SERVED_SHARE)
    n_pairs = rng.choice(len(CONSENT_PAIRS_PER_PERSON), size=len(chosen), p=CONSENT_PAIRS_PER_PERSON) + 1
    # Weighted sampling without replacement (Gumbel top-k): each person's pairs in order of asking.
    weights = np.array([w for _, _, w in _CONSENT_PAIRS])
    scores = np.log(weights)[None, :] + rng.gumbel(size=(len(chosen), len(_CONSENT_PAIRS)))
    grid_first = served[chosen] & (rng.random(len(chosen)) < CONSENT_SERVED_GRID_FIRST)
    scores[grid_first, 0] = np.inf
    ranking = np.argsort(-scores, axis=1, kind="stable")
    take = np.arange(len(_CONSENT_PAIRS))[None, :] < n_pairs[:, None]
    person = np.broadcast_to(chosen[:, None], ranking.shape)[take]
    pair = ranking[take]

    start = np.datetime64("2021-01-01", "D")
    span = (REFERENCE_DATE - 60 - start).astype(np.int64)
    first_day = start + rng.integers(0, span, len(person))
    granted = rng.random(len(person)) < CONSENT_FIRST_GRANTED
    u = rng.random(len(person))
    changes = np.where(granted, u < CONSENT_LATER_WITHDRAWN, u < CONSENT_REFUSED_THEN_GRANTED)
    second_day = _day_between(rng, first_day + 1, REFERENCE_DATE - 30)
    regranted = changes & granted & (rng.random(len(person)) < CONSENT_REGRANTED)
    third_day = _day_between(rng, second_day + 1, REFERENCE_DATE - 1)

    decision_person = np.concatenate([person, person[changes], person[regranted]])
    decision_pair = np.concatenate([pair, pair[changes], pair[regranted]])
    status = np.concatenate(
        [np.where(granted, "同意", "拒绝"), np.where(granted[changes], "撤回", "同意"), np.full(regranted.sum(), "同意")]
    )
    day = np.concatenate([first_day, second_day[changes], third_day[regranted]])
    channels = np.array([c for c, _ in CONSENT_CHANNELS], dtype=STRING)
    channel = channels[rng.choice(len(channels), size=len(day), p=[w for _, w in CONSENT_CHANNELS])]
    seconds = np.where(channel == "政务APP", rng.integers(7 * 3600, 23 * 3600, len(day)), _office_seconds(rng, len(day)))
    moment = day.astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    order = np.lexsort((decision_pair, decision_person, moment))
    purposes = np.array([p for p, _, _ in _CONSENT_PAIRS], dtype=STRING)
    recipients = np.array([r for _, r, _ in _CONSENT_PAIRS], dtype=STRING)
    p, k = decision_person[order], decision_pair[order]
    columns = {
        "consent_id": numbered("CS", len(order), 8),
        "sfzh": pop.id18[p].astype(STRING),
        "xm": pop.name[p],
        "purpose": purposes[k],
        "recipient": recipients[k],
        "status": status[order].astype(STRING),
        "decided_at": _timestamps(day[order], seconds[order]),
        "channel": channel[order],
    }
    details, deletions = _consent_details(rng, pop, p, day[order])
    columns |= details
    columns = {c: np.concatenate([np.asarray(v, dtype=STRING), deletions[c]]) for c, v in columns.items() if c != "consent_id"}
    n = len(columns["sfzh"])
    columns = {"consent_id": numbered("CS", n, 8), **columns}
    write_parquet(path, pa.table({c: pa.array(v, type=pa.string()) for c, v in columns.items()}))
    return n


def _consent_details(
    rng: np.random.Generator, pop: Population, person: np.ndarray, day: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Categories (lb), expiry (yxq) and guardian (jhr) of each decision; and deletion requests (删除).

    Drawn after the decisions themselves, so adding them did not change a seed's decisions.
    A deletion request is a further row with purpose and recipient ``*``.
    """
    categories = np.full(len(person), "basic", dtype=object)
    health = ((pop.chronic[person] >= 0) | pop.pregnant[person]) & (rng.random(len(person)) < CONSENT_SENSITIVE_NAMED)
    judicial = pop.corrections[person] & (rng.random(len(person)) < CONSENT_SENSITIVE_NAMED)
    child = pop.age[person] < 14
    categories[health] += ",health"
    categories[judicial] += ",judicial"
    categories[child] += ",minor"
    expiring = rng.random(len(person)) < CONSENT_EXPIRING
    expiry = day + rng.integers(365, 3 * 365, len(person))
    expires = np.where(expiring, np.datetime_as_string(expiry, unit="D").astype(STRING), "")

    # A child's guardian: the oldest adult of the household, when there is one.
    households = pd.DataFrame({"household": pop.household, "age": pop.age, "id": pop.id18.astype(str)})
    adults = households[households["age"] >= 18].sort_values("age", ascending=False).drop_duplicates("household")
    guardian_of = households["household"].map(adults.set_index("household")["id"]).fillna("").to_numpy(dtype=object)
    signed = child & (rng.random(len(person)) < CONSENT_GUARDIAN_RECORDED)
    guardian = np.where(signed, guardian_of[person], "")

    deciders = np.unique(person)
    deleting = deciders[rng.random(len(deciders)) < CONSENT_DELETION]
    last_day = pd.Series(day).groupby(person).max()
    delete_day = _day_between(rng, last_day[deleting].to_numpy() + 1, REFERENCE_DATE - 1)
    channels = np.array([c for c, _ in CONSENT_CHANNELS], dtype=STRING)
    empty = np.full(len(deleting), "", dtype=STRING)
    deletions = {
        "sfzh": pop.id18[deleting].astype(STRING),
        "xm": pop.name[deleting].astype(STRING),
        "purpose": np.full(len(deleting), "*", dtype=STRING),
        "recipient": np.full(len(deleting), "*", dtype=STRING),
        "status": np.full(len(deleting), "删除", dtype=STRING),
        "decided_at": _timestamps(delete_day, _office_seconds(rng, len(deleting))),
        "channel": channels[rng.integers(0, len(channels), len(deleting))],
        "lb": empty, "yxq": empty, "jhr": empty,
    }
    details = {"lb": categories.astype(STRING), "yxq": expires, "jhr": guardian.astype(STRING)}
    return details, deletions


# ================================================================================================
# Ground truth
# ================================================================================================


def _ground_truth(tables: Mapping[str, SourceRows], pop: Population, updates: GridUpdates) -> pa.Table:
    """``record_id, true_person_id, source, defects`` (``|``-joined) for every person-source row (grid updates:
    no defect, typed as told)."""
    record_ids = [np.strings.add("grid_updates:", updates.keys)]
    persons = [pop.person_id[updates.person]]
    sources = [np.full(len(updates.person), "grid_updates", dtype=STRING)]
    defects = [np.full(len(updates.person), "", dtype=STRING)]
    for source, rows in tables.items():
        record_ids.append(np.strings.add(f"{source}:", rows.keys))
        persons.append(pop.person_id[rows.person])
        sources.append(np.full(rows.n, source, dtype=STRING))
        # Rows share few combinations of defects: spell each combination once.
        mask = np.zeros(rows.n, dtype=np.int64)
        for bit, defect in enumerate(DEFECTS):
            mask |= rows.defects[defect].astype(np.int64) << bit
        combos, inverse = np.unique(mask, return_inverse=True)
        spelled = ["|".join(d for bit, d in enumerate(DEFECTS) if combo >> bit & 1) for combo in combos.tolist()]
        defects.append(np.array(spelled, dtype=STRING)[inverse])
    return pa.table(
        {
            "record_id": pa.array(np.concatenate(record_ids), type=pa.string()),
            "true_person_id": pa.array(np.concatenate(persons), type=pa.string()),
            "source": pa.array(np.concatenate(sources), type=pa.string()),
            "defects": pa.array(np.concatenate(defects), type=pa.string()),
        }
    )


def _hard_negatives(pop: Population, tables: Mapping[str, SourceRows]) -> pa.Table:
    """Pairs that look alike but are two people: twins, namesakes born in the same year, and a person
    with a row keyed with another member of the household's ID number (``borrowed_id``) and that member."""
    first = np.flatnonzero((pop.twin_of >= 0) & (np.arange(pop.n) < pop.twin_of))
    twins = pd.DataFrame({"a": first, "b": pop.twin_of[first]})
    year = pop.birth.astype("datetime64[Y]").astype(np.int64) + 1970
    people = pd.DataFrame({"name": pop.name.astype(object), "year": year, "p": np.arange(pop.n)})
    people = people[people.groupby(["name", "year"])["p"].transform("size") > 1]
    pairs = people.merge(people, on=["name", "year"], suffixes=("_a", "_b"))
    pairs = pairs[pairs["p_a"] < pairs["p_b"]]
    twin_pair = pop.twin_of[pairs["p_a"].to_numpy()] == pairs["p_b"].to_numpy()
    namesakes = pd.DataFrame({"a": pairs["p_a"].to_numpy()[~twin_pair], "b": pairs["p_b"].to_numpy()[~twin_pair]})
    borrower = np.concatenate([rows.person[rows.lender >= 0] for rows in tables.values()]).astype(np.int64)
    lender = np.concatenate([rows.lender[rows.lender >= 0] for rows in tables.values()]).astype(np.int64)
    borrowed = pd.DataFrame({"a": np.minimum(borrower, lender), "b": np.maximum(borrower, lender)}).drop_duplicates()
    known = pd.concat([twins, namesakes]).merge(borrowed, on=["a", "b"], how="right", indicator=True)["_merge"]
    borrowed = borrowed[(known == "right_only").to_numpy()]  # a twin or namesake pair already counts as one
    a = np.concatenate([twins["a"].to_numpy(), namesakes["a"].to_numpy(), borrowed["a"].to_numpy()]).astype(np.int64)
    b = np.concatenate([twins["b"].to_numpy(), namesakes["b"].to_numpy(), borrowed["b"].to_numpy()]).astype(np.int64)
    kind = np.r_[np.full(len(twins), "twin"), np.full(len(namesakes), "namesake"), np.full(len(borrowed), "borrowed_id")]
    order = np.lexsort((b, a))
    return pa.table(
        {
            "person_a": pa.array(pop.person_id[a[order]], type=pa.string()),
            "person_b": pa.array(pop.person_id[b[order]], type=pa.string()),
            "kind": pa.array(kind[order].tolist(), type=pa.string()),
        }
    )


def _persons_table(pop: Population, hukou: Hukou, updates: GridUpdates, former: np.ndarray) -> pa.Table:
    """The true people, one row each, with the attributes the departments only partly know."""
    diseases = np.array([""] + [d for d, _ in CHRONIC_DISEASES], dtype=STRING)
    cases = np.array([""] + [c for c, _ in CASE_TYPES], dtype=STRING)
    twin = np.where(pop.twin_of >= 0, pop.person_id[np.maximum(pop.twin_of, 0)], "")

    def text(values: np.ndarray) -> pa.Array:
        return pa.array(values, type=pa.string())

    return pa.table(
        {
            "person_id": text(pop.person_id),
            "name": text(pop.name),
            "former_name": text(former),
            "surname": text(pop.surname),
            "sex": text(np.where(pop.male, "M", "F").astype(STRING)),
            "birth_date": text(format_dates(pop.birth, "iso")),
            "id_number": text(pop.id18.astype("U18").astype(STRING)),
            "phone": text(pop.phone),
            "household": pa.array(pop.household, type=pa.int64()),
            "registered_address": text(pop.registered.text("full")),
            "address": text(pop.current.text("full")),
            "street": text(pop.current.street_names()),
            "community": text(pop.current.community_names()),
            "grid": text(pop.current.grid_names()),
            "moved": pa.array(pop.moved),
            "hukou_address": text(hukou.text),
            "residence_type": text(hukou.kind),
            "residence_status": text(updates.status),
            "minority": pa.array(pop.minority),
            "twin_of": text(twin),
            "lives_alone": pa.array(pop.lives_alone),
            "low_income": pa.array(pop.low_income),
            "disability_grade": pa.array(pop.disability, type=pa.int8()),
            "chronic_disease": text(diseases[pop.chronic + 1]),
            "pregnant": pa.array(pop.pregnant),
            "corrections": pa.array(pop.corrections),
            "case_type": text(cases[pop.case_type + 1]),
        }
    )
