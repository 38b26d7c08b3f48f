-- 20261201000400_admin.sql: the seal key registry (register_seal_keys) and admin_session_stats,
-- both service_role only.
-- Identity as PostgREST gives it: `set local role` and the request.jwt.claims setting.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon, authenticated;
grant execute on all functions in schema extensions to session_visitor, service_role, anon, authenticated;
set local search_path = extensions, public;

select plan(28);

-- ---------------------------------------------------------------------------------------------
-- The seal key registry: the table
-- ---------------------------------------------------------------------------------------------
select is((select relrowsecurity from pg_catalog.pg_class where oid = 'bevsession.seal_keys'::regclass), true,
          'RLS is enabled on bevsession.seal_keys');
select policies_are('bevsession', 'seal_keys', array['The edge worker can read the seal key fingerprints',
                                                    'The edge worker can register a seal key',
                                                    'The edge worker can mark a seal key as seen'],
                    'seal_keys: no visitor policy; service_role (BYPASSRLS) and the edge worker''s own role reach it');
select col_is_pk('bevsession', 'seal_keys', 'key_id', 'one fingerprint per key id');
select table_privs_are('bevsession', 'seal_keys', 'service_role', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
                       'service_role may read and write seal_keys');
select table_privs_are('bevsession', 'seal_keys', 'session_visitor', array[]::text[],
                       'session_visitor has no privilege on seal_keys');
select throws_ok($$insert into bevsession.seal_keys (key_id, fingerprint) values ('bad id!', repeat('a', 32))$$, '23514',
                 'new row for relation "seal_keys" violates check constraint "key_id is 1-64 word characters"',
                 'a key id is 1-64 word characters');
select throws_ok($$insert into bevsession.seal_keys (key_id, fingerprint) values ('1', 'not hex')$$, '23514',
                 'new row for relation "seal_keys" violates check constraint "fingerprint is 32-128 hex digits"',
                 'a fingerprint is 32-128 hex digits (never the password)');

-- ---------------------------------------------------------------------------------------------
-- register_seal_keys
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select throws_ok($$select public.register_seal_keys('{"1": "00000000000000000000000000000000"}')$$, '42501', null,
                 'a visitor cannot register seal keys');
select throws_ok($$select * from bevsession.seal_keys$$, '42501', null, 'a visitor cannot read the seal keys');
reset role;
set local role anon;
select set_config('request.jwt.claims', '{"role": "anon"}', true);
select throws_ok($$select public.register_seal_keys('{"1": "00000000000000000000000000000000"}')$$, '42501', null,
                 'anon cannot register seal keys');
reset role;
set local role authenticated;
select throws_ok($$select public.register_seal_keys('{"1": "00000000000000000000000000000000"}')$$, '42501', null,
                 'authenticated cannot register seal keys');
reset role;

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is(public.register_seal_keys('{"1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}'), '{"changed": []}'::jsonb,
          'a new key id is recorded');
select is(public.register_seal_keys('{"1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "2": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}'),
          '{"changed": []}'::jsonb, 'the same fingerprint again, plus a new id (rotation): nothing changed');
select is(public.register_seal_keys('{"1": "cccccccccccccccccccccccccccccccc"}'), '{"changed": ["1"]}'::jsonb,
          'a different password under a known id is reported');
select is((select fingerprint from bevsession.seal_keys where key_id = '1'), 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
          'the first fingerprint of an id is kept, so the change keeps being reported');
select is(public.register_seal_keys('{"1": "cccccccccccccccccccccccccccccccc", "2": "dddddddddddddddddddddddddddddddd"}'),
          '{"changed": ["1", "2"]}'::jsonb, 'every changed id is reported, in order');
select is(public.register_seal_keys('{}'), '{"changed": []}'::jsonb, 'registering no key changes nothing');
select is((select count(*)::int from bevsession.seal_keys), 2, 'one row per key id');
reset role;
update bevsession.seal_keys set first_seen_at = now() - interval '1 day', last_seen_at = now() - interval '1 day';
set local role service_role;
select count(public.register_seal_keys('{"1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}'));
select ok((select last_seen_at = now() and first_seen_at < now() from bevsession.seal_keys where key_id = '1'),
          'a known id seen again moves last_seen_at, not first_seen_at');
select throws_ok($$select public.register_seal_keys('[]')$$, '22023', 'fingerprints: must be an object {key_id: fingerprint}',
                 'fingerprints must be an object');
select throws_ok($$select public.register_seal_keys(null)$$, '22023', 'fingerprints: must be an object {key_id: fingerprint}',
                 'fingerprints must not be null');
select throws_matching($$select public.register_seal_keys('{"bad id!": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}')$$,
                       'key_id is 1-64 word characters', 'a malformed key id is refused by its rule');
select throws_matching($$select public.register_seal_keys('{"3": "the password itself"}')$$,
                       'fingerprint is 32-128 hex digits', 'a value that is no fingerprint is refused by its rule');
reset role;

-- ---------------------------------------------------------------------------------------------
-- admin_session_stats
-- ---------------------------------------------------------------------------------------------
-- Four sessions made through the API: A (a chat turn with a signal, a reply), B (a message),
-- C (cleared), D (forgotten).
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select count(public.begin_chat_turn('I run sales at a brewery',
    '[{"signal_type": "role_mention", "signal_text": "I run sales", "signal_strength": "strong",
       "vector": "functional_role", "vector_value": "sales"}]'));
select count(public.finish_chat_turn('Welcome, sales lead.'));
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"}', true);
select count(public.begin_chat_turn('hello from B'));
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc"}', true);
select count(public.get_session());
select count(public.clear_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "dddddddd-dddd-4ddd-8ddd-dddddddddddd"}', true);
select count(public.begin_chat_turn('forget me'));
select count(public.forget_session());
select throws_ok($$select public.admin_session_stats()$$, '42501', null, 'a visitor cannot call admin_session_stats');
reset role;
set local role anon;
select throws_ok($$select public.admin_session_stats()$$, '42501', null, 'anon cannot call admin_session_stats');
reset role;
set local role authenticated;
select throws_ok($$select public.admin_session_stats()$$, '42501', null, 'authenticated cannot call admin_session_stats');
reset role;

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is(public.admin_session_stats(),
          '{"sessions": {"total": 4, "active": 2, "revoked": 1, "forgotten": 1},
            "personas": 3, "messages": 3, "signals": 1}'::jsonb,
          'admin_session_stats counts sessions by state (a forgotten one is not also counted as revoked), personas, messages, signals');
select is((select prosecdef from pg_catalog.pg_proc where oid = 'public.admin_session_stats()'::regprocedure), false,
          'admin_session_stats is security invoker: service_role''s BYPASSRLS is what lets it count every session');
reset role;

select * from finish();
rollback;
