"""Adversarial tests: every recipient kind tries to read what it must not, and finds nothing.

The district below has one person per situation the policy must handle; each test plays one
recipient (or one attacker holding a product file) and looks for what should not be there.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.home import DataHome
from pipelines.cli import main
from publish import (
    KEY_POPULATIONS,
    Aggregate,
    AuditLog,
    Warehouse,
    product_key,
    read_product,
)
from staging import id_check_digit
from tests.publish.conftest import make_inputs, policy, records

pytestmark = pytest.mark.integration


def _id(body17: str) -> str:
    return body17 + id_check_digit(body17)


GRID1, GRID2 = "翠苑社区第1网格", "翠苑社区第2网格"
# person -> (name, id number, birth date, grid, attributes)
PEOPLE = {
    "P_a": ("安老伯", _id("33010619400101001"), "1940-01-01", GRID1, dict(lives_alone=True, chronic_disease="高血压")),
    "P_b": ("白奶奶", _id("33010619420202002"), "1942-02-02", GRID2, dict(lives_alone=True)),
    "P_c": ("陈小明", _id("33010620180303003"), "2018-03-03", GRID1, dict(disability_grade=2)),
    "P_d": ("杜小红", _id("33010620160404004"), "2016-04-04", GRID1, dict(disability_grade=3)),
    "P_e": ("鄂大叔", _id("33010619500505005"), "1950-05-05", GRID1,
            dict(lives_alone=True, chronic_disease="糖尿病", corrections=True, case_type="缓刑")),
    "P_f": ("方阿姨", _id("33010619480606006"), "1948-06-06", GRID1, dict(lives_alone=True)),
    "P_g": ("葛爷爷", _id("33010619450707007"), "1945-07-07", GRID1, dict(lives_alone=True)),
    "P_h": ("何婆婆", _id("33010619440808008"), "1944-08-08", GRID1, dict(lives_alone=True)),
}
GUARDIAN_OF_D = _id("33010619880909009")


def _district(withdraw_f: bool = False) -> dict[str, pd.DataFrame]:
    rows = []
    for pid, (name, id_number, birth, grid, extra) in PEOPLE.items():
        rows.append(dict(record_id=f"civil_affairs:{pid}", source="civil_affairs", source_key=pid, name=name,
                         sex="M", birth_date=birth, birth_date_precision="day", id_number=id_number,
                         id_number_valid=True, id_sex="M", phone=f"1380000{pid[-1] * 4}",
                         address=f"示范区{grid}{pid}号", street="西溪街道", community="翠苑社区", grid=grid,
                         record_date="2026-01-01", **extra))
    decisions = []

    def decide(pid, recipient, status, day, categories="basic", expires=None, guardian=None):
        decisions.append(dict(id_number=PEOPLE[pid][1], name=PEOPLE[pid][0], purpose="service_delivery",
                              recipient=recipient, status=status, decided_at=pd.Timestamp(day, tz="UTC"),
                              channel="线下窗口", categories=categories,
                              expires_at=pd.Timestamp(expires, tz="UTC") if expires else pd.NaT,
                              guardian_id_number=guardian))

    for pid in ("P_a", "P_b", "P_f", "P_g", "P_h"):
        decide(pid, "*", "granted", "2025-01-01")  # basic only: no separate consent for health or judicial
    decide("P_c", "*", "granted", "2025-01-01", "basic,minor")  # the child signed, not the guardian
    decide("P_d", "*", "granted", "2025-01-01", "basic,minor", guardian=GUARDIAN_OF_D)
    decide("P_e", "*", "granted", "2025-01-01", "basic,health,judicial")
    decide("P_g", "*", "granted", "2025-06-01", expires="2026-06-01")  # renewed for one year, now expired
    if withdraw_f:
        decide("P_f", "*", "withdrawn", "2026-10-01")
    decisions.append(dict(decisions[-1], id_number=PEOPLE["P_h"][1], name=PEOPLE["P_h"][0], purpose="*",
                          recipient="*", status="deletion_requested", decided_at=pd.Timestamp("2026-09-01", tz="UTC"),
                          categories=None, expires_at=pd.NaT, guardian_id_number=None))
    consent = pd.DataFrame(decisions)
    consent.insert(0, "record_id", [f"consent:{i}" for i in range(len(consent))])
    consent.insert(1, "source", "consent_registry")
    consent.insert(2, "source_key", [str(i) for i in range(len(consent))])
    recs = records(*rows)
    return {"records": recs, "mapping": recs[["record_id"]].assign(person_id=recs["source_key"]), "consent": consent}


GRID_WORKER = dict(name="grid_worker_1", description="网格员", kind="grid_worker", level="grid",
                   purpose="service_delivery", legal_basis="consent", consent_recipient="grid",
                   columns=["person_id", "name", "age", "chronic_disease", "case_type", "key_populations"],
                   scope={"grid": GRID1}, population=["elderly_living_alone", "disabled", "chronic_patient"],
                   mask={"name": "partial"})
HEALTH_DEPT = dict(name="health_doctors", description="卫健", kind="department", level="district",
                   purpose="service_delivery", legal_basis="consent", consent_recipient="health",
                   columns=["person_id", "name", "chronic_disease", "corrections", "key_populations"],
                   key_populations=["elderly_living_alone", "chronic_patient", "community_corrections"])
REGISTER = dict(name="civil_register", description="民政 assistance register", kind="department", level="district",
                purpose="service_delivery", legal_basis="statutory", legal_reference="社会救助暂行办法",
                statutory_register=True, columns=["person_id", "name", "id_number", "chronic_disease"],
                sensitive_legal_reference={"health": "社会救助暂行办法 第二十八条"})
ANALYST = dict(name="analysts", description="统计", kind="analyst", level="district", purpose="statistics",
               legal_basis="statutory", legal_reference="统计法", pseudonymise=True,
               columns=["person_id", "sex", "age", "grid", "key_populations"],
               key_populations=["elderly_living_alone", "disabled"],
               # eight people: k-anonymity is tested in test_anonymity.py; here everyone must stay countable
               k_anonymity={"k": 2, "known_populations": []})
ANALYST_2 = dict(ANALYST, name="researchers", description="another analyst")
STATS = dict(name="district_statistics", description="counts", kind="analyst", level="district",
             purpose="statistics", legal_basis="statutory", aggregate={"by": "grid", "threshold": 3})
ALL = (GRID_WORKER, HEALTH_DEPT, REGISTER, ANALYST, ANALYST_2, STATS)
CONSENT_BASED = {"grid_worker_1", "health_doctors"}


def _publish(home, district, run_id="run1"):
    wh = Warehouse(home)
    candidate = wh.build_candidate(make_inputs(district, run_id=run_id), policy(*ALL))
    wh.publish(candidate)
    return wh


def _read(home, recipient) -> pd.DataFrame:
    return read_product(DataHome.at(home).product_file(recipient), product_key(home, recipient)).to_pandas()


@pytest.fixture
def home(tmp_path):
    _publish(tmp_path, _district())
    return tmp_path


def test_grid_worker_sees_only_their_grid(home):
    grid = _read(home, "grid_worker_1")
    assert "P_b" not in set(grid["person_id"])  # 白奶奶 lives in grid 2
    assert set(grid["person_id"]) <= {pid for pid, p in PEOPLE.items() if p[3] == GRID1}
    assert list(grid.columns) == GRID_WORKER["columns"]
    assert grid["name"].str.fullmatch(r".\*+").all()  # masked


def test_health_and_judicial_columns_need_separate_consent(home):
    for recipient in CONSENT_BASED:
        product = _read(home, recipient).set_index("person_id")
        # 安老伯 consented to sharing (basic) but not to his diagnosis: the row is there, the disease is not
        assert pd.isna(product.loc["P_a", "chronic_disease"])
        assert "chronic_patient" not in list(product.loc["P_a", "key_populations"])
        # 鄂大叔 named health and judicial separately: both are shared with consent-based recipients
        assert product.loc["P_e", "chronic_disease"] == "糖尿病"
        assert "chronic_patient" in list(product.loc["P_e", "key_populations"])
    assert _read(home, "health_doctors").set_index("person_id").loc["P_e", "corrections"]
    assert pd.isna(_read(home, "health_doctors").set_index("person_id").loc["P_a", "corrections"])
    # the statutory register has the disease without consent (PIPL art. 13(3))
    assert _read(home, "civil_register").set_index("person_id").loc["P_a", "chronic_disease"] == "高血压"


def test_statutory_recipient_gets_only_the_key_populations_its_policy_names(tmp_path):
    # 民政 received community-corrections and chronic-disease flags beside full ID numbers although its
    # policy named neither (minimum necessity, PIPL art. 6): now key_populations shows only what is named.
    register = dict(REGISTER, name="assistance", columns=["person_id", "id_number", "key_populations"],
                    population=["elderly_living_alone", "disabled"])
    wh = Warehouse(tmp_path)
    wh.publish(wh.build_candidate(make_inputs(_district()), policy(register)))
    product = _read(tmp_path, "assistance").set_index("person_id")
    assert "P_e" in product.index  # 鄂大叔 lives alone at 76: in the register
    shown = {k for flags in product["key_populations"] for k in flags}
    assert shown == {"elderly_living_alone", "disabled"}
    assert list(product.loc["P_e", "key_populations"]) == ["elderly_living_alone"]  # not corrections nor chronic


def test_child_needs_the_guardians_consent(home):
    for recipient in CONSENT_BASED:
        people = set(_read(home, recipient)["person_id"])
        assert "P_c" not in people  # the child decided alone
        assert "P_d" in people  # the guardian decided, naming the minor category
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        reasons = con.execute("SELECT DISTINCT reason FROM consent_exclusions WHERE person_id = 'P_c'").fetchall()
    assert reasons == [("no_guardian_consent",)]


def test_expired_consent_and_deletion_request_exclude(home):
    for recipient in CONSENT_BASED:
        people = set(_read(home, recipient)["person_id"])
        assert "P_g" not in people and "P_h" not in people
    # deletion: gone from every product but the statutory register
    assert "P_h" in set(_read(home, "civil_register")["person_id"])
    analysts = _read(home, "analysts")
    assert len(analysts) == len(PEOPLE) - 1
    entries = {e["recipient"]: e for e in AuditLog(home).entries()}
    assert entries["health_doctors"]["exclusions"]["deleted"] == 1
    assert entries["health_doctors"]["exclusions"]["expired"] == 1
    assert entries["analysts"]["exclusions"] == {"deleted": 1}


def test_analytics_products_hold_no_direct_identifiers(home):
    direct = {v for pid, (name, id_number, *_) in PEOPLE.items() for v in (pid, name, id_number)}
    for recipient in ("analysts", "researchers", "district_statistics"):
        product = _read(home, recipient)
        assert not {"person_id", "name", "id_number", "phone", "address", "birth_date"} & set(product.columns)
        cells = {str(v) for column in product.columns for v in product[column].explode().dropna()}
        assert not cells & direct, recipient
        assert not any(phone in cell for cell in cells for phone in ("13800", "示范区"))


def test_pseudonyms_of_two_recipients_do_not_join(home):
    first, second = _read(home, "analysts"), _read(home, "researchers")
    assert len(first) == len(second) == len(PEOPLE) - 1
    assert set(first["person_key"]).isdisjoint(second["person_key"])
    assert first["person_key"].is_unique


def test_pseudonyms_of_two_releases_do_not_join_unless_the_policy_keeps_them(home):
    # Seen: joining two nights of the 100k demo's analyst rows on a lasting person_key left 215 people alone in the
    # pair of their classes, 210 of them people who had moved (benchmarks/analyst_releases.py).
    first, kept_first = _read(home, "analysts"), _read(home, "researchers")
    wh = Warehouse(home)
    stable = dict(ANALYST_2, pseudonyms="stable")
    wh.publish(wh.build_candidate(make_inputs(_district(), run_id="run2"), policy(*ALL[:-2], stable, STATS)))
    second, kept_second = _read(home, "analysts"), _read(home, "researchers")
    assert len(first) == len(second) == len(PEOPLE) - 1
    assert set(first["person_key"]).isdisjoint(second["person_key"])  # per_release, the default
    assert second["person_key"].is_unique
    assert sorted(kept_second["person_key"]) != sorted(kept_first["person_key"])  # run1 was per_release too
    wh.publish(wh.build_candidate(make_inputs(_district(), run_id="run3"), policy(*ALL[:-2], stable, STATS)))
    assert sorted(_read(home, "researchers")["person_key"]) == sorted(kept_second["person_key"])
    logged = duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True).sql(
        "SELECT run_id, recipient, disclosure->>'pseudonyms', disclosure->>'levels_from' FROM publication_log "
        "WHERE recipient IN ('analysts', 'researchers') ORDER BY run_id, recipient").fetchall()
    assert logged == [("run1", "analysts", "per_release", "chosen"), ("run1", "researchers", "per_release", "chosen"),
                      ("run2", "analysts", "per_release", "kept"), ("run2", "researchers", "stable", "kept"),
                      ("run3", "analysts", "per_release", "kept"), ("run3", "researchers", "stable", "kept")]
    # The levels the next release may not undercut are in the audit log too, which a restore does not take back.
    generalised = [e["generalisation"] for e in AuditLog(home).entries() if e["recipient"] == "analysts"]
    assert len(generalised) == 3 and all(g["quasi_identifiers"] == ["sex", "age", "grid"] for g in generalised)


def test_product_cannot_be_opened_without_its_key(home):
    path = DataHome.at(home).product_file("grid_worker_1")
    with pytest.raises(OSError, match="encrypted"):
        pq.read_table(path)
    with pytest.raises(duckdb.Error, match="encrypted"):
        duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall()
    with pytest.raises(ValueError, match="wrong product key"):  # another recipient's key
        read_product(path, product_key(home, "health_doctors"), identifier="grid_worker_1")
    raw = path.read_bytes()
    for name, *_ in PEOPLE.values():
        assert name.encode() not in raw  # names are not in the clear anywhere in the file
    assert b"person_id" not in raw and b"chronic_disease" not in raw  # nor is the schema


def test_withdrawal_takes_effect_at_the_next_run_and_is_logged(home):
    before = {r: set(_read(home, r)["person_id"]) for r in ("grid_worker_1", "health_doctors", "civil_register")}
    assert all("P_f" in people for people in before.values())
    _publish(home, _district(withdraw_f=True), run_id="run2")
    after = {r: set(_read(home, r)["person_id"]) for r in before}
    for recipient in CONSENT_BASED:
        assert after[recipient] == before[recipient] - {"P_f"}  # exactly that person, nobody else
    assert after["civil_register"] == before["civil_register"]  # statutory: still there
    log = AuditLog(home)
    run2 = {e["recipient"]: e for e in log.entries() if e["run_id"] == "run2"}
    assert run2["grid_worker_1"]["exclusions"]["withdrawn"] == 1
    assert run2["health_doctors"]["exclusions"]["withdrawn"] == 1
    received = [(e["run_id"], e["recipient"]) for e in log.person(PEOPLE["P_f"][1])]
    assert ("run1", "grid_worker_1") in received and ("run2", "grid_worker_1") not in received
    assert ("run2", "civil_register") in received
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        excluded = con.execute(
            "SELECT recipient FROM consent_exclusions WHERE person_id = 'P_f' AND reason = 'withdrawn' ORDER BY 1"
        ).fetchall()
        history = con.execute("SELECT status FROM consent_decisions WHERE name = '方阿姨' ORDER BY decided_at").fetchall()
    assert excluded == [("grid_worker_1",), ("health_doctors",)]
    assert history == [("granted",), ("withdrawn",)]  # the history is kept, not overwritten
    assert log.verify().ok and log.verify().entries == 2 * len(ALL)


def test_audit_verify_names_the_first_edited_entry(home, capsys):
    log = AuditLog(home)
    assert log.verify().ok
    assert main(["audit", "verify", "--home", str(home)]) == 0
    lines = log.path.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[2])
    entry["row_count"] += 1  # someone hides that one more person was shared
    lines[2] = json.dumps(entry, ensure_ascii=False, sort_keys=True)
    log.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = log.verify()
    assert not result.ok and result.broken_seq == 3 and "hash" in result.reason
    assert main(["audit", "verify", "--home", str(home)]) == 1
    assert "BROKEN at entry 3" in capsys.readouterr().out


def test_audit_verify_detects_a_removed_entry_and_a_recomputed_hash(home):
    log = AuditLog(home)
    lines = log.path.read_text(encoding="utf-8").splitlines()
    log.path.write_text("\n".join(lines[:1] + lines[2:]) + "\n", encoding="utf-8")
    assert log.verify().broken_seq == 3  # seq 2 is missing
    # a forger who recomputes the edited entry's own hash cannot recompute its signature, and breaks the next link
    from publish.audit import _entry_hash

    entry = json.loads(lines[1])
    entry["recipient"] = "someone_else"
    entry["hash"] = _entry_hash(entry)
    log.path.write_text("\n".join([lines[0], json.dumps(entry), *lines[2:]]) + "\n", encoding="utf-8")
    result = log.verify()
    assert not result.ok and result.broken_seq == 2 and "signature does not verify" in result.reason
    del entry["signature"], entry["signed_by"]
    entry["hash"] = _entry_hash(entry)
    log.path.write_text("\n".join([lines[0], json.dumps(entry), *lines[2:]]) + "\n", encoding="utf-8")
    result = log.verify()
    assert not result.ok and result.broken_seq == 2 and "not signed, though entries before it are" in result.reason


def test_audit_person_lists_recipients_without_storing_id_numbers(home, capsys):
    assert main(["audit", "person", PEOPLE["P_d"][1], "--home", str(home), "--json"]) == 0
    received = json.loads(capsys.readouterr().out)
    assert {e["recipient"] for e in received} == {"grid_worker_1", "health_doctors", "civil_register", "analysts",
                                                 "researchers"}
    assert all(e["legal_basis"] in ("consent", "statutory") and e["purpose"] for e in received)
    stored = log_text = (DataHome.at(home).audit_log_file).read_text(encoding="utf-8")
    stored += "".join(p.read_text() for p in (DataHome.at(home).audit_members_dir).iterdir())
    assert not any(p[1] in stored for p in PEOPLE.values())
    assert "P_" not in log_text


def test_product_read_cli_decrypts_and_queries(home, capsys, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain") / "grid.parquet"
    assert main(["product", "read", "grid_worker_1", "--home", str(home), "--out", str(out)]) == 0
    assert len(pq.read_table(out)) == len(_read(home, "grid_worker_1"))
    capsys.readouterr()
    assert main(["product", "read", "grid_worker_1", "--home", str(home),
                 "--sql", "SELECT count(*) AS n FROM product"]) == 0
    assert str(len(_read(home, "grid_worker_1"))) in capsys.readouterr().out


def test_audit_verify_detects_an_altered_membership_file(home):
    log = AuditLog(home)
    members = DataHome.at(home).audit_members_file(2)
    members.write_text(members.read_text() + "0" * 64 + "\n")  # someone adds a person after the fact
    result = log.verify()
    assert not result.ok and result.broken_seq == 2 and "membership" in result.reason


def test_published_statistics_have_no_small_or_recoverable_cell(home):
    from tests.publish.test_statistics import recoverable_with_noise

    stats = _read(home, "district_statistics")
    threshold = STATS["aggregate"]["threshold"]
    published = stats.loc[~stats["suppressed"], "people"]
    assert not ((published > 0) & (published < threshold)).any()
    assert stats.loc[stats["suppressed"], "people"].isna().all()
    assert stats["suppressed"].any()  # the district is small: something had to be hidden
    # rebuild the true table from the warehouse and let the attacker try
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        truth = con.execute(
            "SELECT grid, " + ", ".join(f"count(*) FILTER (WHERE {p})" for p in KEY_POPULATIONS)
            + " FROM unified_population WHERE person_id NOT IN (SELECT person_id FROM deletion_requests)"
            " GROUP BY grid ORDER BY grid"
        ).fetchall()
    areas = [row[0] for row in truth] + ["total"]
    cells = np.array([row[1:] for row in truth])
    table = np.zeros((len(areas), len(KEY_POPULATIONS) + 1), dtype=np.int64)
    table[:-1, :-1] = cells
    table[:-1, -1] = cells.sum(axis=1)
    table[-1] = table[:-1].sum(axis=0)
    hidden = (
        stats.assign(row=stats["area"].map(areas.index),
                     col=stats["population"].map([*KEY_POPULATIONS, "total"].index))
        .pivot(index="row", columns="col", values="suppressed").to_numpy(dtype=bool)
    )
    published_values = stats.pivot(index="area", columns="population", values="people")
    noise = Aggregate(**STATS["aggregate"]).noise
    assert abs(published_values.loc["total", "total"] - table[-1, -1]) <= noise  # perturbed, within its bound
    # The attacker reads the perturbed published counts and knows the noise range (zeros are hidden
    # too, so an attacker told the exact published values could deduce a hidden zero from a line
    # whose published cells already make up its total; perturbation is what prevents that).
    shown = (
        stats.assign(row=stats["area"].map(areas.index),
                     col=stats["population"].map([*KEY_POPULATIONS, "total"].index))
        .pivot(index="row", columns="col", values="people").fillna(0).to_numpy(dtype=np.int64)
    )
    assert recoverable_with_noise(shown, hidden, noise) == []


def test_a_withdrawal_of_everything_covers_every_purpose(home):
    # 方阿姨 withdraws "everything" (purpose * , recipient *): a grant for service_delivery must not survive it.
    district = _district()
    consent = district["consent"]
    withdrawal = consent[consent["name"] == PEOPLE["P_f"][0]].iloc[[0]].assign(
        record_id="consent:all", source_key="all", purpose="*", status="withdrawn",
        decided_at=pd.Timestamp("2026-10-01", tz="UTC"))
    _publish(home, dict(district, consent=pd.concat([consent, withdrawal], ignore_index=True)), run_id="run2")
    for recipient in CONSENT_BASED:
        assert "P_f" not in set(_read(home, recipient)["person_id"])
    assert "P_f" in set(_read(home, "civil_register")["person_id"])  # statutory: not a consent matter


def test_a_withdrawal_that_vanishes_from_the_registry_stays_in_force(home):
    district = _district(withdraw_f=True)
    _publish(home, district, run_id="run2")
    assert all("P_f" not in set(_read(home, r)["person_id"]) for r in CONSENT_BASED)
    # The next export lost the withdrawal row: nobody is revived by a row going missing.
    consent = district["consent"]
    _publish(home, dict(district, consent=consent[consent["status"] != "withdrawn"]), run_id="run3")
    for recipient in CONSENT_BASED:
        assert "P_f" not in set(_read(home, recipient)["person_id"])
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        kept = con.execute("SELECT status FROM consent_decisions WHERE name = '方阿姨' ORDER BY decided_at").fetchall()
    assert kept == [("granted",), ("withdrawn",)]


def test_a_withdrawal_for_a_recipient_code_nothing_uses_fails_closed(home, caplog):
    """Reliability audit: 吕秀英's withdrawal written for recipient 网格 where the registry says grid was counted as
    unknown_recipient at info level and ignored: her grant stood and the grid worker's list showed her again. A
    withdrawal, refusal or deletion request for a code neither the policy nor any grant in the registry uses may be
    meant for one of the policy's recipients: it applies to every product until the registry writes the code."""
    district = _district()
    consent = district["consent"]
    granted = consent[(consent["name"] == PEOPLE["P_f"][0]) & (consent["status"] == "granted")].iloc[[0]]
    typo = granted.assign(record_id="consent:typo", source_key="typo", recipient="网格", status="withdrawn",
                          decided_at=pd.Timestamp("2026-10-01", tz="UTC"))
    # a withdrawal for a recipient of another system, to which the registry grants too, is that system's matter
    other = granted.assign(record_id="consent:other", source_key="other", recipient="bank")
    other_withdrawn = other.assign(record_id="consent:other2", source_key="other2", status="withdrawn",
                                   id_number=PEOPLE["P_a"][1], name=PEOPLE["P_a"][0],
                                   decided_at=pd.Timestamp("2026-10-01", tz="UTC"))
    with caplog.at_level("WARNING"):
        _publish(home, dict(district, consent=pd.concat([consent, typo, other, other_withdrawn], ignore_index=True)),
                 run_id="run2")
    for recipient in CONSENT_BASED:
        assert "P_f" not in set(_read(home, recipient)["person_id"])
    assert "P_a" in set(_read(home, "grid_worker_1")["person_id"])
    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        problems = con.execute("SELECT person_id, decision_id, rule FROM consent_problems").fetchall()
    assert problems == [("P_f", "consent:typo", "unknown_recipient")]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name == "publish.warehouse"]
    assert any("'网格'" in m and "1 person" in m and "consent_problems" in m for m in warned), warned


