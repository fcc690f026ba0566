-- Sessions (SPEC §3, issue 16): timed entry and event series. A sale may
-- have many sessions, each a time range with its own units, behind the
-- sale's one waiting room. A sale without sessions behaves as before.
--
-- A session's units are numbered stage by stage across the sale: all stage-1
-- units of every session first (session by session), then stage 2, ... So a
-- stage is still one contiguous id range of the sale (releasing a stage
-- still moves sales.released_upto), and a session is one id range per stage
-- (session_ranges): "best available N in session S" scans those ranges of
-- the partial index units_available, as a price category does.

-- The overlap rule below is an exclusion constraint over (buyer, time range).
CREATE EXTENSION IF NOT EXISTS btree_gist;

ALTER TABLE sales
    -- IANA time zone sessions are shown (and generated) in; NULL: no sessions.
    ADD COLUMN time_zone text,
    ADD COLUMN session_count integer NOT NULL DEFAULT 0 CHECK (session_count >= 0),
    -- The per-user limit counts per session instead of per sale.
    ADD COLUMN limit_per_session boolean NOT NULL DEFAULT false,
    -- A buyer cannot hold (or own) two sessions whose time ranges overlap.
    ADD COLUMN no_overlap boolean NOT NULL DEFAULT false;

CREATE TABLE sale_sessions (
    sale_id   text NOT NULL REFERENCES sales (id) ON DELETE CASCADE,
    -- 1.. in time order; shown as the session's id.
    code      integer NOT NULL CHECK (code >= 1),
    starts_at timestamptz NOT NULL,
    ends_at   timestamptz NOT NULL CHECK (ends_at > starts_at),
    capacity  integer NOT NULL CHECK (capacity > 0),
    -- on_sale <-> paused -> closed (over, or in the past) | cancelled (its
    -- orders cancelled and refunded; nothing returns to stock).
    state     text NOT NULL DEFAULT 'on_sale' CHECK (state IN ('on_sale', 'paused', 'closed', 'cancelled')),
    PRIMARY KEY (sale_id, code)
);
-- The calendar reads a sale's sessions by time.
CREATE INDEX sale_sessions_calendar ON sale_sessions (sale_id, starts_at);
-- The clock closes sessions that are over.
CREATE INDEX sale_sessions_open ON sale_sessions (ends_at) WHERE state IN ('on_sale', 'paused');

CREATE TABLE session_ranges (
    sale_id    text NOT NULL,
    first_unit integer NOT NULL,
    last_unit  integer NOT NULL CHECK (last_unit >= first_unit),
    session    integer NOT NULL,
    PRIMARY KEY (sale_id, first_unit),
    FOREIGN KEY (sale_id, session) REFERENCES sale_sessions (sale_id, code) ON DELETE CASCADE
);
CREATE INDEX session_ranges_session ON session_ranges (sale_id, session);

-- A unit's session (NULL: the sale has none).
ALTER TABLE units ADD COLUMN session integer;
-- Units of a closed or cancelled session leave the stock for good:
-- available + held + sold + unreleased + withdrawn = total (I1).
ALTER TABLE units DROP CONSTRAINT units_status_check, DROP CONSTRAINT units_check;
ALTER TABLE units
    ADD CONSTRAINT units_status_check CHECK (status IN ('available', 'held', 'sold', 'withdrawn')),
    ADD CONSTRAINT units_check CHECK (
        (status IN ('available', 'withdrawn') AND hold_id IS NULL AND order_id IS NULL)
        OR (status = 'held' AND hold_id IS NOT NULL AND order_id IS NULL)
        OR (status = 'sold' AND hold_id IS NOT NULL AND order_id IS NOT NULL));

-- The session a hold or order is for, and the key its units count against in
-- user_purchases: the visitor (per-sale limit, NULL here) or
-- "<visitor>@<session>" (per-session limit).
ALTER TABLE holds ADD COLUMN session integer, ADD COLUMN allowance_key text;
ALTER TABLE orders ADD COLUMN session integer;

-- The sessions a buyer holds or owns in a sale with no_overlap: Postgres
-- itself refuses a second session whose time range overlaps (the same
-- session twice is fine), so concurrent requests cannot slip past it.
-- A row lives while its hold is active or its order confirmed.
CREATE TABLE session_bookings (
    hold_id    uuid PRIMARY KEY REFERENCES holds (id) ON DELETE CASCADE,
    sale_id    text NOT NULL,
    visitor_id text NOT NULL,
    session    integer NOT NULL,
    during     tstzrange NOT NULL,
    CONSTRAINT session_bookings_no_overlap
        EXCLUDE USING gist (sale_id WITH =, visitor_id WITH =, during WITH &&, session WITH <>)
);

