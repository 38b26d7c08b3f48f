-- Who may touch what: anon, authenticated, session B (against A's rows), session D (its own
-- rows), a revoked session, session_worker and service_role against EVERY table (direct select /
-- insert / update / delete) and EVERY public function; then signed-in users (authenticated, sub =
-- an account) against the sessions linked to their account and to another one
-- (20261201002000_linking).
-- Identity as PostgREST gives it: `set local role` and the request.jwt.claims setting.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, session_worker, service_role, anon, authenticated;
grant execute on all functions in schema extensions to session_visitor, session_worker, service_role, anon, authenticated;
set local search_path = extensions, public;

select plan(369);

-- What one statement did, as the current role: 'N rows' (read or written), 'permission denied'
-- (no privilege: 42501), 'policy violation' (a row-level policy refused a new row: also 42501),
-- or 'error <SQLSTATE>: <message>'.
create function pg_temp.outcome(statement text) returns text
    language plpgsql
as $$
declare
    v_rows bigint;
begin
    execute statement;
    get diagnostics v_rows = row_count;
    return v_rows || case when v_rows = 1 then ' row' else ' rows' end;
exception when others then
    return case
        when sqlstate = '42501' and sqlerrm like 'permission denied%' then 'permission denied'
        when sqlstate = '42501' and sqlerrm like 'new row violates row-level security policy%' then 'policy violation'
        else 'error ' || sqlstate || ': ' || sqlerrm end;
end
$$;

-- the statements each role tries: every table × every operation (%1$L: the target session id)
create temporary table table_op (tbl text, op text, sql text, primary key (tbl, op));
insert into table_op values
    ('sessions',             'select', 'select * from bevsession.sessions where id = %1$L'),
    ('sessions',             'insert', 'insert into bevsession.sessions (id) values (%1$L)'),
    ('sessions',             'update', 'update bevsession.sessions set message_count = message_count where id = %1$L'),
    ('sessions',             'delete', 'delete from bevsession.sessions where id = %1$L'),
    ('user_personas',        'select', 'select * from bevsession.user_personas where session_id = %1$L'),
    ('user_personas',        'insert', 'insert into bevsession.user_personas (session_id) values (%1$L)'),
    ('user_personas',        'update', 'update bevsession.user_personas set craft_score = craft_score where session_id = %1$L'),
    ('user_personas',        'delete', 'delete from bevsession.user_personas where session_id = %1$L'),
    ('conversation_history', 'select', 'select * from bevsession.conversation_history where session_id = %1$L'),
    ('conversation_history', 'insert', $$insert into bevsession.conversation_history (session_id, message_role, message_content)
                                         values (%1$L, 'user', 'x')$$),
    ('conversation_history', 'update', 'update bevsession.conversation_history set message_content = message_content where session_id = %1$L'),
    ('conversation_history', 'delete', 'delete from bevsession.conversation_history where session_id = %1$L'),
    ('persona_signals',      'select', 'select * from bevsession.persona_signals where session_id = %1$L'),
    ('persona_signals',      'insert', $$insert into bevsession.persona_signals (session_id, signal_type, signal_text,
                                         signal_strength, confidence_before, confidence_after)
                                         values (%1$L, 'x', 'y', 'weak', 0, 0)$$),
    ('persona_signals',      'update', 'update bevsession.persona_signals set signal_text = signal_text where session_id = %1$L'),
    ('persona_signals',      'delete', 'delete from bevsession.persona_signals where session_id = %1$L'),
    ('session_policy',       'select', 'select * from bevsession.session_policy'),
    ('session_policy',       'insert', 'insert into bevsession.session_policy (singleton) values (true)'),
    ('session_policy',       'update', 'update bevsession.session_policy set idle_timeout = idle_timeout'),
    ('session_policy',       'delete', 'delete from bevsession.session_policy'),
    ('seal_keys',            'select', $$select * from bevsession.seal_keys where key_id = 'k9'$$),
    ('seal_keys',            'insert', $$insert into bevsession.seal_keys (key_id, fingerprint) values ('k9', repeat('0', 32))$$),
    ('seal_keys',            'update', $$update bevsession.seal_keys set last_seen_at = last_seen_at where key_id = 'k9'$$),
    ('seal_keys',            'delete', $$delete from bevsession.seal_keys where key_id = 'k9'$$),
    ('chat_rate_policy',     'select', 'select * from bevsession.chat_rate_policy'),
    ('chat_rate_policy',     'insert', 'insert into bevsession.chat_rate_policy (singleton) values (true)'),
    ('chat_rate_policy',     'update', $$update bevsession.chat_rate_policy set chat_rate_limit = 'off'$$),
    ('chat_rate_policy',     'delete', 'delete from bevsession.chat_rate_policy');

