-- (e) (d) with a fixed start per client instead of a random one: client c of
-- C starts its scan at 1 + c * units / C, with the same wrap-around to the
-- units below the start. Each client walks its own stripe, so clients rarely
-- skip each other's locked rows, and a scan wades only through the dead
-- entries of its own stripe (1/C of all claims).
\set s 1 + :client_id * :units / :clients
WITH picked AS (
    SELECT coalesce(
        (SELECT id FROM claim_units
         WHERE sale_id = :sale AND status = 'available' AND id >= :s
           AND id <= (SELECT released_upto FROM claim_sales WHERE id = :sale AND state = 'on_sale')
         ORDER BY id LIMIT 1
         FOR UPDATE SKIP LOCKED),
        (SELECT id FROM claim_units
         WHERE sale_id = :sale AND status = 'available' AND id < :s
           AND id <= (SELECT released_upto FROM claim_sales WHERE id = :sale AND state = 'on_sale')
         ORDER BY id LIMIT 1
         FOR UPDATE SKIP LOCKED)) AS id)
UPDATE claim_units u SET status = 'held', hold_id = gen_random_uuid()
WHERE u.sale_id = :sale AND u.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING u.id, u.label;
