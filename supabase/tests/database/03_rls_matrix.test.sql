-- Who may touch what: anon, authenticated, session A, session B and service_role against every
-- table (direct select / insert / update / delete) and every function.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon, authenticated;
grant execute on all functions in schema extensions to session_visitor, service_role, anon, authenticated;
set local search_path = extensions, public;

select plan(80);

-- the statements each role tries: every table × every operation, every function
create temporary table table_op (tbl text, op text, sql text);
insert into table_op values
    ('sessions',        'select', 'select * from bevsession.sessions'),
    ('sessions',        'insert', $$insert into bevsession.sessions (id) values ('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee')$$),
    ('sessions',        'update', 'update bevsession.sessions set message_count = 0'),
    ('sessions',        'delete', 'delete from bevsession.sessions'),
    ('personas',        'select', 'select * from bevsession.personas'),
    ('personas',        'insert', $$insert into bevsession.personas (session_id) values ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')$$),
    ('personas',        'update', 'update bevsession.personas set craft_score = 1'),
    ('personas',        'delete', 'delete from bevsession.personas'),
    ('messages',        'select', 'select * from bevsession.messages'),
    ('messages',        'insert', $$insert into bevsession.messages (session_id, message_role, message_content)
                                    values ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'user', 'x')$$),
    ('messages',        'update', $$update bevsession.messages set message_content = 'x'$$),
    ('messages',        'delete', 'delete from bevsession.messages'),
    ('persona_signals', 'select', 'select * from bevsession.persona_signals'),
    ('persona_signals', 'insert', $$insert into bevsession.persona_signals (session_id, signal_type, signal_text,
                                    signal_strength, confidence_before, confidence_after)
                                    values ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'x', 'y', 'weak', 0, 0)$$),
    ('persona_signals', 'update', $$update bevsession.persona_signals set signal_text = 'x'$$),
    ('persona_signals', 'delete', 'delete from bevsession.persona_signals');
create temporary table rpc (name text, sql text);
insert into rpc values
    ('get_session',              'select public.get_session()'),
    ('update_persona',           $$select public.update_persona('{}')$$),
    ('record_persona_signal',    $$select public.record_persona_signal('x', 'y', 'weak')$$),
    ('add_conversation_message', $$select public.add_conversation_message('user', 'x')$$),
    ('get_conversation_history', 'select public.get_conversation_history()'),
    ('clear_session',            'select public.clear_session()'),
    ('forget_session',           'select public.forget_session()'),
    ('begin_chat_turn',          $$select public.begin_chat_turn('x')$$),
    ('finish_chat_turn',         $$select public.finish_chat_turn('x')$$),
    ('admin_session_stats',      'select public.admin_session_stats()');
grant select on table_op, rpc to public;

-- ---------------------------------------------------------------------------------------------
-- Data: session A (a signal, a message) and session B (a message), made through the API
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select count(public.begin_chat_turn('I run sales at a brewery',
    '[{"signal_type": "role_mention", "signal_text": "I run sales", "signal_strength": "strong",
       "vector": "functional_role", "vector_value": "sales", "score_updates": {"sales_focus_score": 0.3}}]'));
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"}', true);
select count(public.begin_chat_turn('hello from B'));
reset role;

-- ---------------------------------------------------------------------------------------------
-- anon and authenticated: nothing at all
-- ---------------------------------------------------------------------------------------------
set local role anon;
select set_config('request.jwt.claims', '{"role": "anon"}', true);
select throws_ok(t.sql, '42501', null, format('anon: %s on bevsession.%s → permission denied', t.op, t.tbl))
from table_op t order by t.tbl, t.op;
select throws_ok(r.sql, '42501', null, format('anon: %s() → permission denied', r.name))
from rpc r order by r.name;
reset role;

