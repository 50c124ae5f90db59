"""Linking only what changed gives the persons, pairs and review queue a whole relink gives (issue 14).

A demo district is linked whole once; then, day after day, its records change the ways departments
change them — new phones, corrected names, records gone, new ones, a new record keyed with another
resident's ID number, a person who moved, a crowd of namesakes that pushes a block past its cap and
leaves again, a register re-exported in another row order — and each day is linked twice: on the state
the day before kept (saved and read back from disk), and whole with the same model. Both must agree in
every person, pair and review-queue row.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from dedup import BlockingRule, PreviousLinking, link_records, load_link_settings
from dedup.incremental import RELINK_DAYS, KeptLinking, fingerprints, positions
from pipelines.settings import DEMO_LINKING
from tests.dedup.dedup_helpers import ID_KEY, staged_demo, valid_id

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> pd.DataFrame:
    return staged_demo(tmp_path_factory.mktemp("incremental_home"), persons=400, seed=11)


@pytest.fixture(scope="module")
def settings():
    return load_link_settings(DEMO_LINKING)


def _new_phones(records: pd.DataFrame, rng: np.random.Generator, share: float) -> pd.DataFrame:
    out = records.copy()
    rows = rng.choice(len(out), size=int(len(out) * share), replace=False)
    out.loc[out.index[rows], "phone"] = out["phone"].to_numpy()[rng.permutation(rows)]
    return out


def _corrected_names(records: pd.DataFrame, rng: np.random.Generator, n: int) -> pd.DataFrame:
    out = records.copy()
    rows = out.index[rng.choice(len(out), size=n, replace=False)]
    out.loc[rows, "name"] = out.loc[rows, "name"].str[:-1] + "华"
    out.loc[rows, "name_pinyin"] = None
    return out


def _gone(records: pd.DataFrame, rng: np.random.Generator, n: int) -> pd.DataFrame:
    return records.drop(index=records.index[rng.choice(len(records), size=n, replace=False)])


def _arrivals(records: pd.DataFrame, rng: np.random.Generator, n: int, tag: str) -> pd.DataFrame:
    """``n`` new records: copies of existing ones (the same people, seen again) under new keys."""
    new = records.iloc[rng.choice(len(records), size=n, replace=False)].copy()
    new["record_id"] = new["record_id"] + tag
    return pd.concat([records, new], ignore_index=True)


def _borrower(records: pd.DataFrame) -> pd.DataFrame:
    """A new health record keyed with a resident's valid ID number, stating another sex and birth date."""
    holder = records[records["id_number_valid"].fillna(False).astype(bool)].iloc[0]
    row = holder.copy()
    row["record_id"] = "health:BORROWED1"
    row["source"] = "health"
    row["name"], row["name_pinyin"] = "冒名顶", None
    row["sex"] = "M" if holder["sex"] == "F" else "F"
    row["birth_date"] = "1999-02-03"
    row["phone"] = None
    return pd.concat([records, row.to_frame().T.astype(records.dtypes.to_dict())], ignore_index=True)


def _moved(records: pd.DataFrame, rng: np.random.Generator, n: int) -> pd.DataFrame:
    """``n`` residents with a valid ID number recorded at another flat in one of their records."""
    out = records.copy()
    valid = np.flatnonzero(out["id_number_valid"].fillna(False).to_numpy(dtype=bool))
    rows = out.index[rng.choice(valid, size=n, replace=False)]
    others = out["address"].dropna().to_numpy()[rng.choice(out["address"].notna().sum(), size=n)]
    out.loc[rows, "address"] = others
    return out