-- A unit going back to stock: available, unless its session is over.
CREATE FUNCTION unit_return_status(p_sale text, p_session integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_session IS NOT NULL AND EXISTS (
                    SELECT 1 FROM sale_sessions s
                    WHERE s.sale_id = p_sale AND s.code = p_session AND s.state IN ('closed', 'cancelled'))
                THEN 'withdrawn' ELSE 'available' END
$$;

-- hold.* events name the session too.
CREATE OR REPLACE FUNCTION hold_event_payload(h holds) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'hold_id', h.id, 'sale_id', h.sale_id, 'visitor_id', h.visitor_id,
        'quantity', h.quantity, 'unit_ids', to_jsonb(h.unit_ids), 'expires_at', h.expires_at)
        || CASE WHEN h.currency IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('amount', h.amount, 'currency', h.currency) END
        || CASE WHEN h.session IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('session', h.session::text) END
$$;

-- A time as the API writes times (chrono's RFC 3339 in UTC: "Z", and as
-- many fractional digits as it needs: none, 3 or 6), for answers built here.
CREATE FUNCTION rfc3339(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN extract(microseconds FROM t)::bigint % 1000000 = 0 THEN ''
                WHEN extract(microseconds FROM t)::bigint % 1000 = 0 THEN to_char(t AT TIME ZONE 'UTC', '.MS')
                ELSE to_char(t AT TIME ZONE 'UTC', '.US') END
        || 'Z'
$$;

-- place_hold (migrations/0004) gains price categories and sessions. As
-- documented there, and new here:
--   p_category   a category name: best available within its ranges only
--                (NULL: any unit); an unknown name raises FG003
--   p_session    the session to hold in (NULL: the sale has none); best
--                available scans the session's ranges (cut to p_category's);
--                refusals FG004 unknown_session, FG005 session_required |
--                no_sessions, FG006 session_not_on_sale (DETAIL: its state)
--   the answer's units carry `category` and `price`, and the answer a
--   `total` {amount, currency}, when the sale has prices (migrations/0007);
--   the hold row keeps the total; a session's hold answers its times;
--   the per-user allowance counts under "<visitor>@<session>" when the sale
--   limits per session (holds.allowance_key keeps it), and with no_overlap a
--   session_bookings row makes Postgres refuse an overlapping other session
--   (exclusion_violation, 23P01).
DROP FUNCTION place_hold(text, text, bigint, uuid, integer, text[], integer, integer, timestamptz, timestamptz,
                         text, text, text, jsonb);

