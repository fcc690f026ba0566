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

-- place_hold (migrations/0004) learns prices in migrations/0008, together
-- with sessions.

-- What the provider said it captured, as received.
ALTER TABLE payment_events ADD COLUMN amount bigint, ADD COLUMN currency text;
