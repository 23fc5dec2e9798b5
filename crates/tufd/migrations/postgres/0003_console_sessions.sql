-- Web console sessions (/ui/). The browser holds a random session ID in an HttpOnly cookie;
-- only its SHA-256 is stored, so a copy of the database opens no session. A session acts
-- with the token it was opened with: revoking the token ends its sessions (the lookup joins
-- tokens, and the row goes with the token). Signing out deletes the row, so it ends on
-- every replica at once.
CREATE TABLE ui_sessions (
    hash TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL REFERENCES tokens(hash) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ui_sessions_by_token ON ui_sessions (token_hash, created_at);
CREATE INDEX ui_sessions_by_expiry ON ui_sessions (expires_at);
