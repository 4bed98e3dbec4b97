-- The anonymization mapping and audit (issue 5): a database file of its own
-- (anonymization.duckdb beside workspace.duckdb) so that the workspace can be shared or
-- exported without it. Whoever holds this file can link anonymized data back to the
-- originals: treat it like the key.

CREATE TABLE anonymization_files (
    run_id              VARCHAR NOT NULL,
    file_path           VARCHAR NOT NULL,    -- the original
    out_file            VARCHAR,             -- NULL when quarantined, skipped or failed
    status              VARCHAR NOT NULL,    -- written, quarantined, skipped, failed
    reason              VARCHAR,             -- why quarantined / skipped / failed
    SOPInstanceUID      VARCHAR,             -- new UIDs
    SeriesInstanceUID   VARCHAR,
    StudyInstanceUID    VARCHAR,
    actions             JSON,                -- {"X": 12, "D": 3, ...}
    warnings            VARCHAR[],
    pixel_rule          VARCHAR
);

CREATE TABLE uid_map (
    run_id        VARCHAR NOT NULL,
    original_uid  VARCHAR NOT NULL,
    new_uid       VARCHAR NOT NULL,
    PRIMARY KEY (run_id, original_uid)
);

CREATE TABLE patient_map (
    run_id              VARCHAR NOT NULL,
    original_patient_id VARCHAR NOT NULL,
    new_patient_id      VARCHAR NOT NULL,
    date_offset_days    INTEGER,
    PRIMARY KEY (run_id, original_patient_id)
);

-- one row per attribute acted on: never the value, only a keyed hash of the old value
CREATE TABLE anonymization_audit (
    run_id     VARCHAR NOT NULL,
    file_path  VARCHAR NOT NULL,
    path       VARCHAR NOT NULL,
    tag        VARCHAR NOT NULL,
    keyword    VARCHAR,
    vr         VARCHAR,
    action     VARCHAR NOT NULL,
    rule       VARCHAR NOT NULL,
    old_hash   VARCHAR
);

CREATE INDEX anonymization_audit_run_idx ON anonymization_audit (run_id);
