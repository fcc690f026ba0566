-- Webhook delivery (SPEC §6). An outbox event is fanned out once into one
-- delivery per configured endpoint that wants its type; each delivery is
-- retried with backoff on its own and dead-lettered after the last try.

CREATE TABLE webhook_deliveries (
    event_id        uuid NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
    endpoint        text NOT NULL,
    -- Copied from the event so "earlier events of the same hold or order
    -- first" needs no join.
    seq             bigint NOT NULL,
    subject_id      text,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    -- Also the lease: a dispatcher that takes a delivery moves this past its
    -- timeout, so no other instance sends it at the same time.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    last_status     integer,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, endpoint)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (endpoint, subject_id, seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (created_at) WHERE state = 'dead';

-- Reminders are sent once.
ALTER TABLE holds ADD COLUMN reminded_at timestamptz;
CREATE INDEX holds_to_remind ON holds (expires_at) WHERE state = 'active' AND reminded_at IS NULL;
ALTER TABLE sales ADD COLUMN starting_notified_at timestamptz;

-- High-water marks of the waiting room, saved from Redis, so that a Redis
-- that lost its data resumes numbering above every token already handed out.
ALTER TABLE sales ADD COLUMN queue_seq_saved bigint NOT NULL DEFAULT 0;
ALTER TABLE sales ADD COLUMN queue_serving_saved bigint NOT NULL DEFAULT 0;
-- Size of the frozen pre-queue (NULL: not frozen), so its shuffle (a pure
-- function of the seed and this size) can be rewritten identically.
ALTER TABLE sales ADD COLUMN queue_prequeue_saved bigint;
