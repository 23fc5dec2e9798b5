-- Artifacts are stored and served a chunk at a time (memory per upload or download is one
-- chunk, never the artifact). Rows an older tufd wrote keep their bytes in artifacts.data
-- (chunk_size NULL) and are served in slices of it.
CREATE TABLE artifact_chunks (
    sha256 TEXT NOT NULL,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (sha256, seq)
);

ALTER TABLE artifacts ALTER COLUMN data DROP NOT NULL;
ALTER TABLE artifacts ADD COLUMN chunk_size BIGINT;