def _namesakes(records: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` new residents named 王伟, more than the ``name`` rule's cap of 20: the block of the name
    (and of its pinyin) yields no pairs any more, nor does it for the 王伟 already there."""
    rows = []
    for i in range(n):
        birth = f"19{50 + i:02d}0{1 + i % 9}1{i % 10}"
        rows.append({"record_id": f"census:WW{i:03d}", "source": "census", "name": "王伟", "name_pinyin": None,
                     "sex": "M", "birth_date": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
                     "id_number": valid_id("330106", birth, f"{i % 100:02d}1"), "phone": None,
                     "address": f"示范区西溪街道翠苑社区{i + 1}幢1单元101室", "community": "翠苑社区"})
    return pd.concat([records, pd.DataFrame(rows).astype({c: records[c].dtype for c in rows[0]})], ignore_index=True)


FLAT_A = "示范区西溪街道翠苑社区3幢1单元101室"
FLAT_B = "示范区南山街道枫林社区8幢2单元202室"
FLAT_C = "示范区南山街道枫林社区1幢1单元101室"
FLAT_D = "示范区西溪街道翠苑社区9幢3单元303室"
#: A number held by one record (周八) whose stated sex is not the number's (its sequence ends odd: male).
LONE_NUMBER = valid_id("330106", "19770707", "123")


def _scenarios(records: pd.DataFrame) -> pd.DataFrame:
    """Records set up for what a day will change around them, records untouched by that day:

    - 钱多多 twice without an ID number, at flat A and at flat B with one phone: a pair whose address level turns to
      ``moved`` the day 孙悟空, at flat A, is recorded at flat B too;
    - 周八 holding :data:`LONE_NUMBER` alone and stating another sex and birth date, beside a record of
      her without a number, at flat C: the day the number's holder arrives at flat C (the number's flats
      stay the same), 周八 becomes its borrower, and her pair compares on what she states;
    - 赵六 three times, the middle record linking a man (by his number) and a woman: under the
      ``different_sex`` veto the person is split, every day, by the vetoed pair inside it.
    """
    rows = [
        {"record_id": "census:QDD1", "name": "钱多多", "sex": "F", "birth_date": "1980-05-06", "address": FLAT_A,
         "phone": "13900001111"},
        {"record_id": "health:QDD2", "name": "钱多多", "sex": "F", "birth_date": "1980-05-06", "address": FLAT_B,
         "phone": "13900001111"},
        {"record_id": "census:SWK1", "name": "孙悟空", "sex": "M", "birth_date": "1966-06-06", "address": FLAT_A,
         "id_number": valid_id("330106", "19660606", "011")},
        {"record_id": "census:ZB1", "name": "周八", "sex": "F", "birth_date": "1981-03-15", "address": FLAT_C,
         "id_number": LONE_NUMBER},
        {"record_id": "health:ZB2", "name": "周八", "sex": "F", "birth_date": "1981-03-15", "address": FLAT_C},
        *_man_unknown_woman("ZL", "赵六", "19550102", "031", "13900002222"),
    ]
    return _with_rows(records, rows)


def _scenario_day(records: pd.DataFrame) -> pd.DataFrame:
    """孙悟空 recorded at flat B too; the holder of :data:`LONE_NUMBER` arrives (his sex and birth its own);
    赵七 arrives as three records a veto splits."""
    return _with_rows(records, [
        {"record_id": "health:SWK2", "name": "孙悟空", "sex": "M", "birth_date": "1966-06-06", "address": FLAT_B,
         "id_number": valid_id("330106", "19660606", "011")},
        {"record_id": "civil_affairs:WJ1", "name": "吴九", "sex": "M", "birth_date": "1977-07-07",
         "address": FLAT_C, "id_number": LONE_NUMBER},
        *_man_unknown_woman("ZQ", "赵七", "19560203", "051", "13900003333"),
    ])


def _man_unknown_woman(tag: str, name: str, birth: str, sequence: str, phone: str) -> list[dict]:
    """Three records of one name, birth date, flat and phone: a man by his valid number, a record saying
    nothing of the sex, and one saying woman — linked in a chain the ``different_sex`` veto breaks."""
    same = {"name": name, "birth_date": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}", "address": FLAT_D, "phone": phone}
    return [{"record_id": f"census:{tag}1", "sex": "M", "id_number": valid_id("330106", birth, sequence), **same},
            {"record_id": f"health:{tag}2", "sex": None, **same},
            {"record_id": f"justice:{tag}3", "sex": "F", **same}]


def _with_rows(records: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame([{**row, "source": row["record_id"].split(":")[0]} for row in rows])
    return pd.concat([records, frame.astype({c: records[c].dtype for c in frame.columns})], ignore_index=True)


def _days(staged: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    rng = np.random.default_rng(5)
    wang = staged["name"].isin(["王伟"])
    day1 = _arrivals(_gone(_corrected_names(_new_phones(staged, rng, 0.02), rng, 5), rng, 8), rng, 12, "N1")
    day2 = _scenario_day(_moved(_borrower(_new_phones(day1, rng, 0.01)), rng, 6))
    day3 = _namesakes(day2, 25 - int(wang.sum()))
    day4 = day3.iloc[rng.permutation(len(day3))].reset_index(drop=True)  # re-exported in another order
    day5 = day4[~day4["record_id"].str.startswith("census:WW")].reset_index(drop=True)  # the crowd leaves
    return [("phones, names, gone, new", day1), ("a borrowed ID, moves", day2), ("a block past its cap", day3),
            ("another row order", day4), ("the block under its cap again", day5)]


def _same(incremental, whole, day: str) -> None:
    pd.testing.assert_frame_equal(incremental.mapping, whole.mapping, obj=f"mapping on day '{day}'")
    pd.testing.assert_frame_equal(incremental.pairs, whole.pairs, obj=f"pairs on day '{day}'")
    pd.testing.assert_frame_equal(incremental.review_queue, whole.review_queue, obj=f"review queue on day '{day}'")
    pd.testing.assert_frame_equal(incremental.history, whole.history, obj=f"history on day '{day}'")
    # What a night reports without counting the mapping's ids again (assets/linked.py).
    assert incremental.stats["persons"] == incremental.mapping["person_id"].nunique(), day


def _tight(settings):
    """Blocking rules with small caps, which blocks cross with every day's changes, and every veto, so
    that links chain records a veto keeps apart (the candidate pairs inside a person are found again)."""
    return settings.model_copy(update={
        "blocking_rules": (
            BlockingRule("name", keys=("name_pinyin",), max_block_size=3),
            BlockingRule("phone", keys=("phone",), max_block_size=2),
            BlockingRule("name_household", keys=("name_pinyin", "household")),
        ),
        "vetoes": (*settings.vetoes, "different_sex", "contradicting_birth_dates"),
    })


@pytest.mark.parametrize("caps", ["demo", "tight"])
def test_linking_only_what_changed_gives_what_a_whole_relink_gives_day_after_day(staged, settings, tmp_path, caps):
    settings = _tight(settings) if caps == "tight" else settings
    staged = _scenarios(staged)
    first = link_records(staged, settings, id_key=ID_KEY, now=NOW)
    assert first.stats["incremental"] == 0 and first.kept.model.trained
    folder = tmp_path / "kept"
    first.kept.save(folder)

    # Nothing changed: the kept pairs are carried over whole, and the run is the first one again.
    again = link_records(staged, settings, previous=PreviousLinking(mapping=first.mapping), id_key=ID_KEY,
                         kept=KeptLinking.load(folder, settings, NOW), now=NOW)
    assert again.stats["incremental"] == 1 and again.stats["records_relinked"] == 0
    assert again.stats["candidate_pairs"] == 0
    _same(again, link_records(staged, settings, previous=PreviousLinking(mapping=first.mapping), id_key=ID_KEY,
                              model=first.kept.model, now=NOW), "unchanged")
    pd.testing.assert_frame_equal(again.mapping, first.mapping)

    previous = first.mapping
    seen = {}
    for number, (day, records) in enumerate(_days(staged), start=1):
        kept = KeptLinking.load(folder, settings, NOW + dt.timedelta(days=number % RELINK_DAYS))
        assert kept is not None, day
        incremental = link_records(records, settings, previous=PreviousLinking(mapping=previous), id_key=ID_KEY,
                                   kept=kept, now=NOW)
        whole = link_records(records, settings, previous=PreviousLinking(mapping=previous), id_key=ID_KEY,
                             model=kept.model, now=NOW)
        assert incremental.stats["incremental"] == 1 and whole.stats["incremental"] == 0, day
        _same(incremental, whole, day)
        # Only a few records were relinked, and far fewer pairs compared than a whole run compares —
        # except on the day the rows came in another order: a pair whose records swapped places is
        # compared again, left record first, as a whole run compares it.
        if day != "another row order":
            assert incremental.stats["records_relinked"] < 0.2 * len(records), day
            assert incremental.stats["candidate_pairs"] < 0.5 * whole.stats["candidate_pairs"], day
        incremental.kept.save(folder)
        previous = incremental.mapping
        seen[day] = whole

    # The days did what they were made to, around records no day touched.
    def pair(result, left: str, right: str) -> dict:
        found = result.pairs[(result.pairs["record_id_l"] == left) & (result.pairs["record_id_r"] == right)]
        assert len(found) <= 1, (left, right)
        return found.iloc[0].to_dict() if len(found) else {}

    before, after = seen["phones, names, gone, new"], seen["a borrowed ID, moves"]
    if caps == "demo":
        assert pair(before, "census:QDD1", "health:QDD2")["address"] == "different"
        assert pair(after, "census:QDD1", "health:QDD2")["address"] == "moved"
    assert pair(before, "census:ZB1", "health:ZB2").get("sex") != "equal"  # 周八's number says male
    assert pair(after, "census:ZB1", "health:ZB2")["sex"] == "equal"  # the number is not hers
    persons = after.mapping.set_index("record_id")["person_id"]
    assert (persons["census:ZL1"] != persons["justice:ZL3"]) == (caps == "tight")  # only "tight" has the veto
    assert (persons["census:ZQ1"] != persons["justice:ZQ3"]) == (caps == "tight")
    disputed = after.mapping.set_index("record_id")["id_number_disputed"]
    assert disputed["census:ZB1"] and not disputed["civil_affairs:WJ1"]


def test_a_state_kept_under_other_settings_or_too_long_ago_is_not_used(staged, settings, tmp_path):
    first = link_records(staged, settings, id_key=ID_KEY, now=NOW)
    first.kept.save(tmp_path)
    assert KeptLinking.load(tmp_path, settings, NOW + dt.timedelta(days=RELINK_DAYS - 1)) is not None
    assert KeptLinking.load(tmp_path, settings, NOW + dt.timedelta(days=RELINK_DAYS)) is None
    stricter = settings.model_copy(update={"match_threshold": settings.match_threshold + 1})
    assert KeptLinking.load(tmp_path, stricter, NOW) is None
    assert KeptLinking.load(tmp_path / "none", settings, NOW) is None
    # A state an earlier version kept (its pairs named by record id, not by row) is not used.
    state = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))
    (tmp_path / "state.json").write_text(json.dumps({**state, "version": state["version"] - 1}), encoding="utf-8")
    assert KeptLinking.load(tmp_path, settings, NOW) is None
    (tmp_path / "state.json").write_text(json.dumps(state), encoding="utf-8")
    assert KeptLinking.load(tmp_path, settings, NOW) is not None
    # A run killed while writing leaves the old state or the new one (the folder is replaced whole); a
    # file damaged afterwards is not used either.
    pairs = (tmp_path / "pairs.arrow").read_bytes()
    (tmp_path / "pairs.arrow").write_bytes(pairs[: len(pairs) // 2])
    assert KeptLinking.load(tmp_path, settings, NOW) is None
    (tmp_path / "pairs.arrow").write_bytes(pairs)
    assert KeptLinking.load(tmp_path, settings, NOW) is not None
    # Nor one with a few bytes changed (a failing disk), which Arrow may read as other values without an error.
    records = (tmp_path / "records.arrow").read_bytes()
    middle = len(records) // 2
    (tmp_path / "records.arrow").write_bytes(records[:middle] + bytes(b ^ 0x5A for b in records[middle:middle + 3])
                                             + records[middle + 3:])
    assert KeptLinking.load(tmp_path, settings, NOW) is None
    (tmp_path / "state.json").write_text("{broken", encoding="utf-8")
    assert KeptLinking.load(tmp_path, settings, NOW) is None


def test_records_whose_columns_read_otherwise_are_linked_whole(staged, settings):
    """Most ID numbers malformed: the column is read as identifiers of another scheme, which changes
    every record's features — the kept ones cannot be reused."""
    first = link_records(staged, settings, id_key=ID_KEY, now=NOW)
    garbled = staged.copy()
    given = garbled["id_number"].notna()
    garbled.loc[given, "id_number"] = "X" + garbled.loc[given, "id_number"].str[1:]
    result = link_records(garbled, settings, id_key=ID_KEY, kept=first.kept, now=NOW)
    assert result.stats["incremental"] == 0
    # Another column given (aliases) is a whole relink too.
    result = link_records(staged.drop(columns=["alias"]), settings, id_key=ID_KEY, kept=first.kept, now=NOW)
    assert result.stats["incremental"] == 0


def test_a_kept_model_scores_a_whole_relink_while_it_is_fresh_and_the_columns_read_alike(staged, settings, tmp_path):
    # What `silobreaker run --full` does: every record linked again with the kept model (KeptLinking.forget leaves it).
    first = link_records(staged, settings, id_key=ID_KEY, now=NOW)
    first.kept.save(tmp_path)
    later = NOW + dt.timedelta(days=2)
    KeptLinking.forget(tmp_path)
    assert KeptLinking.load(tmp_path, settings, later) is None  # nothing but the model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "state.json", "term_frequencies.parquet"]
    fitted = KeptLinking.load_model(tmp_path, settings, later)
    assert KeptLinking.load_model(tmp_path, settings, NOW + dt.timedelta(days=RELINK_DAYS)) is None

    again = link_records(staged, settings, id_key=ID_KEY, fitted=fitted, now=later)
    assert again.stats["incremental"] == 0 and again.kept.trained_at == NOW  # not fitted again, nor put off
    assert again.mapping["person_id"].tolist() == first.mapping["person_id"].tolist()
    # Records whose ID number column reads otherwise are not scored by a model fitted on other features.
    garbled = staged.copy()
    given = garbled["id_number"].notna()
    garbled.loc[given, "id_number"] = "X" + garbled.loc[given, "id_number"].str[1:]
    assert link_records(garbled, settings, id_key=ID_KEY, fitted=fitted, now=later).kept.trained_at == later

def test_fingerprints_see_values_not_dtypes():
    text = pd.DataFrame({"record_id": ["a:1", "a:2"], "source": ["a", "a"], "name": ["张三", None],
                         "sex": ["M", "F"], "birth_date": ["1990-01-01", ""], "id_number": [None, None],
                         "phone": ["1", "2"], "address": [None, "x"]})
    arrow = text.astype("string[pyarrow]")
    assert (fingerprints(text) == fingerprints(arrow)).all()
    changed = text.assign(phone=["1", "3"])
    assert (fingerprints(text) == fingerprints(changed)).tolist() == [True, False]
    ignored = text.assign(note=["a", "b"])  # a column linking does not read
    assert (fingerprints(text) == fingerprints(ignored)).all()


@pytest.mark.parametrize("size", [3, 40])
def test_positions_are_the_same_whichever_side_is_hashed(size):
    """A few values are hashed themselves and the many probe them; repeats, missing and absent values
    come out as a plain lookup gives them."""
    among = pd.Series([f"r{i}" for i in range(size)] + [None], dtype="string[pyarrow]")
    values = np.array(["r2", None, "x", "r0", "r2"], dtype=object)
    expected = [2, -1, -1, 0, 2]
    assert positions(values, among).tolist() == expected
    assert positions(values[:0], among).tolist() == []


@pytest.mark.parametrize("fault", ["an id of the last run twice", "a new id twice", "an empty id"])
def test_records_whose_ids_repeat_or_are_missing_are_refused_on_a_kept_state_as_on_a_whole_run(staged, settings, tmp_path,
                                                                                                fault) -> None:
    from core.errors import TerminalError

    first = link_records(staged, settings, id_key=ID_KEY, now=NOW)
    first.kept.save(tmp_path / "kept")
    day = staged.copy()
    if fault == "an id of the last run twice":
        day = pd.concat([day, day.iloc[[7]]], ignore_index=True)
    elif fault == "a new id twice":
        new = day.iloc[[3, 4]].copy()
        new["record_id"] = "census:new"
        day = pd.concat([day, new], ignore_index=True)
    else:
        day.loc[5, "record_id"] = None
    with pytest.raises(TerminalError, match="more than once|is empty"):
        link_records(day, settings, id_key=ID_KEY, kept=KeptLinking.load(tmp_path / "kept", settings, NOW), now=NOW)
    with pytest.raises(TerminalError, match="more than once|is empty"):
        link_records(day, settings, id_key=ID_KEY, now=NOW)
