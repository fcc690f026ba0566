-- Sales and their sellable units.
--
-- Postgres is the only truth for inventory: Redis may forget the waiting
-- room, but every unit's fate is a row here.

CREATE TABLE sales (
    id                    text PRIMARY KEY,
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    mode                  text NOT NULL CHECK (mode IN ('fifo', 'lottery')),
    -- scheduled (pre-queue open) -> on_sale <-> paused -> sold_out | closed;
    -- sold_out can reopen to on_sale when units come back.
    state                 text NOT NULL CHECK (state IN ('scheduled', 'on_sale', 'paused', 'sold_out', 'closed')),
    starts_at             timestamptz NOT NULL,
    ends_at               timestamptz,
    seating               text NOT NULL CHECK (seating IN ('general', 'reserved')),
    total_units           integer NOT NULL CHECK (total_units > 0),
    per_user_limit        integer NOT NULL CHECK (per_user_limit > 0),
    hold_ttl_seconds      integer NOT NULL CHECK (hold_ttl_seconds > 0),
    shuffle_prequeue      boolean NOT NULL,
    -- Units with id <= released_upto are on sale; stages are contiguous id
    -- ranges, so releasing a stage is moving this bound.
    released_upto         integer NOT NULL,
    released_stages       integer NOT NULL,
    -- NULL admission settings: no waiting room, joins are admitted at once.
    waiting_room          boolean NOT NULL,
    admit_per_second      integer NOT NULL CHECK (admit_per_second >= 0),
    max_active            integer NOT NULL CHECK (max_active > 0),
    admission_ttl_seconds integer NOT NULL CHECK (admission_ttl_seconds > 0),
    abandon_after_seconds integer NOT NULL CHECK (abandon_after_seconds > 0),
    -- Fairness (I8): sha256(seed) is published from creation on; the seed is
    -- revealed once the pre-queue shuffle or the lottery draw used it.
    seed                  text NOT NULL,
    seed_commitment       text NOT NULL,
    seed_revealed         boolean NOT NULL DEFAULT false,
    lottery_drawn_at      timestamptz,
    lottery_winners       integer,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- The background clock looks for sales to start, end or re-check.
CREATE INDEX sales_live ON sales (state) WHERE state <> 'closed';

CREATE TABLE sale_stages (
    sale_id     text NOT NULL REFERENCES sales (id) ON DELETE CASCADE,
    stage       integer NOT NULL CHECK (stage >= 1),
    percent     integer NOT NULL CHECK (percent BETWEEN 1 AND 100),
    -- Exact unit counts; the remainder of the percentage split goes to the
    -- last stage. first_unit..last_unit is the stage's id range.
    unit_count  integer NOT NULL CHECK (unit_count >= 0),
    first_unit  integer NOT NULL,
    last_unit   integer NOT NULL,
    opens_at    timestamptz,
    released_at timestamptz,
    PRIMARY KEY (sale_id, stage)
);

CREATE TABLE units (
    sale_id  text NOT NULL REFERENCES sales (id) ON DELETE CASCADE,
    -- 1..total_units within the sale, in "best available" order.
    id       integer NOT NULL,
    stage    smallint NOT NULL,
    -- section/row/seat for reserved seating; NULL for general admission,
    -- whose label is derived from the id.
    label    text,
    status   text NOT NULL CHECK (status IN ('available', 'held', 'sold')),
    hold_id  uuid,
    order_id uuid,
    PRIMARY KEY (sale_id, id),
    -- A unit's status and its owner agree (part of I1).
    CHECK ((status = 'available' AND hold_id IS NULL AND order_id IS NULL)
        OR (status = 'held' AND hold_id IS NOT NULL AND order_id IS NULL)
        OR (status = 'sold' AND hold_id IS NOT NULL AND order_id IS NOT NULL))
) WITH (fillfactor = 90);

-- The claim index. The hot query is
--   SELECT id FROM units WHERE sale_id = $1 AND status = 'available'
--     AND id <= $released ORDER BY id LIMIT $n FOR UPDATE SKIP LOCKED
-- A partial index holds only available units, so as the sale fills up the
-- scan does not wade through held and sold rows (a full (sale_id, id) index
-- or a sequential scan slowed from ~3,500 to ~1,200 claims/s within a minute
-- in pgbench as sold rows piled up in front of it). Claimed rows leave the
-- index on update; their dead entries are skipped by the kill-bit after the
-- first visit and removed by vacuum. Checked with EXPLAIN (ANALYZE, BUFFERS)
-- on 100k units with 60% sold next to another 100k-unit sale: Index Scan
-- using units_available, 7 buffers, 0.6 ms for the whole claim.
-- The released bound is a plain id comparison, so the scan stops at the end
-- of the released stages instead of filtering stage numbers.
CREATE INDEX units_available ON units (sale_id, id) WHERE status = 'available';
-- Named seats are looked up by label.
CREATE UNIQUE INDEX units_label ON units (sale_id, label) WHERE label IS NOT NULL;
-- Releasing or confirming a hold touches its units.
CREATE INDEX units_hold ON units (hold_id) WHERE hold_id IS NOT NULL;

-- Autovacuum often on units: every claim leaves a dead tuple and a dead
-- index entry in the partial index.
ALTER TABLE units SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000);
