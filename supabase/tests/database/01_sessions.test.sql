-- 20261201000100_sessions.sql: the sessions table and its one-way revocation, the session policy
-- (absolute lifetime, idle timeout, PT410), get_session (create, find, touch), clear_session
-- (revoked for good: PT403 everywhere after), forget_session (erase, tombstone), touch_sessions
-- (the edge worker's batched reads) and purge_sessions (retention).
-- Identity as PostgREST gives it: `set local role` and the request.jwt.claims setting.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon, authenticated;
grant execute on all functions in schema extensions to session_visitor, service_role, anon, authenticated;
set local search_path = extensions, public;

select plan(109);

-- results of RPC calls, kept for several assertions
create temporary table result (name text primary key, body jsonb not null);
grant all on result to public;

-- ---------------------------------------------------------------------------------------------
-- The sessions table
-- ---------------------------------------------------------------------------------------------
select is((select relrowsecurity from pg_catalog.pg_class where oid = 'bevsession.sessions'::regclass), true,
          'RLS is enabled on bevsession.sessions');
select policies_are('bevsession', 'sessions', array[
    'Visitors can read their own session',
    'Visitors can start their own session',
    'Visitors can update their own session',
    'Signed-in users can read their own sessions',
    'The edge worker can see every session''s liveness',
    'The edge worker can touch live sessions'],
    'sessions: read / start / update own, never delete; a signed-in user reads the sessions linked to it (20261201002000_linking); the edge worker sees liveness and touches');
select col_type_is('bevsession', 'sessions', 'current_mode', 'bevsession.session_mode',
                   'sessions.current_mode is the session_mode enum');
select col_type_is('bevsession', 'sessions', 'last_message', 'bevsession.message_content',
                   'sessions.last_message is a message (domain message_content)');
select has_trigger('bevsession', 'sessions', 'sessions_keep_revocation_permanent',
                   'a trigger keeps revocation permanent');

insert into bevsession.sessions (id) values ('00000000-0000-4000-8000-0000000000f1');
select throws_ok($$update bevsession.sessions set current_mode = 'sleepy'
                   where id = '00000000-0000-4000-8000-0000000000f1'$$,
                 '22P02', null, 'an unknown current_mode is refused by its enum');
select throws_ok($$update bevsession.sessions set message_count = -1
                   where id = '00000000-0000-4000-8000-0000000000f1'$$,
                 '23514', 'new row for relation "sessions" violates check constraint "message_count is not negative"',
                 'message_count is never negative');
select throws_ok($$update bevsession.sessions set forgotten_at = now()
                   where id = '00000000-0000-4000-8000-0000000000f1'$$,
                 '23514', 'new row for relation "sessions" violates check constraint "a forgotten session is revoked"',
                 'a forgotten session is revoked');
select throws_ok($$update bevsession.sessions set id = '00000000-0000-4000-8000-0000000000f2'
                   where id = '00000000-0000-4000-8000-0000000000f1'$$,
                 '22023', 'id: a session id never changes', 'a session id never changes, even for the table owner');
update bevsession.sessions set revoked_at = now(), forgotten_at = now() where id = '00000000-0000-4000-8000-0000000000f1';
select throws_ok($$update bevsession.sessions set revoked_at = null
                   where id = '00000000-0000-4000-8000-0000000000f1'$$,
                 'PT403', 'session revoked: revocation is permanent',
                 'revocation is permanent, even for the table owner');
select throws_ok($$update bevsession.sessions set forgotten_at = now() + interval '1 day'
                   where id = '00000000-0000-4000-8000-0000000000f1'$$,
                 'PT403', 'session revoked: a forgotten session stays forgotten',
                 'a forgotten session stays forgotten, even for the table owner');
delete from bevsession.sessions where id = '00000000-0000-4000-8000-0000000000f1';

-- the value rules of the service_role calls
select throws_ok($$select array[null::uuid]::bevsession.touch_batch$$, '23514',
                 'value for domain bevsession.touch_batch violates check constraint "at most 10000 ids, none null"',
                 'touch_batch: no null id');
select throws_ok($$select 86399999::bevsession.retention_ms$$, '23514',
                 'value for domain bevsession.retention_ms violates check constraint "must be at least 86400000 (one day)"',
                 'retention_ms: at least one day');
select throws_ok($$select 100001::bevsession.purge_batch$$, '23514',
                 'value for domain bevsession.purge_batch violates check constraint "must be between 1 and 100000"',
                 'purge_batch: at most 100000');

-- ---------------------------------------------------------------------------------------------
-- The session policy
-- ---------------------------------------------------------------------------------------------
select is((select relrowsecurity from pg_catalog.pg_class where oid = 'bevsession.session_policy'::regclass), true,
          'RLS is enabled on bevsession.session_policy');
select policies_are('bevsession', 'session_policy', array['Session roles can read the session policy',
                                                         'The edge worker can read the session policy'],
                    'session_policy: read only, for the session roles');
select is((select count(*)::int from bevsession.session_policy), 1, 'the session policy is one row');
select throws_ok($$insert into bevsession.session_policy (singleton) values (false)$$, '23514',
                 'new row for relation "session_policy" violates check constraint "one row"',
                 'a second policy row is refused');
set local role service_role;
select throws_ok($$update bevsession.session_policy set absolute_lifetime = interval '0'$$, '23514',
                 'new row for relation "session_policy" violates check constraint "absolute_lifetime is positive"',
                 'the absolute lifetime is positive');
select throws_ok($$update bevsession.session_policy set idle_timeout = interval '-1 minute'$$, '23514',
                 'new row for relation "session_policy" violates check constraint "idle_timeout is positive or null"',
                 'the idle timeout is positive or null');
reset role;

set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select is(public.get_session_policy(),
          '{"absolute_lifetime_seconds": 2592000, "idle_timeout_seconds": 86400}'::jsonb,
          'the default policy (20261201001000_sliding_expiry.sql): 30 days absolute lifetime, 24 h idle timeout');
select throws_ok($$update bevsession.session_policy set idle_timeout = null$$, '42501', null,
                 'a visitor cannot change the policy');
reset role;

-- ---------------------------------------------------------------------------------------------
-- get_session: create, then find; touch
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
insert into result select 'first', public.get_session();
select is((select body ->> 'created' from result where name = 'first'), 'true', 'get_session creates a new session');
select is((select array_agg(k order by k) from result, jsonb_object_keys(body) as k where name = 'first'),
          array['created', 'persona', 'session'], 'get_session returns {session, persona, created}');
select is((select body -> 'session' ->> 'session_id' from result where name = 'first'),
          'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'the session id is the session_id claim');
select is((select body -> 'session' ->> 'current_mode' from result where name = 'first'), 'fresh',
          'a new session is fresh');
select is((select (body -> 'persona' ->> 'total_interactions')::int from result where name = 'first'), 0,
          'a new persona has no interactions');
select is((select body -> 'persona' -> 'detection_vectors' ->> 'vectors_updated_at' from result where name = 'first'), '0',
          'vectors_updated_at is 0 (never) on a new persona');
select is((select count(*)::int from bevsession.user_personas where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 1,
          'the persona row is created with the session');

insert into result select 'second', public.get_session();
select is((select body ->> 'created' from result where name = 'second'), 'false', 'a second get_session finds the session');

reset role;
update bevsession.sessions set last_activity_at = now() - interval '1 hour' where id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
set local role session_visitor;
insert into result select 'untouched', public.get_session(touch => false);
insert into result select 'touched', public.get_session();
select ok((select (body -> 'session' ->> 'last_activity_at')::bigint from result where name = 'untouched')
          < bevsession.to_ms(now()) - 3000000, 'get_session(touch => false) leaves last_activity_at alone');
select is((select (body -> 'session' ->> 'last_activity_at')::bigint from result where name = 'touched'),
          bevsession.to_ms(now()), 'get_session() sets last_activity_at to now');

select set_config('request.jwt.claims', '{"role": "session_visitor"}', true);
select throws_ok($$select public.get_session()$$, 'PT401', 'no session identity', 'get_session without a session_id claim → PT401');
select throws_ok($$select public.clear_session()$$, 'PT401', 'no session identity', 'clear_session without a session_id claim → PT401');
select throws_ok($$select public.forget_session()$$, 'PT401', 'no session identity', 'forget_session without a session_id claim → PT401');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc"}', true);
select throws_ok($$select public.clear_session()$$, 'PT404', 'session not found',
                 'clear_session of a session never created → PT404');
select throws_ok($$select public.forget_session()$$, 'PT404', 'session not found',
                 'forget_session of a session never created → PT404');
select is((select count(*)::int from bevsession.sessions where id = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc'), 0,
          'and neither created it');
reset role;

-- ---------------------------------------------------------------------------------------------
-- Expiry: three sessions made by get_session, then aged as the owner
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "11111111-1111-4111-8111-111111111111"}', true);
select count(public.get_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "22222222-2222-4222-8222-222222222222"}', true);
select count(public.get_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "33333333-3333-4333-8333-333333333333"}', true);
select count(public.get_session());
reset role;
update bevsession.sessions set created_at = now() - interval '31 days', last_activity_at = now() - interval '5 minutes'
    where id = '11111111-1111-4111-8111-111111111111';   -- past the absolute lifetime (30 days), yet active
update bevsession.sessions set created_at = now() - interval '26 hours', last_activity_at = now() - interval '25 hours'
    where id = '22222222-2222-4222-8222-222222222222';   -- idle for 25 hours (the timeout: 24)
update bevsession.sessions set created_at = now() - interval '30 hours', last_activity_at = now() - interval '23 hours'
    where id = '33333333-3333-4333-8333-333333333333';   -- idle, but within the timeout

-- Absolute lifetime: activity cannot keep a session alive
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "11111111-1111-4111-8111-111111111111"}', true);
select throws_ok($$select public.get_session()$$, 'PT410', 'session expired',
                 'get_session refuses a session past its absolute lifetime');
select throws_ok($$select public.begin_chat_turn('hello')$$, 'PT410', 'session expired',
                 'begin_chat_turn refuses it too (it does not recreate an expired session)');
select throws_ok($$select public.add_conversation_message('user', 'hello')$$, 'PT410', 'session expired',
                 'add_conversation_message refuses it');
select throws_ok($$select public.get_conversation_history()$$, 'PT410', 'session expired',
                 'get_conversation_history refuses it');
select throws_ok($$select public.update_persona('{"craft_score": 0.5}')$$, 'PT410', 'session expired',
                 'update_persona refuses it');
select throws_ok($$select public.finish_chat_turn('a reply')$$, 'PT410', 'session expired',
                 'finish_chat_turn refuses it');
select lives_ok($$select public.clear_session()$$, 'clear_session still works on an expired session');

-- Idle timeout
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "22222222-2222-4222-8222-222222222222"}', true);
select throws_ok($$select public.get_session()$$, 'PT410', 'session expired',
                 'get_session refuses a session idle for longer than the timeout');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak')$$, 'PT410', 'session expired',
                 'record_persona_signal refuses it');
