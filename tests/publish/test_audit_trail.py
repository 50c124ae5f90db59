"""Adversarial tests of the audit trail: each attack on the log is tried on a copy of one published home.

The home has two publications (run1, run2) of two products each, so the log holds entries 1–4. An
attacker who can write the audit folder cuts, empties or rewrites the log; one who also holds the
signing key re-signs it; one who also writes the warehouse rewrites its anchors too. Each is caught
by the check named in the test, and ``silobreaker audit verify`` exits 1 naming what disagrees.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.errors import TerminalError
from core.home import DataHome
from core.keys import key_id
from pipelines.cli import main
from publish import (
    AuditLog,
    Generations,
    KeyIdMismatchError,
    Warehouse,
    WarehouseReader,
    product_key,
    pseudonym_key,
    read_product,
)
from publish.audit import _entry_hash
from publish.crypto import product_metadata
from tests.publish.conftest import LI, ZHANG, make_inputs, policy, records, warehouse_rewritten

pytestmark = pytest.mark.integration

LIU = "330106199001010035"
REGISTER = dict(name="civil_register", description="民政 register", kind="department", level="district",
                purpose="service_delivery", legal_basis="statutory", legal_reference="社会救助暂行办法",
                statutory_register=True, columns=["person_id", "name", "id_number"], format="xlsx")
ANALYSTS = dict(name="analysts", description="统计", kind="analyst", level="district", purpose="statistics",
                legal_basis="statutory", legal_reference="统计法", pseudonymise=True, pseudonyms="stable",
                columns=["person_id", "sex", "age", "grid"])
GRID = "翠苑社区第1网格"


def _district(run_id: str) -> dict[str, pd.DataFrame]:
    """张伟 and 李娜 have ID numbers; 王芳 has none, and her person id changes in run2 (merged into a new
    id); two people named 刘洋 share a birth date, one without an ID number; the census knows only the
    month 赵敏 was born in."""
    person = dict(street="西溪街道", community="翠苑社区", grid=GRID, record_date="2026-01-01", birth_date_precision="day")
    recs = records(
        dict(record_id="civil_affairs:1", source="civil_affairs", source_key="1", name="张伟", sex="M",
             birth_date="1950-01-01", id_number=ZHANG, id_number_valid=True, **person),
        dict(record_id="health:2", source="health", source_key="2", name="李娜", sex="F",
             birth_date="1985-02-02", id_number=LI, id_number_valid=True, **person),
        dict(record_id="census:3", source="census", source_key="3", name="王芳", sex="F", birth_date="2015-06-01",
             **person),
        dict(record_id="census:4", source="census", source_key="4", name="刘洋", sex="M", birth_date="1990-01-01",
             id_number=LIU, id_number_valid=True, **person),
        dict(record_id="census:5", source="census", source_key="5", name="刘洋", sex="M", birth_date="1990-01-01",
             **person),
        dict(record_id="census:6", source="census", source_key="6", name="赵敏", sex="F", birth_date="2020-03",
             **{**person, "birth_date_precision": "month"}),
    )
    wang = "P_wang_old" if run_id == "run1" else "P_wang"
    mapping = pd.DataFrame({"record_id": recs["record_id"],
                            "person_id": ["P_zhang", "P_li", wang, "P_liu1", "P_liu2", "P_zhao"]})
    consent = pd.DataFrame({
        "record_id": ["consent:1"], "source": "consent_registry", "source_key": ["1"], "id_number": [ZHANG],
        "name": ["张伟"], "purpose": ["service_delivery"], "recipient": ["*"], "status": ["granted"],
        "decided_at": pd.to_datetime(["2026-01-01"], utc=True), "channel": ["线下窗口"],
    })
    return {"records": recs, "mapping": mapping, "consent": consent}


def _publish(home: Path, run_id: str) -> None:
    history = (pd.DataFrame({"kind": ["merge"], "old_id": ["P_wang_old"], "new_id": ["P_wang"], "records": [1]})
               if run_id != "run1" else None)
    warehouse = Warehouse(home)
    warehouse.publish(warehouse.build_candidate(make_inputs(_district(run_id), run_id=run_id,
                                                            person_id_history=history), policy(REGISTER, ANALYSTS)))


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("audit-trail")
    _publish(home, "run1")
    _publish(home, "run2")
    return home


@pytest.fixture
def home(published, tmp_path) -> Path:
    """A private copy of the published home, to attack."""
    copy = tmp_path / "home"
    shutil.copytree(published, copy, symlinks=True)
    return copy


def verify(home: Path, capsys, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", "verify", "--home", str(home), *extra])
    return code, capsys.readouterr().out


def lines(home: Path) -> list[str]:
    return AuditLog(home).path.read_text(encoding="utf-8").splitlines()


def rewrite(home: Path, edit, *, signed: bool) -> None:
    """Apply ``edit`` to the entries and recompute every hash and link, as a forger would; re-sign them
    with the platform's signing key only when ``signed`` (else the old signatures stay)."""
    log = AuditLog(home)
    signer = Ed25519PrivateKey.from_private_bytes(DataHome.at(home).audit_signing_key_file.read_bytes())
    entries, prev = log.entries(), "0" * 64
    edit(entries)
    for entry in entries:
        entry["prev_hash"] = prev
        entry["hash"] = prev = _entry_hash(entry)
        if signed:
            entry["signature"] = signer.sign(entry["hash"].encode("ascii")).hex()
    log.path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), encoding="utf-8")


