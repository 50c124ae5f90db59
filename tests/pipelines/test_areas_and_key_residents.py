"""Areas from addresses and key residents on the published demo district (the shared small run)."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def query(settings, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.home.warehouse_file), read_only=True) as con:
        return con.execute(sql).df()


def test_no_key_resident_whose_address_names_a_community_lacks_a_grid(published_demo):
    settings, _ = published_demo
    counts = query(settings, """
        WITH named AS (SELECT DISTINCT person_id FROM source_records WHERE address_community IS NOT NULL),
        stated AS (SELECT DISTINCT person_id FROM source_records WHERE coalesce(street, community, grid) IS NOT NULL)
        SELECT count(*) FILTER (WHERE k.grid IS NULL) AS without_grid,
               count(DISTINCT k.person_id) FILTER (WHERE k.person_id NOT IN (SELECT person_id FROM stated)) AS by_address
        FROM key_residents k JOIN named USING (person_id)""").iloc[0]
    assert counts["without_grid"] == 0
    # Not vacuous: some key residents are known only to departments that send an address (卫健, 司法).
    assert counts["by_address"] > 0


def test_the_demo_register_places_every_address_where_the_departments_do(published_demo):
    # 民政 and the census state the grid of the very flat they write: the register the demo wrote must
    # place that address in the same grid, whatever way it is written (栋, full-width, traditional).
    settings, _ = published_demo
    placed = query(settings, """
        SELECT count(*) AS n, count(*) FILTER (WHERE address_grid IS DISTINCT FROM grid) AS differ
        FROM source_records WHERE grid IS NOT NULL AND address IS NOT NULL""").iloc[0]
    assert placed["n"] > 100 and placed["differ"] == 0
    unplaced = query(settings, "SELECT count(*) AS n FROM source_records WHERE address IS NOT NULL "
                               "AND address_grid IS NULL")["n"][0]
    assert unplaced == 0


def test_each_area_conflict_is_resolved_by_the_most_recent_record(published_demo):
    settings, _ = published_demo
    conflicts = query(settings, "SELECT * FROM area_conflicts")
    assert len(conflicts) and conflicts.groupby("person_id")["chosen"].sum().eq(1).all()
    latest = conflicts.groupby("person_id")["record_date"].max()
    chosen = conflicts[conflicts["chosen"]].set_index("person_id")
    assert (chosen["record_date"].fillna("") == latest.reindex(chosen.index).fillna("")).all()
    assert chosen["reason"].str.contains("登记日期").all()
    resolved = query(settings, "SELECT u.person_id, u.grid FROM unified_population u "
                               "WHERE u.person_id IN (SELECT person_id FROM area_conflicts)").set_index("person_id")
    assert (resolved.loc[chosen.index, "grid"] == chosen["grid"]).all()


def test_key_residents_list_every_category_of_every_person_with_a_reason(published_demo):
    settings, _ = published_demo
    listed = query(settings, "SELECT person_id, category FROM key_residents")
    flags = query(settings, "SELECT person_id, unnest(key_populations) AS category FROM unified_population")
    assert len(listed) > 0
    pd.testing.assert_frame_equal(listed.sort_values(["person_id", "category"]).reset_index(drop=True),
                                  flags.sort_values(["person_id", "category"]).reset_index(drop=True))
    alone = query(settings, "SELECT k.reason, u.age FROM key_residents k JOIN unified_population u USING (person_id) "
                            "WHERE category = 'elderly_living_alone'")
    assert len(alone) and (alone["reason"] == "年龄" + alone["age"].astype(str) + "岁，独居").all()
    assert "minor_under_14" in set(listed["category"])
