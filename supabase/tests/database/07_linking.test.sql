-- 20261201002000_linking.sql: the linked account as an identity (current_linked_user_id inlined,
-- require_linked_user_id), link_session (attach a session and its persona, messages and signals
-- to an account in one call; idempotent; PT409 for another account; revoked / expired refused;
-- later rows inherit the account), the trigger that keeps a link permanent, and the insert
-- policies that keep new rows in their session's account. What signed-in users may read is in
-- the RLS matrix (05_rls_matrix.test.sql).
-- Identity as PostgREST gives it: `set local role` and the request.jwt.claims setting.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon, authenticated;
grant execute on all functions in schema extensions to session_visitor, service_role, anon, authenticated;
set local search_path = extensions, public;

select plan(86);

-- results of RPC calls, kept for several assertions
create temporary table result (name text primary key, body jsonb not null);
grant all on result to public;

-- the user_id of every row of one session, as 'sessions/personas/messages/signals' lists
create function pg_temp.accounts_of(session uuid) returns text
    language sql
as $$
    select concat_ws(' | ',
        (select string_agg(coalesce(s.user_id::text, 'null'), ',') from bevsession.sessions as s where s.id = session),
        (select string_agg(coalesce(p.user_id::text, 'null'), ',') from bevsession.user_personas as p where p.session_id = session),
        (select string_agg(coalesce(m.user_id::text, 'null'), ',' order by m.seq) from bevsession.conversation_history as m where m.session_id = session),
        (select string_agg(coalesce(g.user_id::text, 'null'), ',' order by g.created_at, g.id) from bevsession.persona_signals as g where g.session_id = session))
$$;

-- ---------------------------------------------------------------------------------------------
-- Structure
-- ---------------------------------------------------------------------------------------------
select has_function('public', 'link_session', array[]::name[], 'public.link_session() exists');
select isnt_definer('public', 'link_session', array[]::name[], 'link_session is security invoker');
select volatility_is('public', 'link_session', array[]::name[], 'volatile', 'link_session is volatile (it writes)');
select function_returns('public', 'link_session', array[]::name[], 'jsonb', 'link_session returns jsonb');
select function_lang_is('bevsession', 'current_linked_user_id', array[]::name[], 'sql',
                        'current_linked_user_id is a SQL function');
select volatility_is('bevsession', 'current_linked_user_id', array[]::name[], 'stable',
                     'current_linked_user_id is stable');
select is((select proconfig is null and not prosecdef and prosqlbody is not null from pg_catalog.pg_proc
           where oid = 'bevsession.current_linked_user_id()'::regprocedure), true,
          'current_linked_user_id is one `return` expression with no SET clause, not security definer (inlinable)');
create function pg_temp.plan_of(statement text) returns text
    language plpgsql
as $$
declare
    v_line text;
    v_plan text := '';
begin
    for v_line in execute 'explain (verbose, costs off) ' || statement loop
        v_plan := v_plan || v_line || E'\n';
    end loop;
    return v_plan;
end
$$;
select ok(pg_temp.plan_of('select bevsession.current_linked_user_id()') !~ 'current_linked_user_id'
          and pg_temp.plan_of('select bevsession.current_linked_user_id()') ~ 'current_setting',
          'the planner inlines current_linked_user_id into its caller');
select has_trigger('bevsession', t, t || '_keep_account_link', format('%s has the trigger that keeps a link permanent', t))
from unnest(array['sessions', 'user_personas', 'conversation_history', 'persona_signals']) as t;
select is((select array_agg(t.tgrelid::regclass::text order by t.tgrelid::regclass::text) from pg_catalog.pg_trigger as t
           where t.tgfoid = 'bevsession.keep_account_link()'::regprocedure
             and t.tgtype = (1 | 2 | 16)::int2                   -- ROW | BEFORE | UPDATE, nothing else
             and pg_catalog.array_to_string(t.tgattr::int2[], ',')
                 = (select a.attnum::text from pg_catalog.pg_attribute as a
                    where a.attrelid = t.tgrelid and a.attname = 'user_id')),
          array['bevsession.conversation_history', 'bevsession.persona_signals', 'bevsession.sessions', 'bevsession.user_personas'],
          'the link trigger fires BEFORE UPDATE OF user_id only, for each row, on the four tables (chat turns never name user_id)');