def test_decisions_that_match_no_one_are_counted_not_dropped(tmp_path, caplog):
    # Seen: 398 of 4,006 registry rows matched no person, and rows naming recipients not in the policy
    # were dropped without a word. Now each is kept in consent_unmatched with its reason and counted.
    district = _district()
    consent = district["consent"]
    extra = pd.concat([consent.iloc[[0]].assign(record_id="consent:stranger", id_number=_id("11010119900101123")),
                       consent.iloc[[0]].assign(record_id="consent:renamed", recipient="卫健委"),
                       consent.iloc[[0]].assign(record_id="consent:purpose", purpose="marketing")])
    district["consent"] = pd.concat([consent, extra], ignore_index=True)
    with caplog.at_level("INFO", logger="publish.warehouse"):
        _publish(tmp_path, district)
    with duckdb.connect(str(DataHome.at(tmp_path).warehouse_file), read_only=True) as con:
        rows = dict(con.execute("SELECT decision_id, reason FROM consent_unmatched").fetchall())
    assert rows == {"consent:stranger": "no_person", "consent:renamed": "unknown_recipient",
                    "consent:purpose": "unknown_purpose"}
    assert "1 no_person, 1 unknown_purpose, 1 unknown_recipient" in caplog.text
    assert "unknown_recipient '卫健委': 1" in caplog.text  # a renamed recipient is named