def reanchor_warehouse(home: Path) -> None:
    """The warehouse's anchors rewritten to match the log, as someone who can also write the warehouse would."""
    with warehouse_rewritten(home, recorded=True) as con:
        for entry in AuditLog(home).entries():
            con.execute("UPDATE publication_log SET audit_hash = ? WHERE audit_seq = ?", [entry["hash"], entry["seq"]])


def test_the_published_trail_verifies_and_every_entry_is_signed(published, capsys):
    code, out = verify(published, capsys)
    assert code == 0, out
    entries = AuditLog(published).entries()
    assert [e["seq"] for e in entries] == [1, 2, 3, 4] and [e["head_seq"] for e in entries] == [2, 2, 4, 4]
    assert all(e["signed_by"] and e["signature"] for e in entries)
    assert "4 entries, chain verified, 4 signed" in out and "its 4 anchored entries agree" in out
    assert "generation g000002: its 2 products and 1 office file(s) agree" in out and "audit trail intact" in out


def test_deleting_the_last_entry_is_detected_by_the_log_the_warehouse_and_the_product(home, capsys):
    AuditLog(home).path.write_text("\n".join(lines(home)[:-1]) + "\n", encoding="utf-8")

    code, out = verify(home, capsys)

    assert code == 1
    assert "BROKEN at entry 4" in out and "the publication of run run2 ends at entry 4: entry 4 is missing" in out
    assert "the warehouse" in out and "records audit entry 4 (run run2), which the log does not hold (it ends at entry 3)" in out
    assert "DISAGREES: product analysts of generation g000002" in out and "is in no audit entry" in out


def test_a_log_cut_at_a_publication_boundary_is_detected_by_its_anchors(home, capsys):
    AuditLog(home).path.write_text("\n".join(lines(home)[:2]) + "\n", encoding="utf-8")
    assert AuditLog(home).verify().ok  # what is left is a whole, signed log: only the anchors know more

    code, out = verify(home, capsys)

    assert code == 1
    assert "records audit entries 3, 4 (run run2), which the log does not hold (it ends at entry 2)" in out
    assert "product civil_register of generation g000002" in out and "product analysts of generation g000002" in out


def test_a_line_added_in_part_is_refused_by_name_not_taken_for_a_cut_off_write(home):
    # A log ending in part of a line is written whole again only when the part is the start of the entry being
    # appended (a run killed mid-append: tests/pipelines/test_fail_closed.py); anything else is named and refused.
    log = AuditLog(home)
    with log.path.open("ab") as f:
        f.write(b'{"seq": 5, "recipient": "nobody"')
    with pytest.raises(TerminalError, match=r"line 5 is not an entry .*silobreaker audit verify"):
        log.entries()
    with pytest.raises(TerminalError, match=r"line 5 is not an entry"):
        log.head()
    with pytest.raises(TerminalError, match=r"last line \(5\) is incomplete and is not the start of the entry"):
        log.write([])
    assert log.path.read_bytes().endswith(b'"nobody"')  # left as it was found, for the audit

    # A whole entry without its newline parses, so the run goes on: it is refused before the switch, not after it
    # (where the publication would be out without its entries).
    whole = log.path.read_bytes()
    log.path.write_bytes(whole[: whole.rfind(b"\n")])
    assert log.head().seq == 4 and not log.ends_whole()
    current = Generations(home).current()
    with pytest.raises(TerminalError, match="does not end with a whole line.*nothing of run run3 was published"):
        _publish(home, "run3")
    assert Generations(home).current() == current


