"""Who was in each product, night after night: a membership is written as the change from the same
recipient's last one (publish.membership), reads back exactly as its entry recorded it, and a damaged
file is named by ``silobreaker audit verify`` together with every entry built on it."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from core.home import DataHome
from publish.audit import AuditLog
from publish.membership import WHOLE_EVERY, Memberships, membership_of, write_membership

NIGHTS = WHOLE_EVERY + 12


def _ids(rng: random.Random, n: int) -> list[str]:
    return [f"3301061950{rng.randrange(10**8):08d}" for _ in range(n)]


def _nights(seed: int = 7) -> list[set[str]]:
    """A district of residents whose product gains and loses a few of them each night."""
    rng = random.Random(seed)
    everyone = sorted(set(_ids(rng, 3000)))
    members = set(everyone[:2000])
    nights = []
    for _ in range(NIGHTS):
        members = (members - set(rng.sample(sorted(members), 20))) | set(rng.sample(everyone, 30))
        nights.append(set(members))
    return nights


def _product(recipient: str, ids: set[str]) -> SimpleNamespace:
    return SimpleNamespace(recipient=recipient, purpose="statistics", legal_basis="statutory", legal_reference="统计法",
                           columns=["person_id"], row_count=len(ids), content_hash="0" * 64, exclusions={},
                           members=sorted(ids), person_ids=(), key_id="k1", anchor=None)


def _publish(log: AuditLog, night: int, products: list[SimpleNamespace]) -> list[dict]:
    entries = log.prepare(f"run{night}", datetime(2026, 12, 1 + night % 28, tzinfo=UTC), products)
    log.write(entries)
    return entries


@pytest.fixture
def home(tmp_path) -> DataHome:
    return DataHome.at(tmp_path / "home")


def test_each_night_writes_only_what_changed_and_every_membership_reads_back_as_recorded(home):
    log = AuditLog(home)
    nights = _nights()
    for night, ids in enumerate(nights):
        _publish(log, night, [_product("analysts", ids)])

    entries = log.entries()
    sizes = [home.audit_members_file(e["seq"]).stat().st_size for e in entries]
    whole = [e["seq"] for e in entries if not home.audit_members_file(e["seq"]).read_bytes().startswith(b"@")]
    # Whole the first night and again once WHOLE_EVERY entries have been written as changes.
    assert whole == [1, WHOLE_EVERY + 1]
    # Fifty members change a night out of about two thousand: each change is a fortieth of a whole file.
    assert max(s for e, s in zip(entries, sizes, strict=True) if e["seq"] not in whole) < sizes[0] / 20
    assert log.verify().ok
    for entry, ids in zip(entries, nights, strict=True):
        text = "".join(f"{h}\n" for h in sorted(log.member_hash(i) for i in ids))
        assert entry["members_sha256"] == hashlib.sha256(text.encode("ascii")).hexdigest()
        # Read alone (nothing kept from the entries before it), it is the whole membership.
        assert Memberships(home).of(entry["seq"]).tobytes() == text.encode("ascii")

    somebody = sorted(nights[3] - nights[10])[0]  # in the product some nights, not others
    assert [e["seq"] for e in log.person(somebody)] == [e["seq"] for e, ids in zip(entries, nights, strict=True)
                                                        if somebody in ids]


def test_a_damaged_change_is_named_with_the_entries_built_on_it_and_the_next_night_starts_whole(home, caplog):
    log = AuditLog(home)
    nights = _nights()
    for night in range(5):
        _publish(log, night, [_product("analysts", nights[night]), _product("grid_1", nights[night] - nights[0])])
    analysts = [e["seq"] for e in log.entries() if e["recipient"] == "analysts"]
    damaged = home.audit_members_file(analysts[2])
    damaged.write_bytes(damaged.read_bytes().replace(b"\n+", b"\n-", 1))  # a member who joined turned into one who left

    result = log.verify()
    assert not result.ok and result.broken_seq == analysts[2] and "membership" in result.reason

    _publish(log, 5, [_product("analysts", nights[5])])
    newest = log.entries()[-1]
    assert not home.audit_members_file(newest["seq"]).read_bytes().startswith(b"@")  # not built on a damaged one
    assert "does not read back as recorded" in caplog.text
    assert Memberships(home).sha256(newest["seq"]) == newest["members_sha256"]


@pytest.mark.parametrize("damage", [
    lambda data: data[:-7],                       # cut inside a line
    lambda data: data.replace(b"@", b"@9999", 1),  # names an entry that is not an earlier one
    lambda data: data.replace(b"\n+", b"\n*", 1),  # a line that is no change
    None,                                          # removed
])
def test_a_change_file_that_cannot_be_read_fails_verification(home, damage):
    log = AuditLog(home)
    nights = _nights()
    for night in range(3):
        _publish(log, night, [_product("analysts", nights[night])])
    path = home.audit_members_file(2)
    assert path.read_bytes().startswith(b"@1\n")
    if damage is None:
        path.unlink()
    else:
        path.write_bytes(damage(path.read_bytes()))

    result = log.verify()
    assert not result.ok and result.broken_seq == 2 and "membership" in result.reason
    # The next nights publish all the same, starting the recipient's memberships afresh.
    _publish(log, 3, [_product("analysts", nights[3])])
    _publish(log, 4, [_product("analysts", nights[4])])
    assert home.audit_members_file(3).read_bytes().startswith(b"@2\n")  # built before the damage
    assert not home.audit_members_file(4).read_bytes().startswith(b"@")
    assert home.audit_members_file(5).read_bytes().startswith(b"@4\n")
    assert Memberships(home).sha256(5) == log.entries()[-1]["members_sha256"]


def test_a_membership_that_changed_by_half_or_more_is_written_whole(home):
    rng = random.Random(3)
    before = membership_of(f"{rng.getrandbits(256):064x}" for _ in range(100))
    same_half = set(before[:50].tobytes().decode("ascii").split())
    after = membership_of(same_half | {f"{rng.getrandbits(256):064x}" for _ in range(50)})
    home.audit_members_dir.mkdir(parents=True)
    assert write_membership(home.audit_members_file(2), after, (1, before)) is False
    assert home.audit_members_file(2).read_bytes() == after.tobytes()


def test_a_lookup_says_which_products_it_cannot_tell_about_when_a_membership_is_lost(home, caplog):
    log = AuditLog(home)
    nights = _nights()
    for night in range(3):
        _publish(log, night, [_product("analysts", nights[night])])
    stayed = sorted(nights[0] & nights[1] & nights[2])[0]
    joined = sorted((nights[1] - nights[0]) & nights[2])[0]  # joined on the second night, still there on the third
    assert [e["seq"] for e in log.person(stayed)] == [1, 2, 3] and [e["seq"] for e in log.person(joined)] == [2, 3]
    home.audit_members_file(1).unlink()  # the whole membership the next two were written as changes of

    assert log.person(stayed) == []
    assert "cannot be read (entries 1, 2, 3)" in caplog.text
    caplog.clear()
    # Who joined after the loss is still known to have been in the products.
    assert [e["seq"] for e in log.person(joined)] == [2, 3]
    assert "cannot be read (entries 1)" in caplog.text
    caplog.clear()
    # Asked with two hashes (a person's ID number and person id), a product that lost one of them after a
    # loss is not answered "no": the other may still have been in it.
    left = sorted((nights[1] - nights[0]) - nights[2])[0]  # joined on the second night, gone by the third
    assert [e["seq"] for e in log.person(left)] == [2]
    hashes = {log.member_hash(left), log.member_hash(stayed)}
    holding, unknown = Memberships(home).holding([1, 2, 3], hashes)
    assert holding == {2} and unknown == {1, 3}


def test_every_products_membership_is_the_hashes_of_its_own_members_each_value_hashed_once(home, monkeypatch):
    """Memberships are gathered by position from one hashing of every distinct value of the night: each
    must still be exactly the set of its own members' hashes (ID numbers as the log normalises them,
    person ids under their own prefix), as the entry's count and checksum say."""
    import pyarrow as pa

    from publish import audit as audit_module

    rng = random.Random(11)
    everyone = _ids(rng, 12_000)  # above core.keys' threshold: the hashes are computed in SQL
    persons = [f"P{i:012x}" for i in range(len(everyone))]
    analyst = (pa.chunked_array([everyone[:7000], everyone[7000:]]), pa.chunked_array([persons]))
    # A clerk's copy with an ID number written with spaces and in lower case (the same resident), a null
    # and a person without an ID number, and a product with nobody in it.
    clerk = ([" " + everyone[5].lower() + " ", everyone[6], None, everyone[6]], [persons[5], persons[6], "P-no-id", persons[6]])
    products = [SimpleNamespace(**{**vars(_product(name, set())), "members": ids, "person_ids": pids})
                for name, (ids, pids) in {"analyst": analyst, "clerk": clerk, "empty": ((), ())}.items()]
    calls = []
    hashed = audit_module.keyed_digests
    monkeypatch.setattr(audit_module, "keyed_digests", lambda key, messages: calls.append(1) or hashed(key, messages))

    entries = _publish(AuditLog(home), 0, products)

    assert len(calls) == 2  # once for the ID numbers, once for the person ids, whatever the products
    key = AuditLog(home)._key()
    read = Memberships(home)
    for product, entry in zip(products, entries, strict=True):
        ids = [v for v in (product.members.to_pylist() if hasattr(product.members, "to_pylist") else product.members)
               if v is not None]
        pids = product.person_ids.to_pylist() if hasattr(product.person_ids, "to_pylist") else list(product.person_ids)
        expected = membership_of({audit_module._id_number_hash(key, v) for v in ids}
                                 | {audit_module._person_id_hash(key, p) for p in pids})
        assert read.of(entry["seq"]).tobytes() == expected.tobytes()
        assert entry["members_sha256"] == hashlib.sha256(expected.tobytes()).hexdigest()
        assert entry["members_count"] == len(set(pids))
    assert entries[1]["members_count"] == 3 and len(read.of(entries[1]["seq"])) == 2 + 3  # two residents, three ids
    assert len(read.of(entries[2]["seq"])) == 0