def _shown(frame: pd.DataFrame) -> list[tuple]:
    """An analyst product's rows as a reader differencing two releases sees them: without the pseudonym."""
    return sorted(tuple(str(v) for v in row) for row in frame.drop(columns=["person_key"]).itertuples(index=False))


def test_a_lone_arrival_is_not_shown_until_it_cannot_be_told_from_others(home):
    # Seen: differencing two nights of the 100k demo's analyst rows class by class found 92 classes that had gained
    # exactly one row; whoever knew that someone moved in there read their row (benchmarks/analyst_releases.py).
    first = _read(home, "analysts")
    _publish(home, _with_newcomer(), run_id="run2")
    second = _read(home, "analysts")
    assert _shown(second) == _shown(first)  # the class P_i joined is shown as it was last released
    entries = [e for e in AuditLog(home).entries() if e["recipient"] == "analysts"]
    disclosure = json.loads(duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True).sql(
        "SELECT disclosure FROM publication_log WHERE recipient = 'analysts' AND run_id = 'run2'").fetchall()[0][0])
    assert disclosure["held_against"] == entries[0]["content_hash"]
    assert (disclosure["classes_held"], disclosure["rows_behind"]) == (1, 1)
    kept = DataHome.at(home).release_rows_file("analysts", entries[1]["content_hash"])
    assert kept.is_file() and kept.stat().st_mode & 0o077 == 0  # who each row is: the restricted zone's only
    assert all(folder.stat().st_mode & 0o077 == 0 for folder in (kept.parent, kept.parent.parent))


