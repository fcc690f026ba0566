-- One place_hold per transaction, with an Idempotency-Key, starting its
-- scan at a random unit (a lone hold's floor is the instance's hint).
\set floor random(1, 290000)
\set v random(1, 1000000000)
SELECT outcome FROM place_hold(:sale, ('v' || :v), 1, gen_random_uuid(), 1, NULL, 4, :floor,
    now() + interval '600 s', now(), ('holdv' || :v), ('k' || :v), 'hash',
    jsonb_build_object('id', 'x', 'state', 'held'), NULL, NULL);
