-- 20261201000300_chat.sql: conversation_history and its token counts, add_conversation_message,
-- the keyset and token-budgeted history (messages with their persona snapshots), the chat turn in
-- two calls (begin_chat_turn: prompt messages; finish_chat_turn: the reply with its turn's
-- snapshot) and the per-session chat rate limit (PT429 with retry_after).
-- The rate limit reads clock_timestamp() and this is one transaction, calls microseconds apart:
-- "time passing" is simulated by moving a session's chat_rate_tat back.
-- Identity as PostgREST gives it: `set local role` and the request.jwt.claims setting.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role;
grant execute on all functions in schema extensions to session_visitor, service_role;
set local search_path = extensions, public;

select plan(137);

create temporary table result (name text primary key, body jsonb not null);
create temporary table caught (name text primary key, state text, message text, detail text, hint text);
grant all on result, caught to public;

-- ---------------------------------------------------------------------------------------------
-- The table
-- ---------------------------------------------------------------------------------------------
select is((select relrowsecurity from pg_catalog.pg_class where oid = 'bevsession.conversation_history'::regclass), true,
          'RLS is enabled on bevsession.conversation_history');
select policies_are('bevsession', 'conversation_history', array[
    'Visitors can read their own messages',
    'Visitors can add messages to their live session',
    'Visitors can delete their own messages',
    'Visitors can link their own messages to their account',
    'Signed-in users can read their own messages'],
    'conversation_history: read / add / delete own, updated only to link them (user_id, 20261201002000_linking); a signed-in user reads the messages linked to it');
select columns_are('bevsession', 'conversation_history', array[
    'id', 'seq', 'session_id', 'user_id', 'message_role', 'message_content', 'persona_snapshot',
    'pain_points_inferred', 'ui_specification', 'generation_mode', 'estimated_read_time', 'created_at',
    'token_count'],
    'conversation_history has every column of the seed''s conversation_history plus seq and token_count');
select col_type_is('bevsession', 'conversation_history', 'message_role', 'bevsession.message_role',
                   'message_role is the message_role enum');
select col_is_unique('bevsession', 'conversation_history', array['seq'], 'conversation_history.seq is unique (keyset cursor)');
select has_index('bevsession', 'conversation_history', 'idx_ch_session_seq', array['session_id', 'seq'],
                 'keyset index on conversation_history (session_id, seq desc)');
select fk_ok('bevsession', 'conversation_history', 'session_id', 'bevsession', 'sessions', 'id');
select is((select attgenerated from pg_catalog.pg_attribute
           where attrelid = 'bevsession.conversation_history'::regclass and attname = 'token_count'), 's',
          'token_count is a stored generated column');

insert into bevsession.sessions (id) values ('00000000-0000-4000-8000-000000000001');
select throws_ok($$insert into bevsession.conversation_history (session_id, message_role, message_content)
                   values ('00000000-0000-4000-8000-000000000001', 'bot', 'x')$$,
                 '22P02', null, 'an unknown message role is refused by its enum');
select throws_ok(format($$insert into bevsession.conversation_history (session_id, message_role, message_content)
                   values ('00000000-0000-4000-8000-000000000001', 'user', %L)$$, repeat('x', 8001)),
                 '23514', 'value for domain bevsession.message_content violates check constraint "at most 8000 characters"',
                 'a message longer than 8000 characters violates its domain');
select throws_ok($$insert into bevsession.conversation_history (session_id, message_role, message_content, token_count)
                   values ('00000000-0000-4000-8000-000000000001', 'user', 'x', 1)$$,
                 '428C9', null, 'a token count cannot be written: it is computed');
delete from bevsession.sessions where id = '00000000-0000-4000-8000-000000000001';

-- ---------------------------------------------------------------------------------------------
-- Token counts
-- ---------------------------------------------------------------------------------------------
select is(bevsession.count_tokens(''), 4, 'an empty message costs the 4-token overhead');
select is(bevsession.count_tokens(repeat('x', 40)), 14, '40 characters: 10 tokens + 4');
select is(bevsession.count_tokens(repeat('x', 41)), 15, 'characters are rounded up to whole tokens');
select is(bevsession.count_tokens(null), 4, 'no content counts as empty');