-- every function, called with arguments that work for a live session
create temporary table rpc (name text primary key, admin boolean not null, sql text not null);
insert into rpc values
    ('get_session',              false, 'select public.get_session()'),
    ('get_session_policy',       false, 'select public.get_session_policy()'),
    ('adopt_session',            false, $$select public.adopt_session('{}')$$),
    ('read_session',             false, 'select public.read_session()'),
    ('update_persona',           false, $$select public.update_persona('{"craft_score": 0.1}')$$),
    ('record_persona_signal',    false, $$select public.record_persona_signal('x', 'y', 'weak')$$),
    ('add_conversation_message', false, $$select public.add_conversation_message('user', 'x')$$),
    ('get_conversation_history', false, 'select public.get_conversation_history()'),
    ('begin_chat_turn',          false, $$select public.begin_chat_turn('x')$$),
    ('finish_chat_turn',         false, $$select public.finish_chat_turn('x')$$),
    ('clear_session',            false, 'select public.clear_session()'),
    ('forget_session',           false, 'select public.forget_session()'),
    ('touch_sessions',           true,  $$select public.touch_sessions('{}', '{}')$$),
    ('validate_sessions',        true,  $$select public.validate_sessions('{}', '{}')$$),
    ('purge_sessions',           true,  'select public.purge_sessions(864000000)'),
    ('register_seal_keys',       true,  $$select public.register_seal_keys('{"k1": "0123456789abcdef0123456789abcdef"}')$$),
    ('admin_session_stats',      true,  'select public.admin_session_stats()'),
    ('link_session',             false, 'select public.link_session()'),
    ('import_seed_sessions',     true,  $$select public.import_seed_sessions('[]', now())$$),
    ('import_seed_personas',     true,  $$select public.import_seed_personas('[]', now())$$),
    ('import_seed_messages',     true,  $$select public.import_seed_messages('[]', now())$$),
    ('import_seed_signals',      true,  $$select public.import_seed_signals('[]', now())$$),
    ('import_seed_summary',      true,  'select public.import_seed_summary(now())');
-- the order a session calls them in (it ends by clearing, then forgetting itself)
create temporary table rpc_order (name text primary key, step int not null);
insert into rpc_order select name, row_number() over () from unnest(array[
    'get_session', 'get_session_policy', 'adopt_session', 'read_session', 'update_persona', 'record_persona_signal', 'add_conversation_message',
    'get_conversation_history', 'begin_chat_turn', 'finish_chat_turn', 'link_session', 'clear_session', 'forget_session',
    'touch_sessions', 'validate_sessions', 'purge_sessions', 'register_seal_keys', 'admin_session_stats',
    'import_seed_sessions', 'import_seed_personas', 'import_seed_messages', 'import_seed_signals', 'import_seed_summary']) as name;
grant select on table_op, rpc, rpc_order to public;

-- ---------------------------------------------------------------------------------------------
-- Data: session A (a chat turn with a signal, a reply), session B (a message), session R
-- (revoked), a registered seal key — made through the API
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select count(public.begin_chat_turn('I run sales at a brewery',
    '[{"signal_type": "role_mention", "signal_text": "I run sales", "signal_strength": "strong",
       "vector": "functional_role", "vector_value": "sales", "score_updates": {"sales_focus_score": 0.3}}]'));
select count(public.finish_chat_turn('Welcome, sales lead.'));
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"}', true);
select count(public.begin_chat_turn('hello from B'));
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "12121212-1212-4212-8212-121212121212"}', true);
select count(public.get_session());
select count(public.clear_session());
reset role;
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select count(public.register_seal_keys('{"1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}'));
reset role;

-- ---------------------------------------------------------------------------------------------
-- anon: nothing at all; authenticated: no function, no write, and no row of a session that is
-- not linked to its account (A is linked to none; a session_id claim means nothing to it)
-- ---------------------------------------------------------------------------------------------
set local role anon;
select set_config('request.jwt.claims', '{"role": "anon"}', true);
select is(pg_temp.outcome(format(t.sql, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')), 'permission denied',
          format('anon: %s on bevsession.%s → permission denied', t.op, t.tbl))
from table_op t order by t.tbl, t.op;
select is(pg_temp.outcome(r.sql), 'permission denied', format('anon: %s() → permission denied', r.name))
from rpc r order by r.name;
reset role;

set local role authenticated;
select set_config('request.jwt.claims',
    '{"role": "authenticated", "sub": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select is(pg_temp.outcome(format(t.sql, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')),
          case when t.op = 'select' and t.tbl in ('sessions', 'user_personas', 'conversation_history', 'persona_signals')
               then '0 rows' else 'permission denied' end,
          format('authenticated (even with A''s session_id claim, A''s id as sub): %s on bevsession.%s → %s', t.op, t.tbl,
                 case when t.op = 'select' and t.tbl in ('sessions', 'user_personas', 'conversation_history', 'persona_signals')
                      then 'sees none of A''s rows (A is linked to no account)' else 'permission denied' end))
from table_op t order by t.tbl, t.op;
select is(pg_temp.outcome(r.sql), 'permission denied',
          format('authenticated (even with A''s session_id claim): %s() → permission denied', r.name))
from rpc r order by r.name;
reset role;