def _with_newcomer() -> dict[str, pd.DataFrame]:
    """The district, and 伊大爷 moved in beside 安老伯 (a lone arrival in his class)."""
    district = _district()
    newcomer = district["records"].iloc[[0]].assign(record_id="civil_affairs:P_i", source_key="P_i", name="伊大爷",
                                                    id_number=_id("33010619400101011"))
    district["records"] = pd.concat([district["records"], newcomer], ignore_index=True)
    district["mapping"] = pd.concat([district["mapping"], pd.DataFrame({"record_id": ["civil_affairs:P_i"],
                                                                         "person_id": ["P_i"]})], ignore_index=True)
    return district


def test_with_the_kept_rows_lost_the_last_release_is_read_back_from_its_product_file_and_its_pseudonyms(home):
    # Seen (audit): the kept rows damaged or removed turned the holding off with a warning: 11 lone arrivals and 5
    # lone departures published that night. Then, read back without who each row was, over half of a 1M district's
    # analyst rows were withheld on the night after an upgrade.
    import shutil

    first = _read(home, "analysts")
    shutil.rmtree(DataHome.at(home).release_rows_dir("analysts"))
    _publish(home, _with_newcomer(), run_id="run2")
    second = _read(home, "analysts")
    disclosure = json.loads(duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True).sql(
        "SELECT disclosure FROM publication_log WHERE recipient = 'analysts' AND run_id = 'run2'").fetchall()[0][0])
    assert disclosure["last_rows"] == "product"
    assert (disclosure["classes_held"], disclosure["classes_withheld"]) == (1, 0)
    assert _shown(second) == _shown(first)  # the newcomer's class as it was, its people found by their pseudonyms
    entry = [e for e in AuditLog(home).entries() if e["recipient"] == "analysts"][-1]
    assert entry["members_count"] == len(second)  # each row's person known to the audit, as on any night


