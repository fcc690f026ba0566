-- A paid hold confirmed in one call.
--
-- src/payments confirms a payment in a dozen statements, each a round trip
-- (record the event, lock the hold, sell its units, check the reference,
-- the order, the hold, the outbox event, the answer, the stored answer).
-- Measured with goose's join + hold + webhook (loadtest/RESULTS.md), the
-- server spent 0.8 ms of CPU per buyer, Postgres 2.1 ms; with one call,
-- 0.4 and 1.8 ms. confirm_payment does the common case in one:
-- the event is new, the hold is active, unexpired and has no session, its
-- total (when priced) is exactly what was paid, and the payment reference
-- confirmed no other order. Anything else raises FG100 before its
-- transaction commits, so nothing of it stays, and the caller takes the
-- general path, which answers every other case as before.
--
-- Lock order is the general path's: the event row, then the hold, then its
-- units, so a concurrent delivery of the same event or the expiry sweep
-- waits instead of deadlocking.
--
-- Arguments: the event (id, hold, reference, amount, currency) and the new
-- order's id. Returns the answer's body ({"order": ...}, what
-- OrderView serialises to), and the hold's sale and queue number so the
-- caller can free its admission slot.
-- The payload of order.confirmed, one definition for both paths (as
-- hold_event_payload is for hold.* events).
CREATE FUNCTION order_event_payload(o orders) RETURNS jsonb
LANGUAGE sql STABLE AS $f$
    SELECT jsonb_build_object(
        'order_id', o.id, 'hold_id', o.hold_id, 'sale_id', o.sale_id, 'visitor_id', o.visitor_id,
        'payment_reference', o.payment_reference, 'quantity', o.quantity, 'unit_ids', to_jsonb(o.unit_ids),
        'amount', o.amount, 'currency', o.currency)
$f$;

CREATE FUNCTION confirm_payment(
    p_event_id text, p_hold uuid, p_reference text, p_amount bigint, p_currency text, p_order uuid,
    OUT body jsonb, OUT sale_id text, OUT queue_number bigint)
LANGUAGE plpgsql AS $$
DECLARE
    h        holds;
    v_order  orders;
    v_sold   integer;
    v_units  jsonb;
BEGIN
    INSERT INTO payment_events (event_id, hold_id, payment_reference, status, amount, currency)
    VALUES (p_event_id, p_hold, p_reference, 'succeeded', p_amount, p_currency)
    ON CONFLICT (event_id) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'FG100', MESSAGE = 'replay';
    END IF;
    SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
    IF NOT FOUND OR h.state <> 'active' OR h.expires_at <= now() OR h.session IS NOT NULL
       OR (h.amount IS NOT NULL AND h.currency IS NOT NULL
           AND (p_amount IS DISTINCT FROM h.amount OR p_currency IS DISTINCT FROM h.currency))
       OR EXISTS (SELECT 1 FROM orders o WHERE o.payment_reference = p_reference) THEN
        RAISE EXCEPTION USING ERRCODE = 'FG100', MESSAGE = 'general';
    END IF;

    UPDATE units SET status = 'sold', order_id = p_order WHERE hold_id = p_hold AND status = 'held';
    GET DIAGNOSTICS v_sold = ROW_COUNT;
    IF v_sold <> h.quantity THEN
        RAISE EXCEPTION USING ERRCODE = 'FG100', MESSAGE = 'units';
    END IF;
    INSERT INTO orders (id, sale_id, hold_id, visitor_id, payment_reference, quantity, unit_ids, state,
                        amount, currency, session)
    VALUES (p_order, h.sale_id, h.id, h.visitor_id, p_reference, h.quantity, h.unit_ids, 'confirmed',
            h.amount, h.currency, NULL)
    RETURNING * INTO v_order;
    UPDATE holds SET state = 'confirmed', updated_at = now() WHERE id = p_hold;
    INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload)
    VALUES (gen_random_uuid(), 'order.confirmed', h.sale_id, p_order::text, order_event_payload(v_order));

    SELECT jsonb_agg(jsonb_build_object('id', u.id::text, 'label', coalesce(u.label, 'GA-' || u.id))
                     || CASE WHEN c.code IS NULL THEN '{}'::jsonb
                             ELSE jsonb_build_object('category', c.name, 'price', c.amount) END
                     ORDER BY u.id)
    INTO v_units
    FROM units u LEFT JOIN price_categories c ON c.sale_id = u.sale_id AND c.code = u.category
    WHERE u.sale_id = h.sale_id AND u.id = ANY(h.unit_ids);
    body := jsonb_build_object('order',
        jsonb_build_object('id', p_order::text, 'sale_id', h.sale_id, 'hold_id', h.id::text,
                           'state', 'confirmed', 'quantity', h.quantity, 'units', coalesce(v_units, '[]'::jsonb),
                           'payment_reference', p_reference, 'created_at', rfc3339(v_order.created_at),
                           'cancelled_at', NULL)
        || CASE WHEN h.amount IS NULL OR h.currency IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('total', jsonb_build_object('amount', h.amount, 'currency', h.currency)) END);
    UPDATE payment_events SET response_status = 200, response_body = body WHERE event_id = p_event_id;
    sale_id := h.sale_id;
    queue_number := h.queue_number;
END;
$$;
