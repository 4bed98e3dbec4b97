"""The dicomflow-lab command, called in-process."""

from __future__ import annotations

import json

from dicomflow_lab.cli import main
from tests.conftest import TEST_FILES


def test_index_then_sql(series_dir, tmp_path, capsys):
    ws = str(tmp_path / "ws")
    assert main(["-w", ws, "index", str(series_dir), "--no-progress"]) == 0
    assert "Indexed 5 instance(s)" in capsys.readouterr().out
    assert main(["-w", ws, "sql", "SELECT Modality, count(*) AS n FROM instances GROUP BY 1"]) == 0
    out = capsys.readouterr().out
    assert "CT" in out and "5" in out
    assert main(["-w", ws, "sql", "SELECT InstanceNumber FROM instances ORDER BY 1", "--csv"]) == 0
    assert capsys.readouterr().out.split() == ["InstanceNumber", "1", "2", "3", "4", "5"]


def test_index_lists_errors_on_request(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "junk.bin").write_bytes(b"junk")
    assert (
        main(
            ["-w", str(tmp_path / "ws"), "index", str(tmp_path / "d"), "--errors", "--no-progress"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "[not_dicom]" in out and "junk.bin" in out


def test_info_dumps_a_file(capsys):
    assert main(["info", str(TEST_FILES / "CT_small.dcm")]) == 0
    out = capsys.readouterr().out
    assert "(0010,0010) Patient's Name" in out
    assert "Pixel Data" not in out  # header only


def test_info_json(capsys):
    assert main(["info", str(TEST_FILES / "CT_small.dcm"), "--json", "--meta"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["Modality"] == "CT"
    assert data["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"


def test_info_on_a_bad_file_says_why_and_fails(tmp_path, capsys):
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"")
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "x.dcm" in err and "empty file" in err


def test_bad_sql_fails_with_a_message(tmp_path, capsys):
    assert main(["-w", str(tmp_path / "ws"), "sql", "SELECT * FROM nowhere"]) == 1
    assert "SQL failed" in capsys.readouterr().err


def test_lab_refuses_a_folder_without_the_notebook(tmp_path, capsys):
    assert main(["lab", "--notebook-dir", str(tmp_path)]) == 1
    assert "no quickstart.ipynb" in capsys.readouterr().err


def test_anonymize_reads_the_key_from_the_environment_only(
    series_dir, tmp_path, capsys, monkeypatch
):
    ws, out = str(tmp_path / "ws"), tmp_path / "anon"
    monkeypatch.delenv("DICOMFLOW_ANON_KEY", raising=False)
    assert main(["-w", ws, "anonymize", str(series_dir), str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no key in $DICOMFLOW_ANON_KEY" in err and "new_key()" in err
    assert not out.exists() or not any(out.rglob("*.dcm"))

    monkeypatch.setenv("DICOMFLOW_ANON_KEY", "cli-secret-key")
    argv = ["-w", ws, "anonymize", str(series_dir), str(out), "--verify", "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "5 written" in text and "0 residual" in text
    assert "cli-secret-key" not in text
    assert len(list(out.rglob("*.dcm"))) == 5

    key_file = tmp_path / "key.txt"
    key_file.write_text("cli-secret-key\n")
    monkeypatch.delenv("DICOMFLOW_ANON_KEY")
    again = tmp_path / "again"
    argv = [
        "-w",
        ws,
        "anonymize",
        str(series_dir),
        str(again),
        "--key-file",
        str(key_file),
        "--no-progress",
    ]
    assert main(argv) == 0
    first = sorted(p.relative_to(out) for p in out.rglob("*.dcm"))
    assert first == sorted(p.relative_to(again) for p in again.rglob("*.dcm"))
