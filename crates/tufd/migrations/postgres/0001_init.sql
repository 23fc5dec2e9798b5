-- tufd schema, PostgreSQL flavour. Times are Unix seconds; metadata bodies are the exact signed
-- bytes served to clients.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE factories (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    -- Bumped by every write transaction on the Factory: the first statement of such a
    -- transaction, so it takes the write lock before anything is read.
    lock_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    factory TEXT REFERENCES factories(name),
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE online_keys (
    factory TEXT NOT NULL REFERENCES factories(name),
    keyid TEXT NOT NULL,
    purpose TEXT NOT NULL,
    keytype TEXT NOT NULL,
    scheme TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (factory, keyid)
);

CREATE TABLE metadata (
    factory TEXT NOT NULL REFERENCES factories(name),
    flavour TEXT NOT NULL,
    role TEXT NOT NULL,
    version BIGINT NOT NULL,
    body BYTEA NOT NULL,
    sha256 TEXT NOT NULL,
    expires BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (factory, flavour, role, version)
);

CREATE TABLE heads (
    factory TEXT NOT NULL REFERENCES factories(name),
    flavour TEXT NOT NULL,
    role TEXT NOT NULL,
    version BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    expires BIGINT NOT NULL,
    issued BIGINT NOT NULL,
    PRIMARY KEY (factory, flavour, role)
);

CREATE TABLE credentials (
    once_hash TEXT PRIMARY KEY,
    factory TEXT NOT NULL REFERENCES factories(name),
    body BYTEA,
    created_at BIGINT NOT NULL,
    fetched_at BIGINT
);

CREATE TABLE root_updates (
    factory TEXT PRIMARY KEY REFERENCES factories(name),
    txid TEXT NOT NULL,
    message TEXT NOT NULL,
    ci_root BYTEA NOT NULL,
    prod_root BYTEA NOT NULL,
    prod_targets BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE waves (
    factory TEXT NOT NULL REFERENCES factories(name),
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    tag TEXT NOT NULL,
    status TEXT NOT NULL,
    targets_version BIGINT NOT NULL,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (factory, name)
);

CREATE TABLE artifacts (
    sha256 TEXT PRIMARY KEY,
    length BIGINT NOT NULL,
    data BYTEA NOT NULL
);

CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    factory TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_by_factory ON audit (factory, id);

-- Which Factory uploaded which artifact: artifacts are shared content-addressed blobs, but a
-- Factory's repository only serves its own.
CREATE TABLE factory_artifacts (
    factory TEXT NOT NULL REFERENCES factories(name),
    sha256 TEXT NOT NULL,
    length BIGINT NOT NULL,
    PRIMARY KEY (factory, sha256)
);
