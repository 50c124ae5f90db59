"""Frames kept between steps and runs are read only as they were written (core.frames)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.frames import DIGEST_SUFFIX, DamagedFrameError, read_frame, read_table, write_frame

TEXT = pd.StringDtype("pyarrow")


def frame() -> pd.DataFrame:
    n = 20_000
    return pd.DataFrame({"name": pd.Series([f"张伟{i % 997}" for i in range(n)], dtype=TEXT),
                         "id_number": pd.Series([f"1101051980{i:08d}" for i in range(n)], dtype=TEXT),
                         "row": np.arange(n, dtype=np.int64)})


def changed_copies(path, count: int, seed: int = 7):
    """``path`` with three bytes changed at each of ``count`` random places, one place at a time."""
    data = path.read_bytes()
    rng = np.random.default_rng(seed)
    for at in rng.integers(8, len(data) - 8, size=count):
        damaged = bytearray(data)
        for i in range(3):
            damaged[at + i] ^= 0x5A
        path.write_bytes(bytes(damaged))
        yield
    path.write_bytes(data)


def test_a_frame_reads_back_as_it_was_written(tmp_path):
    written = frame().set_index("row", drop=False)
    write_frame(written, tmp_path / "f.arrow")

    pd.testing.assert_frame_equal(read_frame(tmp_path / "f.arrow"), written.reset_index(drop=True))
    assert read_table(tmp_path / "f.arrow").num_rows == len(written)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.arrow", f"f.arrow{DIGEST_SUFFIX}"]


def test_a_frame_changed_after_it_was_written_is_never_read(tmp_path):
    path = tmp_path / "f.arrow"
    write_frame(frame(), path)
    silently_other = 0
    for _ in changed_copies(path, 60):
        try:  # what reading it without its digest gives
            silently_other += not pd.read_feather(path).equals(frame())
        except Exception:  # noqa: BLE001 - Arrow's own errors, of whatever kind
            pass
        for read in (read_frame, read_table):
            with pytest.raises(DamagedFrameError, match="changed since it was written"):
                read(path)
    # The danger is real: Arrow alone reads some of these as other rows, without an error.
    assert silently_other > 0
    pd.testing.assert_frame_equal(read_frame(path), frame())  # the original bytes back: read again


def test_a_frame_without_its_digest_is_not_read(tmp_path):
    path = tmp_path / "f.arrow"
    frame().to_feather(path, compression="lz4")  # as written before frames had digests

    with pytest.raises(DamagedFrameError, match="no sha256 beside it"):
        read_frame(path)
    with pytest.raises(FileNotFoundError):
        read_frame(tmp_path / "missing.arrow")


def test_a_frame_and_a_digest_of_two_writes_do_not_pass_as_one(tmp_path):
    # A crash between the two renames leaves the new file beside the old digest (or the reverse).
    path = tmp_path / "f.arrow"
    write_frame(frame(), path)
    old_digest = (tmp_path / f"f.arrow{DIGEST_SUFFIX}").read_text()
    write_frame(frame().head(10), path)
    (tmp_path / f"f.arrow{DIGEST_SUFFIX}").write_text(old_digest)

    with pytest.raises(DamagedFrameError):
        read_frame(path)
    assert not list(tmp_path.glob(".*partial"))
