-- (d) One unit, the index scan starting at a random id r: the first free
-- unit at or above r, or, when there is none, the first free unit below r
-- (coalesce evaluates the second scan only if the first found nothing). Both
-- scans together cover every released unit, so a claim misses a free unit
-- only when SKIP LOCKED skips it (locked by a concurrent claim), as in (a).
-- Claimed rows are scattered, so dead index entries do not pile up in front
-- of every scan; the price is that units are not handed out in id order.
\set r random(1, :units)
WITH picked AS (
    SELECT coalesce(
        (SELECT id FROM claim_units
         WHERE sale_id = :sale AND status = 'available' AND id >= :r
           AND id <= (SELECT released_upto FROM claim_sales WHERE id = :sale AND state = 'on_sale')
         ORDER BY id LIMIT 1
         FOR UPDATE SKIP LOCKED),
        (SELECT id FROM claim_units
         WHERE sale_id = :sale AND status = 'available' AND id < :r
           AND id <= (SELECT released_upto FROM claim_sales WHERE id = :sale AND state = 'on_sale')
         ORDER BY id LIMIT 1
         FOR UPDATE SKIP LOCKED)) AS id)
UPDATE claim_units u SET status = 'held', hold_id = gen_random_uuid()
WHERE u.sale_id = :sale AND u.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING u.id, u.label;