select lives_ok($$select public.forget_session()$$, 'forget_session still works on an idle session');

select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "33333333-3333-4333-8333-333333333333"}', true);
insert into result select 'within', public.get_session();
select ok((select (body -> 'session' ->> 'last_activity_at')::bigint from result where name = 'within')
          >= (extract(epoch from now()) * 1000)::bigint - 1000,
          'a session idle for less than the timeout is served and touched');

-- Operators may lift the idle timeout (service_role or the owner).
reset role;
set local role service_role;
update bevsession.session_policy set idle_timeout = null;
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "44444444-4444-4444-8444-444444444444"}', true);
select count(public.get_session());
reset role;
update bevsession.sessions set last_activity_at = now() - interval '30 hours' where id = '44444444-4444-4444-8444-444444444444';
set local role session_visitor;
select lives_ok($$select public.get_session()$$, 'with idle_timeout null, only the absolute lifetime applies');
select is((public.get_session_policy() -> 'idle_timeout_seconds'), 'null'::jsonb, 'the policy says so');
reset role;
update bevsession.session_policy set idle_timeout = interval '24 hours';

-- ---------------------------------------------------------------------------------------------
-- clear_session: revoked for good, idempotent, every other call refused with PT403
-- (session D: one chat turn with three signals, then the next turn's message)
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "dddddddd-dddd-4ddd-8ddd-dddddddddddd"}', true);
select count(public.begin_chat_turn('We are a regional brewery and our depletions are a mystery',
    '[{"signal_type": "org_type_mention", "signal_text": "we are a regional brewery", "signal_strength": "strong",
       "vector": "org_type", "vector_value": "supplier"},
      {"signal_type": "org_size_mention", "signal_text": "regional", "signal_strength": "medium",
       "vector": "org_size", "vector_value": "mid_sized"},
      {"signal_type": "pain_point_mention", "signal_text": "depletions are a mystery", "signal_strength": "strong",
       "pain_points_inferred": ["distributor_management"]}]'));
