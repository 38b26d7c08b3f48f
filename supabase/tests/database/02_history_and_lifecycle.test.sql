-- Messages and the session lifecycle: add_conversation_message, keyset history, the two-call
-- chat turn, clear_session (revocation, PT403 everywhere after), forget_session (erase and
-- tombstone), admin_session_stats.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role;
grant execute on all functions in schema extensions to session_visitor, service_role;
set local search_path = extensions, public;

select plan(57);

create temporary table result (name text primary key, body jsonb not null);
grant all on result to public;

set local role session_visitor;

-- ---------------------------------------------------------------------------------------------
-- add_conversation_message
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select throws_ok($$select public.add_conversation_message('user', 'hello')$$, 'PT404', 'session not found',
                 'add_conversation_message needs an existing session');
select count(public.get_session());
select count(public.record_persona_signal('org_type_mention', 'we are a distributor', 'strong', '{}',
                                          '{"distributor_score": 0.3}', 'org_type', 'distributor'));

insert into result select 'msg', public.add_conversation_message(
    'user', 'How can you help my distributors?', 'fresh', null, null, array['distributor_management']);
select is((select body -> 'message' ->> 'message_role' from result where name = 'msg'), 'user', 'the message is stored');
select is((select body -> 'message' -> 'persona_snapshot' from result where name = 'msg'),
          (select bevsession.persona_json(p) from bevsession.personas p),
          'the persona snapshot is the stored persona, taken in SQL');
select is((select (body -> 'session' ->> 'message_count')::int from result where name = 'msg'), 1,
          'message_count + 1');
select is((select body -> 'session' ->> 'last_message' from result where name = 'msg'),
          'How can you help my distributors?', 'last_message is the content');
select is((select (body -> 'session' ->> 'last_message_at')::bigint from result where name = 'msg'),
          (select (body -> 'message' ->> 'created_at')::bigint from result where name = 'msg'),
          'last_message_at is the message time');
select is((select body -> 'message' -> 'pain_points_inferred' from result where name = 'msg'),
          '["distributor_management"]'::jsonb, 'pain_points_inferred is stored');

select throws_ok($$select public.add_conversation_message('bot', 'hi')$$, '22023',
                 'p_role: must be ''user'', ''assistant'' or ''system''', 'an unknown role is refused');
select throws_ok(format($$select public.add_conversation_message('user', %L)$$, repeat('x', 8001)), '22023',
                 'p_content: too long (at most 8000 characters)', 'content longer than 8000 characters is refused');
select lives_ok(format($$select public.add_conversation_message('user', %L)$$, repeat('x', 8000)),
                'content of exactly 8000 characters is accepted');
select throws_ok($$select public.add_conversation_message('user', null)$$, '22023', 'p_content: is required',
                 'content is required');
select throws_ok($$select public.add_conversation_message('assistant', 'x', 'Fresh Mode')$$, '22023', null,
                 'a malformed generation mode is refused');

-- ---------------------------------------------------------------------------------------------
-- keyset history: 25 more messages, pages of 10, oldest first, next_before
-- ---------------------------------------------------------------------------------------------
select count(public.add_conversation_message(case when i % 2 = 0 then 'assistant' else 'user' end, 'm' || i))
from generate_series(1, 25) as i;   -- 27 messages in all

insert into result select 'page1', public.get_conversation_history(10);
select is((select pg_catalog.jsonb_array_length(body -> 'messages') from result where name = 'page1'), 10,
          'a page holds p_limit messages');
select is((select body -> 'messages' -> 9 ->> 'message_content' from result where name = 'page1'), 'm25',
          'the newest message is last');
select is((select body -> 'messages' -> 0 ->> 'message_content' from result where name = 'page1'), 'm16',
          'the page is the newest 10, oldest first');
select ok((select bool_and((a.e ->> 'seq')::bigint < (b.e ->> 'seq')::bigint)
           from result r,
                lateral pg_catalog.jsonb_array_elements(r.body -> 'messages') with ordinality a(e, i)
                join lateral pg_catalog.jsonb_array_elements(r.body -> 'messages') with ordinality b(e, i) on b.i = a.i + 1
           where r.name = 'page1'), 'seq increases along the page');
