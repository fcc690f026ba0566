-- (b) floodgate's claim statement (src/inventory/mod.rs, Want::Best): sale
-- and quantity are bind parameters, the update matches
-- `id = ANY(ARRAY(SELECT id FROM picked))` so it stays on the primary key.
WITH picked AS (
    SELECT id FROM claim_units
    WHERE sale_id = :sale AND status = 'available'
      AND id <= (SELECT released_upto FROM claim_sales WHERE id = :sale AND state = 'on_sale')
    ORDER BY id LIMIT :n
    FOR UPDATE SKIP LOCKED)
UPDATE claim_units u SET status = 'held', hold_id = gen_random_uuid()
WHERE u.sale_id = :sale AND u.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING u.id, u.label;
