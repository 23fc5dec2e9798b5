-- A metadata body larger than a chunk (repo::BODY_CHUNK) is stored as a sequence of chunks,
-- its `metadata.body` left empty: the store's own copies of a body while it is written or
-- read (the driver's, the bound parameter, the row) are then one chunk each, not the
-- whole of a 20 MB targets.json. `length` is the body's size either way (NULL in rows
-- written before this migration, whose body is inline).
CREATE TABLE metadata_chunks (
    factory TEXT NOT NULL,
    flavour TEXT NOT NULL,
    role TEXT NOT NULL,
    version BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (factory, flavour, role, version, seq),
    FOREIGN KEY (factory, flavour, role, version)
        REFERENCES metadata (factory, flavour, role, version) ON DELETE CASCADE
);

ALTER TABLE metadata ADD COLUMN length BIGINT;

-- Uncompressed, like metadata.body (0007).
ALTER TABLE metadata_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
