"""The two unusable checkpoint files a loader must reject with a clear error: bytes that are not a
checkpoint, and no file at all."""

from __future__ import annotations

import pytest


def assert_rejects_garbage_and_missing(tmp_path, error, load, *, garbage: str, missing: str,
                                       load_missing=None) -> None:
    """`load` raises `error` matching `garbage` on tmp_path/garbage.pt (junk bytes), and
    `load_missing` (default `load`) raises it matching `missing` on tmp_path/missing.pt (no file)."""
    junk = tmp_path / "garbage.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(error, match=garbage):
        load(junk)
    with pytest.raises(error, match=missing):
        (load_missing or load)(tmp_path / "missing.pt")
