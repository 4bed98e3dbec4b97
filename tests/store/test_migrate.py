"""The schema: migrations apply in order, once, and give exactly the expected columns."""

from __future__ import annotations

import duckdb
import pytest

from dicomflow_lab.store.ingest import INSTANCE_COLUMNS
from dicomflow_lab.store.migrate import migrate, migrations

BOOKKEEPING = {
    "file_path": "VARCHAR",
    "file_size": "BIGINT",
    "file_mtime": "TIMESTAMP_NS",
    "source": "VARCHAR",
    "indexed_at": "TIMESTAMP",
    "TransferSyntaxUID": "VARCHAR",
}

EXPECTED = {
    "instances": {**BOOKKEEPING, **INSTANCE_COLUMNS, "header": "JSON"},
    "index_errors": {
        "file_path": "VARCHAR",
        "file_size": "BIGINT",
        "file_mtime": "TIMESTAMP_NS",
        "source": "VARCHAR",
        "kind": "VARCHAR",
        "reason": "VARCHAR",
        "indexed_at": "TIMESTAMP",
    },
    "sources": {
        "source": "VARCHAR",
        "kind": "VARCHAR",
        "added_at": "TIMESTAMP",
        "last_indexed_at": "TIMESTAMP",
    },
    "settings": {"key": "VARCHAR", "value": "JSON", "updated_at": "TIMESTAMP"},
    "schema_migrations": {"version": "INTEGER", "name": "VARCHAR", "applied_at": "TIMESTAMP"},
    "edits": {
        "edit_id": "BIGINT",
        "run_id": "VARCHAR",
        "applied_at": "TIMESTAMP",
        "user": "VARCHAR",
        "file_path": "VARCHAR",
        "new_file_path": "VARCHAR",
        "path": "VARCHAR",
        "tag": "VARCHAR",
        "keyword": "VARCHAR",
        "op": "VARCHAR",
        "old_value": "VARCHAR",
        "new_value": "VARCHAR",
        "backup_path": "VARCHAR",
        "undone_at": "TIMESTAMP",
    },
    "anonymization_runs": {
        "run_id": "VARCHAR",
        "started_at": "TIMESTAMP",
        "finished_at": "TIMESTAMP",
        "status": "VARCHAR",
        "template_name": "VARCHAR",
        "template_json": "JSON",
        "key_fingerprint": "VARCHAR",
        "out_dir": "VARCHAR",
        "files_in": "INTEGER",
        "written": "INTEGER",
        "quarantined": "INTEGER",
        "skipped": "INTEGER",
        "failed": "INTEGER",
        "verified": "BOOLEAN",
        "residual_rows": "INTEGER",
        "seconds": "DOUBLE",
        "tool_version": "VARCHAR",
    },
}

# The anonymization mapping database (store/sql_private): a file of its own.
EXPECTED_PRIVATE = {
    "anonymization_files": {
        "run_id": "VARCHAR",
        "file_path": "VARCHAR",
        "out_file": "VARCHAR",
        "status": "VARCHAR",
        "reason": "VARCHAR",
        "SOPInstanceUID": "VARCHAR",
        "SeriesInstanceUID": "VARCHAR",
        "StudyInstanceUID": "VARCHAR",
        "actions": "JSON",
        "warnings": "VARCHAR[]",
        "pixel_rule": "VARCHAR",
    },
    "uid_map": {"run_id": "VARCHAR", "original_uid": "VARCHAR", "new_uid": "VARCHAR"},
    "patient_map": {
        "run_id": "VARCHAR",
        "original_patient_id": "VARCHAR",
        "new_patient_id": "VARCHAR",
        "date_offset_days": "INTEGER",
    },
    "anonymization_audit": {
        "run_id": "VARCHAR",
        "file_path": "VARCHAR",
        "path": "VARCHAR",
        "tag": "VARCHAR",
        "keyword": "VARCHAR",
        "vr": "VARCHAR",
        "action": "VARCHAR",
        "rule": "VARCHAR",
        "old_hash": "VARCHAR",
    },
    "schema_migrations": {"version": "INTEGER", "name": "VARCHAR", "applied_at": "TIMESTAMP"},
}

# The typed DICOM columns of `instances`, spelled out independently of the code, so that a
# change to INSTANCE_COLUMNS without a migration (or the reverse) fails here.
INSTANCE_TYPES_BY_HAND = {
    "PatientName": "VARCHAR",
    "PatientID": "VARCHAR",
    "PatientBirthDate": "DATE",
    "StudyInstanceUID": "VARCHAR",
    "StudyDate": "DATE",
    "SeriesInstanceUID": "VARCHAR",
    "SeriesNumber": "INTEGER",
    "Modality": "VARCHAR",
    "SOPInstanceUID": "VARCHAR",
    "SOPClassUID": "VARCHAR",
    "InstanceNumber": "INTEGER",
    "Rows": "INTEGER",
    "Columns": "INTEGER",
    "NumberOfFrames": "INTEGER",
    "PixelSpacing": "DOUBLE[]",
    "ImagePositionPatient": "DOUBLE[]",
    "ImageOrientationPatient": "DOUBLE[]",
    "WindowCenter": "DOUBLE[]",
    "WindowWidth": "DOUBLE[]",
    "RescaleSlope": "DOUBLE",
    "RescaleIntercept": "DOUBLE",
    "SliceThickness": "DOUBLE",
}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return dict(rows)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


def test_blank_database_gets_every_table_with_exact_columns(con):
    applied = migrate(con)
    assert applied == [m.version for m in migrations()]
    for table, expected in EXPECTED.items():
        assert _columns(con, table) == expected, table


def test_private_schema_is_separate_with_exact_columns(con):
    applied = migrate(con, "sql_private")
    assert applied == [m.version for m in migrations("sql_private")] == [1]
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert tables == set(EXPECTED_PRIVATE)
    for table, expected in EXPECTED_PRIVATE.items():
        assert _columns(con, table) == expected, table


def test_workspace_schema_holds_no_mapping_table(con):
    migrate(con)
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert not tables & {"uid_map", "patient_map", "anonymization_audit", "anonymization_files"}


def test_typed_instance_columns_match_the_hand_written_list(con):
    migrate(con)
    actual = _columns(con, "instances")
    for name, sql_type in INSTANCE_TYPES_BY_HAND.items():
        assert actual[name] == sql_type, name


def test_views_exist_with_their_aggregate_columns(con):
    migrate(con)
    series = _columns(con, "series")
    studies = _columns(con, "studies")
    assert {"SeriesInstanceUID", "StudyInstanceUID", "n_instances", "n_frames"} <= set(series)
    assert {"StudyInstanceUID", "PatientName", "modalities", "n_series", "n_instances"} <= set(
        studies
    )


def test_migrate_twice_applies_nothing_the_second_time(con):
    migrate(con)
    assert migrate(con) == []
    versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()]
    assert versions == sorted(versions) == [m.version for m in migrations()]


def test_migrations_are_numbered_uniquely_from_one():
    versions = [m.version for m in migrations()]
    assert versions[0] == 1
    assert len(set(versions)) == len(versions)
    assert all(m.sql.strip() for m in migrations())
