"""The same seed gives the same bytes; another seed gives another district; bad arguments are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.home import DataHome
from demo.generate import FILES, generate_demo
from tests.demo.demo_helpers import files_under


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate_demo(tmp_path / "a", persons=500, seed=11)
    second = generate_demo(tmp_path / "b", persons=500, seed=11)
    a, b = files_under(tmp_path / "a" / "demo"), files_under(tmp_path / "b" / "demo")
    expected = {*FILES.values(), "areas.csv", "truth/ground_truth.parquet", "truth/hard_negatives.parquet",
                "truth/persons.parquet"}
    assert set(a) == expected
    assert [name for name in a if a[name] != b[name]] == []
    assert first.counts == second.counts


def test_regenerating_into_the_same_home_replaces_the_files(tmp_path: Path) -> None:
    generate_demo(tmp_path, persons=400, seed=3)
    before = files_under(DataHome.at(tmp_path).demo_dir)
    generate_demo(tmp_path, persons=400, seed=3)
    assert files_under(DataHome.at(tmp_path).demo_dir) == before


def test_another_seed_gives_another_district(tmp_path: Path) -> None:
    generate_demo(tmp_path / "a", persons=500, seed=1)
    generate_demo(tmp_path / "b", persons=500, seed=2)
    a, b = files_under(tmp_path / "a" / "demo"), files_under(tmp_path / "b" / "demo")
    assert all(a[name] != b[name] for name in FILES.values())


@pytest.mark.parametrize(("persons", "seed"), [(10, 1), (True, 1), (500.0, 1), (500, -1), (500, "x")])
def test_impossible_arguments_are_refused_with_an_example(tmp_path: Path, persons: object, seed: object) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. generate_demo"):
        generate_demo(tmp_path, persons=persons, seed=seed)  # type: ignore[arg-type]
    assert not (DataHome.at(tmp_path).demo_dir).exists()
