-- Holds, orders, per-user counts, idempotency records and the event outbox.

CREATE TABLE holds (
    id               uuid PRIMARY KEY,
    sale_id          text NOT NULL REFERENCES sales (id) ON DELETE CASCADE,
    visitor_id       text NOT NULL,
    -- Join number of the admission this hold used, to free its slot.
    queue_number     bigint,
    quantity         integer NOT NULL CHECK (quantity > 0),
    -- The units this hold claimed, kept after release so a late payment can
    -- try to re-claim exactly these (I7).
    unit_ids         integer[] NOT NULL,
    state            text NOT NULL CHECK (state IN ('active', 'confirmed', 'released', 'expired')),
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(unit_ids) = quantity)
);
-- The expiry sweeper walks active holds by deadline.
CREATE INDEX holds_expiring ON holds (expires_at) WHERE state = 'active';
CREATE INDEX holds_sale_visitor ON holds (sale_id, visitor_id);

CREATE TABLE orders (
    id                uuid PRIMARY KEY,
    sale_id           text NOT NULL REFERENCES sales (id) ON DELETE CASCADE,
    hold_id           uuid NOT NULL UNIQUE REFERENCES holds (id),
    visitor_id        text NOT NULL,
    -- A payment confirms at most one order (I5).
    payment_reference text NOT NULL UNIQUE,
    quantity          integer NOT NULL,
    unit_ids          integer[] NOT NULL,
    state             text NOT NULL CHECK (state IN ('confirmed', 'cancelled')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    cancelled_at      timestamptz
);
CREATE INDEX orders_sale_visitor ON orders (sale_id, visitor_id);

-- Units a visitor holds or bought in a sale. Updated in the same
-- transaction as the hold, so concurrent requests of one user from several
-- devices serialise on this row and can never pass the limit (I3).
CREATE TABLE user_purchases (
    sale_id    text NOT NULL REFERENCES sales (id) ON DELETE CASCADE,
    visitor_id text NOT NULL,
    units      integer NOT NULL CHECK (units >= 0),
    PRIMARY KEY (sale_id, visitor_id)
);

-- Idempotency-Key records (I5). The row is inserted in the transaction that
-- does the work, so a concurrent retry blocks on the primary key until the
-- first attempt commits (then replays its answer) or rolls back (then runs).
CREATE TABLE idempotency_keys (
    scope           text NOT NULL,
    key             text NOT NULL,
    request_hash    text NOT NULL,
    response_status smallint,
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Payment webhook events, by the provider's event id (I5): a replay gets
-- the stored answer and confirms nothing twice.
CREATE TABLE payment_events (
    event_id          text PRIMARY KEY,
    hold_id           uuid NOT NULL,
    payment_reference text NOT NULL,
    status            text NOT NULL,
    response_status   smallint,
    response_body     jsonb,
    received_at       timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox (SPEC §6): every event is written in the same
-- transaction as the change it reports; delivery reads from here.
CREATE TABLE outbox_events (
    id           uuid PRIMARY KEY,
    -- Commit-ish order; delivery keeps it per hold/order (subject).
    seq          bigserial UNIQUE,
    event_type   text NOT NULL,
    sale_id      text,
    -- Hold or order the event is about.
    subject_id   text,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- pending: not yet fanned out to webhook deliveries; dispatched: done
    -- (see migrations/0003).
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dispatched'))
);
CREATE INDEX outbox_undispatched ON outbox_events (seq) WHERE state = 'pending';
CREATE INDEX outbox_sale_type ON outbox_events (sale_id, event_type);

-- The sale clock asks "is any hold of this sale still active?" to decide
-- sold_out.
CREATE INDEX holds_sale_active ON holds (sale_id) WHERE state = 'active';
