-- touch_sessions: the batched activity of reads an edge worker answered from its read cache.
-- Who may call it, what it touches, and which copies it calls stale.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon;
grant execute on all functions in schema extensions to session_visitor, service_role, anon;
set local search_path = extensions, public;

select plan(18);

-- Five sessions made by get_session, then aged as the owner. A worker "checked" each of them
-- at check_ms (one minute ago): settled (nothing since), changed (persona written after the
-- check), revoked, idle (past the 2 h idle timeout) and old (past the 24 h lifetime).
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "aaaaaaaa-0000-4000-8000-000000000001"}', true);
set local role session_visitor;
select count(public.get_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "aaaaaaaa-0000-4000-8000-000000000002"}', true);
select count(public.get_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "aaaaaaaa-0000-4000-8000-000000000003"}', true);
select count(public.get_session());
select count(public.clear_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "aaaaaaaa-0000-4000-8000-000000000004"}', true);
select count(public.get_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "aaaaaaaa-0000-4000-8000-000000000005"}', true);
select count(public.get_session());
reset role;

update bevsession.sessions
   set created_at = now() - interval '10 minutes', last_activity_at = now() - interval '5 minutes'
 where id in ('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002',
              'aaaaaaaa-0000-4000-8000-000000000003');
update bevsession.sessions set created_at = now() - interval '4 hours', last_activity_at = now() - interval '3 hours'
 where id = 'aaaaaaaa-0000-4000-8000-000000000004';
update bevsession.sessions set created_at = now() - interval '25 hours', last_activity_at = now() - interval '5 minutes'
 where id = 'aaaaaaaa-0000-4000-8000-000000000005';
update bevsession.personas set created_at = now() - interval '10 minutes', last_updated = now() - interval '10 minutes';
update bevsession.personas set last_updated = now() - interval '10 seconds'
 where session_id = 'aaaaaaaa-0000-4000-8000-000000000002';

create temporary table checked (id uuid primary key, check_ms bigint not null);
insert into checked
select ('aaaaaaaa-0000-4000-8000-00000000000' || n)::uuid, bevsession.to_ms(now() - interval '1 minute')
from generate_series(1, 5) as n;
grant select on checked to public;

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------
select function_privs_are('public', 'touch_sessions', array['uuid[]', 'bigint[]'], 'service_role',
                          array['EXECUTE'], 'service_role may call touch_sessions');
select function_privs_are('public', 'touch_sessions', array['uuid[]', 'bigint[]'], 'session_visitor',
                          array[]::text[], 'a visitor may not: it reaches across sessions');
select function_privs_are('public', 'touch_sessions', array['uuid[]', 'bigint[]'], 'anon',
                          array[]::text[], 'anon may not');
select function_privs_are('public', 'touch_sessions', array['uuid[]', 'bigint[]'], 'authenticated',
                          array[]::text[], 'authenticated may not');
select is((select prosecdef from pg_catalog.pg_proc where oid = 'public.touch_sessions(uuid[], bigint[])'::regprocedure),
          false, 'security invoker: service_role''s own BYPASSRLS, nothing borrowed');

set local role session_visitor;
select throws_ok($$select public.touch_sessions(array['aaaaaaaa-0000-4000-8000-000000000001'::uuid], array[0::bigint])$$,
                 '42501', null, 'a visitor calling it is refused');
reset role;

-- ---------------------------------------------------------------------------------------------
-- Arguments
-- ---------------------------------------------------------------------------------------------
set local role service_role;
select throws_ok($$select public.touch_sessions(array[gen_random_uuid()], array[]::bigint[])$$,
                 '22023', null, 'one check time per id');
select throws_ok($$select public.touch_sessions(null, null)$$, '22023', null, 'null arrays are refused');
select throws_ok($$select public.touch_sessions(array[null::uuid], array[0::bigint])$$,
                 '22023', null, 'a null id is refused');
select throws_ok($$select public.touch_sessions(array(select gen_random_uuid() from generate_series(1, 10001)),
                                                 array(select 0::bigint from generate_series(1, 10001)))$$,
                 '22023', null, 'at most max_touch_batch() ids per call');
select is(public.touch_sessions('{}', '{}'), '{"touched": 0, "stale": []}'::jsonb,
          'nothing to report: nothing touched');

-- ---------------------------------------------------------------------------------------------
-- What it touches and what it calls stale
-- ---------------------------------------------------------------------------------------------
create temporary table answer as
select public.touch_sessions(
           (select array_agg(id order by id) from checked) || 'bbbbbbbb-0000-4000-8000-000000000009'::uuid,
           (select array_agg(check_ms order by id) from checked) || 0::bigint) as body;
reset role;

select is((select (body ->> 'touched')::int from answer), 1, 'only the settled session is touched');
select set_eq($$select (jsonb_array_elements_text(body -> 'stale'))::uuid from answer$$,
              $$values ('aaaaaaaa-0000-4000-8000-000000000002'::uuid), ('aaaaaaaa-0000-4000-8000-000000000003'),
                       ('aaaaaaaa-0000-4000-8000-000000000004'), ('aaaaaaaa-0000-4000-8000-000000000005'),
                       ('bbbbbbbb-0000-4000-8000-000000000009')$$,
              'stale: changed after the check, revoked, idle, past its lifetime, unknown');
select ok((select last_activity_at >= now() - interval '1 second' from bevsession.sessions
           where id = 'aaaaaaaa-0000-4000-8000-000000000001'), 'the settled session''s activity moved to now');
select ok((select last_activity_at < now() - interval '2 hours' from bevsession.sessions
           where id = 'aaaaaaaa-0000-4000-8000-000000000004'), 'an idle session is not revived');
select ok((select revoked_at is not null and last_activity_at < now() - interval '4 minutes'
           from bevsession.sessions where id = 'aaaaaaaa-0000-4000-8000-000000000003'),
          'a revoked session is not touched');
select is((select count(*)::int from bevsession.sessions where id = 'bbbbbbbb-0000-4000-8000-000000000009'), 0,
          'an unknown id is not created');


-- A brand-new session (its persona created with it, never written) checked at its creation.
create temporary table fresh (snap jsonb not null);
grant all on fresh to public;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "aaaaaaaa-0000-4000-8000-000000000006"}', true);
set local role session_visitor;
insert into fresh select public.get_session();
reset role;
set local role service_role;
select is(public.touch_sessions(array['aaaaaaaa-0000-4000-8000-000000000006'::uuid],
                                array[(select (snap -> 'session' ->> 'last_activity_at')::bigint from fresh)]),
          '{"touched": 1, "stale": []}'::jsonb,
          'a new session checked at its creation is not stale: creating the persona is no change');
reset role;

select * from finish();
rollback;
