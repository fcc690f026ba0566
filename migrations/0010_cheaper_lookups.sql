-- Two look-ups that scanned every matching row of a sale, measured during
-- the bench's flash sale with pg_stat_statements (loadtest/RESULTS.md):
--
-- free_admission (src/inventory/mod.rs) asks, for every hold that ends, if
-- the buyer holds again with the same admission: "an active hold of this
-- sale with this queue number". With only (sale_id) indexed it walked all
-- active holds of the sale, about 1 ms per paid or expired hold and the
-- most expensive statement of the whole sale. The queue number joins the
-- key; the sale clock's "any active hold?" still finds its prefix.
DROP INDEX holds_sale_active;
CREATE INDEX holds_sale_active ON holds (sale_id, queue_number) WHERE state = 'active';

-- The admin statistics count a sale's recent holds, orders and expiries
-- (events::activity). With (sale_id, event_type) they counted every event
-- of those types since the sale began, 12 ms per call late in a 20,000-unit
-- sale; with the time in the key a window is a range.
DROP INDEX outbox_sale_type;
CREATE INDEX outbox_sale_type ON outbox_events (sale_id, event_type, created_at);
