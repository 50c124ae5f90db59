"""Look up before you enter: a worker finds a resident from what they typed, only within their scope,
masked as their list shows them; a resident they may not see is counted, never shown."""

from __future__ import annotations

import json

import pytest

from core.errors import ConfigError
from dedup.settings import LinkSettings
from pipelines.cli import main
from publish.areas import load_area_register
from publish.lookup import LookupQuery, lookup
from tests.publish.conftest import policy
from tests.publish.test_area_products import GRID_WORKERS, published  # noqa: F401 (fixture)
from tests.publish.test_privacy import PEOPLE

pytestmark = pytest.mark.integration


# A list that shows the ID number (masked): only such a list's worker may type a fragment of one.
WITH_IDS = dict(GRID_WORKERS, name="id_workers", columns=[*GRID_WORKERS["columns"], "id_number"],
                mask={**GRID_WORKERS["mask"], "id_number": "partial"})


@pytest.fixture
def world(published, tmp_path):  # noqa: F811
    home, _ = published
    register = load_area_register(tmp_path / "areas.csv")
    return home, policy(GRID_WORKERS, WITH_IDS), register, LinkSettings()


def _find(world, recipient, **typed):
    home, the_policy, register, settings = world
    return lookup(home, recipient, LookupQuery(**typed), the_policy, register, settings)


def test_three_partial_inputs_find_the_resident_masked_as_the_list_shows_him(world):
    # 安老伯, typed as a homophone (博 for 伯), his sex and birth year-month only
    found = _find(world, "grid_workers_cuiyuan_1", name="安老博", sex="男", birth="1940-01")
    assert len(found.matches) == 1 and found.withheld == 0
    match = found.matches[0]
    assert match.fields["person_id"] == "P_a" and match.fields["name"] == "安**"
    assert match.probability >= 0.95 and match.certainty in ("确定是同一人", "很可能是同一人")
    assert set(match.agreed) >= {"姓名", "性别", "出生日期"}
    # where the list shows ID numbers, the last four characters narrow a name and a birth year
    by_id = _find(world, "id_workers_cuiyuan_1", name="安老伯", birth="1940", id_part=PEOPLE["P_a"][1][-4:])
    assert [m.fields["person_id"] for m in by_id.matches] == ["P_a"]
    assert by_id.matches[0].fields["id_number"].endswith(PEOPLE["P_a"][1][-4:]) and "*" in by_id.matches[0].fields["id_number"]


def test_an_id_fragment_is_refused_where_the_list_does_not_show_id_numbers(world):
    # else a worker could test the digits of a number they may not see, one guess at a time
    with pytest.raises(ConfigError, match="cannot use an ID"):
        _find(world, "grid_workers_cuiyuan_1", name="安老伯", birth="1940", id_part=PEOPLE["P_a"][1][-4:])
    with pytest.raises(ConfigError, match="at least two"):
        _find(world, "id_workers_cuiyuan_1", sex="男", id_part=PEOPLE["P_a"][1][-4:])


def test_nothing_outside_the_workers_grid_is_compared_or_counted(world):
    found = _find(world, "grid_workers_cuiyuan_2", name="安老伯", sex="男", birth="1940-01")
    assert (found.matches, found.withheld, found.candidates) == ([], 0, 0)
    # 白奶奶 lives in grid 2: grid 1's worker learns nothing of her
    assert _find(world, "grid_workers_cuiyuan_1", name="白奶奶", birth="1942-02").candidates == 0


def test_a_resident_the_worker_may_not_see_is_counted_not_shown(world):
    # 葛爷爷's consent to the grid service expired: he is registered, the worker sees no detail
    found = _find(world, "grid_workers_cuiyuan_1", name="葛爷爷", sex="男", birth="1945-07")
    assert found.matches == [] and found.withheld == 1


def test_a_resident_who_asked_to_be_deleted_is_not_even_counted(world):
    # 何婆婆 asked to be deleted: "someone like this is registered" would tell of her
    found = _find(world, "grid_workers_cuiyuan_1", name="何婆婆", sex="女", birth="1944-08")
    assert (found.matches, found.withheld) == ([], 0) and found.candidates >= 1


def test_one_typed_part_is_not_enough(world):
    with pytest.raises(ConfigError, match="at least two"):
        _find(world, "grid_workers_cuiyuan_1", name="安老伯")


def test_lookup_on_the_command_line(world, capsys, monkeypatch, tmp_path):
    home, _, _, _ = world
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(json.dumps({"version": 1, "recipients": [GRID_WORKERS]}, ensure_ascii=False),
                           encoding="utf-8")
    monkeypatch.setenv("SILOBREAKER_POLICY", str(policy_file))
    monkeypatch.setenv("SILOBREAKER_AREAS", str(tmp_path / "areas.csv"))
    assert main(["lookup", "--as", "grid_workers_cuiyuan_1", "--name", "安老博", "--sex", "男", "--birth", "1940-01",
                 "--home", str(home), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [m["person_id"] for m in document["matches"]] == ["P_a"]
    assert main(["lookup", "--as", "grid_workers_cuiyuan_1", "--name", "葛爷爷", "--birth", "1945-07",
                 "--home", str(home)]) == 0
    assert "另有 1 名已登记居民" in capsys.readouterr().out
    assert main(["lookup", "--as", "grid_workers_nowhere", "--name", "x", "--birth", "1945", "--home", str(home)]) == 2


def test_a_birth_typed_without_zero_padding_is_the_day_and_an_unreadable_one_is_refused(world):
    # 1940-1-1 is 安老伯's birthday, not "1940-11" (its digits run together)
    found = _find(world, "grid_workers_cuiyuan_1", name="安老伯", birth="1940-1-1")
    assert [m.fields["person_id"] for m in found.matches] == ["P_a"] and "出生日期" in found.matches[0].agreed
    with pytest.raises(ConfigError, match="not a date"):
        _find(world, "grid_workers_cuiyuan_1", name="安老伯", birth="40年")
