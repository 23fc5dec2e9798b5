-- Crypto-shredding (docs/ARCHITECTURE.md, "Destruction"). Every destroyable secret (online
-- private keys, the one-time credentials tarball) is sealed under a data key of its own; data
-- keys are stored wrapped under the key of the current keyring epoch, which lives outside the
-- database (<data-dir>/keyring). Destroying a secret marks its data key; the next epoch
-- re-wraps only the live data keys, and the old epoch key is overwritten everywhere. So a
-- destroyed secret never depends on the database forgetting it.
CREATE TABLE keyring (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL,
    -- HMAC of a fixed text under the epoch key: proves a replica holds the right chain.
    check_value BLOB NOT NULL
);

CREATE TABLE data_keys (
    id TEXT PRIMARY KEY,
    epoch BIGINT NOT NULL,
    wrapped BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    -- Set when the secret it seals is destroyed; the next epoch leaves it behind.
    destroyed_at BIGINT
);

-- The data key of a sealed online key or tarball (NULL: sealed by an older tufd with the
-- server key alone, re-sealed at start).
ALTER TABLE online_keys ADD COLUMN data_key TEXT;
ALTER TABLE credentials ADD COLUMN data_key TEXT;
-- A key on the PKCS#11 token (tufd --pkcs11): its reference (no secret); `sealed` is empty.
ALTER TABLE online_keys ADD COLUMN token_ref TEXT;
-- The public key (JSON, as in root.json) of a key whose private part is not sealed here: a
-- token key, or the bootstrap root key under --pkcs11 (the server keeps no copy of it).
ALTER TABLE online_keys ADD COLUMN public_key TEXT;

-- Token objects of destroyed keys, destroyed (C_DestroyObject) right after the transaction
-- that removed their key commits.
CREATE TABLE token_objects_to_destroy (
    key_ref TEXT PRIMARY KEY,
    queued_at BIGINT NOT NULL
);