select is((select (body ->> 'next_before')::bigint from result where name = 'page1'),
          (select (body -> 'messages' -> 0 ->> 'seq')::bigint from result where name = 'page1'),
          'next_before is the seq of the oldest message returned');

insert into result select 'page2', public.get_conversation_history(10,
    (select (body ->> 'next_before')::bigint from result where name = 'page1'));
select is((select body -> 'messages' -> 0 ->> 'message_content' || '..' || (body -> 'messages' -> 9 ->> 'message_content')
           from result where name = 'page2'), 'm6..m15', 'the second page continues where the first stopped');

insert into result select 'page3', public.get_conversation_history(10,
    (select (body ->> 'next_before')::bigint from result where name = 'page2'));
select is((select pg_catalog.jsonb_array_length(body -> 'messages') from result where name = 'page3'), 7,
          'the last page holds what is left (7)');
select is((select body -> 'next_before' from result where name = 'page3'), 'null'::jsonb,
          'next_before is null when nothing older exists');
select is((select body -> 'messages' -> 0 ->> 'message_content' from result where name = 'page3'),
          'How can you help my distributors?', 'the oldest message comes last of all');
select is(public.get_conversation_history(27) -> 'next_before', 'null'::jsonb,
          'exactly all messages: next_before is null');
select is(public.get_conversation_history() -> 'messages' -> -1 ->> 'message_content', 'm25',
          'get_conversation_history() defaults to the newest 50');

select throws_ok($$select public.get_conversation_history(0)$$, '22023', 'p_limit: must be between 1 and 200',
                 'p_limit 0 is refused');
select throws_ok($$select public.get_conversation_history(201)$$, '22023', 'p_limit: must be between 1 and 200',
                 'p_limit 201 is refused');

-- ---------------------------------------------------------------------------------------------
-- the chat turn in two calls (session D: new)
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "dddddddd-dddd-4ddd-8ddd-dddddddddddd"}', true);
select throws_ok($$select public.begin_chat_turn('hi', '[{"signal_type": "a", "signal_text": "b", "signal_strength": "weak"},
                                                       {"signal_type": "a", "signal_text": "b", "signal_strength": "loud"}]')$$,
                 '22023', 'p_signals[1].signal_strength: must be ''weak'', ''medium'' or ''strong''',
                 'a bad signal is named by its index in p_signals');
select throws_ok($$select public.begin_chat_turn('hi', '[{"signal_type": "a", "signal_text": "b", "signal_strength": "weak", "colour": 1}]')$$,
                 '22023', null, 'an unknown key of a signal is refused');
select throws_ok($$select public.begin_chat_turn('hi', '{}')$$, '22023', 'p_signals: must be a JSON array of signals',
                 'p_signals must be an array');
select is((select count(*)::int from bevsession.sessions), 0, 'a refused chat turn created nothing');

insert into result select 'begin', public.begin_chat_turn(
    'We are a regional brewery and our depletions are a mystery',
    '[{"signal_type": "org_type_mention", "signal_text": "we are a regional brewery", "signal_strength": "strong",
       "vector": "org_type", "vector_value": "supplier", "score_updates": {"supplier_score": 0.2}},
      {"signal_type": "org_size_mention", "signal_text": "regional", "signal_strength": "medium",
       "vector": "org_size", "vector_value": "mid_sized", "score_updates": {"mid_sized_score": 0.1}},
      {"signal_type": "pain_point_mention", "signal_text": "depletions are a mystery", "signal_strength": "strong",
       "pain_points_inferred": ["distributor_management", "execution_blind_spot"]}]',
    5, 'fresh');
select is((select body ->> 'created' from result where name = 'begin'), 'true', 'begin_chat_turn creates the session');
select is((select (body -> 'persona' ->> 'total_interactions')::int from result where name = 'begin'), 3,
          'every signal is applied');
