-- Session lifetime (absolute lifetime and idle timeout, PT410), token counts and the
-- token-budgeted history, and the seal key registry.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon;
grant execute on all functions in schema extensions to session_visitor, service_role, anon;
set local search_path = extensions, public;

select plan(36);

create temporary table result (name text primary key, body jsonb not null);
grant all on result to public;

-- As the owner: three sessions at different ages (the functions create them; we age them).
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "11111111-1111-4111-8111-111111111111"}', true);
set local role session_visitor;
select count(public.get_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "22222222-2222-4222-8222-222222222222"}', true);
select count(public.get_session());
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "33333333-3333-4333-8333-333333333333"}', true);
select count(public.get_session());
reset role;
update bevsession.sessions set created_at = now() - interval '25 hours', last_activity_at = now() - interval '5 minutes'
    where id = '11111111-1111-4111-8111-111111111111';   -- past the absolute lifetime, yet active
update bevsession.sessions set created_at = now() - interval '3 hours', last_activity_at = now() - interval '3 hours'
    where id = '22222222-2222-4222-8222-222222222222';   -- idle for three hours
update bevsession.sessions set created_at = now() - interval '3 hours', last_activity_at = now() - interval '90 minutes'
    where id = '33333333-3333-4333-8333-333333333333';   -- idle, but within the timeout

-- ---------------------------------------------------------------------------------------------
-- The policy
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select is(public.get_session_policy(),
          '{"absolute_lifetime_seconds": 86400, "idle_timeout_seconds": 7200}'::jsonb,
          'the default policy: 24 h absolute lifetime, 2 h idle timeout');
select throws_ok($$update bevsession.session_policy set idle_timeout = null$$, '42501', null,
                 'a visitor cannot change the policy');

-- ---------------------------------------------------------------------------------------------
-- Absolute lifetime: activity cannot keep a session alive
-- ---------------------------------------------------------------------------------------------
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
select lives_ok($$select public.clear_session()$$, 'clear_session still works on an expired session');

-- ---------------------------------------------------------------------------------------------
-- Idle timeout
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "22222222-2222-4222-8222-222222222222"}', true);
select throws_ok($$select public.get_session()$$, 'PT410', 'session expired',
                 'get_session refuses a session idle for longer than the timeout');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak')$$, 'PT410', 'session expired',
                 'record_persona_signal refuses it');
select lives_ok($$select public.forget_session()$$, 'forget_session still works on an idle session');

select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "33333333-3333-4333-8333-333333333333"}', true);
insert into result select 'touched', public.get_session();
select ok((select (body -> 'session' ->> 'last_activity_at')::bigint from result where name = 'touched')
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
update bevsession.sessions set last_activity_at = now() - interval '10 hours' where id = '44444444-4444-4444-8444-444444444444';
set local role session_visitor;
select lives_ok($$select public.get_session()$$, 'with idle_timeout null, only the absolute lifetime applies');
select is((public.get_session_policy() -> 'idle_timeout_seconds'), 'null'::jsonb, 'the policy says so');
reset role;
update bevsession.session_policy set idle_timeout = interval '2 hours';

-- ---------------------------------------------------------------------------------------------
-- Token counts and the token budget
-- ---------------------------------------------------------------------------------------------
select is(bevsession.count_tokens(''), 4, 'an empty message costs the 4-token overhead');
select is(bevsession.count_tokens(repeat('x', 40)), 14, '40 characters: 10 tokens + 4');
select is(bevsession.count_tokens(repeat('x', 41)), 15, 'characters are rounded up to whole tokens');

set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "55555555-5555-4555-8555-555555555555"}', true);
select count(public.get_session());
-- five messages of 14 tokens each (70 tokens in all)
select count(public.add_conversation_message('user', repeat(chr(96 + i), 40))) from generate_series(1, 5) as i;
select is((select array_agg(token_count order by seq) from bevsession.messages), array[14, 14, 14, 14, 14],
          'every stored message has its token count');

insert into result select 'budget', public.get_conversation_history(p_limit => 50, p_token_budget => 30);
select is((select jsonb_array_length(body -> 'messages') from result where name = 'budget'), 2,
          'a 30-token budget holds the newest two 14-token messages');
select is((select array_agg(m ->> 'message_content' order by ord) from result,
           jsonb_array_elements(body -> 'messages') with ordinality as e(m, ord) where name = 'budget'),
          array[repeat('d', 40), repeat('e', 40)], 'oldest first, ending with the newest');
select is((select (body ->> 'tokens')::int from result where name = 'budget'), 28, 'tokens = what the page holds');
select is((select (body ->> 'next_before')::bigint from result where name = 'budget'),
          (select seq from bevsession.messages where message_content = repeat('d', 40)),
          'next_before is the oldest returned message (older ones exist)');

insert into result select 'budget2', public.get_conversation_history(
    p_limit => 50, p_before => (select (body ->> 'next_before')::bigint from result where name = 'budget'), p_token_budget => 30);
select is((select array_agg(m ->> 'message_content' order by ord) from result,
           jsonb_array_elements(body -> 'messages') with ordinality as e(m, ord) where name = 'budget2'),
          array[repeat('b', 40), repeat('c', 40)], 'the next page continues with the next budget''s worth');

insert into result select 'tight', public.get_conversation_history(p_token_budget => 10);
select is((select body -> 'messages' from result where name = 'tight'), '[]'::jsonb,
          'a budget smaller than the newest message returns no message');
select is((select body -> 'next_before' from result where name = 'tight'), 'null'::jsonb,
          '... and no cursor to continue from');

insert into result select 'limited', public.get_conversation_history(p_limit => 1, p_token_budget => 1000);
select is((select jsonb_array_length(body -> 'messages') from result where name = 'limited'), 1,
          'the message limit still applies with a budget');
insert into result select 'all', public.get_conversation_history(p_token_budget => 1000);
select is((select jsonb_array_length(body -> 'messages') from result where name = 'all'), 5,
          'a budget larger than the history returns everything');
select is((select body -> 'next_before' from result where name = 'all'), 'null'::jsonb,
          'nothing older: next_before is null');
select throws_ok($$select public.get_conversation_history(p_token_budget => 0)$$, '22023',
                 'p_token_budget: must be at least 1', 'a budget below 1 is refused');

-- ---------------------------------------------------------------------------------------------
-- Seal key registry
-- ---------------------------------------------------------------------------------------------
select throws_ok($$select public.register_seal_keys('{"1": "00000000000000000000000000000000"}')$$, '42501', null,
                 'a visitor cannot register seal keys');
select throws_ok($$select * from bevsession.seal_keys$$, '42501', null, 'a visitor cannot read the seal keys');
reset role;
set local role anon;
select throws_ok($$select public.register_seal_keys('{"1": "00000000000000000000000000000000"}')$$, '42501', null,
                 'anon cannot register seal keys');
reset role;
set local role service_role;
select is(public.register_seal_keys('{"1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}'), '{"changed": []}'::jsonb,
          'a new key id is recorded');
select is(public.register_seal_keys('{"1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "2": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}'),
          '{"changed": []}'::jsonb, 'the same fingerprint again, plus a new id (rotation): nothing changed');
select is(public.register_seal_keys('{"1": "cccccccccccccccccccccccccccccccc"}'), '{"changed": ["1"]}'::jsonb,
          'a different password under a known id is reported');
select is((select fingerprint from bevsession.seal_keys where key_id = '1'), 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
          'the first fingerprint of an id is kept, so the change keeps being reported');

select * from finish();
rollback;
