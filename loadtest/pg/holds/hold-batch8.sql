-- One place_holds of 8 holds by 8 random buyers, each with an Idempotency-Key.
\set floor random(1, 290000)
SELECT count(*) FILTER (WHERE outcome = 'created') FROM place_holds(:sale, 4, :floor,
  ARRAY(SELECT 'v' || (random() * 1e9)::bigint FROM generate_series(1, 8)), array_fill(1::bigint, ARRAY[8]),
  ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 8)), array_fill(1, ARRAY[8]),
  array_fill(now() + interval '600 s', ARRAY[8]), array_fill(now(), ARRAY[8]),
  ARRAY(SELECT 'holdv' || g FROM generate_series(1, 8) g), ARRAY(SELECT 'k' || (random() * 1e12)::bigint FROM generate_series(1, 8)),
  array_fill('hash'::text, ARRAY[8]), array_fill(jsonb_build_object('id', 'x', 'state', 'held'), ARRAY[8]),
  array_fill(NULL::text, ARRAY[8]), array_fill(NULL::integer, ARRAY[8]));