-- ---------------------------------------------------------------------------------------------
-- add_conversation_message (session A)
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
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
select is((select array_agg(k order by k) from result, jsonb_object_keys(body) as k where name = 'msg'),
          array['message', 'session'], 'add_conversation_message returns {message, session}');
select is((select m.persona_snapshot from bevsession.conversation_history m, result r
           where r.name = 'msg' and m.id = (r.body -> 'message' ->> 'id')::uuid),
          (select bevsession.persona_json(p) from bevsession.user_personas p),
          'the persona snapshot stored with the message is the stored persona, taken in SQL');
select ok((select not (body -> 'message' ? 'persona_snapshot') from result where name = 'msg'),
          'the message JSON returned carries no persona_snapshot (the caller holds the persona)');
select is((select (body -> 'session' ->> 'message_count')::int from result where name = 'msg'), 1,
          'message_count + 1');
select is((select body -> 'session' ->> 'last_message' from result where name = 'msg'),
          'How can you help my distributors?', 'last_message is the content');
select is((select (body -> 'session' ->> 'last_message_at')::bigint from result where name = 'msg'),
          (select (body -> 'message' ->> 'created_at')::bigint from result where name = 'msg'),
          'last_message_at is the message time');
select is((select body -> 'message' -> 'pain_points_inferred' from result where name = 'msg'),
          '["distributor_management"]'::jsonb, 'pain_points_inferred is stored');
select is((select (body -> 'message' ->> 'token_count')::int from result where name = 'msg'),
          bevsession.count_tokens('How can you help my distributors?'), 'the message carries its token count');

select throws_ok($$select public.add_conversation_message('bot', 'hi')$$, '22023',
                 'role: must be one of user, assistant, system', 'an unknown role is refused');
select throws_ok($$select public.add_conversation_message(null, 'hi')$$, '22023',
                 'role: must be one of user, assistant, system', 'a role is required');
select throws_ok(format($$select public.add_conversation_message('user', %L)$$, repeat('x', 8001)), '22023',
                 'content: at most 8000 characters', 'content longer than 8000 characters is refused');
select lives_ok(format($$select public.add_conversation_message('user', %L)$$, repeat('x', 8000)),
                'content of exactly 8000 characters is accepted');
select throws_ok($$select public.add_conversation_message('user', null)$$, '22023', 'content: is required',
                 'content is required');
select throws_ok($$select public.add_conversation_message('assistant', 'x', 'Fresh Mode')$$, '22023',
                 'generation_mode: must be lower snake_case, 1-64 characters', 'a malformed generation mode is refused');
select throws_ok($$select public.add_conversation_message('assistant', 'x', null, null, '3 minutes of careful reading')$$, '22023',
                 'estimated_read_time: at most 20 characters', 'an estimated read time longer than 20 characters is refused');
select throws_ok($$select public.add_conversation_message('assistant', 'x', null, jsonb_build_object('x', repeat('y', 262144)))$$, '22023',
                 'ui_specification: at most 262144 bytes of JSON', 'a ui specification over 256 KiB is refused');
select throws_ok($$select public.add_conversation_message('user', 'x', null, null, null, array['Bad Name'])$$, '22023',
                 'pain_points_inferred: must be lower snake_case, 1-64 characters', 'a malformed pain point name is refused');

-- ---------------------------------------------------------------------------------------------
-- keyset history: 25 more messages, pages of 10, oldest first, next_before
-- ---------------------------------------------------------------------------------------------
select count(public.add_conversation_message(case when i % 2 = 0 then 'assistant' else 'user' end, 'm' || i))
from generate_series(1, 25) as i;   -- 27 messages in all

insert into result select 'page1', public.get_conversation_history(10);
select is((select array_agg(k order by k) from result, jsonb_object_keys(body) as k where name = 'page1'),
          array['messages', 'next_before', 'tokens'], 'a history page is {messages, tokens, next_before}');
select is((select pg_catalog.jsonb_array_length(body -> 'messages') from result where name = 'page1'), 10,
          'a page holds history_limit messages');
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
select is((select array_agg(k order by k) from result, jsonb_object_keys(body -> 'messages' -> 0) as k where name = 'page1'),
          array['created_at', 'estimated_read_time', 'generation_mode', 'id', 'message_content', 'message_role',
                'pain_points_inferred', 'persona_snapshot', 'seq', 'session_id', 'token_count', 'ui_specification'],
          'a history message is the stored message with its persona_snapshot');
