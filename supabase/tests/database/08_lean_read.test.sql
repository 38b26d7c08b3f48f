-- 20261201004100_lean_read.sql: read_session answers a read without a lock or a write — the
-- session and the persona's summary, read_at for the batched touch, settled when no writer has
-- the row — and {session: null} when the read would need a write (adopt_session's work).
-- Identity as PostgREST gives it: `set local role` and the request.jwt.claims setting.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon, authenticated;
grant execute on all functions in schema extensions to session_visitor, service_role, anon, authenticated;
set local search_path = extensions, public;

select plan(23);

create temporary table result (name text primary key, body jsonb);
grant all on result to public;

-- A: a live session with a persona that has histories and questions; M: missing
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "11111111-1111-4111-8111-111111111111"}', true);
insert into result select 'got', public.get_session();
reset role;
update bevsession.user_personas set
    functional_role = 'sales', functional_role_confidence = 0.5,
    functional_role_history = '[{"value": "sales", "confidence": 0.5, "strength": "strong", "evidence": "we sell", "detected_at": 1}]',
    questions_asked = '{"what do you sell?"}', pain_points_detected = '{compliance_risk}', sales_focus_score = 0.25
    where session_id = '11111111-1111-4111-8111-111111111111';
update bevsession.sessions set last_message = 'hello', message_count = 2, last_activity_at = now() - interval '1 hour'
    where id = '11111111-1111-4111-8111-111111111111';
create temporary table before as
    select s.last_activity_at, s.xmin::text as version from bevsession.sessions as s where s.id = '11111111-1111-4111-8111-111111111111';
grant select on before to public;

set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "11111111-1111-4111-8111-111111111111"}', true);
insert into result select 'read', public.read_session();
insert into result select 'full', public.get_session(touch => false);
reset role;

select is((select body -> 'session' from result where name = 'read'),
          (select (body -> 'session') - 'last_message' - 'revoked_at' from result where name = 'full'),
          'the session as get_session has it, without last_message and revoked_at');
select is((select body -> 'persona' from result where name = 'read'),
          (select jsonb_set((body -> 'persona') - 'questions_asked', '{detection_vectors}',
                            (body #> '{persona,detection_vectors}') - 'functional_role_history' - 'org_type_history'
                                - 'org_size_history' - 'product_focus_history')
           from result where name = 'full'),
          'the persona''s summary: persona_json without the detection histories and the questions');
select is((select body #>> '{persona,detection_vectors,functional_role}' from result where name = 'read'), 'sales',
          'the summary keeps each vector''s value');
select is((select (body ->> 'read_at')::bigint from result where name = 'read'), bevsession.to_ms(now()),
          'read_at is the database''s clock at the read');
select is((select body -> 'settled' from result where name = 'read'), 'true'::jsonb,
          'settled: no other transaction had the row');
select is((select s.last_activity_at from bevsession.sessions as s where s.id = '11111111-1111-4111-8111-111111111111'),
          (select last_activity_at from before), 'read_session touches nothing');
select is((select s.xmin::text from bevsession.sessions as s where s.id = '11111111-1111-4111-8111-111111111111'),
          (select version from before), 'read_session writes no new row version (no lock, no update)');
select is((select provolatile from pg_catalog.pg_proc where oid = 'public.read_session()'::regprocedure),
          's', 'read_session is stable: PostgREST runs it read-only');

-- the read is reported later: touch_sessions with read_at touches it
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is(public.touch_sessions(array['11111111-1111-4111-8111-111111111111']::uuid[],
                                array[(select (body ->> 'read_at')::bigint from result where name = 'read')]),
          '{"touched": 1, "stale": []}'::jsonb, 'touch_sessions with read_at as seen_ms reports the read');
create temporary table batch as
    select array['11111111-1111-4111-8111-111111111111'::uuid] || array_agg(gen_random_uuid()) as ids
    from generate_series(1, 4999);
grant select on batch to public;
select is((select public.touch_sessions(b.ids, array_fill((select (body ->> 'read_at')::bigint from result where name = 'read'), array[5000]))
           from batch as b),
          (select jsonb_build_object('touched', 1, 'stale', to_jsonb(array(select u from unnest(b.ids[2:]) as u order by u)))
           from batch as b),
          'a batch of 5000: the touched one, and every other id as stale in id order');
reset role;

-- settled: the row's last locker finished before the read's snapshot (a writer in flight, in
-- another connection, is tests/test_read_cache.py's)
select is(bevsession.row_settled('0'), true, 'a row nobody locked is settled');
select is(bevsession.row_settled('3'), true, 'a locker long finished is settled');
select is(bevsession.row_settled((pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 5)::text::xid), false,
          'a locker that began after the snapshot (or is still running) is not');
select true from bevsession.sessions where id = '11111111-1111-4111-8111-111111111111' for no key update;
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "11111111-1111-4111-8111-111111111111"}', true);
select is(public.read_session() -> 'settled', 'true'::jsonb, 'this transaction''s own lock is no writer in flight');

-- what would need a write: {session: null}, nothing written
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "22222222-2222-4222-8222-222222222222"}', true);
select is(public.read_session(), '{"session": null}'::jsonb, 'a session the database has no row for: adopt it');
select is((select count(*)::int from bevsession.sessions where id = '22222222-2222-4222-8222-222222222222'), 0,
          'and read_session did not create it');
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "33333333-3333-4333-8333-333333333333"}', true);
select count(public.get_session());
reset role;
delete from bevsession.user_personas where session_id = '33333333-3333-4333-8333-333333333333';
set local role session_visitor;
select is(public.read_session(), '{"session": null}'::jsonb, 'a session without its persona row: adopt_session makes it');
reset role;
insert into bevsession.sessions (id) values ('44444444-4444-4444-8444-444444444444');
insert into bevsession.user_personas (session_id) values ('44444444-4444-4444-8444-444444444444');
insert into bevsession.seed_imports (session_id) values ('44444444-4444-4444-8444-444444444444');
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "44444444-4444-4444-8444-444444444444"}', true);
select is(public.read_session(), '{"session": null}'::jsonb, 'an imported session no cookie completed yet: adopt_session completes it');
reset role;
update bevsession.seed_imports set completed_at = now() where session_id = '44444444-4444-4444-8444-444444444444';
set local role session_visitor;
select is(public.read_session() #>> '{session,session_id}', '44444444-4444-4444-8444-444444444444',
          'once completed, it is read');

-- refused as every lookup is
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "55555555-5555-4555-8555-555555555555"}', true);
select count(public.get_session());
select count(public.clear_session());
select throws_ok($$select public.read_session()$$, 'PT403', 'session revoked', 'a revoked session is refused');
reset role;
update bevsession.sessions set last_activity_at = now() - interval '25 hours'
    where id = '44444444-4444-4444-8444-444444444444';
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "44444444-4444-4444-8444-444444444444"}', true);
select throws_ok($$select public.read_session()$$, 'PT410', 'session expired', 'a session idle past the timeout is refused');
reset role;

-- who may call it
set local role anon;
select throws_ok($$select public.read_session()$$, '42501', null, 'anon cannot read a session');
reset role;
select is(has_function_privilege('session_worker', 'public.read_session()', 'execute'), false,
          'the worker role cannot read a visitor''s session');

select * from finish();
rollback;