-- ---------------------------------------------------------------------------------------------
-- session B against A's rows, directly: RLS hides them, grants refuse the rest
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"}', true);
select is(pg_temp.outcome(format(t.sql, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')), w.want,
          format('B: %s on A''s rows of bevsession.%s → %s', t.op, t.tbl, w.why))
from table_op t
join (values
    (1,  'sessions',             'select', '0 rows',      'sees none'),
    (2,  'user_personas',        'select', '0 rows',      'sees none'),
    (3,  'conversation_history', 'select', '0 rows',      'sees none'),
    (4,  'persona_signals',      'select', '0 rows',      'sees none'),
    (5,  'session_policy',       'select', '1 row',       'the one policy row, shared by all sessions'),
    (6,  'seal_keys',            'select', 'permission denied', 'permission denied'),
    (7,  'sessions',             'insert', 'policy violation', 'refused by the policy: a session row with A''s id'),
    (8,  'user_personas',        'insert', 'policy violation', 'rejected by the policy'),
    (9,  'conversation_history', 'insert', 'policy violation', 'rejected by the policy'),
    (10, 'persona_signals',      'insert', 'policy violation', 'rejected by the policy'),
    (11, 'session_policy',       'insert', 'permission denied', 'permission denied'),
    (12, 'seal_keys',            'insert', 'permission denied', 'permission denied'),
    (13, 'sessions',             'update', '0 rows',      'affects none'),
    (14, 'user_personas',        'update', '0 rows',      'affects none'),
    (15, 'conversation_history', 'update', 'permission denied', 'permission denied: messages are never updated'),
    (16, 'persona_signals',      'update', 'permission denied', 'permission denied: signals are never updated'),
    (17, 'session_policy',       'update', 'permission denied', 'permission denied: a visitor cannot change the policy'),
    (18, 'seal_keys',            'update', 'permission denied', 'permission denied'),
    (19, 'user_personas',        'delete', '0 rows',      'affects none'),
    (20, 'conversation_history', 'delete', '0 rows',      'affects none'),
    (21, 'persona_signals',      'delete', '0 rows',      'affects none'),
    (22, 'session_policy',       'delete', 'permission denied', 'permission denied'),
    (23, 'seal_keys',            'delete', 'permission denied', 'permission denied'),
    (24, 'sessions',             'delete', 'permission denied', 'permission denied: sessions are never deleted by a visitor')
) as w(step, tbl, op, want, why) on (w.tbl, w.op) = (t.tbl, t.op)
order by w.step;

select is((select count(*)::int from bevsession.sessions), 1, 'B sees exactly one session: its own');
select is((select count(*)::int from bevsession.conversation_history), 1, 'B sees exactly its own message');
select throws_ok($$insert into bevsession.sessions (id) values ('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee')$$, '42501', null,
                 'B cannot start a session that is not its own');
select throws_ok($$update bevsession.sessions set user_id = gen_random_uuid()$$, '42501', null,
                 'a visitor cannot set user_id: its claims prove no account (only link_session links, 20261201002000_linking)');

-- ---------------------------------------------------------------------------------------------
-- session B through the functions: the admin ones are refused, the others never touch A
-- ---------------------------------------------------------------------------------------------
select is(pg_temp.outcome(r.sql), 'permission denied', format('a visitor: %s() → permission denied (service_role only)', r.name))
from rpc r where r.admin order by r.name;

select lives_ok($$select public.get_session()$$, 'B may call get_session');
select lives_ok($$select public.get_session_policy()$$, 'B may call get_session_policy');
select lives_ok($$select public.record_persona_signal('x', 'y', 'strong', '{}', '{"craft_score": 0.5}', 'org_size', 'craft')$$,
                'B may call record_persona_signal');
select lives_ok($$select public.update_persona('{"sales_focus_score": 1, "current_mode": "returning"}')$$,
                'B may call update_persona');
select lives_ok($$select public.add_conversation_message('user', 'B again')$$, 'B may call add_conversation_message');
select is((select count(*)::int
           from pg_catalog.jsonb_array_elements(public.get_conversation_history(200) -> 'messages') as m
           where m ->> 'session_id' <> 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'), 0,
          'B may call get_conversation_history, and B''s history holds only B''s messages');
select lives_ok($$select public.begin_chat_turn('B asks')$$, 'B may call begin_chat_turn');
select lives_ok($$select public.finish_chat_turn('B is answered')$$, 'B may call finish_chat_turn');
select lives_ok($$select public.clear_session()$$, 'B may call clear_session');
select lives_ok($$select public.forget_session()$$, 'B may call forget_session');
reset role;
select is((select (sales_focus_score, craft_score, total_interactions, org_size)::text
           from bevsession.user_personas where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'),
          '(0.3000,0.0000,1,)', 'B''s signal and update_persona left A''s persona alone');
select is((select (message_count, current_mode, revoked_at)::text from bevsession.sessions
           where id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), '(2,fresh,)',
          'B''s messages, update and clear left A''s session alone');
select is((select count(*)::int from bevsession.conversation_history where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 2,
          'B''s forget_session left A''s messages alone');
select is((select count(*)::int from bevsession.persona_signals where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 1,
          'B''s forget_session left A''s signals alone');
select is((select count(*)::int from bevsession.user_personas where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), 1,
          'B''s forget_session left A''s persona alone');
select is((select (forgotten_at is not null) from bevsession.sessions where id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'), true,
          'while B itself is forgotten');

-- ---------------------------------------------------------------------------------------------
-- a revoked session: its own rows stay readable, nothing new may be added to it
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "12121212-1212-4212-8212-121212121212"}', true);
select is(pg_temp.outcome(format(t.sql, '12121212-1212-4212-8212-121212121212')), 'policy violation',
          format('a revoked session cannot insert into bevsession.%s directly (live sessions only)', t.tbl))
from table_op t where t.op = 'insert' and t.tbl in ('user_personas', 'conversation_history', 'persona_signals')
order by t.tbl;
select is((select count(*)::int from bevsession.sessions), 1, 'a revoked session still reads its own session row');
reset role;

-- ... and its own rows cannot be changed, except by forgetting it (20261201003200)
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "12121212-1212-4212-8212-121212121212"}', true);
select is(pg_temp.outcome($$update bevsession.sessions set has_brochure = true$$),
          'error PT403: session revoked: a revoked session only changes by being forgotten',
          'a revoked session cannot change its flags, even in the step that forgets it');
select is(pg_temp.outcome($$update bevsession.sessions set forgotten_at = now(), message_count = 7$$),
          'error PT403: session revoked: a revoked session only changes by being forgotten',
          'forgetting a revoked session changes nothing else (no counter reset)');
select is(pg_temp.outcome(format(t.sql, '12121212-1212-4212-8212-121212121212')), '0 rows',
          'a revoked session cannot update its persona (live sessions only)')
from table_op t where (t.tbl, t.op) = ('user_personas', 'update');
select is(pg_temp.outcome($$update bevsession.sessions set forgotten_at = now(), last_message = null$$), '1 row',
          'a revoked session may become a forgotten tombstone (what forget_session does)');
select is(pg_temp.outcome($$update bevsession.sessions set has_brochure = true$$),
          'error PT403: session revoked: a revoked session only changes by being forgotten',
          'a forgotten session cannot be changed at all');
select is(pg_temp.outcome(format(t.sql, '12121212-1212-4212-8212-121212121212')), w.want,
          format('a revoked session: %s on bevsession.chat_rate_policy → %s', t.op, w.want))
from table_op t
join (values (1, 'select', '1 row'), (2, 'insert', 'permission denied'), (3, 'update', 'permission denied'),
             (4, 'delete', 'permission denied')) as w(step, op, want) on t.op = w.op
where t.tbl = 'chat_rate_policy' order by w.step;
reset role;

-- ---------------------------------------------------------------------------------------------
-- session D on its own rows, directly: what the grants and policies allow a visitor
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "dddddddd-dddd-4ddd-8ddd-dddddddddddd"}', true);
select is(pg_temp.outcome(format(t.sql, 'dddddddd-dddd-4ddd-8ddd-dddddddddddd')), w.want,
          format('D: %s on its own rows of bevsession.%s → %s', t.op, t.tbl, w.why))
from table_op t
join (values
    (1,  'sessions',             'insert', '1 row',       'allowed: a visitor may start its own session'),
    (2,  'user_personas',        'insert', '1 row',       'allowed: the persona of its live session'),
    (3,  'conversation_history', 'insert', '1 row',       'allowed: a message of its live session'),
    (4,  'persona_signals',      'insert', '1 row',       'allowed: a signal of its live session'),
    (5,  'session_policy',       'insert', 'permission denied', 'permission denied'),
    (6,  'seal_keys',            'insert', 'permission denied', 'permission denied'),
    (7,  'sessions',             'select', '1 row',       'sees it'),
    (8,  'user_personas',        'select', '1 row',       'sees it'),
    (9,  'conversation_history', 'select', '1 row',       'sees it'),
    (10, 'persona_signals',      'select', '1 row',       'sees it'),
    (11, 'session_policy',       'select', '1 row',       'sees the policy'),
    (12, 'seal_keys',            'select', 'permission denied', 'permission denied'),
    (13, 'sessions',             'update', '1 row',       'allowed (the granted columns)'),
    (14, 'user_personas',        'update', '1 row',       'allowed (the granted columns)'),
    (15, 'conversation_history', 'update', 'permission denied', 'permission denied: messages are immutable'),
    (16, 'persona_signals',      'update', 'permission denied', 'permission denied: signals are an audit trail'),
    (17, 'session_policy',       'update', 'permission denied', 'permission denied'),
    (18, 'seal_keys',            'update', 'permission denied', 'permission denied'),
    (19, 'user_personas',        'delete', '1 row',       'allowed (forget_session runs as the visitor)'),
    (20, 'conversation_history', 'delete', '1 row',       'allowed'),
    (21, 'persona_signals',      'delete', '1 row',       'allowed'),
    (22, 'session_policy',       'delete', 'permission denied', 'permission denied'),
    (23, 'seal_keys',            'delete', 'permission denied', 'permission denied'),
    (24, 'sessions',             'delete', 'permission denied', 'permission denied: the session row stays (a tombstone when forgotten)')
) as w(step, tbl, op, want, why) on (w.tbl, w.op) = (t.tbl, t.op)
order by w.step;
select throws_ok($$insert into bevsession.sessions (id, revoked_at) values ('dddddddd-0000-4ddd-8ddd-dddddddddddd', now())$$,
                 '42501', null, 'a visitor cannot write columns it has no insert grant on (revoked_at)');
reset role;

-- ---------------------------------------------------------------------------------------------
-- session A: its own rows, all of them
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select is((select count(*)::int from bevsession.sessions), 1, 'A sees its session');
select is((select count(*)::int from bevsession.user_personas), 1, 'A sees its persona');
select is((select count(*)::int from bevsession.conversation_history), 2, 'A sees its messages');
select is((select count(*)::int from bevsession.persona_signals), 1, 'A sees its signal');
select is((select count(*)::int from bevsession.sessions where forgotten_at is not null), 0,
          'A does not see B''s tombstone');
with changed as (update bevsession.sessions set has_brochure = true returning 1)
select is(count(*)::int, 1, 'A may update its own session row directly (the columns it is granted)') from changed;
select is(pg_temp.outcome($$update bevsession.sessions set chat_rate_tat = null$$),
          'error 22023: chat_rate_tat: the rate limit state only moves forward',
          'A cannot reset its chat rate limit state (null)');
select is(pg_temp.outcome($$update bevsession.sessions set chat_rate_tat = chat_rate_tat - interval '1 minute'$$),
          'error 22023: chat_rate_tat: the rate limit state only moves forward',
          'A cannot move its chat rate limit state back');
select is(pg_temp.outcome($$update bevsession.sessions set chat_rate_tat = chat_rate_tat + interval '1 second'$$), '1 row',
          'the state may move forward (what a chat turn does)');
select is((select set_config('bevsession.chat_rate_limit', 'off', true) is not null
           and (select turns from bevsession.chat_rate_limit()) = 20), true,
          'a session setting no longer changes the chat rate limit (it is the policy row''s)');

-- a visitor role without a session_id claim sees nothing
select set_config('request.jwt.claims', '{"role": "session_visitor"}', true);
select is((select count(*)::int from bevsession.sessions) + (select count(*)::int from bevsession.user_personas)
          + (select count(*)::int from bevsession.conversation_history) + (select count(*)::int from bevsession.persona_signals), 0,
          'session_visitor without a session_id claim sees no row');
reset role;

-- ---------------------------------------------------------------------------------------------
-- session_worker: every session row, the policy, the seal keys — no message, signal or score
-- ---------------------------------------------------------------------------------------------
set local role session_worker;
select set_config('request.jwt.claims', '{"role": "session_worker"}', true);
select is(pg_temp.outcome(format(t.sql, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')), w.want,
          format('session_worker: %s on bevsession.%s → %s', t.op, t.tbl, w.why))
from table_op t
join (values
    (1,  'sessions',             'select', '1 row',       'allowed: liveness (touch and validate need whole rows)'),
    (2,  'user_personas',        'select', 'permission denied', 'permission denied: not the scores'),
    (3,  'conversation_history', 'select', 'permission denied', 'permission denied'),
    (4,  'persona_signals',      'select', 'permission denied', 'permission denied'),
    (5,  'session_policy',       'select', '1 row',       'allowed'),
    (6,  'seal_keys',            'select', '0 rows',      'allowed (none named k9 yet)'),
    (7,  'chat_rate_policy',     'select', 'permission denied', 'permission denied'),
    (8,  'sessions',             'insert', 'permission denied', 'permission denied'),
    (9,  'user_personas',        'insert', 'permission denied', 'permission denied'),
    (10, 'conversation_history', 'insert', 'permission denied', 'permission denied'),
    (11, 'persona_signals',      'insert', 'permission denied', 'permission denied'),
    (12, 'session_policy',       'insert', 'permission denied', 'permission denied'),
    (13, 'seal_keys',            'insert', '1 row',       'allowed: registering a seal key'),
    (14, 'chat_rate_policy',     'insert', 'permission denied', 'permission denied'),
    (15, 'sessions',             'update', 'permission denied', 'permission denied: only last_activity_at'),
    (16, 'user_personas',        'update', 'permission denied', 'permission denied'),
    (17, 'conversation_history', 'update', 'permission denied', 'permission denied'),
    (18, 'persona_signals',      'update', 'permission denied', 'permission denied'),
    (19, 'session_policy',       'update', 'permission denied', 'permission denied'),
    (20, 'seal_keys',            'update', '1 row',       'allowed: last_seen_at'),
    (21, 'chat_rate_policy',     'update', 'permission denied', 'permission denied'),
    (22, 'sessions',             'delete', 'permission denied', 'permission denied'),
    (23, 'user_personas',        'delete', 'permission denied', 'permission denied'),
    (24, 'conversation_history', 'delete', 'permission denied', 'permission denied'),
    (25, 'persona_signals',      'delete', 'permission denied', 'permission denied'),
    (26, 'session_policy',       'delete', 'permission denied', 'permission denied'),
    (27, 'seal_keys',            'delete', 'permission denied', 'permission denied'),
    (28, 'chat_rate_policy',     'delete', 'permission denied', 'permission denied')
) as w(step, tbl, op, want, why) on (w.tbl, w.op) = (t.tbl, t.op)
order by w.step;
select is((select count(*)::int from (select id, revoked_at, last_activity_at from bevsession.sessions) as s), 4,
          'session_worker sees the liveness of every session (A, B, R, D)');
select is(pg_temp.outcome($$update bevsession.sessions set last_activity_at = now() where id = '12121212-1212-4212-8212-121212121212'$$),
          '0 rows', 'session_worker cannot touch a revoked session');
select is(pg_temp.outcome($$update bevsession.sessions set last_activity_at = now() where id = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd'$$),
          '1 row', 'session_worker may touch a live session''s activity');
select is(pg_temp.outcome(r.sql),
          case when r.name in ('touch_sessions', 'validate_sessions', 'register_seal_keys', 'get_session_policy')
               then '1 row' else 'permission denied' end,
          format('session_worker: %s() → %s', r.name,
                 case when r.name in ('touch_sessions', 'validate_sessions', 'register_seal_keys', 'get_session_policy')
                      then 'allowed' else 'permission denied' end))
from rpc r join rpc_order o using (name)
where r.name not in ('clear_session', 'forget_session')
order by o.step;
select is(pg_temp.outcome('select public.clear_session()'), 'permission denied', 'session_worker: clear_session() → permission denied');
select is(pg_temp.outcome('select public.forget_session()'), 'permission denied', 'session_worker: forget_session() → permission denied');
reset role;
delete from bevsession.seal_keys where key_id = 'k9';

-- ---------------------------------------------------------------------------------------------
-- service_role: everything but writing the policy row's existence (RLS bypassed), for admin work
-- ---------------------------------------------------------------------------------------------
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is(pg_temp.outcome(format(t.sql, 'eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee')), w.want,
          format('service_role: %s on bevsession.%s → %s', t.op, t.tbl, w.why))
from table_op t
join (values
    (1,  'sessions',             'insert', '1 row',       'allowed'),
    (2,  'user_personas',        'insert', '1 row',       'allowed'),
    (3,  'conversation_history', 'insert', '1 row',       'allowed'),
    (4,  'persona_signals',      'insert', '1 row',       'allowed'),
    (5,  'session_policy',       'insert', 'permission denied', 'permission denied: the policy is one row'),
    (6,  'seal_keys',            'insert', '1 row',       'allowed'),
    (7,  'sessions',             'select', '1 row',       'allowed'),
    (8,  'user_personas',        'select', '1 row',       'allowed'),
    (9,  'conversation_history', 'select', '1 row',       'allowed'),
    (10, 'persona_signals',      'select', '1 row',       'allowed'),
    (11, 'session_policy',       'select', '1 row',       'allowed'),
    (12, 'seal_keys',            'select', '1 row',       'allowed'),
    (13, 'sessions',             'update', '1 row',       'allowed'),
    (14, 'user_personas',        'update', '1 row',       'allowed'),
    (15, 'conversation_history', 'update', '1 row',       'allowed'),
    (16, 'persona_signals',      'update', '1 row',       'allowed'),
    (17, 'session_policy',       'update', '1 row',       'allowed: operators change lifetimes'),
    (18, 'seal_keys',            'update', '1 row',       'allowed'),
    (19, 'user_personas',        'delete', '1 row',       'allowed'),
    (20, 'conversation_history', 'delete', '1 row',       'allowed (retention)'),
    (21, 'persona_signals',      'delete', '1 row',       'allowed'),
    (22, 'session_policy',       'delete', 'permission denied', 'permission denied: the policy is one row'),
    (23, 'seal_keys',            'delete', '1 row',       'allowed'),
    (24, 'sessions',             'delete', '1 row',       'allowed (retention)')
) as w(step, tbl, op, want, why) on (w.tbl, w.op) = (t.tbl, t.op)
order by w.step;

select is((select count(*)::int from bevsession.sessions), 4, 'service_role sees every session (A, B, R, D)');
select is((select count(*)::int from bevsession.user_personas), 2,
          'service_role sees every persona (A''s and R''s: B forgot, D deleted its own)');
with changed as (update bevsession.user_personas set large_score = 0.5 returning 1)
select is(count(*)::int, 2, 'service_role may update any persona') from changed;
with gone as (delete from bevsession.conversation_history where session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' returning 1)
select is(count(*)::int, 2, 'service_role may delete any message (retention purge)') from gone;
select set_config('request.jwt.claims',
    '{"role": "service_role", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select is(public.get_session(false) -> 'session' ->> 'session_id', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa',
          'service_role may act for a session named in its claims');

-- every function, acting for a new session F where a session is needed
select set_config('request.jwt.claims',
    '{"role": "service_role", "session_id": "ffffffff-ffff-4fff-8fff-ffffffffffff",
      "linked_user_id": "f0f0f0f0-f0f0-4f0f-8f0f-f0f0f0f0f0f0"}', true);
select is(pg_temp.outcome(r.sql), '1 row', format('service_role may call %s()', r.name))
from rpc r join rpc_order o using (name) order by o.step;
reset role;

-- ---------------------------------------------------------------------------------------------
-- Signed-in users: account X has two browsers (sessions X1, X2), account Y one (Y1); U is not
-- linked. Data through the API: chat turns, then link_session with the linked_user_id claim the
-- edge worker mints after verifying an access token; X2 chats again after it is linked.
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "a1a1a1a1-0000-4000-8000-000000000001"}', true);
select count(public.begin_chat_turn('X on a laptop: we are a craft brewery',
    '[{"signal_type": "org_mention", "signal_text": "craft brewery", "signal_strength": "strong",
       "score_updates": {"craft_score": 0.4}}]'));
select count(public.finish_chat_turn('Welcome, brewer.'));
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "a1a1a1a1-0000-4000-8000-000000000001",
      "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select count(public.link_session());
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "a1a1a1a1-0000-4000-8000-000000000002"}', true);
select count(public.begin_chat_turn('X on a phone'));
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "a1a1a1a1-0000-4000-8000-000000000002",
      "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select count(public.link_session());
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "a1a1a1a1-0000-4000-8000-000000000002"}', true);
select count(public.begin_chat_turn('X again, linked: I run sales',
    '[{"signal_type": "role_mention", "signal_text": "I run sales", "signal_strength": "medium",
       "score_updates": {"sales_focus_score": 0.2}}]'));
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "b1b1b1b1-0000-4000-8000-000000000001"}', true);
select count(public.begin_chat_turn('Y: we distribute spirits',
    '[{"signal_type": "org_mention", "signal_text": "we distribute", "signal_strength": "strong",
       "score_updates": {"distributor_score": 0.5}}]'));
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "b1b1b1b1-0000-4000-8000-000000000001",
      "linked_user_id": "0000000b-0000-4000-8000-00000000000b"}', true);
select count(public.link_session());
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "c1c1c1c1-0000-4000-8000-000000000001"}', true);
select count(public.begin_chat_turn('U never signs in'));
reset role;

-- X on X1's rows, directly: reads them, writes nothing
set local role authenticated;
select set_config('request.jwt.claims',
    '{"role": "authenticated", "aud": "authenticated", "sub": "0000000a-0000-4000-8000-00000000000a"}', true);
select is(pg_temp.outcome(format(t.sql, 'a1a1a1a1-0000-4000-8000-000000000001')), w.want,
          format('signed-in X: %s on X1''s rows of bevsession.%s → %s', t.op, t.tbl, w.why))
from table_op t
join (values
    (1,  'sessions',             'select', '1 row',  'reads its linked session'),
    (2,  'user_personas',        'select', '1 row',  'reads its persona'),
    (3,  'conversation_history', 'select', '2 rows', 'reads its messages'),
    (4,  'persona_signals',      'select', '1 row',  'reads its signal'),
    (5,  'session_policy',       'select', 'permission denied', 'permission denied'),
    (6,  'seal_keys',            'select', 'permission denied', 'permission denied'),
    (7,  'sessions',             'insert', 'permission denied', 'permission denied: read only'),
    (8,  'user_personas',        'insert', 'permission denied', 'permission denied: read only'),
    (9,  'conversation_history', 'insert', 'permission denied', 'permission denied: read only'),
    (10, 'persona_signals',      'insert', 'permission denied', 'permission denied: read only'),
    (11, 'session_policy',       'insert', 'permission denied', 'permission denied'),
    (12, 'seal_keys',            'insert', 'permission denied', 'permission denied'),
    (13, 'sessions',             'update', 'permission denied', 'permission denied: read only'),
    (14, 'user_personas',        'update', 'permission denied', 'permission denied: read only'),
    (15, 'conversation_history', 'update', 'permission denied', 'permission denied: read only'),
    (16, 'persona_signals',      'update', 'permission denied', 'permission denied: read only'),
    (17, 'session_policy',       'update', 'permission denied', 'permission denied'),
    (18, 'seal_keys',            'update', 'permission denied', 'permission denied'),
    (19, 'sessions',             'delete', 'permission denied', 'permission denied: read only'),
    (20, 'user_personas',        'delete', 'permission denied', 'permission denied: read only'),
    (21, 'conversation_history', 'delete', 'permission denied', 'permission denied: read only'),
    (22, 'persona_signals',      'delete', 'permission denied', 'permission denied: read only'),
    (23, 'session_policy',       'delete', 'permission denied', 'permission denied'),
    (24, 'seal_keys',            'delete', 'permission denied', 'permission denied')
) as w(step, tbl, op, want, why) on (w.tbl, w.op) = (t.tbl, t.op)
order by w.step;
select is(pg_temp.outcome(format(t.sql, 'b1b1b1b1-0000-4000-8000-000000000001')), '0 rows',
          format('signed-in X: select on Y1''s rows of bevsession.%s → sees none', t.tbl))
from table_op t where t.op = 'select' and t.tbl in ('sessions', 'user_personas', 'conversation_history', 'persona_signals')
order by t.tbl;
select is((select array_agg(s.id::text order by s.id) from bevsession.sessions as s),
          array['a1a1a1a1-0000-4000-8000-000000000001', 'a1a1a1a1-0000-4000-8000-000000000002'],
          'signed-in X reads exactly its two linked sessions (X1, X2): no other session, linked or not');
select is((select array_agg(p.session_id::text order by p.session_id) from bevsession.user_personas as p),
          array['a1a1a1a1-0000-4000-8000-000000000001', 'a1a1a1a1-0000-4000-8000-000000000002'],
          'signed-in X reads exactly the personas of X1 and X2');
select is((select array_agg(m.message_content::text order by m.seq) from bevsession.conversation_history as m),
          array['X on a laptop: we are a craft brewery', 'Welcome, brewer.', 'X on a phone', 'X again, linked: I run sales'],
          'signed-in X reads exactly the four messages of X1 and X2, those written after linking included');
select is((select array_agg(g.signal_text::text order by g.session_id) from bevsession.persona_signals as g),
          array['craft brewery', 'I run sales'],
          'signed-in X reads exactly the two signals of X1 and X2, the one recorded after linking included');
select is((select count(*)::int from bevsession.sessions where user_id <> '0000000a-0000-4000-8000-00000000000a')
          + (select count(*)::int from bevsession.user_personas where user_id <> '0000000a-0000-4000-8000-00000000000a')
          + (select count(*)::int from bevsession.conversation_history where user_id <> '0000000a-0000-4000-8000-00000000000a')
          + (select count(*)::int from bevsession.persona_signals where user_id <> '0000000a-0000-4000-8000-00000000000a'), 0,
          'every row signed-in X reads is linked to X');
select throws_ok($$select public.link_session()$$, '42501', null,
                 'signed-in X cannot call link_session (only the edge worker, as the session, links)');

-- Y reads only Y1
select set_config('request.jwt.claims',
    '{"role": "authenticated", "aud": "authenticated", "sub": "0000000b-0000-4000-8000-00000000000b"}', true);
select is((select count(*)::int from bevsession.sessions), 1, 'signed-in Y reads one session');
select is((select array_agg(s.id::text) from bevsession.sessions as s), array['b1b1b1b1-0000-4000-8000-000000000001'],
          'signed-in Y reads only Y1, none of X''s');
select is((select count(*)::int from bevsession.user_personas) || '/' || (select count(*)::int from bevsession.conversation_history)
          || '/' || (select count(*)::int from bevsession.persona_signals), '1/1/1',
          'signed-in Y reads Y1''s persona, message and signal only');
select is(pg_temp.outcome(format(t.sql, 'b1b1b1b1-0000-4000-8000-000000000001')), 'permission denied',
          format('signed-in Y: %s on its own rows of bevsession.%s → permission denied', t.op, t.tbl))
from table_op t where t.op <> 'select' and t.tbl in ('sessions', 'user_personas', 'conversation_history', 'persona_signals')
order by t.tbl, t.op;

-- an account with nothing linked, and no account at all, read nothing
select set_config('request.jwt.claims',
    '{"role": "authenticated", "aud": "authenticated", "sub": "0000000c-0000-4000-8000-00000000000c"}', true);
select is((select count(*)::int from bevsession.sessions) + (select count(*)::int from bevsession.user_personas)
          + (select count(*)::int from bevsession.conversation_history) + (select count(*)::int from bevsession.persona_signals), 0,
          'a signed-in user with no linked session reads no row (U is linked to nobody)');
select set_config('request.jwt.claims', '{"role": "authenticated", "aud": "authenticated"}', true);
select is((select count(*)::int from bevsession.sessions) + (select count(*)::int from bevsession.user_personas)
          + (select count(*)::int from bevsession.conversation_history) + (select count(*)::int from bevsession.persona_signals), 0,
          'authenticated without a sub reads no row');
select set_config('request.jwt.claims',
    '{"role": "authenticated", "session_id": "a1a1a1a1-0000-4000-8000-000000000001", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select is((select count(*)::int from bevsession.sessions) + (select count(*)::int from bevsession.conversation_history), 0,
          'authenticated with X1''s session_id and X''s linked_user_id claims but no sub reads no row (only sub counts)');
reset role;

-- anon with X's sub: still nothing
set local role anon;
select set_config('request.jwt.claims',
    '{"role": "anon", "sub": "0000000a-0000-4000-8000-00000000000a"}', true);
select is(pg_temp.outcome(format(t.sql, 'a1a1a1a1-0000-4000-8000-000000000001')), 'permission denied',
          format('anon (with X''s sub): select on X1''s rows of bevsession.%s → permission denied', t.tbl))
from table_op t where t.op = 'select' and t.tbl in ('sessions', 'user_personas', 'conversation_history', 'persona_signals')
order by t.tbl;
reset role;

-- a visitor session of X reads its own session's rows, not its sibling's (a link is no key)
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "a1a1a1a1-0000-4000-8000-000000000001"}', true);
select is((select count(*)::int from bevsession.conversation_history), 2,
          'session X1 reads its own two messages, not X2''s though both are linked to X');
select is((select array_agg(s.id::text) from bevsession.sessions as s), array['a1a1a1a1-0000-4000-8000-000000000001'],
          'session X1 reads only its own session row');
reset role;

select * from finish();
rollback;
