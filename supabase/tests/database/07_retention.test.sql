-- 20261201003100_retention.sql: purge_sessions also removes sessions past their absolute
-- lifetime plus the retention age, whatever their activity, and keeps what an operator marked
-- kept_for_analytics.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon, authenticated;
grant execute on all functions in schema extensions to session_visitor, service_role, anon, authenticated;
set local search_path = extensions, public;

select plan(11);

create temporary table result (name text primary key, body jsonb);
grant all on result to public;

-- the policy: 30 days lifetime; purge age 30 days. "ended" = created 70 days ago (its lifetime
-- ended 40 days ago); "young" = created 10 days ago.
delete from bevsession.conversation_history;
delete from bevsession.persona_signals;
delete from bevsession.user_personas;
delete from bevsession.sessions;
insert into bevsession.sessions (id, created_at, last_activity_at, message_count) values
    ('00000000-0000-4000-8000-000000000001', now() - interval '70 days', now() - interval '69 days 12 hours', 2),  -- ended, chatted
    ('00000000-0000-4000-8000-000000000002', now() - interval '70 days', now() - interval '69 days 12 hours', 2),  -- ended, kept for analytics
    ('00000000-0000-4000-8000-000000000003', now() - interval '10 days', now() - interval '9 days 12 hours', 2),   -- young, chatted
    ('00000000-0000-4000-8000-000000000004', now() - interval '70 days', now() - interval '70 days', 0);           -- ended bot
insert into bevsession.user_personas (session_id, total_interactions) select id, 1 from bevsession.sessions where message_count > 0;
insert into bevsession.conversation_history (session_id, message_role, message_content)
select s.id, r.role::bevsession.message_role, 'x'
from bevsession.sessions as s cross join (values ('user'), ('assistant')) as r(role)
where s.message_count > 0;
insert into bevsession.persona_signals (session_id, signal_type, signal_text, signal_strength, confidence_before, confidence_after)
values ('00000000-0000-4000-8000-000000000001', 'x', 'y', 'weak', 0, 0);

-- a visitor cannot mark its own session for analytics
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "00000000-0000-4000-8000-000000000002"}', true);
select throws_ok($$update bevsession.sessions set kept_for_analytics = true$$, '42501', null,
                 'a visitor cannot mark its session kept_for_analytics (no grant on the column)');
reset role;

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select lives_ok($$update bevsession.sessions set kept_for_analytics = true where id = '00000000-0000-4000-8000-000000000002'$$,
                'service_role marks a session kept for analytics');
insert into result select 'purge', public.purge_sessions(30 * 86400000::bigint);
insert into result select 'again', public.purge_sessions(30 * 86400000::bigint);
reset role;

select is((select body -> 'deleted' from result where name = 'purge'),
          '{"idle_sessions": 1, "revoked_sessions": 0, "expired_sessions": 1, "personas": 1, "messages": 2, "signals": 1}'::jsonb,
          'the idle bot and the session whose lifetime ended 40 days ago, with its persona, messages and signal');
select is((select body -> 'more' from result where name = 'purge'), 'false'::jsonb, 'nothing more');
select is((select body -> 'deleted' ->> 'expired_sessions' from result where name = 'again'), '0', 'a repeat deletes nothing');
select is((select array_agg(right(id::text, 1) order by id) from bevsession.sessions), array['2', '3'],
          'kept: the session marked for analytics and the one whose lifetime ended less than 30 days ago');
select is((select count(*)::int from bevsession.conversation_history where session_id = '00000000-0000-4000-8000-000000000002'), 2,
          'the marked session keeps its messages');
select is((select count(*)::int from bevsession.conversation_history where session_id = '00000000-0000-4000-8000-000000000001'), 0,
          'the expired session''s messages are gone');

-- activity does not keep a session past its lifetime plus retention
update bevsession.sessions set created_at = now() - interval '70 days', last_activity_at = now() - interval '1 minute'
where id = '00000000-0000-4000-8000-000000000003';
set local role service_role;
insert into result select 'active', public.purge_sessions(30 * 86400000::bigint);
reset role;
select is((select body -> 'deleted' ->> 'expired_sessions' from result where name = 'active'), '1',
          'an expired session is removed whatever its recent activity');
select is((select count(*)::int from bevsession.sessions), 1, 'only the marked session is left');

select col_not_null('bevsession', 'sessions', 'kept_for_analytics', 'kept_for_analytics is never null (false unless an operator sets it)');

select * from finish();
rollback;