def test_with_the_kept_rows_lost_a_row_of_someone_gone_since_withholds_its_class(home):
    import shutil

    first = _read(home, "analysts")
    shutil.rmtree(DataHome.at(home).release_rows_dir("analysts"))
    district = _district()
    gone = district["records"]["source_key"] == "P_b"  # 白奶奶's records removed: her last row is nobody's now
    district["records"], district["mapping"] = district["records"][~gone], district["mapping"][~gone.to_numpy()]
    _publish(home, district, run_id="run2")
    disclosure = json.loads(duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True).sql(
        "SELECT disclosure FROM publication_log WHERE recipient = 'analysts' AND run_id = 'run2'").fetchall()[0][0])
    assert disclosure["classes_withheld"] == 1
    assert set(_shown(_read(home, "analysts"))) < set(_shown(first))


def test_a_class_whose_last_rows_name_a_deleted_person_is_withheld_not_shown_as_it_was(home):
    first = _read(home, "analysts")
    district = _district()
    consent = district["consent"]
    deletion = consent.iloc[[-1]].assign(record_id="consent:del_a", source_key="del_a", id_number=PEOPLE["P_a"][1],
                                         name=PEOPLE["P_a"][0])
    district["consent"] = pd.concat([consent, deletion], ignore_index=True)
    _publish(home, district, run_id="run2")
    second = _read(home, "analysts")
    disclosure = json.loads(duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True).sql(
        "SELECT disclosure FROM publication_log WHERE recipient = 'analysts' AND run_id = 'run2'").fetchall()[0][0])
    assert disclosure["classes_withheld"] == 1
    assert len(second) == len(first) - 1 - disclosure["rows_withheld"]  # P_a and the rest of their class
    assert not set(_shown(second)) - set(_shown(first))  # nothing new, and no lone departure to read P_a's row from