select is((select count(*)::int from result r, jsonb_array_elements(r.body -> 'messages') as m
           join bevsession.conversation_history as h on h.id = (m ->> 'id')::uuid
           where r.name = 'page1' and m -> 'persona_snapshot' = h.persona_snapshot), 10,
          'every message of a history page carries the persona snapshot stored with it');

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
select is((select body -> 'messages' -> 0 -> 'persona_snapshot' -> 'detection_vectors' ->> 'org_type' from result where name = 'page3'),
          'distributor', 'a history message''s snapshot is the persona as it was when the message was stored');
select is(public.get_conversation_history(27) -> 'next_before', 'null'::jsonb,
          'exactly all messages: next_before is null');
select is(public.get_conversation_history() -> 'messages' -> -1 ->> 'message_content', 'm25',
          'get_conversation_history() defaults to the newest 50');

select throws_ok($$select public.get_conversation_history(0)$$, '22023', 'history_limit: must be between 1 and 200',
                 'history_limit 0 is refused');
select throws_ok($$select public.get_conversation_history(201)$$, '22023', 'history_limit: must be between 1 and 200',
                 'history_limit 201 is refused');
select throws_ok($$select public.get_conversation_history(null)$$, '22023', 'history_limit: must be between 1 and 200',
                 'a null history_limit is refused');

-- ---------------------------------------------------------------------------------------------
-- the token budget (session 5: five messages of 14 tokens each)
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "55555555-5555-4555-8555-555555555555"}', true);
select count(public.get_session());
select count(public.add_conversation_message('user', repeat(chr(96 + i), 40))) from generate_series(1, 5) as i;
select is((select array_agg(token_count order by seq) from bevsession.conversation_history), array[14, 14, 14, 14, 14],
          'every stored message has its token count');

insert into result select 'budget', public.get_conversation_history(history_limit => 50, token_budget => 30);
select is((select jsonb_array_length(body -> 'messages') from result where name = 'budget'), 2,
          'a 30-token budget holds the newest two 14-token messages');
select is((select array_agg(m ->> 'message_content' order by ord) from result,
           jsonb_array_elements(body -> 'messages') with ordinality as e(m, ord) where name = 'budget'),
          array[repeat('d', 40), repeat('e', 40)], 'oldest first, ending with the newest');
select is((select (body ->> 'tokens')::int from result where name = 'budget'), 28, 'tokens = what the page holds');
select is((select (body ->> 'next_before')::bigint from result where name = 'budget'),
          (select seq from bevsession.conversation_history where message_content = repeat('d', 40)),
          'next_before is the oldest returned message (older ones exist)');

insert into result select 'budget2', public.get_conversation_history(
    history_limit => 50, before => (select (body ->> 'next_before')::bigint from result where name = 'budget'), token_budget => 30);
select is((select array_agg(m ->> 'message_content' order by ord) from result,
           jsonb_array_elements(body -> 'messages') with ordinality as e(m, ord) where name = 'budget2'),
          array[repeat('b', 40), repeat('c', 40)], 'the next page continues with the next budget''s worth');

insert into result select 'tight', public.get_conversation_history(token_budget => 10);
select is((select body -> 'messages' from result where name = 'tight'), '[]'::jsonb,
          'a budget smaller than the newest message returns no message');
select is((select body -> 'next_before' from result where name = 'tight'), 'null'::jsonb,
          '... and no cursor to continue from');

insert into result select 'limited', public.get_conversation_history(history_limit => 1, token_budget => 1000);
select is((select jsonb_array_length(body -> 'messages') from result where name = 'limited'), 1,
          'the message limit still applies with a budget');
insert into result select 'all', public.get_conversation_history(token_budget => 1000);
select is((select jsonb_array_length(body -> 'messages') from result where name = 'all'), 5,
          'a budget larger than the history returns everything');
select is((select body -> 'next_before' from result where name = 'all'), 'null'::jsonb,
          'nothing older: next_before is null');
select throws_ok($$select public.get_conversation_history(token_budget => 0)$$, '22023',
                 'token_budget: must be at least 1', 'a budget below 1 is refused');

