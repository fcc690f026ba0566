-- A hold in one round trip.
--
-- A hold used to be a transaction of eight round trips (BEGIN, idempotency
-- insert, per-user upsert, claim, hold insert, outbox insert, idempotency
-- update, COMMIT), and the claim a statement whose generic plan (LIMIT as a
-- parameter) scanned ever more dead index entries as the sale sold
-- (loadtest/RESULTS.md). place_hold does all of it in the caller's one
-- implicit transaction, so a hold is one statement and one commit; any
-- refusal raises, which rolls back everything it did (I2: all or nothing).
--
-- Refusals (SQLSTATE, message), mapped by src/inventory/place.rs:
--   FG001  limit_exceeded   the buyer would pass the per-user limit (I3)
--   FG002  short            fewer units free (or the sale is not on sale);
--                           DETAIL is how many were found
-- A repeated Idempotency-Key answers outcome 'replay' (or 'reused' for
-- another request under the same key) and does nothing (I5); a concurrent
-- one fails with unique_violation on idempotency_keys_pkey after doing
-- nothing that lasts, and the caller replays the first answer.

-- The payload of every hold.* event, in one place (the sweeper, releases and
-- place_hold all use it).
CREATE FUNCTION hold_event_payload(h holds) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'hold_id', h.id, 'sale_id', h.sale_id, 'visitor_id', h.visitor_id,
        'quantity', h.quantity, 'unit_ids', to_jsonb(h.unit_ids), 'expires_at', h.expires_at)
$$;

-- Arguments:
--   p_sale, p_visitor, p_queue_number   the sale, the buyer, their join number
--   p_hold                              the new hold's id
--   p_quantity                          units wanted ("best available")
--   p_seats                             named seats instead (NULL for best available)
--   p_limit                             the sale's per-user limit
--   p_floor                             where the caller expects free units to
--                                       start: best available scans up from it
--                                       first, then wraps around below it, so a
--                                       stale floor costs speed, never units
--   p_expires_at, p_created_at          the hold's deadline and creation time
--   p_scope, p_key, p_request_hash      Idempotency-Key record (p_key NULL: none)
--   p_body                              the 201 answer without its units
-- Returns one row: outcome ('created' | 'replay' | 'reused'), the lowest unit
-- id taken (the caller's next floor), the answer's status and body.
CREATE FUNCTION place_hold(
    p_sale text, p_visitor text, p_queue_number bigint, p_hold uuid,
    p_quantity integer, p_seats text[], p_limit integer, p_floor integer,
    p_expires_at timestamptz, p_created_at timestamptz,
    p_scope text, p_key text, p_request_hash text, p_body jsonb,
    OUT outcome text, OUT lowest integer, OUT status smallint, OUT body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_upto  integer;
    v_ids   integer[] := '{}';
    v_id    integer;
    v_after integer;
    v_below integer;
    v_hash  text;
    v_labels text[] := '{}';
    v_label text;
    v_units jsonb;
    v_hold  holds;
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
    SELECT s.released_upto INTO v_upto FROM sales s WHERE s.id = p_sale AND s.state = 'on_sale';
    IF v_upto IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'FG002', MESSAGE = 'short', DETAIL = '0';
    END IF;

    IF p_seats IS NULL THEN
        -- One unit per step, LIMIT 1 written out: every step is a descent of
        -- the partial index units_available from just past the last unit
        -- taken, whatever the plan cache decides (a generic plan of
        -- "LIMIT $n" sorted whole ranges). SKIP LOCKED passes units other
        -- buyers are taking right now. A short claim raises below, which
        -- undoes the units already taken.
        v_after := greatest(p_floor, 1) - 1;
        v_below := v_upto;
        FOR pass IN 1..2 LOOP
            WHILE cardinality(v_ids) < p_quantity LOOP
                UPDATE units u SET status = 'held', hold_id = p_hold
                WHERE u.sale_id = p_sale AND u.id = (
                    SELECT f.id FROM units f
                    WHERE f.sale_id = p_sale AND f.status = 'available' AND f.id > v_after AND f.id <= v_below
                    ORDER BY f.id LIMIT 1
                    FOR UPDATE SKIP LOCKED)
                RETURNING u.id, coalesce(u.label, 'GA-' || u.id) INTO v_id, v_label;
                EXIT WHEN v_id IS NULL;
                v_ids := v_ids || v_id;
                v_labels := v_labels || v_label;
                v_after := v_id;
                v_id := NULL;
            END LOOP;
            EXIT WHEN cardinality(v_ids) = p_quantity OR p_floor <= 1;
            -- Wrap around: units below the floor (returned by expiries and
            -- cancellations, or skipped while locked).
            v_after := 0;
            v_below := least(v_upto, p_floor - 1);
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
            RETURNING u.id, u.label)
        SELECT coalesce(array_agg(t.id), '{}'), coalesce(array_agg(t.label), '{}') INTO v_ids, v_labels FROM taken t;
    END IF;
    IF cardinality(v_ids) < p_quantity THEN
        RAISE EXCEPTION USING ERRCODE = 'FG002', MESSAGE = 'short', DETAIL = cardinality(v_ids)::text;
    END IF;
    SELECT jsonb_agg(jsonb_build_object('id', t.id::text, 'label', t.label) ORDER BY t.id), min(t.id)
    INTO v_units, lowest
    FROM unnest(v_ids, v_labels) AS t(id, label);

    INSERT INTO holds (id, sale_id, visitor_id, queue_number, quantity, unit_ids, state, expires_at, created_at)
    VALUES (p_hold, p_sale, p_visitor, p_queue_number, p_quantity,
            ARRAY(SELECT unnest(v_ids) ORDER BY 1), 'active', p_expires_at, p_created_at)
    RETURNING * INTO v_hold;
    INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload)
    VALUES (gen_random_uuid(), 'hold.created', p_sale, p_hold::text, hold_event_payload(v_hold));

    outcome := 'created';
    status := 201;
    body := p_body || jsonb_build_object('units', v_units);
    IF p_key IS NOT NULL THEN
        -- A concurrent retry of the same key that got this far too fails
        -- here on the primary key (unique_violation), which undoes all of
        -- its work; the caller then answers with the stored first answer.
        INSERT INTO idempotency_keys (scope, key, request_hash, response_status, response_body)
        VALUES (p_scope, p_key, p_request_hash, status, body);
    END IF;
END;
$$;