select count(public.finish_chat_turn('Here is how we help regional suppliers.'));
select count(public.begin_chat_turn('And pricing?'));

insert into result select 'clear', public.clear_session();
select ok((select (body ->> 'revoked_at')::bigint from result where name = 'clear') is not null,
          'clear_session sets revoked_at');
select is((select body ->> 'session_id' from result where name = 'clear'), 'dddddddd-dddd-4ddd-8ddd-dddddddddddd',
          'clear_session names the session it revoked');
select is(public.clear_session(), (select body from result where name = 'clear'),
          'clear_session is idempotent: the same revocation time');
select throws_ok($$select public.get_session()$$, 'PT403', 'session revoked', 'get_session refuses a revoked session');
select throws_ok($$select public.get_session(touch => false)$$, 'PT403', 'session revoked',
                 'get_session(touch => false) refuses it too');
select throws_ok($$select public.begin_chat_turn('again?')$$, 'PT403', 'session revoked',
                 'begin_chat_turn refuses a revoked session');
select throws_ok($$select public.finish_chat_turn('reply')$$, 'PT403', 'session revoked',
                 'finish_chat_turn refuses a revoked session');
select throws_ok($$select public.update_persona('{}')$$, 'PT403', 'session revoked',
                 'update_persona refuses a revoked session');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak')$$, 'PT403', 'session revoked',
                 'record_persona_signal refuses a revoked session');
