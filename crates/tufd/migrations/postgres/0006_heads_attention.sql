-- The heads that need attention are found by an index, so /metrics, the upkeep pass and the
-- expiry warnings cost what they find, not the number of Factories (upkeep::attention):
-- heads renewed offline by their expiry, the ones this server renews by the point where
-- half their validity is gone (expires + issued < 2 * now); MIN(expires) of a role is one
-- index lookup.
CREATE INDEX heads_by_expiry ON heads (role, flavour, expires);
CREATE INDEX heads_by_renewal ON heads (role, flavour, (expires + issued));