select is(has_function_privilege('session_visitor', 'bevsession.keep_account_link()', 'execute'), false,
          'the link trigger function is executable by nobody but its owner');
select has_index('bevsession', 'persona_signals', 'idx_ps_user_id', array['user_id'],
                 'persona_signals.user_id is indexed, as the seed indexes it on personas and messages');
select is(has_column_privilege('session_visitor', 'bevsession.conversation_history', 'message_content', 'update'), false,
          'a visitor still cannot update a message''s content (only its user_id, to link it)');
select is(has_column_privilege('session_visitor', 'bevsession.persona_signals', 'signal_text', 'update'), false,
          'a visitor still cannot update a signal''s text (only its user_id, to link it)');

-- ---------------------------------------------------------------------------------------------
-- Identity: the linked_user_id claim
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select is(bevsession.current_linked_user_id(), '0000000a-0000-4000-8000-00000000000a'::uuid,
          'current_linked_user_id is the linked_user_id claim');
select is(bevsession.require_linked_user_id(), '0000000a-0000-4000-8000-00000000000a'::uuid,
          'require_linked_user_id returns it');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "sub": "0000000a-0000-4000-8000-00000000000a"}', true);
select is(bevsession.current_linked_user_id(), null, 'a sub claim is not a linked account: null');
select throws_ok($$select bevsession.require_linked_user_id()$$, 'PT401', 'no account identity',
                 'require_linked_user_id without the claim raises PT401 "no account identity"');
select set_config('request.jwt.claims', '{"role": "session_visitor", "linked_user_id": "not-a-uuid"}', true);
select is(bevsession.current_linked_user_id(), null, 'a linked_user_id that is not a uuid: null');
select set_config('request.jwt.claims', '{"role": "session_visitor", "linked_user_id": 7}', true);
select is(bevsession.current_linked_user_id(), null, 'a numeric linked_user_id: null');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "linked_user_id": "0000000a-0000-4000-8000-00000000000a; x"}', true);
select is(bevsession.current_linked_user_id(), null, 'a linked_user_id with anything after the uuid: null');
select set_config('request.jwt.claims', '', true);
select is(bevsession.current_linked_user_id(), null, 'empty claims: null');

-- ---------------------------------------------------------------------------------------------
-- link_session: who may call it, and what it needs
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select throws_ok($$select public.link_session()$$, 'PT401', 'no session identity',
                 'link_session without a session_id claim: PT401 no session identity');
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select throws_ok($$select public.link_session()$$, 'PT401', 'no account identity',
                 'link_session without a linked_user_id claim: PT401 no account identity');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "sub": "0000000a-0000-4000-8000-00000000000a"}', true);
select throws_ok($$select public.link_session()$$, 'PT401', 'no account identity',
                 'a sub claim does not link: only the linked_user_id the edge worker mints does');
reset role;
select is((select count(*)::int from bevsession.sessions), 0, 'the refused calls created no session');

-- ---------------------------------------------------------------------------------------------
-- link_session on a visitor's first request: the session is created, then linked
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
insert into result select 'new', public.link_session();
select is((select array_agg(k order by k) from result, jsonb_object_keys(body) as k where name = 'new'),
          array['created', 'linked', 'session', 'session_id', 'user_id'],
          'link_session returns {session_id, user_id, linked, session, created}');
select is((select body - 'session' from result where name = 'new'),
          '{"session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "user_id": "0000000a-0000-4000-8000-00000000000a",
            "linked": {"sessions": 1, "personas": 1, "messages": 0, "signals": 0}, "created": true}'::jsonb,
          'a first request is created and linked: the session and its new persona');
select is((select body -> 'session' ->> 'user_id' from result where name = 'new'), '0000000a-0000-4000-8000-00000000000a',
          'the returned session carries the account');
reset role;
select is(pg_temp.accounts_of('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'),
          '0000000a-0000-4000-8000-00000000000a | 0000000a-0000-4000-8000-00000000000a',
          'session and persona rows carry the account');

