-- The gate (SPEC §4a, src/gate/): proof of work and invite-only sales per
-- sale, and live CIDR access rules.
--
-- A correction to 0001, which cannot be edited (sqlx refuses to start on a
-- database whose applied migrations changed): its comment "NULL admission
-- settings: no waiting room" is stale. The admission columns are NOT NULL;
-- `sales.waiting_room` says whether joins queue. The sale state machine
-- there (scheduled -> on_sale <-> paused -> sold_out | closed) is the one
-- src/sales/lifecycle.rs implements.
ALTER TABLE sales
    -- Leading zero bits a new source's challenge asks for; 0: no proof of work.
    ADD COLUMN challenge_bits smallint NOT NULL DEFAULT 0 CHECK (challenge_bits BETWEEN 0 AND 32),
    -- The most the adaptive rule asks of a busy source.
    ADD COLUMN challenge_max_bits smallint NOT NULL DEFAULT 0
        CHECK (challenge_max_bits BETWEEN 0 AND 40 AND challenge_max_bits >= challenge_bits),
    -- 'public': anyone may join; 'invite': only with the site's login token
    -- naming the sale, one place per user.
    ADD COLUMN access text NOT NULL DEFAULT 'public' CHECK (access IN ('public', 'invite'));

-- Access rules changed through the admin API (the configuration's global
-- rules are not stored). scope '' is global, else a sale id.
CREATE TABLE access_rules (
    scope text NOT NULL,
    cidr text NOT NULL,
    action text NOT NULL CHECK (action IN ('allow', 'deny')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, cidr)
);