-- no identity (PT401), no session (PT404)
select set_config('request.jwt.claims', '', true);
select throws_ok($$select public.get_conversation_history()$$, 'PT401', 'no session identity',
                 'get_conversation_history without claims → PT401');
select throws_ok($$select public.begin_chat_turn('hi')$$, 'PT401', 'no session identity',
                 'begin_chat_turn without claims → PT401');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc"}', true);
select throws_ok($$select public.get_conversation_history()$$, 'PT404', 'session not found',
                 'get_conversation_history of a session never created → PT404');
select throws_ok($$select public.finish_chat_turn('a reply')$$, 'PT404', 'session not found',
                 'finish_chat_turn of a session never created → PT404');

-- ---------------------------------------------------------------------------------------------
-- the chat turn in two calls (session D: new)
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "dddddddd-dddd-4ddd-8ddd-dddddddddddd"}', true);
select throws_ok($$select public.begin_chat_turn('hi', '[{"signal_type": "a", "signal_text": "b", "signal_strength": "weak"},
                                                       {"signal_type": "a", "signal_text": "b", "signal_strength": "loud"}]')$$,
                 '22023', 'signals[1].signal_strength: must be one of weak, medium, strong',
                 'a bad signal is named by its index in signals');
select throws_ok($$select public.begin_chat_turn('hi', '[{"signal_type": "a", "signal_text": "b", "signal_strength": "weak", "colour": 1}]')$$,
                 '22023', 'signals[0].colour: unknown key (allowed: signal_type, signal_text, signal_strength, pain_points_inferred, score_updates, vector, vector_value)',
                 'an unknown key of a signal is refused');
select throws_ok($$select public.begin_chat_turn('hi', '{}')$$, '22023', 'signals: must be a JSON array of signals',
                 'signals must be an array');
select throws_ok($$select public.begin_chat_turn('hi', '[1]')$$, '22023', 'signals[0]: must be a JSON object',
                 'every signal is an object');
select throws_ok($$select public.begin_chat_turn('hi', (select jsonb_agg('{"signal_type": "a", "signal_text": "b", "signal_strength": "weak"}'::jsonb)
                                                       from generate_series(1, 51)))$$,
                 '22023', 'signals: at most 50 signals', 'at most 50 signals per turn');
select throws_ok($$select public.begin_chat_turn(null)$$, '22023', 'content: is required', 'a chat turn needs content');
select throws_ok($$select public.begin_chat_turn('hi', history_limit => 0)$$, '22023',
                 'history_limit: must be between 1 and 200', 'begin_chat_turn refuses history_limit 0');
select throws_ok($$select public.begin_chat_turn('hi', generation_mode => 'Fresh Mode')$$, '22023',
                 'generation_mode: must be lower snake_case, 1-64 characters', 'begin_chat_turn refuses a malformed generation mode');
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
select is((select array_agg(k order by k) from result, jsonb_object_keys(body) as k where name = 'begin'),
          array['created', 'history', 'message', 'persona', 'session'],
          'begin_chat_turn returns {session, persona, message, history, created}');
select is((select body ->> 'created' from result where name = 'begin'), 'true', 'begin_chat_turn creates the session');
select is((select (body -> 'persona' ->> 'total_interactions')::int from result where name = 'begin'), 3,
          'every signal is applied');
select is((select count(*)::int from bevsession.persona_signals), 3, 'every signal has an audit row');
select is((select m.persona_snapshot from bevsession.conversation_history m, result r
           where r.name = 'begin' and m.id = (r.body -> 'message' ->> 'id')::uuid),
          (select body -> 'persona' from result where name = 'begin'),
          'the user message is stored with the post-signal persona');
select ok((select not (body -> 'message' ? 'persona_snapshot') from result where name = 'begin'),
          'the message JSON of a chat turn carries no persona_snapshot (the persona is returned beside it)');
select is((select body -> 'message' -> 'pain_points_inferred' from result where name = 'begin'),
          '["distributor_management", "execution_blind_spot"]'::jsonb, 'the message lists the inferred pain points');
select is((select body -> 'history' -> 'messages' -> -1 ->> 'message_content' from result where name = 'begin'),
          'We are a regional brewery and our depletions are a mystery', 'the history includes the new message');