def test_after_a_restore_the_next_release_is_held_against_the_newest_the_analyst_has(home):
    # Seen (audit): restore to an older generation, then a night: 4 classes differed by 1..4 rows from the newest
    # release the analyst already held, one a lone arrival; the night had been held against the restored one.
    from publish.audit import LastDeliveries
    from publish.generations import Generations

    district = _district()
    _publish(home, district, run_id="run2")
    entries = [e for e in AuditLog(home).entries() if e["recipient"] == "analysts"]
    Generations(home).restore("g000001")
    log = AuditLog(home)
    assert [e for e in log.entries() if e["recipient"] == "analysts"][-1]["content_hash"] == entries[0]["content_hash"]
    assert LastDeliveries(log).newest["analysts"] == entries[1]["content_hash"]  # run2's, which the analyst still has
    _publish(home, district, run_id="run3")
    disclosure = json.loads(duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True).sql(
        "SELECT disclosure FROM publication_log WHERE recipient = 'analysts' AND run_id = 'run3'").fetchall()[0][0])
    assert disclosure["held_against"] == entries[1]["content_hash"]


def test_a_restore_that_would_share_again_someone_who_withdrew_since_is_refused(home):
    # Seen (audit): `silobreaker restore` of a generation from before two deletion requests put both people back in
    # the analysts' product, without a word.
    from core.errors import TerminalError
    from publish.generations import Generations

    _publish(home, _district(withdraw_f=True), run_id="run2")
    with pytest.raises(TerminalError, match=r"before 1 consent withdrawal.*nothing was restored.*silobreaker run"):
        Generations(home).restore("g000001")
    assert "P_f" not in set(_read(home, "grid_worker_1")["person_id"])  # still the current publication
    _publish(home, _district(withdraw_f=True), run_id="run3")
    # the current warehouse damaged (what a restore is for) hides nothing: the generation before it is asked too
    DataHome.at(home).generation_warehouse_file("g000003").write_bytes(b"not a warehouse")
    with pytest.raises(TerminalError, match="that generation g000002 applies"):
        Generations(home).restore("g000001")
    assert Generations(home).restore("g000002").name == "g000002"  # published after the withdrawal: nothing undone