CREATE FUNCTION place_hold(
    p_sale text, p_visitor text, p_queue_number bigint, p_hold uuid,
    p_quantity integer, p_seats text[], p_limit integer, p_floor integer,
    p_expires_at timestamptz, p_created_at timestamptz,
    p_scope text, p_key text, p_request_hash text, p_body jsonb, p_category text, p_session integer,
    OUT outcome text, OUT lowest integer, OUT status smallint, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_upto     integer;
    v_currency text;
    v_ids      integer[] := '{}';
    v_labels   text[] := '{}';
    v_cats     smallint[] := '{}';
    v_id       integer;
    v_label    text;
    v_cat      smallint;
    v_code     smallint;
    v_after    integer;
    v_lows     integer[];
    v_highs    integer[];
    v_hash     text;
    v_units    jsonb;
    v_total    bigint;
    v_hold     holds;
    v_per_session boolean;
    v_no_overlap  boolean;
    v_sessions    integer;
    v_sstate   text;
    v_during   tstzrange;
    v_key      text;
BEGIN
    IF p_key IS NOT NULL THEN
        SELECT k.request_hash, k.response_status, k.response_body INTO v_hash, status, body
        FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key;
        IF FOUND THEN
            outcome := CASE WHEN v_hash IS DISTINCT FROM p_request_hash THEN 'reused' ELSE 'replay' END;
            RETURN;
        END IF;
    END IF;

    -- Read without locking the sale row, so a pause or a new stage applies to
    -- the very next claim without making every claim contend on one row.
    SELECT s.released_upto, s.currency, s.limit_per_session, s.no_overlap, s.session_count
    INTO v_upto, v_currency, v_per_session, v_no_overlap, v_sessions
    FROM sales s WHERE s.id = p_sale AND s.state = 'on_sale';
    IF v_upto IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'FG002', MESSAGE = 'short', DETAIL = '0';
    END IF;
    IF (v_sessions > 0) <> (p_session IS NOT NULL) THEN
        RAISE EXCEPTION USING ERRCODE = 'FG005', MESSAGE = CASE WHEN p_session IS NULL THEN 'session_required' ELSE 'no_sessions' END;
    END IF;
    IF p_session IS NOT NULL THEN
        SELECT ss.state, tstzrange(ss.starts_at, ss.ends_at) INTO v_sstate, v_during
        FROM sale_sessions ss WHERE ss.sale_id = p_sale AND ss.code = p_session;
        IF v_sstate IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'FG004', MESSAGE = 'unknown_session';
        ELSIF v_sstate <> 'on_sale' THEN
            RAISE EXCEPTION USING ERRCODE = 'FG006', MESSAGE = 'session_not_on_sale', DETAIL = v_sstate;
        END IF;
    END IF;

    -- I3: concurrent holds of one buyer serialise on this row (per session
    -- when the limit counts per session).
    v_key := CASE WHEN v_per_session AND p_session IS NOT NULL THEN p_visitor || '@' || p_session ELSE p_visitor END;
    INSERT INTO user_purchases AS p (sale_id, visitor_id, units) VALUES (p_sale, v_key, p_quantity)
    ON CONFLICT (sale_id, visitor_id) DO UPDATE SET units = p.units + EXCLUDED.units
    WHERE p.units + EXCLUDED.units <= p_limit;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'FG001', MESSAGE = 'limit_exceeded';
    END IF;

    IF p_seats IS NULL THEN
        -- The id windows to scan, in order: from the caller's floor to the
        -- released end, then below the floor (units returned by expiries and
        -- cancellations, or skipped while locked); for a category, its ranges.
        IF p_category IS NOT NULL THEN
            SELECT c.code INTO v_code FROM price_categories c WHERE c.sale_id = p_sale AND c.name = p_category;
            IF v_code IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'FG003', MESSAGE = 'unknown_category';
            END IF;
        END IF;
        IF p_session IS NOT NULL THEN
            -- The session's range in each stage, cut to the category's ranges.
            SELECT array_agg(greatest(r.first_unit, coalesce(c.first_unit, r.first_unit)) ORDER BY r.first_unit, c.first_unit),
                   array_agg(least(r.last_unit, coalesce(c.last_unit, r.last_unit), v_upto) ORDER BY r.first_unit, c.first_unit)
            INTO v_lows, v_highs
            FROM session_ranges r
            LEFT JOIN price_ranges c ON c.sale_id = r.sale_id AND c.category = v_code
                 AND c.first_unit <= r.last_unit AND c.last_unit >= r.first_unit
            WHERE r.sale_id = p_sale AND r.session = p_session AND r.first_unit <= v_upto
              AND (v_code IS NULL OR c.first_unit IS NOT NULL);
        ELSIF p_category IS NULL THEN
            v_lows := ARRAY[greatest(p_floor, 1), 1];
            v_highs := ARRAY[v_upto, least(v_upto, p_floor - 1)];
        ELSE
            SELECT array_agg(r.first_unit ORDER BY r.first_unit), array_agg(least(r.last_unit, v_upto) ORDER BY r.first_unit)
            INTO v_lows, v_highs
            FROM price_ranges r WHERE r.sale_id = p_sale AND r.category = v_code AND r.first_unit <= v_upto;
        END IF;
        -- One unit per step, LIMIT 1 written out: every step is a descent of
        -- the partial index units_available from just past the last unit
        -- taken, whatever the plan cache decides (a generic plan of
        -- "LIMIT $n" sorted whole ranges). SKIP LOCKED passes units other
        -- buyers are taking right now. A short claim raises below, which
        -- undoes the units already taken.
        FOR w IN 1..coalesce(cardinality(v_lows), 0) LOOP
            EXIT WHEN cardinality(v_ids) = p_quantity;
            CONTINUE WHEN v_highs[w] < v_lows[w];
            v_after := v_lows[w] - 1;
            WHILE cardinality(v_ids) < p_quantity LOOP
                UPDATE units u SET status = 'held', hold_id = p_hold
                WHERE u.sale_id = p_sale AND u.id = (
                    SELECT f.id FROM units f
                    WHERE f.sale_id = p_sale AND f.status = 'available' AND f.id > v_after AND f.id <= v_highs[w]
                    ORDER BY f.id LIMIT 1
                    FOR UPDATE SKIP LOCKED)
                RETURNING u.id, coalesce(u.label, 'GA-' || u.id), u.category INTO v_id, v_label, v_cat;
                EXIT WHEN v_id IS NULL;
                v_ids := v_ids || v_id;
                v_labels := v_labels || v_label;
                v_cats := v_cats || v_cat;
                v_after := v_id;
                v_id := NULL;
            END LOOP;
        END LOOP;
    ELSE
        -- A seat locked by a concurrent buyer is skipped, so it counts as
        -- taken: nobody waits on a seat someone else is about to get.
        WITH taken AS (
            UPDATE units u SET status = 'held', hold_id = p_hold
            WHERE u.sale_id = p_sale AND u.id = ANY(ARRAY(
                SELECT f.id FROM units f
                WHERE f.sale_id = p_sale AND f.label = ANY(p_seats) AND f.status = 'available' AND f.id <= v_upto
                FOR UPDATE SKIP LOCKED))
            RETURNING u.id, u.label, u.category)
        SELECT coalesce(array_agg(t.id), '{}'), coalesce(array_agg(t.label), '{}'), coalesce(array_agg(t.category), '{}')
        INTO v_ids, v_labels, v_cats FROM taken t;
    END IF;
    IF cardinality(v_ids) < p_quantity THEN
        RAISE EXCEPTION USING ERRCODE = 'FG002', MESSAGE = 'short', DETAIL = cardinality(v_ids)::text;
    END IF;
    SELECT jsonb_agg(jsonb_build_object('id', t.id::text, 'label', t.label)
                     || CASE WHEN c.code IS NULL THEN '{}'::jsonb
                             ELSE jsonb_build_object('category', c.name, 'price', c.amount) END
                     ORDER BY t.id),
           min(t.id), sum(c.amount)
    INTO v_units, lowest, v_total
    FROM unnest(v_ids, v_labels, v_cats) AS t(id, label, cat)
    LEFT JOIN price_categories c ON c.sale_id = p_sale AND c.code = t.cat;

    INSERT INTO holds (id, sale_id, visitor_id, queue_number, quantity, unit_ids, state, expires_at, created_at,
                       amount, currency, session, allowance_key)
    VALUES (p_hold, p_sale, p_visitor, p_queue_number, p_quantity,
            ARRAY(SELECT unnest(v_ids) ORDER BY 1), 'active', p_expires_at, p_created_at,
            CASE WHEN v_currency IS NULL THEN NULL ELSE coalesce(v_total, 0) END, v_currency,
            p_session, CASE WHEN v_key <> p_visitor THEN v_key END)
    RETURNING * INTO v_hold;
    IF v_no_overlap AND p_session IS NOT NULL THEN
        -- Raises exclusion_violation (23P01) when the buyer holds or owns an
        -- overlapping other session: everything above is undone.
        INSERT INTO session_bookings (hold_id, sale_id, visitor_id, session, during)
        VALUES (p_hold, p_sale, p_visitor, p_session, v_during);
    END IF;
    INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload)
    VALUES (gen_random_uuid(), 'hold.created', p_sale, p_hold::text, hold_event_payload(v_hold));

    outcome := 'created';
    status := 201;
    body := p_body || jsonb_build_object('units', v_units)
        || CASE WHEN v_currency IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('total', jsonb_build_object('amount', v_hold.amount, 'currency', v_currency)) END
        || CASE WHEN p_session IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('session_starts_at', rfc3339(lower(v_during)),
                                        'session_ends_at', rfc3339(upper(v_during))) END;
    IF p_key IS NOT NULL THEN
        -- A concurrent retry of the same key that got this far too fails
        -- here on the primary key (unique_violation), which undoes all of
        -- its work; the caller then answers with the stored first answer.
        INSERT INTO idempotency_keys (scope, key, request_hash, response_status, response_body)
        VALUES (p_scope, p_key, p_request_hash, status, body);
    END IF;
END;
$$;