select is((select count(*)::int from bevsession.persona_signals), 3, 'every signal has an audit row');
select is((select body -> 'message' -> 'persona_snapshot' from result where name = 'begin'),
          (select body -> 'persona' from result where name = 'begin'),
          'the user message carries the post-signal persona');
select is((select body -> 'message' -> 'pain_points_inferred' from result where name = 'begin'),
          '["distributor_management", "execution_blind_spot"]'::jsonb, 'the message lists the inferred pain points');
select is((select body -> 'history' -> 'messages' -> -1 -> 'id' from result where name = 'begin'),
          (select body -> 'message' -> 'id' from result where name = 'begin'), 'the history includes the new message');
select is((select (body -> 'session' ->> 'message_count')::int from result where name = 'begin'), 1,
          'the session counts the message');

insert into result select 'finish', public.finish_chat_turn('Here is how we help regional suppliers.',
    '{"sections": [{"type": "hero"}]}', 'fresh', '2 min');
select is((select body -> 'message' ->> 'message_role' from result where name = 'finish'), 'assistant',
          'finish_chat_turn stores the assistant reply');
select is((select body -> 'message' -> 'ui_specification' from result where name = 'finish'),
          '{"sections": [{"type": "hero"}]}'::jsonb, 'with its ui specification');
select is((select (body -> 'session' ->> 'message_count')::int from result where name = 'finish'), 2,
          'message_count is 2 after one turn');

insert into result select 'begin2', public.begin_chat_turn('And pricing?', p_history_limit => 2);
select is((select body ->> 'created' from result where name = 'begin2'), 'false',
          'the next turn finds the session');
select is((select body -> 'history' -> 'messages' -> 0 ->> 'message_role' from result where name = 'begin2'),
          'assistant', 'the history of the next turn is the newest 2: the reply, then the new message');

-- ---------------------------------------------------------------------------------------------
-- clear_session: revoked for good, idempotent, every other call refused with PT403
-- ---------------------------------------------------------------------------------------------
insert into result select 'clear', public.clear_session();
select ok((select (body ->> 'revoked_at')::bigint from result where name = 'clear') is not null,
          'clear_session sets revoked_at');
select is(public.clear_session(), (select body from result where name = 'clear'),
          'clear_session is idempotent: the same revocation time');
select throws_ok($$select public.get_session()$$, 'PT403', 'session revoked', 'get_session refuses a revoked session');
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
select is((select count(*)::int from bevsession.messages), 3, 'the data of a cleared session is kept');

-- ---------------------------------------------------------------------------------------------
-- forget_session: erase, keep a revoked tombstone, idempotent
-- ---------------------------------------------------------------------------------------------
insert into result select 'forget', public.forget_session();
select is((select body -> 'deleted' from result where name = 'forget'),
          '{"messages": 3, "signals": 3, "personas": 1}'::jsonb, 'forget_session reports what it erased');
select is((select count(*)::int from bevsession.messages) + (select count(*)::int from bevsession.persona_signals)
          + (select count(*)::int from bevsession.personas), 0, 'messages, signals and persona are gone');
select is((select (forgotten_at is not null and revoked_at is not null and last_message is null)
           from bevsession.sessions), true, 'the session row stays: revoked, forgotten, last message blanked');
select is(public.forget_session() -> 'deleted', '{"messages": 0, "signals": 0, "personas": 0}'::jsonb,
          'forget_session again erases nothing more');
select throws_ok($$select public.get_session()$$, 'PT403', 'session revoked', 'a forgotten session id is never reused');

-- ---------------------------------------------------------------------------------------------
-- admin_session_stats (service_role)
-- ---------------------------------------------------------------------------------------------
reset role;
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is(public.admin_session_stats(),
          '{"sessions": {"total": 2, "active": 1, "revoked": 0, "forgotten": 1},
            "personas": 1, "messages": 27, "signals": 1}'::jsonb,
          'admin_session_stats counts sessions by state, personas, messages, signals');

select * from finish();
rollback;
