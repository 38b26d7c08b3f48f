-- 20261201003000_read_cache_validation.sql: validate_sessions re-checks the copies an edge
-- worker holds, touching nothing: stale when missing, revoked, expired or changed since the
-- check; the revoked ones listed apart.
-- Identity as PostgREST gives it: `set local role` and the request.jwt.claims setting.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon, authenticated;
grant execute on all functions in schema extensions to session_visitor, service_role, anon, authenticated;
set local search_path = extensions, public;

select plan(12);

-- sessions: L (live, unchanged), R (revoked), F (forgotten), X (idle past the timeout),
-- C (changed after its check); M is missing
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "11111111-1111-4111-8111-111111111111"}', true);
select count(public.get_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "22222222-2222-4222-8222-222222222222"}', true);
select count(public.get_session());
select count(public.clear_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "33333333-3333-4333-8333-333333333333"}', true);
select count(public.get_session());
select count(public.forget_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "44444444-4444-4444-8444-444444444444"}', true);
select count(public.get_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "55555555-5555-4555-8555-555555555555"}', true);
select count(public.get_session());
reset role;
update bevsession.sessions set last_activity_at = now() - interval '25 hours'
    where id = '44444444-4444-4444-8444-444444444444';
update bevsession.sessions set last_message_at = now() + interval '1 minute'
    where id = '55555555-5555-4555-8555-555555555555';
create temporary table seen as
    select s.id, bevsession.to_ms(s.last_activity_at) as ms, s.last_activity_at as at from bevsession.sessions as s;
grant select on seen to public;

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is(public.validate_sessions(
              array['11111111-1111-4111-8111-111111111111']::uuid[],
              array[(select ms from seen where id = '11111111-1111-4111-8111-111111111111')]),
          '{"valid": 1, "stale": [], "revoked": []}'::jsonb,
          'a live, unchanged session is valid');
select is(public.validate_sessions(
              array['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222',
                    '33333333-3333-4333-8333-333333333333', '44444444-4444-4444-8444-444444444444',
                    '55555555-5555-4555-8555-555555555555', '66666666-6666-4666-8666-666666666666']::uuid[],
              array[(select ms from seen where id = '11111111-1111-4111-8111-111111111111'),
                    (select ms from seen where id = '22222222-2222-4222-8222-222222222222'),
                    (select ms from seen where id = '33333333-3333-4333-8333-333333333333'),
                    (select ms from seen where id = '44444444-4444-4444-8444-444444444444'),
                    (select ms from seen where id = '55555555-5555-4555-8555-555555555555'),
                    0]),
          '{"valid": 1,
            "stale": ["22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333",
                      "44444444-4444-4444-8444-444444444444", "55555555-5555-4555-8555-555555555555",
                      "66666666-6666-4666-8666-666666666666"],
            "revoked": ["22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"]}'::jsonb,
          'revoked, forgotten, idle-expired, changed and missing sessions are stale; the revoked and forgotten are listed as revoked');
select is((select s.last_activity_at from bevsession.sessions as s where s.id = '11111111-1111-4111-8111-111111111111'),
          (select at from seen where id = '11111111-1111-4111-8111-111111111111'),
          'validate_sessions touches nothing (an unread copy is no activity)');
select is(public.validate_sessions('{}', '{}'), '{"valid": 0, "stale": [], "revoked": []}'::jsonb,
          'an empty batch is valid and answers nothing');
select throws_ok($$select public.validate_sessions(array[gen_random_uuid()], '{}')$$, '22023',
                 'seen_ms: must have one entry per session id, none null', 'arrays of different lengths are refused');
select throws_ok($$select public.validate_sessions(array[null]::uuid[], array[1::bigint])$$, '22023',
                 'session_ids: at most 10000 ids, none null', 'a null id is refused');
select throws_ok($$select public.validate_sessions(array(select gen_random_uuid() from generate_series(1, 10001)),
                                                    array(select 1::bigint from generate_series(1, 10001)))$$,
                 '22023', 'session_ids: at most 10000 ids, none null', 'at most 10000 ids per call');
select is((select provolatile from pg_catalog.pg_proc where oid = 'public.validate_sessions(uuid[],bigint[])'::regprocedure),
          's', 'validate_sessions is stable: PostgREST runs it read-only');
reset role;

-- who may call it
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "11111111-1111-4111-8111-111111111111"}', true);
select throws_ok($$select public.validate_sessions('{}', '{}')$$, '42501', null, 'a visitor cannot validate sessions');
reset role;
set local role anon;
select throws_ok($$select public.validate_sessions('{}', '{}')$$, '42501', null, 'anon cannot validate sessions');
reset role;
set local role authenticated;
select throws_ok($$select public.validate_sessions('{}', '{}')$$, '42501', null, 'authenticated cannot validate sessions');
reset role;
select is(pg_catalog.obj_description('public.validate_sessions(uuid[],bigint[])'::regprocedure, 'pg_proc') is not null,
          true, 'validate_sessions is described for PostgREST');

select * from finish();
rollback;
