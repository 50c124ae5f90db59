"""The IO manager hands each step the frame the step before returned: every dtype the pipeline uses comes
back as it was, and a frame an earlier version stored as parquet is still read."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from core.home import DataHome
from pipelines.storage import FileIOManager, stored_frame


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "record_id": pd.array(["r1", "r2", None], dtype="string"),
        "name": ["张三", "李四", None],
        "score": [0.5, None, 1.25],
        "count": pd.array([1, None, 3], dtype="Int64"),
        "flag": pd.array([True, None, False], dtype="boolean"),
        "decision": pd.Categorical(["link", "review", "link"]),
        "seen": pd.to_datetime(["2026-12-01", None, "2026-12-03"], utc=True),
    }, index=[7, 8, 9])  # (an index is not part of what a step returns)


def test_a_frame_comes_back_with_its_dtypes(tmp_path):
    manager = FileIOManager(home=str(tmp_path))
    frame = _frame()
    output = dg.build_output_context(asset_key=dg.AssetKey("staged_health"), run_id="run1")
    manager.handle_output(output, frame)
    stored = DataHome.at(tmp_path).asset_base("run1", ["staged_health"])
    assert stored.with_suffix(".arrow").exists()
    back = manager.load_input(dg.build_input_context(asset_key=dg.AssetKey("staged_health"), upstream_output=output))
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True))


def test_a_frame_an_earlier_version_stored_as_parquet_is_read(tmp_path):
    base = DataHome.at(tmp_path).asset_base("blocked", ["quarantine_health"])
    base.parent.mkdir(parents=True)
    _frame().to_parquet(base.with_suffix(".parquet"), index=False)
    pd.testing.assert_frame_equal(stored_frame(tmp_path, "quarantine_health"), _frame().reset_index(drop=True))
