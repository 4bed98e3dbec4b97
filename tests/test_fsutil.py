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


def test_atomic_writes_keep_a_replaced_files_mode_and_give_new_files_the_usual_one(tmp_path):
    import os
    import stat

    from dicomflow_lab._fsutil import atomic_write_bytes

    old = os.umask(0o027)
    try:
        existing = tmp_path / "kept.bin"
        existing.write_bytes(b"old")
        existing.chmod(0o604)
        atomic_write_bytes(existing, b"new")
        atomic_write_many([(tmp_path / "new-many.bin", b"x")])
        atomic_write_bytes(tmp_path / "new-one.bin", b"y")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(existing) == 0o604  # not mkstemp's 0600
    assert mode(tmp_path / "new-many.bin") == 0o640  # 0666 less the umask
    assert mode(tmp_path / "new-one.bin") == 0o640
