-- 0002: the edit journal (issue 4). One row per applied change, and one row with
-- op = 'undo' per file restored by Workspace.undo(); it is also the undo journal.

CREATE SEQUENCE edits_id_seq START 1;

CREATE TABLE edits (
    edit_id        BIGINT PRIMARY KEY DEFAULT nextval('edits_id_seq'),
    run_id         VARCHAR NOT NULL,
    applied_at     TIMESTAMP NOT NULL,
    "user"         VARCHAR,
    file_path      VARCHAR NOT NULL,
    new_file_path  VARCHAR NOT NULL,
    path           VARCHAR NOT NULL,
    tag            VARCHAR,
    keyword        VARCHAR,
    op             VARCHAR NOT NULL,
    old_value      VARCHAR,
    new_value      VARCHAR,
    backup_path    VARCHAR,
    undone_at      TIMESTAMP
);

CREATE INDEX edits_run_idx ON edits (run_id);