set local role authenticated;
select set_config('request.jwt.claims',
    '{"role": "authenticated", "sub": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select throws_ok(t.sql, '42501', null, format('authenticated: %s on bevsession.%s → permission denied', t.op, t.tbl))
from table_op t where t.op = 'select' order by t.tbl;
select throws_ok(r.sql, '42501', null, format('authenticated (even with A''s session_id claim): %s() → permission denied', r.name))
from rpc r order by r.name;
reset role;

-- ---------------------------------------------------------------------------------------------
-- session B against A's rows, directly
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"}', true);

select is((select count(*)::int from bevsession.sessions where id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 0,
          'B sees none of A''s sessions');
select is((select count(*)::int from bevsession.personas where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 0,
          'B sees none of A''s personas');
select is((select count(*)::int from bevsession.messages where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 0,
          'B sees none of A''s messages');
select is((select count(*)::int from bevsession.persona_signals where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 0,
          'B sees none of A''s signals');
select is((select count(*)::int from bevsession.sessions), 1, 'B sees exactly one session: its own');
select is((select count(*)::int from bevsession.messages), 1, 'B sees exactly its own message');

with changed as (update bevsession.sessions set message_count = 99
                 where id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' returning 1)
select is(count(*)::int, 0, 'B''s update of A''s session affects 0 rows') from changed;
with changed as (update bevsession.personas set craft_score = 1
                 where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' returning 1)
select is(count(*)::int, 0, 'B''s update of A''s persona affects 0 rows') from changed;
select throws_ok($$update bevsession.messages set message_content = 'x'$$, '42501', null,
                 'messages cannot be updated by a visitor at all');
select throws_ok($$update bevsession.persona_signals set signal_text = 'x'$$, '42501', null,
                 'signals cannot be updated by a visitor at all');
with gone as (delete from bevsession.personas where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' returning 1)
select is(count(*)::int, 0, 'B''s delete of A''s persona affects 0 rows') from gone;
with gone as (delete from bevsession.messages where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' returning 1)
select is(count(*)::int, 0, 'B''s delete of A''s messages affects 0 rows') from gone;
with gone as (delete from bevsession.persona_signals where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' returning 1)
select is(count(*)::int, 0, 'B''s delete of A''s signals affects 0 rows') from gone;
select throws_ok($$delete from bevsession.sessions$$, '42501', null, 'sessions cannot be deleted by a visitor');

select throws_ok(t.sql, '42501', null, format('B inserting into bevsession.%s for A''s session is rejected', t.tbl))
from table_op t where t.op = 'insert' and t.tbl <> 'sessions' order by t.tbl;
select throws_ok($$insert into bevsession.sessions (id) values ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')$$, '42501', null,
                 'B cannot insert a session row with A''s id');
select throws_ok($$insert into bevsession.sessions (id) values ('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee')$$, '42501', null,
                 'B cannot start a session that is not its own');
select throws_ok($$update bevsession.sessions set user_id = gen_random_uuid()$$, '42501', null,
                 'a visitor cannot change the columns it has no update grant on (user_id)');

-- ---------------------------------------------------------------------------------------------
-- session B through the functions: never touches A
-- ---------------------------------------------------------------------------------------------
select count(public.record_persona_signal('x', 'y', 'strong', '{}', '{"craft_score": 0.5}', 'org_size', 'craft'));
select count(public.update_persona('{"sales_focus_score": 1, "current_mode": "returning"}'));
select count(public.add_conversation_message('user', 'B again'));
select is((select count(*)::int
           from pg_catalog.jsonb_array_elements(public.get_conversation_history(200) -> 'messages') as m
           where m ->> 'session_id' <> 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'), 0,
          'B''s history holds only B''s messages');
select count(public.clear_session());
select count(public.forget_session());
reset role;
select is((select (sales_focus_score, craft_score, total_interactions, org_size)::text
           from bevsession.personas where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'),
          '(0.3000,0.0000,1,)', 'B''s signal and update_persona left A''s persona alone');
select is((select (message_count, current_mode, revoked_at)::text from bevsession.sessions
           where id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), '(1,fresh,)',
          'B''s message, update and clear left A''s session alone');
select is((select count(*)::int from bevsession.messages where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 1,
          'B''s forget_session left A''s messages alone');
select is((select count(*)::int from bevsession.persona_signals where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 1,
          'B''s forget_session left A''s signals alone');
select is((select (forgotten_at is not null) from bevsession.sessions where id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'), true,
          'while B itself is forgotten');

-- ---------------------------------------------------------------------------------------------
-- session A: its own rows, all of them
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select is((select count(*)::int from bevsession.sessions), 1, 'A sees its session');
select is((select count(*)::int from bevsession.personas), 1, 'A sees its persona');
select is((select count(*)::int from bevsession.messages), 1, 'A sees its message');
select is((select count(*)::int from bevsession.persona_signals), 1, 'A sees its signal');
select is((select count(*)::int from bevsession.sessions where forgotten_at is not null), 0,
          'A does not see B''s tombstone');
with changed as (update bevsession.sessions set has_brochure = true returning 1)
select is(count(*)::int, 1, 'A may update its own session row directly (the columns it is granted)') from changed;
select throws_ok($$select public.admin_session_stats()$$, '42501', null, 'a visitor cannot call admin_session_stats');

-- a visitor role without a session_id claim sees nothing
select set_config('request.jwt.claims', '{"role": "session_visitor"}', true);
select is((select count(*)::int from bevsession.sessions) + (select count(*)::int from bevsession.messages), 0,
          'session_visitor without a session_id claim sees no row');
reset role;

-- ---------------------------------------------------------------------------------------------
-- service_role: everything (RLS bypassed), for admin work
-- ---------------------------------------------------------------------------------------------
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is((select count(*)::int from bevsession.sessions), 2, 'service_role sees every session');
select is((select count(*)::int from bevsession.personas), 1, 'service_role sees every persona (B''s was forgotten)');
with changed as (update bevsession.personas set large_score = 0.5 returning 1)
select is(count(*)::int, 1, 'service_role may update any persona') from changed;
with gone as (delete from bevsession.messages where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' returning 1)
select is(count(*)::int, 1, 'service_role may delete any message (retention purge)') from gone;
select is(public.admin_session_stats() -> 'sessions' ->> 'total', '2', 'service_role may call admin_session_stats');
select set_config('request.jwt.claims',
    '{"role": "service_role", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select is(public.get_session(false) -> 'session' ->> 'session_id', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa',
          'service_role may act for a session named in its claims');

select * from finish();
rollback;
