-- Prices (SPEC §3, issue 16): a sale may have price categories, one
-- currency per sale, and then every unit has exactly one category. A hold
-- quotes each unit's price and the total; an order keeps the amount it was
-- confirmed for. A sale without categories behaves as before (no prices,
-- NULL amounts).

-- ISO 4217 code of the sale's prices; NULL: the sale has no prices.
ALTER TABLE sales ADD COLUMN currency text CHECK (currency ~ '^[A-Z]{3}$');

CREATE TABLE price_categories (
    sale_id text NOT NULL REFERENCES sales (id) ON DELETE CASCADE,
    -- 1.. in the order the sale listed them.
    code    smallint NOT NULL CHECK (code >= 1),
    name    text NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    -- In the currency's minor units (cents), as payment providers count.
    amount  bigint NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (sale_id, code),
    UNIQUE (sale_id, name)
);

-- The unit id ranges of each category: a partition of 1..total_units (a
-- section, a stage and a unit range are each one contiguous id range). A
-- claim "best available N in category C" scans the free units of these
-- ranges only, so it stays a range scan of the partial index
-- units_available however the categories interleave.
CREATE TABLE price_ranges (
    sale_id    text NOT NULL,
    first_unit integer NOT NULL,
    last_unit  integer NOT NULL CHECK (last_unit >= first_unit),
    category   smallint NOT NULL,
    PRIMARY KEY (sale_id, first_unit),
    FOREIGN KEY (sale_id, category) REFERENCES price_categories (sale_id, code) ON DELETE CASCADE
);

-- A unit's category (NULL: the sale has no prices). Nullable without a
-- default, so adding it rewrites nothing.
ALTER TABLE units ADD COLUMN category smallint;

-- What a hold quotes and what an order was confirmed for (NULL: no prices).
ALTER TABLE holds ADD COLUMN amount bigint CHECK (amount >= 0), ADD COLUMN currency text;
ALTER TABLE orders ADD COLUMN amount bigint CHECK (amount >= 0), ADD COLUMN currency text;

-- An order's amount is what the payment confirmed: it never changes.
CREATE FUNCTION orders_amount_is_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.amount IS DISTINCT FROM OLD.amount OR NEW.currency IS DISTINCT FROM OLD.currency THEN
        RAISE EXCEPTION 'an order''s amount and currency never change (order %)', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER orders_amount_is_final BEFORE UPDATE OF amount, currency ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_amount_is_final();

-- hold.* events carry the quote too.
CREATE OR REPLACE FUNCTION hold_event_payload(h holds) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'hold_id', h.id, 'sale_id', h.sale_id, 'visitor_id', h.visitor_id,
        'quantity', h.quantity, 'unit_ids', to_jsonb(h.unit_ids), 'expires_at', h.expires_at)
        || CASE WHEN h.currency IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('amount', h.amount, 'currency', h.currency) END
$$;

-- place_hold (migrations/0004) gains a price category for "best available"
-- and prices in its answer. Everything else is as documented there; new:
--   p_category   a category name: best available within its ranges only
--                (NULL: any unit); an unknown name raises FG003
--   the answer's units carry `category` and `price`, and the answer a
--   `total` {amount, currency}, when the sale has prices; the hold row keeps
--   the total.
DROP FUNCTION place_hold(text, text, bigint, uuid, integer, text[], integer, integer, timestamptz, timestamptz,
                         text, text, text, jsonb);

CREATE FUNCTION place_hold(
    p_sale text, p_visitor text, p_queue_number bigint, p_hold uuid,
    p_quantity integer, p_seats text[], p_limit integer, p_floor integer,
    p_expires_at timestamptz, p_created_at timestamptz,
    p_scope text, p_key text, p_request_hash text, p_body jsonb, p_category text,
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
BEGIN
    IF p_key IS NOT NULL THEN
        SELECT k.request_hash, k.response_status, k.response_body INTO v_hash, status, body
        FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key;
        IF FOUND THEN
            outcome := CASE WHEN v_hash IS DISTINCT FROM p_request_hash THEN 'reused' ELSE 'replay' END;
            RETURN;
        END IF;
    END IF;

    -- I3: concurrent holds of one buyer serialise on this row.
    INSERT INTO user_purchases AS p (sale_id, visitor_id, units) VALUES (p_sale, p_visitor, p_quantity)
    ON CONFLICT (sale_id, visitor_id) DO UPDATE SET units = p.units + EXCLUDED.units
    WHERE p.units + EXCLUDED.units <= p_limit;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'FG001', MESSAGE = 'limit_exceeded';
    END IF;

    -- Read without locking the sale row, so a pause or a new stage applies to
    -- the very next claim without making every claim contend on one row.
    SELECT s.released_upto, s.currency INTO v_upto, v_currency FROM sales s WHERE s.id = p_sale AND s.state = 'on_sale';
    IF v_upto IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'FG002', MESSAGE = 'short', DETAIL = '0';
    END IF;

    IF p_seats IS NULL THEN
        -- The id windows to scan, in order: from the caller's floor to the
        -- released end, then below the floor (units returned by expiries and
        -- cancellations, or skipped while locked); for a category, its ranges.
        IF p_category IS NULL THEN
            v_lows := ARRAY[greatest(p_floor, 1), 1];
            v_highs := ARRAY[v_upto, least(v_upto, p_floor - 1)];
        ELSE
            SELECT c.code INTO v_code FROM price_categories c WHERE c.sale_id = p_sale AND c.name = p_category;
            IF v_code IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'FG003', MESSAGE = 'unknown_category';
            END IF;
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
                       amount, currency)
    VALUES (p_hold, p_sale, p_visitor, p_queue_number, p_quantity,
            ARRAY(SELECT unnest(v_ids) ORDER BY 1), 'active', p_expires_at, p_created_at,
            CASE WHEN v_currency IS NULL THEN NULL ELSE coalesce(v_total, 0) END, v_currency)
    RETURNING * INTO v_hold;
    INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload)
    VALUES (gen_random_uuid(), 'hold.created', p_sale, p_hold::text, hold_event_payload(v_hold));

    outcome := 'created';
    status := 201;
    body := p_body || jsonb_build_object('units', v_units)
        || CASE WHEN v_currency IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('total', jsonb_build_object('amount', v_hold.amount, 'currency', v_currency)) END;
    IF p_key IS NOT NULL THEN
        -- A concurrent retry of the same key that got this far too fails
        -- here on the primary key (unique_violation), which undoes all of
        -- its work; the caller then answers with the stored first answer.
        INSERT INTO idempotency_keys (scope, key, request_hash, response_status, response_body)
        VALUES (p_scope, p_key, p_request_hash, status, body);
    END IF;
END;
$$;

-- What the provider said it captured, as received.
ALTER TABLE payment_events ADD COLUMN amount bigint, ADD COLUMN currency text;
