"""Chunked writes: every file durable before any rename, backups before outputs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dicomflow_lab.core import _write
from dicomflow_lab.core.edit import Edit
from dicomflow_lab.errors import EditError

from ..conftest import TEST_FILES

EDITS = [Edit("set", "PatientName", "Doe^Jane")]


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    src = tmp_path / "src"
    src.mkdir()
    out = []
    for k in range(5):
        path = src / f"IM{k}.dcm"
        shutil.copy(TEST_FILES / "CT_small.dcm", path)
        out.append(path)
    return out


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    log: list[tuple[str, str]] = []
    real_fsync, real_replace, real_dir = os.fsync, os.replace, _write.fsync_dir

    def fsync(fd: int) -> None:
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        log.append(("rename", str(dst)))
        log.append(("renamed_from", str(src)))
        real_replace(src, dst)

    def fsync_dir(path: Path) -> None:
        log.append(("fsync_dir", str(path)))
        real_dir(path)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(_write, "fsync_dir", fsync_dir)
    return log


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_in_place_chunk_syncs_everything_then_renames_backups_then_outputs(files, events, tmp_path):
    before = {p: p.read_bytes() for p in files}
    tasks = [(p, p, tmp_path / "backups" / p.name) for p in files]
    results = _write.run_chunk(tasks, EDITS, False, "run")
    assert all(isinstance(r, list) and r for r in results)
    kinds = [kind for kind, _ in events]
    first_rename = kinds.index("rename")
    # ten temporary files (5 backups + 5 outputs), all flushed before the first rename
    assert kinds[:first_rename] == ["fsync"] * 10
    assert all(path.endswith(".tmp") for _, path in events[:first_rename])
    renames = [path for kind, path in events if kind == "rename"]
    assert renames == [str(t[2]) for t in tasks] + [str(t[1]) for t in tasks]
    # the backup folder is flushed before any original is replaced
    backup_dir = events.index(("fsync_dir", str(tmp_path / "backups")))
    assert backup_dir < events.index(("rename", str(files[0])))
    last_rename = max(i for i, (kind, _) in enumerate(events) if kind == "rename")
    assert ("fsync_dir", str(files[0].parent)) in events[last_rename:]
    for path in files:
        assert (tmp_path / "backups" / path.name).read_bytes() == before[path]
        assert path.read_bytes() != before[path]
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_in_batches_each_file_is_flushed_before_its_rename_and_its_backup_before_it(
    tmp_path, events
):
    src = tmp_path / "src"
    src.mkdir()
    files = []
    for k in range(40):  # several flush batches
        files.append(src / f"IM{k:02d}.dcm")
        shutil.copy(TEST_FILES / "CT_small.dcm", files[-1])
    tasks = [(p, p, tmp_path / "backups" / p.name) for p in files]
    results = _write.run_chunk(tasks, EDITS, False, "run")
    assert all(isinstance(r, list) for r in results)
    position = {}
    for i, (kind, path) in enumerate(events):
        position.setdefault((kind, path), i)
    for _src, dst, backup in tasks:
        for target in (backup, dst):
            i = position[("rename", str(target))]
            tmp = events[i + 1][1]
            assert position[("fsync", tmp)] < i  # durable before the rename
        assert position[("rename", str(backup))] < position[("rename", str(dst))]
        dirsync = [
            j
            for j, event in enumerate(events)
            if event == ("fsync_dir", str(backup.parent)) and j > position[("rename", str(backup))]
        ]
        assert dirsync and dirsync[0] < position[("rename", str(dst))]
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_refused_file_stops_the_chunk_and_the_files_before_it_are_written(files, tmp_path):
    victim = files[2]
    data = victim.read_bytes().replace(b"ISO_IR 100", b"ISO_IR 6  ")
    assert data != victim.read_bytes()
    victim.write_bytes(data)
    tasks = [(p, tmp_path / "out" / p.name, None) for p in files]
    results = _write.run_chunk(tasks, [Edit("set", "PatientName", "Müller^Jürgen")], False, "r")
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["list", "list", "EditError", "NoneType", "NoneType"]
    assert "IM2.dcm: " in str(results[2])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["IM0.dcm", "IM1.dcm"]
    one = tmp_path / "one.dcm"
    with pytest.raises(EditError, match=r"IM2\.dcm: .*not encodable"):
        _write.edit_file(victim, one, None, [Edit("set", "PatientName", "Ü")], False, "r")
    assert not (tmp_path / "one.dcm").exists()


def test_a_failed_flush_renames_nothing_and_leaves_no_temporary_file(files, tmp_path, monkeypatch):
    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    before = {p: p.read_bytes() for p in files}
    tasks = [(p, p, tmp_path / "backups" / p.name) for p in files]
    results = _write.run_chunk(tasks, EDITS, False, "run")
    assert all(isinstance(r, OSError) for r in results)
    assert all(p.read_bytes() == before[p] for p in files)  # originals untouched
    assert not list(tmp_path.rglob("*.tmp"))
    assert not list((tmp_path / "backups").glob("*.dcm"))
