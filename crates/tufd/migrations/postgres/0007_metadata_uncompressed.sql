-- Metadata bodies are stored without compression. A CI commit stores a new targets.json
-- (2 MB at 10,000 targets); compressing it on every insert (pglz, PostgreSQL's default for
-- TOAST) cost more than writing it, and retention (repo::prune_old_versions) already bounds
-- the versions kept. Applies to rows written from now on; older rows stay as they are.
ALTER TABLE metadata ALTER COLUMN body SET STORAGE EXTERNAL;