@pytest.mark.parametrize("attack", ["emptied", "deleted"])
def test_an_emptied_or_deleted_log_is_detected_by_its_anchors(home, capsys, attack):
    path = AuditLog(home).path
    path.write_text("", encoding="utf-8") if attack == "emptied" else path.unlink()

    code, out = verify(home, capsys)

    assert code == 1
    assert "records audit entries 1–4 (runs run1, run2), which the log does not hold (it is empty)" in out
    assert out.count("is in no audit entry") == 4  # both products of both kept generations


def test_a_consistent_rewrite_without_the_signing_key_is_detected(home, capsys):
    def hide_a_person(entries):
        entries[0]["row_count"] -= 1

    rewrite(home, hide_a_person, signed=False)
    code, out = verify(home, capsys)
    assert code == 1 and "BROKEN at entry 1" in out and "signature does not verify" in out
    assert main(["audit", "export", "--home", str(home)]) == 2  # a broken log is never exported

    def strip_signatures(entries):
        for entry in entries:
            del entry["signature"], entry["signed_by"]

    rewrite(home, strip_signatures, signed=False)  # now an unsigned log that chains: the anchors disagree
    # Seen: the log alone passed with every signature stripped although the platform signs.
    alone = AuditLog(home).verify()
    assert not alone.ok and "no entry is signed although the platform signs" in alone.reason
    code, out = verify(home, capsys)
    assert code == 1 and "no entry is signed" in out
    assert "so the log was rewritten" in out


def test_a_rewrite_signed_with_the_key_is_detected_by_the_warehouse_anchor(home, capsys):
    def change_the_purpose(entries):
        entries[2]["purpose"] = "research"

    rewrite(home, change_the_purpose, signed=True)
    assert AuditLog(home).verify().ok  # the forger holds the key: the log alone looks right

    code, out = verify(home, capsys)

    assert code == 1
    assert "records other entries than the log for audit entries 3, 4: entry 3 (civil_register, run run2)" in out
    assert "DISAGREES: product" not in out  # the products' own entries kept their content hashes


def test_a_rewrite_of_the_log_and_the_warehouse_is_detected_by_the_products(home, capsys):
    def change_the_basis(entries):
        entries[0]["legal_reference"] = "another law"

    rewrite(home, change_the_basis, signed=True)
    reanchor_warehouse(home)
    anchored = product_metadata(DataHome.at(home).product_file("civil_register"), product_key(home, "civil_register"))
    assert anchored["silobreaker.audit_seq"] == "3" and anchored["silobreaker.audit_prev_seq"] == "2"

    code, out = verify(home, capsys)

    assert code == 1 and "DISAGREES: the warehouse" not in out
    for recipient in ("civil_register", "analysts"):
        assert (f"product {recipient} of generation g000002 was built on audit entry 2 with hash "
                f"{anchored['silobreaker.audit_prev_hash'][:12]}…, and the log's entry 2 has hash") in out
    assert "product civil_register of generation g000001" not in out  # built on the empty log, before the rewrite


def test_an_export_held_outside_detects_a_later_rewrite_the_other_anchors_cannot_see(home, capsys, tmp_path):
    exported = tmp_path / "notary" / "audit.json"
    assert main(["audit", "export", "--home", str(home), "--out", str(exported)]) == 0
    export = json.loads(exported.read_text(encoding="utf-8"))
    entries = AuditLog(home).entries()
    assert export["head"] == {"seq": 4, "hash": entries[-1]["hash"]} and export["entries"] == entries
    # Anyone holding only the exported public key can check every signature.
    public_key = serialization.load_pem_public_key(export["public_key"].encode("ascii"))
    for entry in export["entries"]:
        public_key.verify(bytes.fromhex(entry["signature"]), entry["hash"].encode("ascii"))
    members = {line for f in DataHome.at(home).audit_members_dir.iterdir() for line in f.read_text().split()}
    assert members and not any(m in exported.read_text(encoding="utf-8") for m in members)

    def change_the_last_purpose(entries):
        entries[-1]["purpose"] = "research"

    rewrite(home, change_the_last_purpose, signed=True)  # with the key, warehouse re-anchored, content unchanged
    reanchor_warehouse(home)
    assert verify(home, capsys)[0] == 0  # the log, the warehouse and the products all agree now

    code, out = verify(home, capsys, "--against", str(exported))

    assert code == 1
    assert f"export {exported}: entry 4 differs from the export" in out and "the log was rewritten after the export" in out


