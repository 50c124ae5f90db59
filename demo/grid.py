"""Where the demo's people are registered (户籍地) and what its grid workers report.

Two things the departments' files do not say by themselves:

* **户籍地址.** The census records where each person's household is registered. Most households live where
  they are registered (人户一致); a household that moved within the district is registered at its old flat
  (人户分离); many who came from elsewhere keep their registration there (流动人口), written as that place's
  address.
* **Grid updates.** Grid workers report, in the one form of :mod:`connectors.grid_form`, who died, who moved
  out of the district, an elderly person found living alone whom civil affairs does not record so, a new
  phone, and residents who moved in whom no department knows. They type who it is as told at the door: a
  name, sex, birth year-month, the address in short form, an ID number or phone only sometimes.

All randomness comes from the generator passed in, so the files are reproducible and the other sources'
draws are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from connectors.grid_form import write_grid_update_form
from demo import vocabulary as V
from demo.population import REFERENCE_DATE, Population
from demo.strings import STRING, cat, format_dates
from demo.writers import freeze_zip

__all__ = ["GRID_UPDATE_RATES", "GridUpdates", "Hukou", "build_hukou", "write_grid_updates"]

FLOATING_SHARE = 0.6  # of households whose head came from elsewhere: still registered there (流动人口)
HUKOU_RECORDED = 0.9  # of census rows: 户籍地址 filled in

GRID_UPDATE_RATES = {  # updates per person of the district, by change
    "死亡": 0.002,
    "迁出": 0.003,
    "独居": 0.002,
    "电话变更": 0.002,
    "迁入": 0.002,
}
_NOTES = {
    "死亡": ("家属告知已去世", "邻居告知已去世", "已于今年病故"),
    "迁出": ("随子女迁往外地", "已搬离本区", "房屋已出售，全家迁出"),
    "独居": ("子女在外地工作，独自居住", "老伴去世后独居", "上门核实为独居"),
    "电话变更": ("本人告知新号码", "原号码已停用"),
    "迁入": ("新租住户", "新购房入住", "投靠子女迁入"),
}


@dataclass(frozen=True)
class Hukou:
    """Per person: the registered address as the census writes it, and ``registered`` / ``separated`` /
    ``floating`` (the truth ``residence_type`` of the unified table)."""

    text: np.ndarray
    kind: np.ndarray


def build_hukou(rng: np.random.Generator, pop: Population) -> Hukou:
    """Where each person's household is registered: outside the district for a share of households whose
    head came from elsewhere (by the head's ID area code), else the household's registered flat."""
    codes = pop.id18.astype("S6").astype(STRING)
    households, heads, member_of = np.unique(pop.household, return_index=True, return_inverse=True)
    head_code = codes[heads][member_of]
    known_place = np.isin(head_code, np.array(list(V.HUKOU_PLACES), dtype=STRING))
    floating = known_place & (rng.random(len(households)) < FLOATING_SHARE)[member_of]
    places = np.array([V.HUKOU_PLACES.get(str(code), "") for code in head_code], dtype=STRING)
    roads = np.array(V.HUKOU_ROADS, dtype=STRING)[rng.integers(0, len(V.HUKOU_ROADS), pop.n)]
    numbers = rng.integers(1, 300, pop.n).astype(STRING)
    village = rng.random(pop.n) < 0.4
    outside = np.where(village, cat(places, rng.integers(1, 30, pop.n).astype(STRING), "村",
                                    rng.integers(1, 12, pop.n).astype(STRING), "组"),
                       cat(places, roads, numbers, "号"))
    # a household's registration is one place for all its members
    outside = outside[heads][member_of]
    text = np.where(floating, outside, pop.registered.text("full"))
    kind = np.where(floating, "floating", np.where(pop.moved, "separated", "registered")).astype(STRING)
    return Hukou(text.astype(STRING), kind)


def census_hukou(rng: np.random.Generator, hukou: Hukou, person: np.ndarray) -> np.ndarray:
    """The 户籍地址 column of census rows about ``person``: blank for some (not recorded)."""
    recorded = rng.random(len(person)) < HUKOU_RECORDED
    return np.where(recorded, hukou.text[person], "").astype(STRING)


@dataclass(frozen=True)
class GridUpdates:
    """The rows written: the person behind each and its key (序号); per person, the truth status."""

    person: np.ndarray
    keys: np.ndarray  # source_key: 填报日期|填报人|序号
    status: np.ndarray  # per person of the district: present, moved_out or deceased


def write_grid_updates(rng: np.random.Generator, pop: Population, known: np.ndarray, civil_alone: np.ndarray,
                       hukou: Hukou, path: Path) -> GridUpdates:
    """Choose the reported people, type their identity as a worker does and write the form.

    Args:
        known: per person, whether any department's file has a row of them.
        civil_alone: per person, whether civil affairs records them as living alone.
    """
    taken = np.zeros(pop.n, dtype=bool)
    candidates = {
        "死亡": known & (pop.age >= 70),
        "迁出": known,
        "独居": known & (pop.age >= 60) & pop.lives_alone & ~civil_alone,
        "电话变更": known & (pop.phone != ""),
        "迁入": ~known & (pop.age >= 18),
    }
    people, changes = [], []
    for change, rate in GRID_UPDATE_RATES.items():
        pool = np.flatnonzero(candidates[change] & ~taken)
        # (at least one of each, so a small district shows every change)
        chosen = rng.choice(pool, size=min(len(pool), max(1, round(pop.n * rate))), replace=False) if len(pool) else pool
        taken[chosen] = True
        people.append(np.sort(chosen))
        changes.append(np.full(len(chosen), change, dtype=STRING))
    person = np.concatenate(people)
    change = np.concatenate(changes)
    order = rng.permutation(len(person))
    person, change = person[order], change[order]
    n = len(person)

    birth_month = rng.random(n) < 0.7  # a worker writes the year-month as often as not
    birth = np.where(birth_month, format_dates(pop.birth[person], "iso").astype("U7"),
                     format_dates(pop.birth[person], "iso")).astype(STRING)
    with_id = rng.random(n) < 0.3
    with_phone = (rng.random(n) < 0.4) | (change == "电话变更")
    phone = np.where(change == "电话变更", pop.phone[person], pop.contact[person])
    places = pop.current.take(person)
    short = rng.random(n) < 0.6
    address = np.where(short, places.text("short"), places.text("no_district"))
    note_pick = rng.random(n)
    notes = np.array([_NOTES[str(c)][int(u * len(_NOTES[str(c)]))] for c, u in zip(change, note_pick, strict=True)],
                     dtype=STRING)
    workers = np.array(V.GRID_WORKERS, dtype=STRING)[places.community % len(V.GRID_WORKERS)]
    reported = format_dates(REFERENCE_DATE - rng.integers(1, 60, n), "iso")
    numbers = np.arange(1, n + 1).astype(STRING)
    rows = [
        {
            "序号": str(numbers[i]),
            "变更类型": str(change[i]),
            "姓名": str(pop.name[person[i]]),
            "性别": "男" if pop.male[person[i]] else "女",
            "出生日期": str(birth[i]),
            "身份证号": str(pop.id18[person[i]].decode()) if with_id[i] else "",
            "联系电话": str(phone[i]) if with_phone[i] else "",
            "现住址": str(address[i]),
            "户籍地址": str(hukou.text[person[i]]) if change[i] == "迁入" and hukou.kind[person[i]] == "floating" else "",
            "情况说明": str(notes[i]),
            "填报人": str(workers[i]),
            "填报日期": str(reported[i]),
        }
        for i in range(n)
    ]
    keys = cat(reported.astype(STRING), "|", workers, "|", numbers)  # the form's key: day, worker, number
    write_grid_update_form(path, rows)
    freeze_zip(path)  # the same seed gives the same bytes
    status = np.full(pop.n, "present", dtype=STRING)
    status[person[change == "死亡"]] = "deceased"
    status[person[change == "迁出"]] = "moved_out"
    return GridUpdates(person, keys, status)
