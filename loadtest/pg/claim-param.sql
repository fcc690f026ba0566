-- (a) The claim as bench.sh always ran it: sale and quantity are bind
-- parameters (:sale, :n under pgbench -M prepared, like sqlx's $1, $2), the
-- update joins the picked rows.
WITH picked AS (
    SELECT id FROM claim_units
    WHERE sale_id = :sale AND status = 'available'
      AND id <= (SELECT released_upto FROM claim_sales WHERE id = :sale AND state = 'on_sale')
    ORDER BY id LIMIT :n
    FOR UPDATE SKIP LOCKED)
UPDATE claim_units u SET status = 'held', hold_id = gen_random_uuid()
FROM picked WHERE u.sale_id = :sale AND u.id = picked.id
RETURNING u.id, u.label;
