-- Abuse limits (20261124210000_abuse_limits.sql; the rate limit's pieces are in the base
-- migrations, see that file's header): the per-session chat rate limit inside
-- begin_chat_turn (PT429 with retry_after), its setting, and the service_role-only retention
-- purge (which sessions go, which stay, counts, batches, grants).
-- One transaction, calls microseconds apart (the limit reads clock_timestamp()); "time passing"
-- is simulated by moving a session's chat_rate_tat back.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon, authenticated;
grant execute on all functions in schema extensions to session_visitor, service_role, anon, authenticated;
set local search_path = extensions, public;

select plan(59);

create temporary table result (name text primary key, body jsonb);
create temporary table caught (name text primary key, state text, message text, detail text, hint text);
grant all on result, caught to public;

-- ---------------------------------------------------------------------------------------------
-- The setting
-- ---------------------------------------------------------------------------------------------
select has_column('bevsession', 'sessions', 'chat_rate_tat', 'sessions.chat_rate_tat holds the rate limit state');
select col_type_is('bevsession', 'sessions', 'chat_rate_tat', 'timestamp with time zone',
                   'chat_rate_tat is a timestamptz (one value per session: GCRA)');
select is(has_column_privilege('session_visitor', 'bevsession.sessions', 'chat_rate_tat', 'update'), true,
          'the visitor may update chat_rate_tat (begin_chat_turn runs as the visitor)');

select is((select (turns, per_seconds)::text from bevsession.chat_rate_limit()), '(20,60)',
          'unset: the default is 20 chat turns per 60 seconds');
create function pg_temp.limit_for(p_value text) returns text
    language plpgsql
as $$
begin
    perform pg_catalog.set_config('bevsession.chat_rate_limit', p_value, true);
    return (select (turns, per_seconds)::text from bevsession.chat_rate_limit());
end
$$;
select is(pg_temp.limit_for(v), want, format('%L means %s', v, want))
from (values ('5/second', '(5,1)'), ('30/min', '(30,60)'), ('100/hour', '(100,3600)'),
             ('10/10s', '(10,10)'), (' 7 / Minute ', '(7,60)'), ('off', '(0,60)'), ('0', '(0,60)'),
             ('nonsense', '(20,60)'), ('0/minute', '(20,60)'), ('5/0s', '(20,60)'), ('5/48h', '(20,60)'),
             ('', '(20,60)')) as t(v, want);

-- ---------------------------------------------------------------------------------------------
-- The rate limit in begin_chat_turn: 3 per minute
-- ---------------------------------------------------------------------------------------------
select set_config('bevsession.chat_rate_limit', '3/minute', true);
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);

select lives_ok($$select public.begin_chat_turn('one')$$, 'turn 1 of 3 is allowed (and creates the session)');
select lives_ok($$select public.begin_chat_turn('two')$$, 'turn 2 of 3 is allowed');
select lives_ok($$select public.finish_chat_turn('a reply')$$, 'storing a reply takes no turn');
select lives_ok($$select public.begin_chat_turn('three')$$, 'turn 3 of 3 is allowed: the whole burst');
select throws_ok($$select public.begin_chat_turn('four')$$, 'PT429',
                 'rate limited: at most 3 chat turns per 60 seconds', 'turn 4 is refused with PT429');

do $$
declare
    v_state text;
    v_message text;
    v_detail text;
    v_hint text;
begin
    perform public.begin_chat_turn('five');
    insert into caught values ('refused', 'none', null, null, null);
exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
                            v_detail = pg_exception_detail, v_hint = pg_exception_hint;
    insert into caught values ('refused', v_state, v_message, v_detail, v_hint);
end
$$;
select is((select state from caught where name = 'refused'), 'PT429', 'a refused turn raises PT429');
select is((select detail from caught where name = 'refused'), 'retry_after=20',
          'the detail says how long to wait: one emission interval (60 s / 3)');
select ok((select hint from caught where name = 'refused') like '%retry_after%', 'the hint explains retry_after');

select lives_ok($$select public.add_conversation_message('user', 'not a chat turn')$$,
                'add_conversation_message is not a chat turn: not limited');
select lives_ok($$select public.record_persona_signal('x', 'y', 'weak')$$, 'signals are not limited');
select lives_ok($$select public.get_session()$$, 'get_session is not limited');
reset role;