select is((select array_agg(k order by k) from result, jsonb_object_keys(body -> 'history' -> 'messages' -> -1) as k
           where name = 'begin'),
          array['created_at', 'generation_mode', 'message_content', 'message_role', 'token_count'],
          'a history message of a chat turn has exactly what a prompt reads: role, content, generation mode, tokens, time');
select is((select body -> 'history' -> 'messages' -> -1 -> 'created_at' from result where name = 'begin'),
          (select body -> 'message' -> 'created_at' from result where name = 'begin'),
          'its time is the stored message''s');
select is((select (body -> 'session' ->> 'message_count')::int from result where name = 'begin'), 1,
          'the session counts the message');

-- the persona changes between the two calls; the reply keeps the snapshot its turn began with
select count(public.record_persona_signal('role_mention', 'I run sales', 'strong', '{}', '{}', 'functional_role', 'sales'));
insert into result select 'finish', public.finish_chat_turn('Here is how we help regional suppliers.',
    '{"sections": [{"type": "hero"}]}', 'fresh', '2 min');
select is((select body -> 'message' ->> 'message_role' from result where name = 'finish'), 'assistant',
          'finish_chat_turn stores the assistant reply');
select is((select body -> 'message' -> 'ui_specification' from result where name = 'finish'),
          '{"sections": [{"type": "hero"}]}'::jsonb, 'with its ui specification');
select is((select body -> 'message' ->> 'estimated_read_time' from result where name = 'finish'), '2 min',
          'and its estimated read time');
select is((select (body -> 'session' ->> 'message_count')::int from result where name = 'finish'), 2,
          'message_count is 2 after one turn');
select is((select m.persona_snapshot from bevsession.conversation_history m, result r
           where r.name = 'finish' and m.id = (r.body -> 'message' ->> 'id')::uuid),
          (select m.persona_snapshot from bevsession.conversation_history m, result r
           where r.name = 'begin' and m.id = (r.body -> 'message' ->> 'id')::uuid),
          'the user message and the reply of one turn carry the same persona snapshot');
select isnt((select m.persona_snapshot from bevsession.conversation_history m, result r
             where r.name = 'finish' and m.id = (r.body -> 'message' ->> 'id')::uuid),
            (select bevsession.persona_json(p) from bevsession.user_personas p),
            'even when the persona changed in between: the reply was generated from the turn''s persona');

insert into result select 'begin2', public.begin_chat_turn('And pricing?', history_limit => 2);
select is((select body ->> 'created' from result where name = 'begin2'), 'false',
          'the next turn finds the session');
select is((select body -> 'history' -> 'messages' -> 0 ->> 'message_role' from result where name = 'begin2'),
          'assistant', 'the history of the next turn is the newest 2: the reply, then the new message');
select is((select body -> 'persona' -> 'detection_vectors' ->> 'functional_role' from result where name = 'begin2'),
          'sales', 'the next turn starts from the current persona');

-- a reply with no user message before it takes the current persona (session F)
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "ffffffff-ffff-4fff-8fff-ffffffffffff"}', true);
select count(public.get_session());
select count(public.update_persona('{"craft_score": 0.4}'));
insert into result select 'lonely', public.finish_chat_turn('Welcome!');
select is((select m.persona_snapshot from bevsession.conversation_history m, result r
           where r.name = 'lonely' and m.id = (r.body -> 'message' ->> 'id')::uuid),
          (select bevsession.persona_json(p) from bevsession.user_personas p),
          'a reply with no user message before it is stored with the current persona');
reset role;

-- ---------------------------------------------------------------------------------------------
-- The chat rate limit: the policy row (bevsession.chat_rate_policy; 20261201003200)
-- ---------------------------------------------------------------------------------------------
select has_column('bevsession', 'sessions', 'chat_rate_tat', 'sessions.chat_rate_tat holds the rate limit state');
select col_type_is('bevsession', 'sessions', 'chat_rate_tat', 'timestamp with time zone',
                   'chat_rate_tat is a timestamptz (one value per session: GCRA)');
select is(has_column_privilege('session_visitor', 'bevsession.sessions', 'chat_rate_tat', 'update'), true,
          'the visitor may update chat_rate_tat (begin_chat_turn runs as the visitor)');

select is((select (turns, per_seconds)::text from bevsession.chat_rate_limit()), '(20,60)',
          'unset: the default is 20 chat turns per 60 seconds');
