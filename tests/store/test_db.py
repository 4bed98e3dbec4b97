"""The database across threads and processes: no lock errors in normal use, no corruption."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from dicomflow_lab.errors import StoreError, StoreLockedError
from dicomflow_lab.store.db import Database


def test_file_is_not_held_while_idle(tmp_path):
    db = Database(tmp_path / "w.duckdb", idle_release=0)
    db.query("SELECT 1")
    assert not db.is_open
    # another process can open it right away, without retrying
    code = f"import duckdb; duckdb.connect({str(tmp_path / 'w.duckdb')!r}).close()"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_idle_connection_is_released(tmp_path):
    db = Database(tmp_path / "w.duckdb", idle_release=0.05)
    db.query("SELECT 1")
    released = threading.Event()
    # the release runs on a timer thread; wait for its effect, bounded
    for _ in range(200):
        if not db.is_open:
            released.set()
            break
        threading.Event().wait(0.01)
    assert released.is_set()


def test_another_process_holding_the_lock_gives_a_clear_error_then_works(tmp_path):
    path = tmp_path / "w.duckdb"
    Database(path, idle_release=0).query("SELECT 1")  # create + migrate
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys
            con = duckdb.connect({str(path)!r})
            print("locked", flush=True)
            sys.stdin.read()
            con.close()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        db = Database(path, lock_timeout=0.3, idle_release=0)
        with pytest.raises(StoreLockedError, match=r"locked by process \d+.*read_only=True"):
            db.query("SELECT 1")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert db.query("SELECT count(*) AS n FROM instances")["n"][0] == 0


def test_threads_write_concurrently_without_loss(tmp_path):
    db = Database(tmp_path / "w.duckdb")
    with db.connect() as con:
        con.execute("CREATE TABLE t (thread INTEGER, i INTEGER, PRIMARY KEY (thread, i))")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(50):
                with db.transaction() as con:
                    con.execute("INSERT INTO t VALUES (?, ?)", [n, i])
                if i % 10 == 0:
                    db.query("SELECT count(*) FROM t")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = db.query("SELECT thread, count(*) AS n FROM t GROUP BY 1 ORDER BY 1")
    assert counts["n"].tolist() == [50] * 8


def test_failed_transaction_rolls_back(tmp_path):
    db = Database(tmp_path / "w.duckdb")
    with db.connect() as con:
        con.execute("CREATE TABLE t (a INTEGER)")
    with pytest.raises(RuntimeError), db.transaction() as con:
        con.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    assert db.query("SELECT count(*) AS n FROM t")["n"][0] == 0


def test_bad_sql_is_a_store_error_and_the_database_stays_usable(tmp_path):
    db = Database(tmp_path / "w.duckdb")
    with pytest.raises(StoreError, match="SQL failed"):
        db.query("SELECT * FROM no_such_table")
    assert db.query("SELECT 42 AS x")["x"][0] == 42


def test_closed_database_refuses_use(tmp_path):
    db = Database(tmp_path / "w.duckdb")
    db.close()
    with pytest.raises(StoreError, match="closed"):
        db.query("SELECT 1")


def test_in_memory_database_keeps_its_data(tmp_path):
    db = Database(None)
    with db.connect() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS a")
    assert db.query("SELECT a FROM t")["a"][0] == 1


_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dicomflow_lab.workspace import Workspace
    ws_path, folder, name, go = sys.argv[1:5]
    Path(go).parent.joinpath(name + ".ready").touch()
    while not Path(go).exists():   # start together with the other process
        time.sleep(0.005)
    ws = Workspace(ws_path, lock_timeout=60)
    report = ws.index(folder, progress=False, workers=1)
    assert report.indexed == 40, report
    for _ in range(20):
        ws.studies()
        ws.set_setting("index.include_hidden", False)
        ws.instances()
    print("ok", report.indexed)
""")


def test_two_processes_share_one_workspace(tmp_path):
    from tests.conftest import write_series

    for name in ("a", "b"):
        write_series(tmp_path / name, 40, patient_id=name.upper())
    ws_path = tmp_path / "ws"
    go = tmp_path / "sync" / "go"
    go.parent.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(ws_path), str(tmp_path / n), n, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in ("a", "b")
    ]
    while not all((go.parent / f"{n}.ready").exists() for n in ("a", "b")):
        if any(p.poll() is not None for p in procs):
            break
        threading.Event().wait(0.005)
    go.touch()
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert out.strip() == "ok 40"
    from dicomflow_lab.workspace import Workspace

    with Workspace(ws_path) as ws:
        counts = ws.sql("SELECT PatientID, count(*) AS n FROM instances GROUP BY 1 ORDER BY 1")
    assert counts.to_dict("list") == {"PatientID": ["A", "B"], "n": [40, 40]}


def test_threads_index_and_query_one_workspace(tmp_path):
    from dicomflow_lab.workspace import Workspace
    from tests.conftest import write_series

    folders = []
    for n in range(4):
        folders.append(tmp_path / f"s{n}")
        write_series(folders[-1], 12, patient_id=f"P{n}")
    ws = Workspace(tmp_path / "ws")
    errors: list[BaseException] = []
    start = threading.Barrier(len(folders) + 1)

    def index(folder: Path) -> None:
        try:
            start.wait()
            ws.index(folder, progress=False, workers=1, batch_rows=3)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    def query() -> None:
        try:
            start.wait()
            for _ in range(30):
                ws.series()
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=index, args=(f,)) for f in folders]
    threads.append(threading.Thread(target=query))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = ws.sql("SELECT PatientID, count(*) AS n FROM instances GROUP BY 1 ORDER BY 1")
    assert counts["n"].tolist() == [12, 12, 12, 12]
    ws.close()


_CREATOR = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dicomflow_lab.workspace import Workspace
    ws_path, go = sys.argv[1:3]
    while not Path(go).exists():   # all start together on a workspace that does not exist
        time.sleep(0.002)
    with Workspace(ws_path, lock_timeout=60) as ws:
        print(len(ws.studies()))
""")


def test_processes_creating_the_same_new_workspace_do_not_race(tmp_path):
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATOR, str(tmp_path / "fresh"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        assert out.strip() == "0"
