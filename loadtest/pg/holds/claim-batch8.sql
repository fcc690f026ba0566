-- The per-client cursor claim (../claim-cursor.sql) taking 8 units at once,
-- each with a hold id of its own: 8 buyers' claims in one statement.
-- Needs -D last=0.
\if :last = 0
\set last 1 + :client_id * :units / :clients
\endif
WITH picked AS (
    SELECT id FROM claim_units
    WHERE sale_id = :sale AND status = 'available' AND id >= :last
      AND id <= (SELECT released_upto FROM claim_sales WHERE id = :sale AND state = 'on_sale')
    ORDER BY id LIMIT 8
    FOR UPDATE SKIP LOCKED),
claimed AS (
    UPDATE claim_units u SET status = 'held', hold_id = gen_random_uuid()
    WHERE u.sale_id = :sale AND u.id = ANY(ARRAY(SELECT id FROM picked))
    RETURNING u.id, u.label)
SELECT coalesce(max(id), :last) AS last FROM claimed \gset
