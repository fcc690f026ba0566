-- (f) (e) where each client also remembers the last unit it claimed (\gset)
-- and starts its next scan there: no scan ever revisits the dead entries
-- behind it. The wrap-around below the start keeps it complete. The
-- statement returns one row (the next start) even when it claims nothing.
-- Needs -D last=0.
\if :last = 0
\set last 1 + :client_id * :units / :clients
\endif
WITH picked AS (
    SELECT coalesce(
        (SELECT id FROM claim_units
         WHERE sale_id = :sale AND status = 'available' AND id >= :last
           AND id <= (SELECT released_upto FROM claim_sales WHERE id = :sale AND state = 'on_sale')
         ORDER BY id LIMIT 1
         FOR UPDATE SKIP LOCKED),
        (SELECT id FROM claim_units
         WHERE sale_id = :sale AND status = 'available' AND id < :last
           AND id <= (SELECT released_upto FROM claim_sales WHERE id = :sale AND state = 'on_sale')
         ORDER BY id LIMIT 1
         FOR UPDATE SKIP LOCKED)) AS id),
claimed AS (
    UPDATE claim_units u SET status = 'held', hold_id = gen_random_uuid()
    WHERE u.sale_id = :sale AND u.id = ANY(ARRAY(SELECT id FROM picked))
    RETURNING u.id, u.label)
SELECT coalesce(max(id), :last) AS last FROM claimed \gset
