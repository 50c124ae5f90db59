"""The analyst row product against a re-identifying reader.

Seen on the demo district: on (sex, birth_year, grid) half of the people in ``statistics_analysts``
were unique, 1,525 of them carrying community-corrections, chronic-disease or pregnancy flags; 223 of
263 民政 rows joined to analyst rows on those fields; and counting the rows by community gave back
every cell ``district_statistics`` suppressed. Each test below repeats one of those reads.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from publish import KEY_POPULATIONS, Aggregate, Recipient, build_product, read_product
from publish.anonymity import KAnonymity, anonymise, measure_k
from publish.crypto import product_key
from publish.statistics import statistics_table

QIS = ["sex", "birth_year", "age", "street", "community", "grid"]
SHOWN = ["elderly", "disabled", "chronic_patient", "community_corrections", "low_income_household"]


def district(n: int, seed: int = 7) -> duckdb.DuckDBPyConnection:
    """A district of ``n`` people in 3 streets × 4 communities × 5 grids with realistic flag rates."""
    rng = np.random.default_rng(seed)
    age = rng.integers(0, 95, n)
    grid_no = rng.integers(0, 60, n)
    flags = {
        "elderly": age >= 60, "disabled": rng.random(n) < 0.06, "chronic_patient": rng.random(n) < 0.15 * (age > 35),
        "community_corrections": rng.random(n) < 0.004, "low_income_household": rng.random(n) < 0.03,
    }
    con = duckdb.connect()
    con.register("_p", pa.table({
        "person_id": [f"P{i:07d}" for i in range(n)], "id_number": [f"ID{i:07d}" for i in range(n)],
        "sex": rng.choice(["M", "F"], n), "age": age, "birth_year": 2026 - age - rng.integers(0, 2, n),
        "street": [f"街道{g // 20}" for g in grid_no], "community": [f"社区{g // 5}" for g in grid_no],
        "grid": [f"社区{g // 5}第{g % 5 + 1}网格" for g in grid_no],
        **{f: pa.array(v) for f, v in flags.items()},
        "key_populations": [[f for f in flags if flags[f][i]] for i in range(n)],
    }))
    others = ", ".join(f"false AS {p}" for p in KEY_POPULATIONS if p not in flags)
    con.execute(f"CREATE TABLE unified_population AS SELECT *, {others}, NULL::VARCHAR AS residence_status FROM _p")
    con.execute("CREATE TABLE deletion_requests (person_id VARCHAR)")
    con.execute("CREATE TABLE consent_problems (person_id VARCHAR)")
    return con


ANALYSTS = Recipient(
    name="analysts", description="统计", kind="analyst", level="district", purpose="statistics",
    legal_basis="statutory", legal_reference="统计法", pseudonymise=True,
    columns=["person_id", *QIS, "key_populations"], key_populations=SHOWN,
    sensitive_legal_reference={"health": "卫生健康统计工作管理办法", "judicial": "社区矫正法"},
    # 民政 knows who of its clients is disabled or on 低保: for the analysts' rows, those identify
    k_anonymity={"known_populations": ["disabled", "low_income_household"]},
)
KNOWN = ANALYSTS.k_anonymity.known_populations


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    con = district(6000)
    product = build_product(con, ANALYSTS, home / "analysts.parquet", home)
    rows = read_product(product.path, product_key(home, "analysts")).to_pandas()
    stats = statistics_table(con, Aggregate(by="community", threshold=10), bytes(range(32))).to_pandas()
    truth = con.execute("SELECT * FROM unified_population").df()
    return product, rows, stats, truth


def test_no_row_is_unique_on_its_quasi_identifiers(published):
    product, rows, _, truth = published
    # before: most people are unique on (sex, birth_year, grid)
    unique_before = truth.groupby(["sex", "birth_year", "grid"]).size().eq(1).sum() / len(truth)
    assert unique_before > 0.3
    known = [rows["key_populations"].map(lambda f, c=c: c in list(f)).rename(c) for c in KNOWN]
    classes = rows.groupby([*(rows[c] for c in QIS), *known], dropna=False).size()
    assert classes.min() >= 5
    assert product.disclosure["k_achieved"] == classes.min()
    assert product.disclosure["rows"] == len(truth)
    assert product.disclosure["rows_left_out"] + len(rows) == len(truth)


def test_a_department_holding_names_cannot_single_anyone_out(published):
    _, rows, _, truth = published
    # 民政 knows sex, birth year, age, grid and the disability and 低保 status of its 300 clients, and
    # joins on whatever the product shows (seen: 557 of 1,827 clients matched exactly one row on these)
    clients = truth.sample(300, random_state=1)
    shown = rows.dropna(subset=QIS, how="all")
    matches = []
    for person in clients.itertuples():
        candidates = shown
        for category in KNOWN:
            has = candidates["key_populations"].map(lambda f, c=category: c in list(f))
            candidates = candidates[has == bool(getattr(person, category))]
        for column in QIS:
            value = getattr(person, column)
            released = candidates[column].astype("string")
            fits = released.isna() | released.eq(str(value))
            if column in ("age", "birth_year"):
                bands = released.str.split("-", expand=True)
                if bands.shape[1] == 2:
                    low, high = bands[0].astype("Int64"), bands[1].astype("Int64")
                    fits |= (low <= value) & (value <= high)
            candidates = candidates[fits.fillna(False).to_numpy(dtype=bool)]
        matches.append(len(candidates))
    # every client found has at least four look-alikes in the product (0: the join finds no row at all)
    assert not [m for m in matches if 0 < m < 5]
    assert sum(m > 0 for m in matches) > 250


def test_rows_are_in_pseudonym_order_not_person_order(published):
    # Seen: rows sorted by person_id lined up two analysts' copies row by row, and let a department
    # holding person_ids place its clients' rows.
    _, rows, _, _ = published
    assert rows["person_key"].is_monotonic_increasing


def test_no_class_reveals_a_sensitive_category(published):
    _, rows, _, _ = published
    for category in ("chronic_patient", "community_corrections", "disabled", "low_income_household"):
        has = rows["key_populations"].map(lambda flags, c=category: c in list(flags))
        everyone = has.groupby([rows[c].astype("string").fillna("*") for c in QIS]).all()
        assert not everyone.any(), category


def test_counting_rows_does_not_recover_a_suppressed_statistic(published, tmp_path):
    _, _, stats, truth = published
    # an analyst product that keeps the community (its classes are large) beside district_statistics; without age
    # it does not show ``elderly``, which would stand for the age and split its classes
    by_community = ANALYSTS.model_copy(update={"name": "by_community",
                                               "columns": ["person_id", "sex", "community", "key_populations"],
                                               "key_populations": [c for c in SHOWN if c != "elderly"]})
    con = district(6000)
    build_product(con, by_community, tmp_path / "by_community.parquet", tmp_path)
    rows = read_product(tmp_path / "by_community.parquet", product_key(tmp_path, "by_community")).to_pandas()
    assert rows["community"].notna().mean() > 0.9
    hidden = stats[stats["suppressed"] & (stats["area"] != "total") & (stats["population"] != "total")]
    true = {(a, p): int(truth.loc[truth["community"] == a, p].sum()) for a, p in zip(hidden["area"], hidden["population"])}
    small = {cell: n for cell, n in true.items() if 0 < n < 10 and cell[1] in by_community.key_populations}
    assert small  # the district has suppressed small cells
    for (area, population), n in small.items():
        counted = rows.loc[rows["community"] == area, "key_populations"].map(lambda f, p=population: p in list(f)).sum()
        assert counted != n, (area, population)  # withheld: the rows say 0 where the table hides a small count


def test_a_tiny_product_is_left_out_rather_than_shown():
    table = pa.table({"sex": ["M", "F", "M"], "age": [30, 40, 50], "key_populations": [["disabled"], [], []]})
    out, disclosure = anonymise(table, KAnonymity(k=5), ["disabled"])
    assert out.num_rows == 0 and disclosure.rows_left_out == 3


def test_measure_k_counts_withheld_values_as_a_class():
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('M', NULL), ('M', NULL), ('F', '1')) v(sex, age)")
        assert measure_k(con, "t", ["sex", "age"]) == 1
        assert measure_k(con, "t", ["sex"]) == 1
        assert measure_k(con, "t", []) == 3


def test_a_class_everyone_in_which_has_a_sensitive_category_makes_its_level_too_fine():
    # Ten ages, five men and five women each; the five men aged 35 are all disabled. Exact ages would need
    # their class withheld, which max_suppression=0 forbids: the ages are banded, and nothing is withheld.
    ages = [age for age in range(30, 40) for _ in range(10)]
    sexes = [s for age in range(30, 40) for s in ["男"] * 5 + ["女"] * 5]
    flags = [["disabled"] if (age, sex) == (35, "男") else [] for age, sex in zip(ages, sexes, strict=True)]
    table = pa.table({"sex": sexes, "age": ages, "key_populations": flags})
    out, disclosure = anonymise(table, KAnonymity(k=5, max_suppression=0.0), ["disabled"])
    assert disclosure.rows_suppressed == 0 and disclosure.rows_left_out == 0 and out.num_rows == 100
    assert disclosure.age_band not in (None, 0) and disclosure.sex_shown


def test_each_released_row_keeps_its_own_other_columns_when_rows_before_it_are_left_out():
    """The quasi-identifiers are released from the classes, the other columns are taken by row: a row left
    out (its class too small even withheld) must not shift anyone's pseudonym onto another's age or area."""
    # Three people unlike anyone, first in the table, then ten alike: the three are withheld, and being
    # fewer than k together they are left out; every row after them moves up.
    alone = [("A0", "M", 96, "孤街"), ("A1", "F", 16, "北街"), ("A2", "M", 61, "南街")]
    alike = [(f"B{i}", "F", 40 + i % 2, "东街") for i in range(10)]
    person, sex, age, street = (list(c) for c in zip(*alone, *alike, strict=True))
    table = pa.table({"person_key": person, "sex": sex, "age": age, "street": street,
                      "key_populations": [[] for _ in person]})
    out, disclosure = anonymise(table, KAnonymity(k=5, max_suppression=0.5), [])
    assert disclosure.rows_left_out == 3 and sorted(out.column("person_key").to_pylist()) == sorted(p for p, *_ in alike)
    by_person = {p: (s, a, st) for p, s, a, st in alone + alike}
    for row in out.to_pylist():
        truth_sex, truth_age, truth_street = by_person[row["person_key"]]
        assert row["sex"] in (None, truth_sex) and row["street"] in (None, truth_street), row
        low, _, high = (row["age"] or "0-200").partition("-")
        assert int(low) <= truth_age <= int(high or low), row


def _rows(n: int = 3000) -> pa.Table:
    return district(n).sql(f"SELECT person_id AS person_key, {', '.join(QIS)}, key_populations "
                           "FROM unified_population").to_arrow_table()


def test_the_next_release_keeps_the_last_ones_levels_while_they_are_within_budget():
    # Seen (a 20,000-person district): one night's rows in 5-year bands without area, the next night's in 20-year
    # bands with the street, chosen anew because the budget of suppressed rows was missed by one row. A row unique on
    # everything it showed on both nights was the same person, and the band of one beside the street of the other
    # put them in a class of 3.
    rows, rule = _rows(), KAnonymity()
    _, first = anonymise(rows, rule, SHOWN, ["elderly"])
    assert first.levels_from == "chosen" and first.age_band in (0, 5, 10)
    last = first.as_dict() | {"age_band": 20}  # coarser than the best: within budget, so kept as it is
    out, again = anonymise(rows, rule, SHOWN, ["elderly"], previous=[first.as_dict(), last])
    assert (again.levels_from, again.age_band, again.area, again.sex_shown) == ("kept", 20, first.area, first.sex_shown)
    bands = [age.split("-") for age in out.column("age").to_pylist() if age is not None]
    assert bands and {int(high) - int(low) for low, high in bands} == {19}  # "60-79"
    # Seen (a review): a category another recipient now receives, treated as a quasi-identifier, started afresh.
    more_known = last | {"quasi_identifiers": [*last["quasi_identifiers"], "disabled"]}
    _, still = anonymise(rows, rule, SHOWN, ["elderly"], previous=[more_known])
    assert (still.levels_from, still.age_band) == ("kept", 20)
    # A hierarchy an earlier release did not show holds the next to nothing: age is banded as finely as is best.
    _, anew = anonymise(rows, rule, SHOWN, ["elderly"], previous=[last | {"quasi_identifiers": ["sex"]}])
    assert anew.age_band == first.age_band and anew.sex_shown == first.sex_shown


def test_levels_over_budget_are_coarsened_never_moved_sideways():
    rows, rule = _rows(), KAnonymity()
    _, best = anonymise(rows, rule, SHOWN, ["elderly"])
    assert best.age_band in (0, 5, 10)  # the best levels band age more finely than the last release below
    # 20-year bands with the grid: far over budget for 3,000 people
    last = best.as_dict() | {"age_band": 20, "area": "grid", "sex_shown": True}
    out, coarsened = anonymise(rows, rule, SHOWN, ["elderly"], previous=[last])
    assert coarsened.levels_from == "coarsened"
    assert coarsened.age_band in (20, None)  # not the finer bands the best levels have: a sideways move
    assert coarsened.rows_suppressed <= rule.max_suppression * rows.num_rows and coarsened.k_achieved >= 5


def test_no_release_is_finer_than_any_earlier_one_in_any_hierarchy_even_after_a_restore():
    # A review: a restore put an older release's levels back as the last ones, and the next release could then be
    # finer in area than the release the analyst already held.
    rows, rule = _rows(), KAnonymity()
    _, first = anonymise(rows, rule, SHOWN, ["elderly"])
    assert first.area is not None
    coarsened = first.as_dict() | {"area": None}  # a later release that withheld the area
    _, after = anonymise(rows, rule, SHOWN, ["elderly"], previous=[first.as_dict(), coarsened, first.as_dict()])
    assert after.area is None and after.levels_from == "kept"


def test_a_category_that_follows_from_age_identifies_where_the_age_is_not_shown():
    """Seen (privacy audit, demo district): the analyst rows withheld age (an earlier release's levels) but showed
    ``elderly``; a department knowing its clients' birth years joined on it: classes of one, a man's health status
    read off. A category derived from age is a quasi-identifier like the age it stands for."""
    # Two streets of 30 women, three of them over 60 in each; an earlier release withheld age and showed streets.
    ages = [*range(20, 47), 70, 71, 72] * 2
    table = pa.table({"sex": ["F"] * 60, "age": ages, "street": ["东街"] * 30 + ["西街"] * 30,
                      "key_populations": [["elderly"] if age >= 60 else [] for age in ages]})
    earlier = {"quasi_identifiers": ["sex", "age", "street"], "age_band": None, "area": "street", "sex_shown": True}
    out, disclosure = anonymise(table, KAnonymity(k=5), ["elderly"], previous=[earlier])
    assert disclosure.age_band is None and "elderly" in disclosure.quasi_identifiers
    rows = out.to_pandas()
    elderly = rows["key_populations"].map(lambda flags: "elderly" in list(flags))
    classes = rows.groupby([rows["sex"], rows["age"], rows["street"], elderly], dropna=False).size()
    assert classes.min() >= 5 and disclosure.k_achieved == classes.min()


def test_a_category_that_follows_from_age_costs_nothing_where_the_age_band_shows_it():
    # Ages 0-99, one of each: 5-year bands are the finest level with classes of five, and they tell who is 60 or
    # over as the category does, so counting it as a quasi-identifier changes neither the levels nor the rows.
    table = pa.table({"age": list(range(100)), "key_populations": [["elderly"] if a >= 60 else [] for a in range(100)]})
    out, disclosure = anonymise(table, KAnonymity(k=5, max_suppression=0.0), ["elderly"])
    assert disclosure.age_band == 5 and disclosure.rows_suppressed == 0 and out.num_rows == 100
