-- loadtest/pg/claim_table.sql — the scratch tables of bench.sh's pgbench claim
-- ceiling, re-created before every claim variant:
--   psql -v units=N -f loadtest/pg/claim_table.sql
--
-- claim_units is floodgate's units table (migrations/0001_sales_and_units.sql)
-- column for column, with the same constraints, fillfactor, indexes and
-- autovacuum settings; keep the two in step. claim_sales holds only the sales
-- columns the claim reads (state, released_upto). One sale, 'ceiling', with
-- units 1..N, all released and available.

SET client_min_messages = warning;
DROP TABLE IF EXISTS claim_units, claim_sales;

CREATE TABLE claim_sales (
    id            text PRIMARY KEY,
    state         text NOT NULL CHECK (state IN ('scheduled', 'on_sale', 'paused', 'sold_out', 'closed')),
    released_upto integer NOT NULL
);

CREATE TABLE claim_units (
    sale_id  text NOT NULL,
    id       integer NOT NULL,
    stage    smallint NOT NULL,
    label    text,
    status   text NOT NULL CHECK (status IN ('available', 'held', 'sold')),
    hold_id  uuid,
    order_id uuid,
    PRIMARY KEY (sale_id, id),
    CHECK ((status = 'available' AND hold_id IS NULL AND order_id IS NULL)
        OR (status = 'held' AND hold_id IS NOT NULL AND order_id IS NULL)
        OR (status = 'sold' AND hold_id IS NOT NULL AND order_id IS NOT NULL))
) WITH (fillfactor = 90);

INSERT INTO claim_sales VALUES ('ceiling', 'on_sale', :units);
INSERT INTO claim_units (sale_id, id, stage, status)
    SELECT 'ceiling', g, 1, 'available' FROM generate_series(1, :units) g;
-- Added after the load (one validating scan instead of a check per row).
ALTER TABLE claim_units ADD FOREIGN KEY (sale_id) REFERENCES claim_sales (id) ON DELETE CASCADE;

-- The indexes of units: the claim index, named seats, holds.
CREATE INDEX claim_units_available ON claim_units (sale_id, id) WHERE status = 'available';
CREATE UNIQUE INDEX claim_units_label ON claim_units (sale_id, label) WHERE label IS NOT NULL;
CREATE INDEX claim_units_hold ON claim_units (hold_id) WHERE hold_id IS NOT NULL;
ALTER TABLE claim_units SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000);

VACUUM ANALYZE claim_units;
VACUUM ANALYZE claim_sales;
