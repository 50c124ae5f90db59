"""Attack: a 民政 record keyed with another resident's valid ID number must not ride on his consent.

An auditor found 李秀英's 民政 record merged into 张建国 because 民政 had keyed it with his ID number:
the number overrode her name, sex and birth date, her data went to the grid worker on his consent,
and nothing of hers could be found under her own number. End to end, at the smallest scale: link the
records as the pipeline does, publish, and read what the recipients receive.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from core.home import DataHome
from dedup import link_records
from publish import Warehouse
from staging import id_check_digit
from tests.publish.conftest import make_inputs, policy, read_shared, records

pytestmark = pytest.mark.integration

HIS_ID = "33010619500101001" + id_check_digit("33010619500101001")  # 张建国, a man born 1950-01-01
GRID = "翠苑社区第1网格"
PLACE = dict(street="西溪街道", community="翠苑社区", grid=GRID, record_date="2026-01-01")
HIM = dict(name="张建国", sex="M", birth_date="1950-01-01", birth_date_precision="day", id_number=HIS_ID,
           id_number_valid=True, id_sex="M", phone="13800000001", address="示范区西溪街道翠苑社区3幢2单元501室", **PLACE)
HER = dict(name="李秀英", sex="F", birth_date="1953-07-15", birth_date_precision="day", phone="13900000002",
           address="示范区西溪街道翠苑社区3幢1单元302室", **PLACE)
DISTRICT = records(
    dict(record_id="civil_affairs:1", source="civil_affairs", source_key="1", **HIM, lives_alone=True),
    dict(record_id="health:1", source="health", source_key="1", **HIM, chronic_disease="高血压"),
    # 民政 keyed her with his number: the number is valid, so nothing looks wrong with the row itself.
    dict(record_id="civil_affairs:2", source="civil_affairs", source_key="2", **HER, id_number=HIS_ID,
         id_number_valid=True, id_sex="M", lives_alone=True, disability_grade=2),
)
CONSENT = pd.DataFrame({
    "record_id": ["consent:1"], "source": "consent_registry", "source_key": ["1"], "id_number": [HIS_ID],
    "name": ["张建国"], "purpose": ["service_delivery"], "recipient": ["*"], "status": ["granted"],
    "decided_at": pd.to_datetime(["2026-01-01"], utc=True), "channel": ["线下窗口"],
})
GRID_WORKER = dict(name="grid_worker_1", description="网格员", kind="grid_worker", level="grid",
                   purpose="service_delivery", legal_basis="consent", consent_recipient="grid",
                   columns=["person_id", "name", "age", "key_populations"], scope={"grid": GRID},
                   population=["elderly_living_alone", "disabled"])
REGISTER = dict(name="civil_register", description="民政 assistance register", kind="department", level="district",
                purpose="service_delivery", legal_basis="statutory", legal_reference="社会救助暂行办法",
                statutory_register=True, columns=["person_id", "name", "id_number"])


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict:
    """Link the district, publish it with his consent, and return what came out."""
    home = tmp_path_factory.mktemp("home")
    linked = link_records(DISTRICT)
    district = {"records": DISTRICT, "mapping": linked.mapping, "consent": CONSENT}
    warehouse = Warehouse(home)
    inputs = make_inputs(district, link_pairs=linked.pairs, review_queue=linked.review_queue,
                         staging_reports=[], trust={"civil_affairs": 0, "health": 1})
    warehouse.publish(warehouse.build_candidate(inputs, policy(GRID_WORKER, REGISTER)))
    person = linked.mapping.set_index("record_id")["person_id"]
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        tables = {name: con.execute(f"SELECT * FROM {name}").df()
                  for name in ("review_queue", "unified_population", "consent_exclusions")}
    return {"home": home, "him": person["civil_affairs:1"], "her": person["civil_affairs:2"], **tables}


def test_her_record_is_not_merged_into_him(published) -> None:
    assert published["her"] != published["him"]


def test_the_conflict_waits_for_a_reviewer_as_an_id_number_conflict(published) -> None:
    queue = published["review_queue"]
    assert "reason" in queue.columns, "the queue says why a pair waits"
    pair = queue[(queue["record_id_a"] == "civil_affairs:1") & (queue["record_id_b"] == "civil_affairs:2")]
    assert pair["reason"].tolist() == ["id_sharing_conflict"]
    assert pair["reason_label"].iloc[0].startswith("公民身份号码冲突")
    assert (pair["name_a"].iloc[0], pair["name_b"].iloc[0]) == ("张建国", "李秀英")


def test_his_consent_does_not_carry_her_into_the_consent_based_product(published) -> None:
    shared = read_shared(published["home"], "grid_worker_1")
    assert published["him"] in set(shared["person_id"]), "he consented, lives alone and is over 60"
    assert published["her"] not in set(shared["person_id"])
    assert "李秀英" not in set(shared["name"])
    excluded = published["consent_exclusions"]
    assert excluded.loc[excluded["person_id"] == published["her"], "reason"].tolist() == ["id_disputed"]


def test_her_golden_record_does_not_present_his_number_as_hers(published) -> None:
    people = published["unified_population"].set_index("person_id")
    assert pd.isna(people.loc[published["her"], "id_number"])
    assert people.loc[published["her"], "id_number_disputed"]
    assert people.loc[published["him"], "id_number"] == HIS_ID
    assert not people.loc[published["him"], "id_number_disputed"]
    # A statutory recipient still has her, as a resident without a known number, and finds him alone under his.
    register = read_shared(published["home"], "civil_register").set_index("person_id")
    assert set(register.index) == {published["him"], published["her"]}
    assert register.loc[published["him"], "id_number"] == HIS_ID
    assert pd.isna(register.loc[published["her"], "id_number"])
