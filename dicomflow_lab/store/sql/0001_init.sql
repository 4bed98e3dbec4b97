-- 0001: the workspace's core tables: indexed instances, index errors, sources, settings.
-- DICOM attributes use the DICOM keyword as column name; bookkeeping columns are snake_case.

CREATE TABLE instances (
    file_path                VARCHAR PRIMARY KEY,
    file_size                BIGINT NOT NULL,
    file_mtime               TIMESTAMP_NS NOT NULL,
    source                   VARCHAR NOT NULL,
    indexed_at               TIMESTAMP NOT NULL,
    TransferSyntaxUID        VARCHAR,
    SOPClassUID              VARCHAR,
    SOPInstanceUID           VARCHAR,
    PatientName              VARCHAR,
    PatientID                VARCHAR,
    PatientBirthDate         DATE,
    PatientSex               VARCHAR,
    PatientAge               VARCHAR,
    StudyInstanceUID         VARCHAR,
    StudyDate                DATE,
    StudyTime                VARCHAR,
    StudyDescription         VARCHAR,
    StudyID                  VARCHAR,
    AccessionNumber          VARCHAR,
    ReferringPhysicianName   VARCHAR,
    InstitutionName          VARCHAR,
    SeriesInstanceUID        VARCHAR,
    SeriesNumber             INTEGER,
    SeriesDescription        VARCHAR,
    Modality                 VARCHAR,
    BodyPartExamined         VARCHAR,
    SeriesDate               DATE,
    SeriesTime               VARCHAR,
    FrameOfReferenceUID      VARCHAR,
    Manufacturer             VARCHAR,
    ManufacturerModelName    VARCHAR,
    StationName              VARCHAR,
    InstanceNumber           INTEGER,
    AcquisitionNumber        INTEGER,
    ContentDate              DATE,
    ContentTime              VARCHAR,
    ImageType                VARCHAR,
    "Rows"                   INTEGER,
    "Columns"                INTEGER,
    NumberOfFrames           INTEGER,
    SamplesPerPixel          INTEGER,
    PhotometricInterpretation VARCHAR,
    BitsAllocated            INTEGER,
    BitsStored               INTEGER,
    PixelRepresentation      INTEGER,
    PixelSpacing             DOUBLE[],
    SliceThickness           DOUBLE,
    SpacingBetweenSlices     DOUBLE,
    SliceLocation            DOUBLE,
    ImagePositionPatient     DOUBLE[],
    ImageOrientationPatient  DOUBLE[],
    WindowCenter             DOUBLE[],
    WindowWidth              DOUBLE[],
    RescaleIntercept         DOUBLE,
    RescaleSlope             DOUBLE,
    header                   JSON NOT NULL
);

CREATE TABLE index_errors (
    file_path   VARCHAR PRIMARY KEY,
    file_size   BIGINT,
    file_mtime  TIMESTAMP_NS,
    source      VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL,
    indexed_at  TIMESTAMP NOT NULL
);

CREATE TABLE sources (
    source           VARCHAR PRIMARY KEY,
    kind             VARCHAR NOT NULL,
    added_at         TIMESTAMP NOT NULL,
    last_indexed_at  TIMESTAMP
);

CREATE TABLE settings (
    key         VARCHAR PRIMARY KEY,
    value       JSON NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE VIEW series AS
SELECT
    SeriesInstanceUID,
    any_value(StudyInstanceUID)          AS StudyInstanceUID,
    any_value(PatientID)                 AS PatientID,
    any_value(Modality)                  AS Modality,
    any_value(SeriesNumber)              AS SeriesNumber,
    any_value(SeriesDescription)         AS SeriesDescription,
    any_value(BodyPartExamined)          AS BodyPartExamined,
    min(SeriesDate)                      AS SeriesDate,
    any_value(FrameOfReferenceUID)       AS FrameOfReferenceUID,
    any_value(Manufacturer)              AS Manufacturer,
    any_value("Rows")                    AS "Rows",
    any_value("Columns")                 AS "Columns",
    count(*)                             AS n_instances,
    sum(coalesce(NumberOfFrames, 1))     AS n_frames,
    sum(file_size)                       AS total_bytes,
    min(file_path)                       AS first_file,
    string_agg(DISTINCT source, ' | ')   AS sources
FROM instances
GROUP BY SeriesInstanceUID;

CREATE VIEW studies AS
SELECT
    StudyInstanceUID,
    any_value(PatientName)               AS PatientName,
    any_value(PatientID)                 AS PatientID,
    any_value(PatientBirthDate)          AS PatientBirthDate,
    any_value(PatientSex)                AS PatientSex,
    min(StudyDate)                       AS StudyDate,
    any_value(StudyTime)                 AS StudyTime,
    any_value(StudyDescription)          AS StudyDescription,
    any_value(AccessionNumber)           AS AccessionNumber,
    any_value(StudyID)                   AS StudyID,
    any_value(ReferringPhysicianName)    AS ReferringPhysicianName,
    string_agg(DISTINCT Modality, '\' ORDER BY Modality) AS modalities,
    count(DISTINCT SeriesInstanceUID)    AS n_series,
    count(*)                             AS n_instances,
    sum(file_size)                       AS total_bytes
FROM instances
GROUP BY StudyInstanceUID;