-- ---------------------------------------------------------------------------------------------
-- link_session on a session with history: everything is attached in one call
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"}', true);
select count(public.begin_chat_turn('We are a craft brewery',
    '[{"signal_type": "org_mention", "signal_text": "craft brewery", "signal_strength": "strong", "score_updates": {"craft_score": 0.4}},
      {"signal_type": "pain", "signal_text": "prove ROI", "signal_strength": "weak", "pain_points_inferred": ["roi_proof"]}]'));
select count(public.finish_chat_turn('Welcome.'));
select count(public.add_conversation_message('system', 'note'));
insert into result select 'before', public.get_session(false);
reset role;
select is(pg_temp.accounts_of('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'), 'null | null | null,null,null | null,null',
          'before linking, no row of the session has an account');
update bevsession.sessions set last_activity_at = now() - interval '10 minutes' where id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
insert into result select 'history', public.link_session();
select is((select body -> 'linked' from result where name = 'history'),
          '{"sessions": 1, "personas": 1, "messages": 3, "signals": 2}'::jsonb,
          'link_session attaches the session, its persona, its three messages and two signals');
select is((select body ->> 'created' from result where name = 'history'), 'false', 'an existing session is not created again');
reset role;
select is(pg_temp.accounts_of('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'),
          '0000000a-0000-4000-8000-00000000000a | 0000000a-0000-4000-8000-00000000000a | '
          || '0000000a-0000-4000-8000-00000000000a,0000000a-0000-4000-8000-00000000000a,0000000a-0000-4000-8000-00000000000a | '
          || '0000000a-0000-4000-8000-00000000000a,0000000a-0000-4000-8000-00000000000a',
          'every row of the session now carries the account');
select ok((select last_activity_at > now() - interval '1 minute' from bevsession.sessions where id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'),
          'linking is activity: last_activity_at moves');
select is((select (message_count, last_message)::text from bevsession.sessions where id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'),
          '(3,note)', 'linking changes nothing else on the session');
select is((select (p.craft_score, p.pain_points_detected, p.total_interactions)::text
           from bevsession.user_personas as p where p.session_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'),
          '(0.4000,{roi_proof},2)', 'linking changes nothing else on the persona');
select is((select (body -> 'session') - 'user_id' - 'last_activity_at' from result where name = 'history'),
          (select (body -> 'session') - 'user_id' - 'last_activity_at' from result where name = 'before'),
          'the returned session is the session as it was, with its account and activity');

-- ---------------------------------------------------------------------------------------------
-- Idempotent for the same account; refused (PT409, nothing changed) for another one
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
insert into result select 'again', public.link_session();
select is((select body -> 'linked' from result where name = 'again'),
          '{"sessions": 0, "personas": 0, "messages": 0, "signals": 0}'::jsonb,
          're-linking to the same account attaches nothing new (idempotent)');
select is((select body ->> 'user_id' from result where name = 'again'), '0000000a-0000-4000-8000-00000000000a',
          're-linking answers the same account');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "linked_user_id": "0000000b-0000-4000-8000-00000000000b"}', true);
select throws_ok($$select public.link_session()$$, 'PT409', 'session linked to another account',
                 'linking a session of account A to account B: PT409 session linked to another account');
reset role;
select is(pg_temp.accounts_of('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'),
          '0000000a-0000-4000-8000-00000000000a | 0000000a-0000-4000-8000-00000000000a | '
          || '0000000a-0000-4000-8000-00000000000a,0000000a-0000-4000-8000-00000000000a,0000000a-0000-4000-8000-00000000000a | '
          || '0000000a-0000-4000-8000-00000000000a,0000000a-0000-4000-8000-00000000000a',
          'the refused link changed nothing: every row still carries account A');

-- ---------------------------------------------------------------------------------------------
-- After linking, new rows inherit the account (chat turns, messages, signals)
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"}', true);
select count(public.begin_chat_turn('I run sales',
    '[{"signal_type": "role_mention", "signal_text": "I run sales", "signal_strength": "medium", "score_updates": {"sales_focus_score": 0.2}}]'));
select count(public.finish_chat_turn('Noted.'));
select count(public.add_conversation_message('user', 'one more'));
select count(public.record_persona_signal('pain', 'compliance worries', 'weak', '{compliance}'));
select count(public.update_persona('{"large_score": 0.1}'));
select is(public.get_session(false) -> 'session' ->> 'user_id', '0000000a-0000-4000-8000-00000000000a',
          'get_session shows the account of a linked session');
reset role;
select is((select count(*)::int from bevsession.conversation_history
           where session_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' and user_id is distinct from '0000000a-0000-4000-8000-00000000000a'), 0,
          'every message stored after linking (begin/finish_chat_turn, add_conversation_message) carries the account');
select is((select count(*)::int from bevsession.conversation_history where session_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'), 6,
          '(three messages more than before)');
select is((select count(*)::int from bevsession.persona_signals
           where session_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' and user_id is distinct from '0000000a-0000-4000-8000-00000000000a'), 0,
          'every signal recorded after linking (begin_chat_turn, record_persona_signal) carries the account');
select is((select count(*)::int from bevsession.persona_signals where session_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'), 4,
          '(two signals more than before)');
-- a persona an admin removed comes back with the session's account
delete from bevsession.user_personas where session_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"}', true);
select count(public.get_session());
reset role;
select is((select user_id::text from bevsession.user_personas where session_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'),
          '0000000a-0000-4000-8000-00000000000a', 'a persona recreated for a linked session carries its account');

-- ---------------------------------------------------------------------------------------------
-- Several browsers, one account
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc"}', true);
select count(public.begin_chat_turn('from my phone'));
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select is(public.link_session() -> 'linked', '{"sessions": 1, "personas": 1, "messages": 1, "signals": 0}'::jsonb,
          'a second browser''s session links to the same account');
reset role;
select is((select array_agg(id::text order by id) from bevsession.sessions where user_id = '0000000a-0000-4000-8000-00000000000a'),
          array['aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'cccccccc-cccc-4ccc-8ccc-cccccccccccc'],
          'account A now has three sessions');
select is((select count(*)::int from bevsession.conversation_history where session_id = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc'), 1,
          'each session keeps its own history (linking merges nothing)');

-- ---------------------------------------------------------------------------------------------
-- Revoked, forgotten and expired sessions are refused and stay unlinked
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "dddddddd-dddd-4ddd-8ddd-dddddddddddd"}', true);
select count(public.begin_chat_turn('then I log out'));
select count(public.clear_session());
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "dddddddd-dddd-4ddd-8ddd-dddddddddddd", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select throws_ok($$select public.link_session()$$, 'PT403', 'session revoked', 'a revoked session is refused: PT403');
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee"}', true);
select count(public.begin_chat_turn('forget me'));
select count(public.forget_session());
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select throws_ok($$select public.link_session()$$, 'PT403', 'session revoked', 'a forgotten session is refused: PT403');
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "12121212-1212-4212-8212-121212121212"}', true);
select count(public.begin_chat_turn('idle for too long'));
reset role;
update bevsession.sessions set last_activity_at = now() - interval '25 hours' where id = '12121212-1212-4212-8212-121212121212';
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "12121212-1212-4212-8212-121212121212", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select throws_ok($$select public.link_session()$$, 'PT410', 'session expired', 'an expired session is refused: PT410');
reset role;
select is(pg_temp.accounts_of('dddddddd-dddd-4ddd-8ddd-dddddddddddd') || ' / ' || pg_temp.accounts_of('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee')
          || ' / ' || pg_temp.accounts_of('12121212-1212-4212-8212-121212121212'),
          'null | null | null / null / null | null | null', 'the refused sessions stay unlinked');

-- ---------------------------------------------------------------------------------------------
-- A link is permanent: the trigger, for direct writes too
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "f0f0f0f0-f0f0-4f0f-8f0f-f0f0f0f0f0f0"}', true);
select count(public.begin_chat_turn('direct writes',
    '[{"signal_type": "x", "signal_text": "y", "signal_strength": "weak"}]'));
select throws_ok($$update bevsession.sessions set user_id = '0000000a-0000-4000-8000-00000000000a'$$, '42501',
                 'user_id: only the linked account of the request may be set',
                 'a visitor cannot set user_id without a linked account in its claims');
select throws_ok($$update bevsession.conversation_history set user_id = '0000000a-0000-4000-8000-00000000000a'$$, '42501',
                 'user_id: only the linked account of the request may be set',
                 'nor a message''s');
select throws_ok($$update bevsession.conversation_history set message_content = 'changed'$$, '42501', null,
                 'a message''s content stays immutable (no privilege)');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "f0f0f0f0-f0f0-4f0f-8f0f-f0f0f0f0f0f0", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select throws_ok($$update bevsession.user_personas set user_id = '0000000b-0000-4000-8000-00000000000b'$$, '42501',
                 'user_id: only the linked account of the request may be set',
                 'a visitor cannot set user_id to an account other than the linked one');
with changed as (update bevsession.persona_signals set user_id = '0000000a-0000-4000-8000-00000000000a' returning 1)
select is(count(*)::int, 1, 'a visitor may set its own rows'' user_id to the linked account (what link_session does)') from changed;
select throws_ok($$update bevsession.persona_signals set user_id = null$$, 'PT409', null,
                 'a linked row cannot be unlinked');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "f0f0f0f0-f0f0-4f0f-8f0f-f0f0f0f0f0f0", "linked_user_id": "0000000b-0000-4000-8000-00000000000b"}', true);
select throws_ok($$update bevsession.persona_signals set user_id = '0000000b-0000-4000-8000-00000000000b'$$, 'PT409',
                 'session linked to another account: a link never changes',
                 'a linked row cannot move to another account, even with that account in the claims');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "linked_user_id": "0000000b-0000-4000-8000-00000000000b"}', true);
select throws_ok($$update bevsession.sessions set user_id = '0000000b-0000-4000-8000-00000000000b'$$, 'PT409', null,
                 'a linked session row cannot move to another account directly either');
reset role;
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select throws_ok($$update bevsession.sessions set user_id = null where id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'$$, 'PT409', null,
                 'service_role cannot unlink a session either (the rule holds for every writer)');
select throws_ok($$update bevsession.conversation_history set user_id = '0000000b-0000-4000-8000-00000000000b'
                   where session_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'$$, 'PT409', null,
                 'nor move a linked message to another account');
select throws_ok($$update bevsession.sessions set user_id = '0000000b-0000-4000-8000-00000000000b'
                   where id = 'f0f0f0f0-f0f0-4f0f-8f0f-f0f0f0f0f0f0'$$, '42501', null,
                 'nor link a session to an account no request proved');
with changed as (update bevsession.sessions set message_count = message_count where id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' returning 1)
select is(count(*)::int, 1, 'updates that do not name user_id are not the trigger''s business') from changed;
select set_config('request.jwt.claims',
    '{"role": "service_role", "session_id": "f0f0f0f0-f0f0-4f0f-8f0f-f0f0f0f0f0f0", "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select is(public.link_session() -> 'linked', '{"sessions": 1, "personas": 1, "messages": 1, "signals": 0}'::jsonb,
          'service_role may link a session named in its claims (its signal was linked directly above)');
reset role;

-- ---------------------------------------------------------------------------------------------
-- New rows carry their session's account: the insert policies
-- ---------------------------------------------------------------------------------------------
create function pg_temp.outcome(statement text) returns text
    language plpgsql
as $$
begin
    execute statement;
    return 'ok';
exception when others then
    return case
        when sqlstate = '42501' and sqlerrm like 'new row violates row-level security policy%' then 'policy violation'
        else 'error ' || sqlstate || ': ' || sqlerrm end;
end
$$;
grant execute on function pg_temp.outcome(text) to public;
set local role session_visitor;
-- C is linked to A
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc"}', true);
select is(pg_temp.outcome($$insert into bevsession.conversation_history (session_id, user_id, message_role, message_content)
                            values ('cccccccc-cccc-4ccc-8ccc-cccccccccccc', '0000000b-0000-4000-8000-00000000000b', 'user', 'x')$$),
          'policy violation', 'a message of a session linked to A cannot carry account B');
select is(pg_temp.outcome($$insert into bevsession.conversation_history (session_id, message_role, message_content)
                            values ('cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'user', 'x')$$),
          'policy violation', 'nor no account');
select is(pg_temp.outcome($$insert into bevsession.conversation_history (session_id, user_id, message_role, message_content)
                            values ('cccccccc-cccc-4ccc-8ccc-cccccccccccc', '0000000a-0000-4000-8000-00000000000a', 'user', 'x')$$),
          'ok', 'it carries account A');
select is(pg_temp.outcome($$insert into bevsession.persona_signals (session_id, user_id, signal_type, signal_text, signal_strength,
                                                                     confidence_before, confidence_after)
                            values ('cccccccc-cccc-4ccc-8ccc-cccccccccccc', '0000000b-0000-4000-8000-00000000000b', 'x', 'y', 'weak', 0, 0)$$),
          'policy violation', 'a signal of a session linked to A cannot carry account B');
select is(pg_temp.outcome($$insert into bevsession.persona_signals (session_id, user_id, signal_type, signal_text, signal_strength,
                                                                     confidence_before, confidence_after)
                            values ('cccccccc-cccc-4ccc-8ccc-cccccccccccc', '0000000a-0000-4000-8000-00000000000a', 'x', 'y', 'weak', 0, 0)$$),
          'ok', 'it carries account A');
select is(pg_temp.outcome($$delete from bevsession.user_personas where session_id = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc'$$), 'ok',
          '(C''s persona deleted, to insert it again)');
select is(pg_temp.outcome($$insert into bevsession.user_personas (session_id, user_id)
                            values ('cccccccc-cccc-4ccc-8ccc-cccccccccccc', '0000000b-0000-4000-8000-00000000000b')$$),
          'policy violation', 'a persona of a session linked to A cannot carry account B');
select is(pg_temp.outcome($$insert into bevsession.user_personas (session_id, user_id)
                            values ('cccccccc-cccc-4ccc-8ccc-cccccccccccc', '0000000a-0000-4000-8000-00000000000a')$$),
          'ok', 'it carries account A');
-- G is linked to nobody
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "67676767-6767-4767-8767-676767676767"}', true);
select count(public.get_session());
select is(pg_temp.outcome($$insert into bevsession.conversation_history (session_id, user_id, message_role, message_content)
                            values ('67676767-6767-4767-8767-676767676767', '0000000a-0000-4000-8000-00000000000a', 'user', 'x')$$),
          'policy violation', 'a message of an unlinked session cannot claim an account');
select is(pg_temp.outcome($$insert into bevsession.persona_signals (session_id, user_id, signal_type, signal_text, signal_strength,
                                                                     confidence_before, confidence_after)
                            values ('67676767-6767-4767-8767-676767676767', '0000000a-0000-4000-8000-00000000000a', 'x', 'y', 'weak', 0, 0)$$),
          'policy violation', 'nor a signal');
select is(pg_temp.outcome($$insert into bevsession.conversation_history (session_id, message_role, message_content)
                            values ('67676767-6767-4767-8767-676767676767', 'user', 'x')$$),
          'ok', 'an unlinked session''s message carries no account');
select is(pg_temp.outcome($$insert into bevsession.sessions (id, user_id) values ('68686868-6868-4868-8868-686868686868', '0000000a-0000-4000-8000-00000000000a')$$),
          'policy violation', 'a visitor cannot start a session that is already linked');
reset role;

-- ---------------------------------------------------------------------------------------------
-- anon and authenticated may not call it
-- ---------------------------------------------------------------------------------------------
set local role authenticated;
select set_config('request.jwt.claims',
    '{"role": "authenticated", "sub": "0000000a-0000-4000-8000-00000000000a", "session_id": "67676767-6767-4767-8767-676767676767",
      "linked_user_id": "0000000a-0000-4000-8000-00000000000a"}', true);
select throws_ok($$select public.link_session()$$, '42501', null,
                 'authenticated cannot call link_session, whatever its claims (a signed-in user''s token is not a session)');
reset role;
set local role anon;
select throws_ok($$select public.link_session()$$, '42501', null, 'anon cannot call link_session');
reset role;
select is((select user_id from bevsession.sessions where id = '67676767-6767-4767-8767-676767676767'), null,
          'G stays unlinked');

select * from finish();
rollback;
