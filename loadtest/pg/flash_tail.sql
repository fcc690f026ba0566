-- The tail of a flash sale: how many times unpaid holds of the same unit
-- expired before it sold (loadtest/bench.sh runs this after each flash sale;
-- psql -v sale=ID). With 10 % of buyers walking away from their hold
-- (fgdrive's --pay-ratio 0.9), about 2,000 units of 20,000 come back once,
-- 200 twice, 20 three times, 2 four times: the last unit to sell waits
-- that many hold TTLs, whatever the admission rate (RESULTS.md, "What
-- limits each path"). Prints one JSON object: units by number of expired
-- holds of them (units never in an expired hold are not counted), the
-- unit sold last, how many of its holds expired and the seconds from its
-- first hold to its sale, and the sale's hold TTL.
WITH depth AS (
    SELECT u, count(*) AS expired
    FROM holds h, unnest(h.unit_ids) u
    WHERE h.sale_id = :'sale' AND h.state = 'expired'
    GROUP BY u),
last AS (
    SELECT u, o.created_at AS sold_at
    FROM orders o, unnest(o.unit_ids) u
    WHERE o.sale_id = :'sale' AND o.state = 'confirmed'
    ORDER BY o.created_at DESC LIMIT 1),
chain AS (
    SELECT count(*) FILTER (WHERE h.state = 'expired') AS expired, min(h.created_at) AS first_held
    FROM holds h, last
    WHERE h.sale_id = :'sale' AND last.u = ANY (h.unit_ids))
SELECT json_build_object(
    'units_by_expired_holds', (SELECT coalesce(json_object_agg(expired, n ORDER BY expired), '{}')
                               FROM (SELECT expired, count(*) AS n FROM depth GROUP BY expired) d),
    'last_unit_expired_holds', (SELECT expired FROM chain),
    'last_unit_first_held_to_sold_s', (SELECT round(extract(epoch FROM last.sold_at - chain.first_held)::numeric, 1)
                                      FROM chain, last),
    'hold_ttl_s', (SELECT hold_ttl_seconds FROM sales WHERE id = :'sale'))