select throws_ok($$select public.add_conversation_message('user', 'x')$$, 'PT403', 'session revoked',
                 'add_conversation_message refuses a revoked session');
select throws_ok($$select public.get_conversation_history()$$, 'PT403', 'session revoked',
                 'get_conversation_history refuses a revoked session');
select is((select count(*)::int from bevsession.conversation_history
           where session_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd'), 3,
          'the data of a cleared session is kept');

-- ---------------------------------------------------------------------------------------------
-- forget_session: erase, keep a revoked tombstone, idempotent
-- ---------------------------------------------------------------------------------------------
insert into result select 'forget', public.forget_session();
select is((select body -> 'deleted' from result where name = 'forget'),
          '{"messages": 3, "signals": 3, "personas": 1}'::jsonb, 'forget_session reports what it erased');
select is((select count(*)::int from bevsession.conversation_history where session_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd')
          + (select count(*)::int from bevsession.persona_signals where session_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd')
          + (select count(*)::int from bevsession.user_personas where session_id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd'), 0,
          'messages, signals and persona are gone');
select is((select (forgotten_at is not null and revoked_at is not null and last_message is null)
           from bevsession.sessions where id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd'), true,
          'the session row stays: revoked, forgotten, last message blanked');
select is(public.forget_session() -> 'deleted', '{"messages": 0, "signals": 0, "personas": 0}'::jsonb,
          'forget_session again erases nothing more');
select throws_ok($$select public.get_session()$$, 'PT403', 'session revoked', 'a forgotten session id is never reused');
select throws_ok($$select public.begin_chat_turn('hello again')$$, 'PT403', 'session revoked',
                 'a chat turn does not bring a forgotten session back');
reset role;

-- ---------------------------------------------------------------------------------------------
-- touch_sessions: the batched activity of reads an edge worker answered from its read cache
-- ---------------------------------------------------------------------------------------------
-- Five sessions made by get_session, then aged as the owner. A worker "checked" each of them
-- at check_ms (one minute ago): settled (nothing since), changed (persona written after the
-- check), revoked, idle (past the 2 h idle timeout) and old (past the 24 h lifetime).
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "aaaaaaaa-0000-4000-8000-000000000001"}', true);
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
update bevsession.sessions set created_at = now() - interval '26 hours', last_activity_at = now() - interval '25 hours'
 where id = 'aaaaaaaa-0000-4000-8000-000000000004';
update bevsession.sessions set created_at = now() - interval '31 days', last_activity_at = now() - interval '5 minutes'
 where id = 'aaaaaaaa-0000-4000-8000-000000000005';
update bevsession.user_personas set created_at = now() - interval '10 minutes', last_updated = now() - interval '10 minutes'
 where session_id::text like 'aaaaaaaa-0000-%';
update bevsession.user_personas set last_updated = now() - interval '10 seconds'
 where session_id = 'aaaaaaaa-0000-4000-8000-000000000002';

create temporary table checked (id uuid primary key, check_ms bigint not null);
insert into checked
select ('aaaaaaaa-0000-4000-8000-00000000000' || n)::uuid, bevsession.to_ms(now() - interval '1 minute')
from generate_series(1, 5) as n;
grant select on checked to public;

select function_privs_are('public', 'touch_sessions', array['uuid[]', 'bigint[]'], 'service_role',
                          array['EXECUTE'], 'service_role may call touch_sessions');
select function_privs_are('public', 'touch_sessions', array['uuid[]', 'bigint[]'], 'session_visitor',
                          array[]::text[], 'a visitor may not call touch_sessions: it reaches across sessions');
select function_privs_are('public', 'touch_sessions', array['uuid[]', 'bigint[]'], 'anon',
                          array[]::text[], 'anon may not call touch_sessions');
select function_privs_are('public', 'touch_sessions', array['uuid[]', 'bigint[]'], 'authenticated',
                          array[]::text[], 'authenticated may not call touch_sessions');
select is((select prosecdef from pg_catalog.pg_proc where oid = 'public.touch_sessions(uuid[], bigint[])'::regprocedure),
          false, 'touch_sessions is security invoker: service_role''s own BYPASSRLS, nothing borrowed');

set local role session_visitor;
select throws_ok($$select public.touch_sessions(array['aaaaaaaa-0000-4000-8000-000000000001'::uuid], array[0::bigint])$$,
                 '42501', null, 'a visitor calling touch_sessions is refused');
reset role;

set local role service_role;
select throws_ok($$select public.touch_sessions(array[gen_random_uuid()], array[]::bigint[])$$,
                 '22023', 'seen_ms: must have one entry per session id, none null', 'touch_sessions: one check time per id');
select throws_ok($$select public.touch_sessions(null, null)$$, '22023', 'seen_ms: must have one entry per session id, none null',
                 'touch_sessions: null arrays are refused');
select throws_ok($$select public.touch_sessions(array[gen_random_uuid()], array[null::bigint])$$,
                 '22023', 'seen_ms: must have one entry per session id, none null', 'touch_sessions: a null check time is refused');
select throws_ok($$select public.touch_sessions(array[null::uuid], array[0::bigint])$$,
                 '22023', 'session_ids: at most 10000 ids, none null', 'touch_sessions: a null id is refused');
select throws_ok($$select public.touch_sessions(array(select gen_random_uuid() from generate_series(1, 10001)),
                                                 array(select 0::bigint from generate_series(1, 10001)))$$,
                 '22023', 'session_ids: at most 10000 ids, none null', 'touch_sessions: at most 10000 ids per call');
select is(public.touch_sessions('{}', '{}'), '{"touched": 0, "stale": []}'::jsonb,
          'touch_sessions with nothing to report touches nothing');

create temporary table answer as
select public.touch_sessions(
           (select array_agg(id order by id) from checked) || 'bbbbbbbb-0000-4000-8000-000000000009'::uuid,
           (select array_agg(check_ms order by id) from checked) || 0::bigint) as body;
reset role;

select is((select (body ->> 'touched')::int from answer), 1, 'touch_sessions touches only the settled session');
select set_eq($$select (jsonb_array_elements_text(body -> 'stale'))::uuid from answer$$,
              $$values ('aaaaaaaa-0000-4000-8000-000000000002'::uuid), ('aaaaaaaa-0000-4000-8000-000000000003'),
                       ('aaaaaaaa-0000-4000-8000-000000000004'), ('aaaaaaaa-0000-4000-8000-000000000005'),
                       ('bbbbbbbb-0000-4000-8000-000000000009')$$,
              'stale: changed after the check, revoked, idle, past its lifetime, unknown');
select ok((select last_activity_at >= now() - interval '1 second' from bevsession.sessions
           where id = 'aaaaaaaa-0000-4000-8000-000000000001'), 'the settled session''s activity moved to now');
select ok((select last_activity_at < now() - interval '24 hours' from bevsession.sessions
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

-- ---------------------------------------------------------------------------------------------
-- purge_sessions: who may call it, its arguments
-- ---------------------------------------------------------------------------------------------
select is(has_function_privilege('service_role', 'public.purge_sessions(bigint,integer)', 'execute'), true,
          'service_role may purge');
select is(has_function_privilege(r, 'public.purge_sessions(bigint,integer)', 'execute'), false,
          format('%s may not purge', r))
from unnest(array['session_visitor', 'anon', 'authenticated']) as r;
set local role session_visitor;
select throws_ok($$select public.purge_sessions(864000000)$$, '42501', null, 'a visitor calling purge is refused');
reset role;
set local role anon;
select throws_ok($$select public.purge_sessions(864000000)$$, '42501', null, 'anon calling purge is refused');
reset role;

set local role service_role;
select throws_ok($$select public.purge_sessions(86399999)$$, '22023',
                 'older_than_ms: must be at least 86400000 (one day)', 'an age under one day is refused');
select throws_ok($$select public.purge_sessions(null)$$, '22023', 'older_than_ms: is required', 'a null age is refused');
select throws_ok($$select public.purge_sessions(86400000, 0)$$, '22023', 'batch: must be between 1 and 100000',
                 'a batch of 0 is refused');
select throws_ok($$select public.purge_sessions(86400000, null)$$, '22023', 'batch: is required',
                 'a null batch is refused');
reset role;

-- ---------------------------------------------------------------------------------------------
-- purge_sessions: which sessions go
-- ---------------------------------------------------------------------------------------------
-- Fixtures, written as the owner (RLS is not forced for it). "old" = 3 days, "recent" = 1 hour;
-- the purge age is 2 days.
delete from bevsession.conversation_history;
delete from bevsession.persona_signals;
delete from bevsession.user_personas;
delete from bevsession.sessions;

insert into bevsession.sessions (id, created_at, last_activity_at) values
    ('00000000-0000-4000-8000-000000000001', now() - interval '3 days', now() - interval '3 days'),   -- old bot
    ('00000000-0000-4000-8000-000000000002', now() - interval '4 days', now() - interval '3 days'),   -- old bot
    ('00000000-0000-4000-8000-000000000003', now() - interval '3 days', now() - interval '1 hour'),   -- recent bot
    ('00000000-0000-4000-8000-000000000004', now() - interval '3 days', now() - interval '3 days'),   -- old, messages
    ('00000000-0000-4000-8000-000000000005', now() - interval '3 days', now() - interval '3 days'),   -- old, a signal
    ('00000000-0000-4000-8000-000000000006', now() - interval '3 days', now() - interval '3 days'),   -- old, persona used
    ('00000000-0000-4000-8000-000000000007', now() - interval '9 days', now() - interval '3 days'),   -- revoked long ago
    ('00000000-0000-4000-8000-000000000008', now() - interval '9 days', now() - interval '3 days'),   -- forgotten long ago
    ('00000000-0000-4000-8000-000000000009', now() - interval '9 days', now() - interval '1 hour');   -- revoked recently
insert into bevsession.user_personas (session_id) select id from bevsession.sessions;
update bevsession.user_personas set total_interactions = 1 where session_id = '00000000-0000-4000-8000-000000000006';
insert into bevsession.conversation_history (session_id, message_role, message_content) values
    ('00000000-0000-4000-8000-000000000004', 'user', 'hello'),
    ('00000000-0000-4000-8000-000000000007', 'user', 'kept for analytics until the purge'),
    ('00000000-0000-4000-8000-000000000007', 'assistant', 'reply'),
    ('00000000-0000-4000-8000-000000000009', 'user', 'recent');
update bevsession.sessions set message_count = 1 where id = '00000000-0000-4000-8000-000000000004';
update bevsession.sessions set message_count = 2 where id = '00000000-0000-4000-8000-000000000007';
update bevsession.sessions set message_count = 1 where id = '00000000-0000-4000-8000-000000000009';
insert into bevsession.persona_signals (session_id, signal_type, signal_text, signal_strength, confidence_before, confidence_after)
values ('00000000-0000-4000-8000-000000000005', 'x', 'y', 'weak', 0, 0),
       ('00000000-0000-4000-8000-000000000007', 'x', 'y', 'weak', 0, 0);
update bevsession.sessions set revoked_at = now() - interval '4 days'   -- the oldest revocation
where id = '00000000-0000-4000-8000-000000000007';
update bevsession.sessions set revoked_at = now() - interval '3 days'
where id = '00000000-0000-4000-8000-000000000008';
update bevsession.sessions set forgotten_at = now() - interval '3 days'
where id = '00000000-0000-4000-8000-000000000008';
delete from bevsession.user_personas where session_id = '00000000-0000-4000-8000-000000000008';   -- forgotten: no persona
update bevsession.sessions set revoked_at = now() - interval '1 hour' where id = '00000000-0000-4000-8000-000000000009';

set local role service_role;
insert into result select 'purge1', public.purge_sessions(2 * 86400000, 1);
insert into result select 'purge2', public.purge_sessions(2 * 86400000);
insert into result select 'purge3', public.purge_sessions(2 * 86400000);
reset role;

select is((select body -> 'deleted' from result where name = 'purge1'),
          '{"idle_sessions": 1, "revoked_sessions": 1, "expired_sessions": 0, "personas": 2, "messages": 2, "signals": 1}'::jsonb,
          'a batch of 1: one idle bot (the oldest) and one revoked session (the oldest), with their rows');
select is((select body -> 'more' from result where name = 'purge1'), 'true'::jsonb, 'and it says there may be more');
select is((select body -> 'deleted' from result where name = 'purge2'),
          '{"idle_sessions": 1, "revoked_sessions": 1, "expired_sessions": 0, "personas": 1, "messages": 0, "signals": 0}'::jsonb,
          'the next call takes the rest: the second bot and the forgotten tombstone');
select is((select body -> 'more' from result where name = 'purge2'), 'false'::jsonb, 'nothing more');
select is((select body -> 'deleted' from result where name = 'purge3'),
          '{"idle_sessions": 0, "revoked_sessions": 0, "expired_sessions": 0, "personas": 0, "messages": 0, "signals": 0}'::jsonb,
          'a repeat deletes nothing');
select ok((select abs((body ->> 'cutoff')::bigint - bevsession.to_ms(now() - interval '2 days')) <= 1 from result where name = 'purge1'),
          'the cutoff is now minus the age, in ms');

select is((select array_agg(right(id::text, 1) order by id) from bevsession.sessions),
          array['3', '4', '5', '6', '9'],
          'kept: the recent bot, old sessions with a message / a signal / a used persona, the recently revoked one');
select is((select count(*)::int from bevsession.conversation_history), 2, 'the kept sessions keep their messages');
select is((select count(*)::int from bevsession.persona_signals), 1, 'and their signals');
select is((select count(*)::int from bevsession.user_personas), 5, 'and their personas');
select is((select count(*)::int from bevsession.conversation_history where session_id = '00000000-0000-4000-8000-000000000007'), 0,
          'the purged revoked session''s messages are gone');

-- (A session locked by a concurrent request is skipped: that needs two connections, so it is
-- tested in tests/test_abuse_limits.py.)

select * from finish();
rollback;
