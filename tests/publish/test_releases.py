"""Two analyst row releases differenced class by class.

Seen on the 100,000-person demo after a day's changes (``benchmarks/analyst_releases.py``): 92 of 1,147 classes of
``statistics_analysts`` gained exactly one row and lost none, so whoever knew that a person moved into one of them
found that person's row, 20 of them showing a category no other department knows; 66 classes lost exactly one row.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from publish.releases import hold_classes, load_release, save_release

K = 5
CLASS = ["area", "band"]
SENSITIVE = ["chronic_patient"]


def rows(*people: tuple) -> pa.Table:
    """Rows of (person, area, band, categories), as an anonymised product holds them; each person's ID number is
    their id with 号."""
    return pa.table({
        "_person_id": [p[0] for p in people],
        "_id_number": [f"{p[0]}号" for p in people],
        "area": [p[1] for p in people],
        "band": [p[2] for p in people],
        "key_populations": pa.array([list(p[3]) if len(p) > 3 else [] for p in people], pa.list_(pa.string())),
        "person_key": [f"k{p[0]}" for p in people],
    })


def town(names: str, area: str = "东街", band: str = "60-64") -> list[tuple]:
    return [(name, area, band) for name in names]


def hold(fresh: pa.Table, last: pa.Table | None, barred: tuple[str, ...] = (), deleted: tuple[str, ...] = ()):
    return hold_classes(fresh, last, K, CLASS, SENSITIVE, barred, "sha-last" if last is not None else None,
                        [f"{p}号" for p in deleted])


def who(table: pa.Table) -> list[str]:
    return sorted(table.column("_person_id").to_pylist())


def test_a_first_release_is_tonights_rows_and_held_against_nothing():
    fresh = rows(*town("abcdef"))
    released, kept, continuity = hold(fresh, None)
    assert who(released) == list("abcdef") and "person_key" not in released.column_names
    assert continuity.held_against is None and continuity.classes_held == 0


def test_a_class_that_gained_one_row_is_shown_as_it_was_last_released():
    last = hold(rows(*town("abcdef")), None)[1]
    released, kept, continuity = hold(rows(*town("abcdefg")), last)
    assert who(released) == list("abcdef")  # g, the lone arrival, is not shown yet
    assert (continuity.held_against, continuity.classes_held, continuity.rows_held) == ("sha-last", 1, 6)
    assert (continuity.rows_behind, continuity.rows_outdated) == (1, 0)  # what the analyst does not see yet: g


def test_a_class_that_gained_k_rows_is_shown_as_it_is_tonight():
    last = hold(rows(*town("abcdef")), None)[1]
    released, _, continuity = hold(rows(*town("abcdefghijk")), last)
    assert who(released) == list("abcdefghijk") and continuity.classes_held == 0


def test_arrivals_gather_until_they_are_k_and_then_show_together():
    last = hold(rows(*town("abcdef")), None)[1]
    shown = []
    for tonight in ("abcdefg", "abcdefgh", "abcdefghi", "abcdefghij"):
        released, last, _ = hold(rows(*town(tonight)), last)
        shown.append(who(released))
    assert shown == [list("abcdef")] * 4  # four arrivals since a..f were last shown: still fewer than 5
    released, last, _ = hold(rows(*town("abcdefghijk")), last)
    assert who(released) == list("abcdefghijk")


def test_a_lone_departure_shows_the_gone_persons_last_row_again():
    last = hold(rows(*town("abcdef")), None)[1]
    released, _, continuity = hold(rows(*town("abcde")), last)
    assert who(released) == list("abcdef") and continuity.rows_held == 6
    assert (continuity.rows_behind, continuity.rows_outdated) == (0, 1)  # f's row, shown as it was


def test_a_class_whose_last_rows_name_someone_left_out_tonight_is_withheld_whole():
    last = hold(rows(*town("abcdef"), *town("uvwxyz", area="西街")), None)[1]
    released, kept, continuity = hold(rows(*town("abcde"), *town("uvwxyz", area="西街")), last, barred=("f",))
    assert who(released) == list("uvwxyz")  # neither f's row nor a lone departure that names f
    assert (continuity.classes_withheld, continuity.rows_withheld) == (1, 5)
    # what the withheld class is compared with next time is still what it last showed
    assert who(kept) == sorted([*"abcdef", *"uvwxyz"])
    released, _, _ = hold(rows(*town("abcde"), *town("uvwxyz", area="西街")), kept, barred=("f",))
    assert who(released) == list("uvwxyz")


def test_a_person_a_withheld_class_still_names_is_not_shown_twice_once_it_may_be_shown_again():
    # f's deletion request withholds 东街 (which keeps e's last row); e moves on to 西街, shown anew with four others.
    # The request is then revoked, and both classes change by one row: shown as they were, e would be in both.
    last = hold(rows(*town("abcdef"), *town("uvwxy", area="西街")), None)[1]
    _, last, _ = hold(rows(*town("abcd"), *town("uvwxyeghij", area="西街")), last, barred=("f",))
    released, _, continuity = hold(rows(*town("abcdf"), *town("uvwxyeghijl", area="西街")), last)
    persons = released.column("_person_id").to_pylist()
    assert len(persons) == len(set(persons))
    assert continuity.classes_withheld == 2


def test_k_arrivals_all_of_one_sensitive_category_are_not_shown_as_a_batch():
    # Whoever knows that one of them moved in would read the category off the batch, as off a class all in it.
    last = hold(rows(*town("abcdef")), None)[1]
    chronic = [(name, "东街", "60-64", ["chronic_patient"]) for name in "ghijk"]
    released, last, continuity = hold(rows(*town("abcdef"), *chronic), last)
    assert who(released) == list("abcdef") and continuity.classes_held == 1
    released, _, _ = hold(rows(*town("abcdef"), *chronic, *town("l")), last)
    assert who(released) == list("abcdefghijkl")  # six arrivals, not all of it


def test_someone_who_asked_to_be_deleted_is_not_shown_again_once_their_records_are_gone():
    # Seen (audit): x asked to be deleted and 东街 was withheld; then the departments removed x's records, so x was
    # no longer among the people the product leaves out, and 东街, changed by one row, was shown as it was, x in it.
    last = hold(rows(*town("xabcdef"), *town("mnopqr", area="西街")), None)[1]
    released, last, _ = hold(rows(*town("abcdef"), *town("mnopqr", area="西街")), last, barred=("x",), deleted=("x",))
    assert "x" not in who(released)
    released, last, continuity = hold(rows(*town("abcdef"), *town("mnopqr", area="西街")), last, deleted=("x",))
    assert "x" not in who(released) and continuity.classes_withheld == 1
    # a revoked request of someone shown tonight again bars nothing
    released, _, _ = hold(rows(*town("xabcdef"), *town("mnopqr", area="西街")), last, deleted=("x",))
    assert "x" in who(released)


def test_after_k_is_raised_a_class_too_small_for_it_is_withheld_not_shown_as_it_was():
    # Seen (audit): raising k from 5 to 6 turned the holding off for a night (4 lone arrivals, 8 lone departures).
    last = hold(rows(*town("abcde"), *town("mnopqrs", area="西街")), None)[1]
    tonight = rows(*town("abcdef"), *town("mnopqrst", area="西街"))
    released, _, continuity = hold_classes(tonight, last, 6, CLASS, SENSITIVE, (), "sha-last")
    assert who(released) == list("mnopqrs")  # 西街 as it was (seven rows); 东街's five are too few for k = 6
    assert (continuity.classes_held, continuity.classes_withheld) == (1, 1)


def test_a_category_gained_within_a_class_is_not_shown_alone():
    last = hold(rows(*town("abcdef")), None)[1]
    tonight = rows(*town("abcde"), ("f", "东街", "60-64", ["chronic_patient"]))
    released, _, continuity = hold(tonight, last)
    assert continuity.classes_held == 1
    assert all(not cats for cats in released.column("key_populations").to_pylist())


def test_a_person_whose_last_row_is_held_does_not_show_twice():
    # g moves from 东街 (which then lost one row: held, g's last row shown there) to 西街, which gained five
    # with g and would be shown anew; without g it gained four, so it is held as well.
    last = hold(rows(*town("abcdefg"), *town("uvwxy", area="西街")), None)[1]
    tonight = rows(*town("abcdef"), *town("uvwxyghijk", area="西街"))
    released, _, _ = hold(tonight, last)
    assert Counter(released.column("_person_id").to_pylist()).most_common(1)[0][1] == 1
    assert who(released) == sorted([*"abcdefg", *"uvwxy"])


def test_a_class_left_too_small_by_people_shown_elsewhere_is_not_shown():
    # p's last row stays in 北街 (a lone departure); 南街, new tonight with p and four others, is then four rows
    last = hold(rows(*town("abcdep", area="北街")), None)[1]
    tonight = rows(*town("abcde", area="北街"), *town("pqrst", area="南街"))
    released, _, continuity = hold(tonight, last)
    assert who(released) == sorted("abcdep") and continuity.classes_withheld == 1


def test_two_consecutive_releases_differ_per_class_by_none_or_at_least_k_rows():
    rng = np.random.default_rng(3)
    areas, bands = ["东街", "西街", "南街"], ["0-19", "20-59", "60-99"]
    people = {f"p{i}": [rng.choice(areas), rng.choice(bands), []] for i in range(400)}
    barred: set[str] = set()
    last, shown_before = None, None
    for night in range(12):
        if night:
            ids = list(people)
            for pid in rng.choice(ids, 8, replace=False):  # moves
                people[pid][0] = rng.choice(areas)
            for pid in rng.choice(ids, 4, replace=False):  # a category found
                people[pid][2] = ["chronic_patient"]
            for pid in rng.choice(ids, 3, replace=False):  # gone
                people.pop(pid)
            barred |= set(rng.choice(list(people), 1))  # a deletion request
            for i in range(4):
                people[f"n{night}_{i}"] = [rng.choice(areas), rng.choice(bands), []]
        fresh = rows(*((pid, a, b, c) for pid, (a, b, c) in people.items() if pid not in barred))
        released, last, _ = hold(fresh, last, tuple(barred))
        persons = released.column("_person_id").to_pylist()
        assert len(persons) == len(set(persons)) and not barred & set(persons)
        shown = Counter((a, b, tuple(c)) for a, b, c in zip(*(released.column(x).to_pylist()
                                                              for x in ("area", "band", "key_populations")), strict=True))
        if shown_before is not None:
            for cls in {(a, b) for a, b, _ in shown | shown_before}:
                gained = sum(max(n - shown_before[c], 0) for c, n in shown.items() if c[:2] == cls)
                lost = sum(max(n - shown[c], 0) for c, n in shown_before.items() if c[:2] == cls)
                assert gained == 0 or gained >= K, (night, cls, gained)
                assert lost == 0 or lost >= K, (night, cls, lost)
        shown_before = shown


def test_kept_rows_are_read_back_only_as_they_were_made(tmp_path):
    kept = hold(rows(*town("abcdef")), None)[1]
    path = tmp_path / "releases" / "r.parquet"
    save_release(path, kept, {"age_band": 5})
    back, why = load_release(path, {"age_band": 5}, [*kept.column_names, "person_key"])
    assert why is None and who(back) == list("abcdef")
    assert load_release(path, {"age_band": 10}, kept.column_names)[0] is None
    assert "other columns" in load_release(path, {"age_band": 5}, ["_person_id", "area"])[1]
    assert "not kept" in load_release(tmp_path / "missing.parquet", {}, kept.column_names)[1]


def test_keeping_rows_changes_the_mode_of_no_folder_it_did_not_make(tmp_path):
    # Seen (a one-off script keeping rows at /tmp/<x>/r.parquet): save_release made its file's folder and the one above
    # it the owner's only, whatever they were; /tmp lost its sticky, world-writable mode and MariaDB could no longer
    # write its temp files. The product's folders (releases/ and releases/<recipient>/) are made so where they are made.
    tmp_path.chmod(0o755)
    save_release(tmp_path / "r.parquet", hold(rows(*town("abcdef")), None)[1], {"age_band": 5})
    assert tmp_path.stat().st_mode & 0o777 == 0o755


def test_kept_rows_changed_in_a_few_bytes_are_never_read_as_other_rows(tmp_path):
    # Seen (an audit): kept rows overwritten in a few bytes were read without complaint as other rows; a class is then
    # held against rows it never showed. Each page now carries its checksum.
    people = [(f"p{i}", f"街{i % 7}", f"{20 + i % 9 * 5}-{24 + i % 9 * 5}", ["chronic_patient"] if i % 3 else [])
              for i in range(300)]
    kept = hold(rows(*people), None)[1]
    path = tmp_path / "r.parquet"
    save_release(path, kept, {"age_band": 5})
    data = path.read_bytes()
    why_unread = []
    for at in range(4, len(data) - 8, 37):
        path.write_bytes(data[:at] + bytes(b ^ 0x5A for b in data[at:at + 3]) + data[at + 3:])
        back, why = load_release(path, {"age_band": 5}, kept.column_names)
        assert back is None or back.equals(kept), f"bytes {at}..{at + 2} changed, read as other rows"
        if back is None:
            why_unread.append(why)
    assert why_unread and all(any(said in why for said in ("cannot be read", "other levels", "other columns"))
                              for why in why_unread)


@pytest.mark.parametrize("lost", [1, 4])
def test_fewer_than_k_departures_hold_the_class(lost):
    last = hold(rows(*town("abcdefghij")), None)[1]
    released, _, continuity = hold(rows(*town("abcdefghij"[lost:])), last)
    assert who(released) == list("abcdefghij") and continuity.classes_held == 1
