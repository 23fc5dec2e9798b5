-- Every per-Factory lookup by an index: the token list pages newest first by
-- (created_at, hash) within a Factory, and revoking a token reads only its Factory's rows;
-- a Factory's credentials download rows are found by Factory.
CREATE INDEX tokens_by_factory ON tokens (factory, created_at, hash);
CREATE INDEX credentials_by_factory ON credentials (factory);
