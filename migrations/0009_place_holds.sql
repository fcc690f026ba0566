-- Holds in batches: many buyers' holds in one statement and one commit.
--
-- A hold is one place_hold call (migrations/0004, 0008), but as its own
-- transaction most of its price is the transaction: the round trip, the
-- executor start-up and the commit's WAL flush. Measured with pgbench on
-- this machine (loadtest/RESULTS.md), eight place_hold calls in one
-- transaction ran 7,000-8,000 holds/s where one per transaction ran
-- 2,000-3,000. src/inventory/batch.rs sends the holds of a sale that arrive
-- together through place_holds.
--
-- Each hold keeps its own all-or-nothing (I2): it runs in a subtransaction
-- (the BEGIN ... EXCEPTION block), so a refusal undoes that hold alone and
-- is returned as its row (SQLSTATE, message, detail, constraint) instead of
-- aborting the batch. The caller maps it exactly as it maps the error of a
-- lone place_hold. Subtransactions stay under the 64 a backend caches (the
-- caller sends at most 32 holds), so no pg_subtrans lookups follow.
--
-- Lock order: a hold locks its buyer's allowance row (I3) and waits for it;
-- two batches that took two buyers' rows in opposite order would deadlock.
-- The caller sorts every batch by the allowance key (visitor, then session),
-- so all batches take them in one order. Units are taken with SKIP LOCKED
-- and never waited for.
--
-- Arguments: place_hold's, one array element per hold (the sale, limit and
-- floor are the batch's), except named seats, which go one by one through
-- place_hold. Each hold starts its scan where the hold before it in the
-- batch took its lowest unit, so the batch does not re-walk its own claims.
-- Returns one row per hold, in order: i (1-based), place_hold's outcome,
-- lowest, status and body when it succeeded, else the refusal (code is
-- its SQLSTATE).
CREATE FUNCTION place_holds(
    p_sale text, p_limit integer, p_floor integer,
    p_visitors text[], p_queue_numbers bigint[], p_holds uuid[], p_quantities integer[],
    p_expires_at timestamptz[], p_created_at timestamptz[],
    p_scopes text[], p_keys text[], p_request_hashes text[], p_bodies jsonb[],
    p_categories text[], p_sessions integer[],
    OUT i integer, OUT outcome text, OUT lowest integer, OUT status smallint, OUT body jsonb,
    OUT code text, OUT message text, OUT detail text, OUT constraint_name text)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
DECLARE
    v_floor integer := p_floor;
BEGIN
    FOR n IN 1..coalesce(cardinality(p_holds), 0) LOOP
        i := n;
        BEGIN
            SELECT h.outcome, h.lowest, h.status, h.body INTO outcome, lowest, status, body
            FROM place_hold(p_sale, p_visitors[n], p_queue_numbers[n], p_holds[n], p_quantities[n], NULL,
                            p_limit, v_floor, p_expires_at[n], p_created_at[n], p_scopes[n], p_keys[n],
                            p_request_hashes[n], p_bodies[n], p_categories[n], p_sessions[n]) h;
            code := NULL;
            message := NULL;
            detail := NULL;
            constraint_name := NULL;
            IF lowest IS NOT NULL AND p_sessions[n] IS NULL AND p_categories[n] IS NULL THEN
                v_floor := lowest;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                                    detail = PG_EXCEPTION_DETAIL, constraint_name = CONSTRAINT_NAME;
            outcome := 'refused';
            lowest := NULL;
            status := NULL;
            body := NULL;
        END;
        RETURN NEXT;
    END LOOP;
END;
$$;
