"""Atomic multi-file writes: each target is either untouched or complete."""

from __future__ import annotations

from pathlib import Path

from dicomflow_lab._fsutil import atomic_write_many


def test_atomic_write_many_writes_all_and_reports_each_failure(tmp_path):
    (tmp_path / "a").mkdir()
    existing = tmp_path / "a" / "old.bin"
    existing.write_bytes(b"old")
    items = [
        (tmp_path / "a" / "one.bin", b"1" * 10_000),
        (existing, b"new"),
        (tmp_path / "missing-folder" / "x.bin", b"never"),
    ]
    errors = atomic_write_many(items)
    assert errors[0] is None and errors[1] is None
    assert isinstance(errors[2], FileNotFoundError)
    assert (tmp_path / "a" / "one.bin").read_bytes() == b"1" * 10_000
    assert existing.read_bytes() == b"new"
    assert not (tmp_path / "missing-folder").exists()
    # no temporary file is left behind
    assert sorted(p.name for p in Path(tmp_path / "a").iterdir()) == ["old.bin", "one.bin"]


def test_atomic_write_many_with_nothing_to_write():
    assert atomic_write_many([]) == []
