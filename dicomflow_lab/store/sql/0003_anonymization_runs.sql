-- 0003: anonymization runs (issue 5). One row per ws.anonymize() call. It holds no
-- patient data and no key (only the key's fingerprint), so it may be shared with the
-- workspace. The mapping (original -> new UIDs and patient IDs) and the per-attribute
-- audit live in a separate database file (store/sql_private), kept apart on purpose.

CREATE TABLE anonymization_runs (
    run_id           VARCHAR PRIMARY KEY,
    started_at       TIMESTAMP NOT NULL,
    finished_at      TIMESTAMP,
    status           VARCHAR NOT NULL,      -- running, done, cancelled, failed
    template_name    VARCHAR NOT NULL,
    template_json    JSON NOT NULL,
    key_fingerprint  VARCHAR NOT NULL,
    out_dir          VARCHAR NOT NULL,
    files_in         INTEGER NOT NULL,
    written          INTEGER,
    quarantined      INTEGER,
    skipped          INTEGER,
    failed           INTEGER,
    verified         BOOLEAN,               -- NULL: not verified
    residual_rows    INTEGER,
    seconds          DOUBLE,
    tool_version     VARCHAR NOT NULL
);