select is((select message_count from bevsession.sessions where id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 5,
          'refused turns stored nothing: 3 turns + 1 reply + 1 message');
select is((select count(*)::int from bevsession.messages
           where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' and message_content in ('four', 'five')), 0,
          'no refused message was stored');
select ok((select chat_rate_tat - now() between interval '60 seconds' and interval '61 seconds'
           from bevsession.sessions where id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'),
          'three turns at (almost) one instant move the arrival time 3 × 20 s ahead');

-- another session has an allowance of its own
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"}', true);
select lives_ok($$select public.begin_chat_turn('b ' || i) from generate_series(1, 3) as i$$,
                'session B has its own three turns');
select throws_ok($$select public.begin_chat_turn('b four')$$, 'PT429', null, 'and B is limited too');
reset role;

-- 20 s later (simulated): one more turn for A, not two
update bevsession.sessions set chat_rate_tat = chat_rate_tat - interval '20 seconds'
where id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select lives_ok($$select public.begin_chat_turn('after 20 s')$$, 'after one interval, one turn is back');
select throws_ok($$select public.begin_chat_turn('too soon')$$, 'PT429', null, 'but only one');
reset role;

-- a long pause refills the bucket to the burst, never beyond
update bevsession.sessions set chat_rate_tat = now() - interval '1 hour'
where id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select lives_ok($$select public.begin_chat_turn('x' || i) from generate_series(1, 3) as i$$,
                'after an hour of silence: the full burst of 3');
select throws_ok($$select public.begin_chat_turn('x4')$$, 'PT429', null, 'and not one more (an hour saved nothing up)');

-- invalid arguments are refused before the limit is consulted
select throws_ok($$select public.begin_chat_turn(repeat('x', 8001))$$, '22023', null,
                 'argument errors come first (22023, not PT429)');

-- the limit off: no refusal
select set_config('bevsession.chat_rate_limit', 'off', true);
select lives_ok($$select count(public.begin_chat_turn('unlimited ' || i)) from generate_series(1, 10) as i$$,
                'with the limit off, 10 turns at one instant are all allowed');
select set_config('bevsession.chat_rate_limit', '3/minute', true);
reset role;

-- service_role is limited the same way when it acts for a session (the limit is per session)
set local role service_role;
select set_config('request.jwt.claims',
    '{"role": "service_role", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select throws_ok($$select public.begin_chat_turn('as service')$$, 'PT429', null,
                 'the limit belongs to the session, whoever calls');
reset role;

-- ---------------------------------------------------------------------------------------------
-- purge_sessions: who may call it
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
                 'p_older_than_ms: must be at least 86400000 (one day)', 'an age under one day is refused');
select throws_ok($$select public.purge_sessions(null)$$, '22023', null, 'a null age is refused');
select throws_ok($$select public.purge_sessions(86400000, 0)$$, '22023', 'p_batch: must be between 1 and 100000',
                 'a batch of 0 is refused');
reset role;

-- ---------------------------------------------------------------------------------------------
-- purge_sessions: which sessions go
-- ---------------------------------------------------------------------------------------------
-- Fixtures, written as the owner (RLS is not forced for it). "old" = 3 days, "recent" = 1 hour;
-- the purge age is 2 days.
delete from bevsession.messages;
delete from bevsession.persona_signals;
delete from bevsession.personas;
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
insert into bevsession.personas (session_id) select id from bevsession.sessions;
update bevsession.personas set total_interactions = 1 where session_id = '00000000-0000-4000-8000-000000000006';
insert into bevsession.messages (session_id, message_role, message_content) values
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
update bevsession.sessions set revoked_at = now() - interval '3 days'
where id in ('00000000-0000-4000-8000-000000000007', '00000000-0000-4000-8000-000000000008');
update bevsession.sessions set forgotten_at = now() - interval '3 days'
where id = '00000000-0000-4000-8000-000000000008';
delete from bevsession.personas where session_id = '00000000-0000-4000-8000-000000000008';   -- forgotten: no persona
update bevsession.sessions set revoked_at = now() - interval '1 hour' where id = '00000000-0000-4000-8000-000000000009';

set local role service_role;
insert into result select 'first', public.purge_sessions(2 * 86400000, 1);
insert into result select 'second', public.purge_sessions(2 * 86400000);
insert into result select 'again', public.purge_sessions(2 * 86400000);
reset role;

select is((select body -> 'deleted' from result where name = 'first'),
          '{"idle_sessions": 1, "revoked_sessions": 1, "personas": 2, "messages": 2, "signals": 1}'::jsonb,
          'a batch of 1: one idle bot (the oldest) and one revoked session (the oldest), with their rows');
select is((select body -> 'more' from result where name = 'first'), 'true'::jsonb, 'and it says there may be more');
select is((select body -> 'deleted' from result where name = 'second'),
          '{"idle_sessions": 1, "revoked_sessions": 1, "personas": 1, "messages": 0, "signals": 0}'::jsonb,
          'the next call takes the rest: the second bot and the forgotten tombstone');
select is((select body -> 'more' from result where name = 'second'), 'false'::jsonb, 'nothing more');
select is((select body -> 'deleted' from result where name = 'again'),
          '{"idle_sessions": 0, "revoked_sessions": 0, "personas": 0, "messages": 0, "signals": 0}'::jsonb,
          'a repeat deletes nothing');
select ok((select abs((body ->> 'cutoff')::bigint - bevsession.to_ms(now() - interval '2 days')) <= 1 from result where name = 'first'),
          'the cutoff is now minus the age, in ms');

select is((select array_agg(right(id::text, 1) order by id) from bevsession.sessions),
          array['3', '4', '5', '6', '9'],
          'kept: the recent bot, old sessions with a message / a signal / a used persona, the recently revoked one');
select is((select count(*)::int from bevsession.messages), 2, 'the kept sessions keep their messages');
select is((select count(*)::int from bevsession.persona_signals), 1, 'and their signals');
select is((select count(*)::int from bevsession.personas), 5, 'and their personas');
select is((select count(*)::int from bevsession.messages where session_id = '00000000-0000-4000-8000-000000000007'), 0,
          'the purged revoked session''s messages are gone');

-- (A session locked by a concurrent request is skipped: that needs two connections, so it is
-- tested in tests/test_abuse_limits.py.)

select * from finish();
rollback;