def test_rotating_a_product_key_keeps_old_products_readable_and_the_next_run_uses_the_new_key(home, capsys, tmp_path,
                                                                                            monkeypatch):
    recipient = "analysts"
    with monkeypatch.context() as env:
        env.setenv("SILOBREAKER_PRODUCT_KEY_ANALYSTS", "9eb470e717b33b25fb48215d817c4bf0dda1d01e7f077ac3e8c27fc05976ee64")
        assert main(["keys", "rotate", recipient, "--home", str(home)]) == 2  # rotated where the variable is kept
    old = product_key(home, recipient)
    pseudonyms = pseudonym_key(home, recipient)
    product = DataHome.at(home).product_file(recipient)
    before = read_product(product, old).to_pandas()
    hold = (f"import time; from core.lock import hold_data_home\nwith hold_data_home({str(home)!r}, 'a-run'):\n"
            " print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold], cwd=Path(__file__).resolve().parents[2],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["keys", "rotate", recipient, "--home", str(home)]) == 3  # never during a run
    finally:
        holder.kill()
        holder.wait()
    assert product_key(home, recipient) == old

    assert main(["keys", "rotate", recipient, "--home", str(home)]) == 0

    new = product_key(home, recipient)
    assert new != old and DataHome.at(home).retired_product_key_file(recipient, key_id(old)).read_bytes() == old
    assert read_product(product, old).to_pandas().equals(before)  # the published product, with the old key
    with pytest.raises(KeyIdMismatchError, match=f"encrypted under key id {key_id(old)}; your key is {key_id(new)}"):
        read_product(product, new)
    new_key_file = tmp_path / "new.hex"
    new_key_file.write_text(new.hex())
    capsys.readouterr()
    assert main(["product", "read", recipient, "--home", str(home), "--key-file", str(new_key_file)]) == 2
    err = capsys.readouterr().err
    assert f"this product was encrypted under key id {key_id(old)}; your key is {key_id(new)}" in err
    assert f"the platform keeps it as {DataHome.at(home).retired_product_key_file(recipient, key_id(old))}" in err
    assert main(["product", "read", recipient, "--home", str(home)]) == 0  # the platform finds the retired key

    _publish(home, "run3")

    after = read_product(product, new).to_pandas()
    old_key_file = tmp_path / "old.hex"
    old_key_file.write_text(old.hex())
    capsys.readouterr()
    assert main(["product", "read", recipient, "--home", str(home), "--key-file", str(old_key_file)]) == 2
    assert "it is the platform's current key" in capsys.readouterr().err  # seen: it named a file that did not exist
    assert product_metadata(product, new)["silobreaker.key_id"] == key_id(new)
    assert [e["key_id"] for e in AuditLog(home).entries() if e["recipient"] == recipient] == [key_id(old)] * 2 + [
        key_id(new)]
    assert [a.key_id for a in WarehouseReader(home).audit_anchors() if a.recipient == recipient][-1] == key_id(new)
    assert pseudonym_key(home, recipient) == pseudonyms
    assert sorted(after["person_key"]) == sorted(before["person_key"])  # stable pseudonyms do not change with the key
    kept = DataHome.at(home).generation_product_file("g000002", recipient)
    assert read_product(kept, old).num_rows == len(before)
    assert verify(home, capsys)[0] == 0  # products under the retired key are checked with it


def test_audit_person_answers_by_person_id_and_by_name_and_birth_date(home, capsys):
    log = AuditLog(home)
    everything = {(run, r) for run in ("run1", "run2") for r in ("civil_register", "analysts")}
    # Under her current id alone, 王芳 (no ID number) is in run2's products only: run1 knew her as P_wang_old.
    assert {(e["run_id"], e["recipient"]) for e in log.person_by_ids(["P_wang"])} == {
        ("run2", "civil_register"), ("run2", "analysts")}

    for question in (["--person-id", "P_wang"], ["--name", "王芳", "--birth-date", "2015-06-01"]):
        capsys.readouterr()
        assert main(["audit", "person", *question, "--home", str(home), "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert {(e["run_id"], e["recipient"]) for e in answer} == everything, question

    assert main(["audit", "person", "--name", "刘洋", "--birth-date", "1990-01-01", "--home", str(home)]) == 1
    assert "2 people named 刘洋 born 1990-01-01" in capsys.readouterr().err  # never one answer for two people
    assert main(["audit", "person", "--name", "王芳", "--birth-date", "2015/06/01", "--home", str(home)]) == 2
    assert "write it as YYYY-MM-DD" in capsys.readouterr().err
    assert WarehouseReader(home).person_ids_named("赵敏", "2020-03-15") == ["P_zhao"]  # known to the month only
    assert main(["audit", "person", ZHANG, "--home", str(home), "--json"]) == 0
    assert {(e["run_id"], e["recipient"]) for e in json.loads(capsys.readouterr().out)} == everything
    register = [e for e in log.entries() if e["recipient"] == "civil_register"]
    assert [e["members_count"] for e in register] == [e["row_count"] for e in register] == [6, 6]  # with or without ID
    stored = "".join(p.read_text() for p in DataHome.at(home).audit_members_dir.iterdir())
    assert "P_wang" not in stored and ZHANG not in stored


def test_a_restore_is_logged_as_signed_entries_and_the_trail_still_verifies(home, capsys):
    restored = Generations(home).restore()

    entries = AuditLog(home).entries()
    assert restored.name == "g000001" and [e["run_id"] for e in entries[4:]] == ["restore-g000001"] * 2
    assert all(e["signed_by"] for e in entries[4:]) and [e["head_seq"] for e in entries[4:]] == [6, 6]
    assert [e["content_hash"] for e in entries[4:]] == [e["content_hash"] for e in entries[:2]]
    assert verify(home, capsys)[0] == 0


def test_a_warehouse_published_before_the_anchors_still_opens_and_the_next_run_anchors(home, capsys):
    with warehouse_rewritten(home) as con:
        for column in ("audit_seq", "audit_hash", "key_id"):
            con.execute(f"ALTER TABLE publication_log DROP COLUMN {column}")

    code, out = verify(home, capsys)
    assert code == 0 and "records no audit entries (published before they were anchored)" in out

    _publish(home, "run3")

    with duckdb.connect(str(DataHome.at(home).warehouse_file), read_only=True) as con:
        rows = con.execute("SELECT run_id, audit_seq FROM publication_log ORDER BY run_id, audit_seq").fetchall()
    assert rows == [("run1", None), ("run1", None), ("run2", None), ("run2", None), ("run3", 5), ("run3", 6)]
    assert verify(home, capsys)[0] == 0


def test_a_replaced_signing_key_publishes_nothing(home):
    DataHome.at(home).audit_signing_key_file.unlink()  # lost, or swapped for one the forger holds
    before = AuditLog(home).head()

    with pytest.raises(TerminalError, match="is not the key whose public half is .*audit_signing.pub"):
        _publish(home, "run3")

    assert AuditLog(home).head() == before
    assert [g.name for g in Generations(home).published()] == ["g000001", "g000002"]
    assert Generations(home).current().name == "g000002"


def test_a_deleted_warehouse_does_not_leave_the_log_unanchored(home, capsys):
    # A log cut at a publication's end, with the warehouse that anchors it removed, must not pass.
    import shutil

    shutil.rmtree(DataHome.at(home).generations_dir)
    DataHome.at(home).warehouse_file.unlink(missing_ok=True)
    code, out = verify(home, capsys)
    assert code == 1 and "no published warehouse to anchor them" in out


def test_a_product_of_an_earlier_publication_put_in_place_of_the_current_one_is_named(home, capsys):
    """Privacy audit: the previous night's product copied over the current one (listing people who had since
    withdrawn consent) passed as "its products agree with the log": its hash was in an entry, of another run."""
    generations = DataHome.at(home)
    shutil.copyfile(generations.generation_product_file("g000001", "analysts"),
                    generations.generation_product_file("g000002", "analysts"))

    code, out = verify(home, capsys)

    assert code == 1 and "audit trail intact" not in out
    assert ("product analysts of generation g000002 is the file of audit entry 2 (run run1), not of this "
            "generation's publication (run run2)") in out


def test_an_office_file_put_in_place_of_the_current_one_or_added_is_named(home, capsys):
    """Privacy audit: the xlsx a clerk opens was not checked at all: last night's copied over tonight's, or a
    leak.xlsx and leak.csv dropped beside the products, passed as intact."""
    shared = DataHome.at(home).generation_shared_dir("g000002")
    shutil.copyfile(DataHome.at(home).generation_shared_dir("g000001") / "civil_register.xlsx",
                    shared / "civil_register.xlsx")
    (shared / "leak.csv").write_text("张伟,330106195001010011\n", encoding="utf-8")

    code, out = verify(home, capsys)

    assert code == 1
    assert ("civil_register.xlsx of generation g000002 is not the file its audit entry records (entry 3, run run2)"
            in out)
    assert "leak.csv of generation g000002 is no file of its publication" in out


def test_the_office_files_of_each_generation_are_checked(published, capsys):
    code, out = verify(published, capsys)
    assert code == 0 and "generation g000001: its 2 products and 1 office file(s) agree with the log" in out


@pytest.mark.parametrize("cut", ["the last entry", "every entry"])
def test_no_publication_is_appended_to_a_log_cut_short(home, cut):
    """Privacy audit: with the log's last entry deleted, or the log emptied, the next run published with no word:
    its entries took the missing numbers again (or began a new chain at 1), hiding the cut from ``audit verify``."""
    kept = lines(home)[:-1] if cut == "the last entry" else []
    AuditLog(home).path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    current = Generations(home).current()

    with pytest.raises(TerminalError) as refused:
        _publish(home, "run3")

    message = str(refused.value)
    assert f"the audit log ends at entry {len(kept)}" in message and "the published warehouse records entry 4" in message
    assert "nothing was published" in message and "silobreaker audit verify" in message
    assert Generations(home).current() == current and lines(home) == kept


def test_a_publication_waiting_in_its_journal_is_pending_not_tampering(home, capsys):
    """Reliability audit: killed after its switch, before its entries were appended, a publication's warehouse and
    products were reported as 198 disagreements, "audit trail BROKEN", though verify itself noted the journal
    holding the entries the next run appends."""
    entries = AuditLog(home).entries()
    waiting = [e for e in entries if e["run_id"] == "run2"]
    AuditLog(home).path.write_text("".join(line + "\n" for line in lines(home)[:-len(waiting)]), encoding="utf-8")
    journal = {"generation": "g000002", "previous": "g000001", "run_id": "run2", "entries": waiting}
    DataHome.at(home).publication_journal.write_text(json.dumps(journal, ensure_ascii=False), encoding="utf-8")

    code, out = verify(home, capsys)

    assert code == 0 and "DISAGREES" not in out and "audit trail intact" in out
    assert f"{len(waiting)} entries of run run2 wait in" in out and "checked against them" in out


def test_a_journal_that_does_not_follow_the_log_is_no_excuse(home, capsys):
    entries = AuditLog(home).entries()
    waiting = [e for e in entries if e["run_id"] == "run2"]
    AuditLog(home).path.write_text("".join(line + "\n" for line in lines(home)[:1]), encoding="utf-8")  # cut more
    journal = {"generation": "g000002", "previous": "g000001", "run_id": "run2", "entries": waiting}
    DataHome.at(home).publication_journal.write_text(json.dumps(journal, ensure_ascii=False), encoding="utf-8")

    code, out = verify(home, capsys)

    assert code == 1 and "do not follow the log's last entry" in out


def test_a_product_missing_from_its_generation_is_named_and_its_office_file_checked_still(home, capsys):
    """Re-check: with civil_register.parquet removed, verify said intact, and the genuine civil_register.xlsx beside
    it was called no file of the publication."""
    (DataHome.at(home).generation_shared_dir("g000002") / "civil_register.parquet").unlink()

    code, out = verify(home, capsys)

    assert code == 1
    assert "product civil_register of generation g000002 is missing: audit entry 3 (run run2) records it" in out
    assert "civil_register.xlsx of generation g000002 is no file" not in out


def test_no_restore_is_appended_to_a_log_cut_short(home):
    """Re-check: with the log's last entry deleted, `silobreaker restore` appended its entries onto the cut log (which
    a run refuses), and verify then said only that entry 4 was 'another's'."""
    kept = lines(home)[:-1]
    AuditLog(home).path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    with pytest.raises(TerminalError, match="the audit log ends at entry 3.*generation g000001 was not restored"):
        Generations(home).restore("g000001")

    assert Generations(home).current().name == "g000002" and lines(home) == kept