create function pg_temp.limit_for(value text) returns text
    language plpgsql
as $$
begin
    update bevsession.chat_rate_policy set chat_rate_limit = value;
    return (select (turns, per_seconds)::text from bevsession.chat_rate_limit());
end
$$;
select is(pg_temp.limit_for(v), want, format('%L means %s', v, want))
from (values ('5/second', '(5,1)'), ('30/min', '(30,60)'), ('100/hour', '(100,3600)'),
             ('10/10s', '(10,10)'), (' 7 / Minute ', '(7,60)'), ('off', '(0,60)'), ('0', '(0,60)'),
             ('nonsense', '(20,60)'), ('0/minute', '(20,60)'), ('5/0s', '(20,60)'), ('5/48h', '(20,60)'),
             ('', '(20,60)')) as t(v, want);

-- ---------------------------------------------------------------------------------------------
-- The rate limit in begin_chat_turn: 3 per minute (sessions R and S)
-- ---------------------------------------------------------------------------------------------
update bevsession.chat_rate_policy set chat_rate_limit = '3/minute';
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "77777777-7777-4777-8777-777777777777"}', true);

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

select is((select message_count from bevsession.sessions where id = '77777777-7777-4777-8777-777777777777'), 5,
          'refused turns stored nothing: 3 turns + 1 reply + 1 message');
select is((select count(*)::int from bevsession.conversation_history
           where session_id = '77777777-7777-4777-8777-777777777777' and message_content in ('four', 'five')), 0,
          'no refused message was stored');
select ok((select chat_rate_tat - now() between interval '60 seconds' and interval '61 seconds'
           from bevsession.sessions where id = '77777777-7777-4777-8777-777777777777'),
          'three turns at (almost) one instant move the arrival time 3 × 20 s ahead');

-- another session has an allowance of its own
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "88888888-8888-4888-8888-888888888888"}', true);
select lives_ok($$select public.begin_chat_turn('s ' || i) from generate_series(1, 3) as i$$,
                'session S has its own three turns');
select throws_ok($$select public.begin_chat_turn('s four')$$, 'PT429', null, 'and S is limited too');
reset role;

-- 20 s later (simulated): one more turn for R, not two
update bevsession.sessions set chat_rate_tat = chat_rate_tat - interval '20 seconds'
where id = '77777777-7777-4777-8777-777777777777';
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "77777777-7777-4777-8777-777777777777"}', true);
select lives_ok($$select public.begin_chat_turn('after 20 s')$$, 'after one interval, one turn is back');
select throws_ok($$select public.begin_chat_turn('too soon')$$, 'PT429', null, 'but only one');
reset role;

-- a long pause refills the bucket to the burst, never beyond
update bevsession.sessions set chat_rate_tat = now() - interval '1 hour'
where id = '77777777-7777-4777-8777-777777777777';
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "77777777-7777-4777-8777-777777777777"}', true);
select lives_ok($$select public.begin_chat_turn('x' || i) from generate_series(1, 3) as i$$,
                'after an hour of silence: the full burst of 3');
select throws_ok($$select public.begin_chat_turn('x4')$$, 'PT429', null, 'and not one more (an hour saved nothing up)');

-- invalid arguments are refused before the limit is consulted
select throws_ok($$select public.begin_chat_turn(repeat('x', 8001))$$, '22023', 'content: at most 8000 characters',
                 'argument errors come first (22023, not PT429)');

-- the limit off: no refusal (the owner changes the policy row; a visitor cannot)
reset role;
update bevsession.chat_rate_policy set chat_rate_limit = 'off';
set local role session_visitor;
select lives_ok($$select count(public.begin_chat_turn('unlimited ' || i)) from generate_series(1, 10) as i$$,
                'with the limit off, 10 turns at one instant are all allowed');
reset role;
update bevsession.chat_rate_policy set chat_rate_limit = '3/minute';

-- service_role is limited the same way when it acts for a session (the limit is per session)
set local role service_role;
select set_config('request.jwt.claims',
    '{"role": "service_role", "session_id": "77777777-7777-4777-8777-777777777777"}', true);
select throws_ok($$select public.begin_chat_turn('as service')$$, 'PT429', null,
                 'the limit belongs to the session, whoever calls');
reset role;

select * from finish();
rollback;
