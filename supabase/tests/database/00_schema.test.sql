-- The shape of the database: private tables, RLS everywhere, no table in public, the visitor
-- role, and who may execute which function.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = extensions, public;

select plan(111);

-- ---------------------------------------------------------------------------------------------
-- Schemas and tables
-- ---------------------------------------------------------------------------------------------
select has_schema('bevsession', 'the private schema bevsession exists');
select tables_are('bevsession', array['sessions', 'personas', 'messages', 'persona_signals',
                                     'session_policy', 'seal_keys'],
                  'bevsession holds the four session tables, the session policy and the seal key registry');
select is((select count(*)::int from pg_catalog.pg_class
           where relnamespace = 'public'::regnamespace and relkind in ('r', 'p', 'v', 'm', 'f')),
          0, 'public holds no table, view, materialized view or foreign table');
select is((select count(*)::int from pg_catalog.pg_class
           where relnamespace = 'public'::regnamespace and relkind = 'S'),
          0, 'public holds no sequence');

-- RLS enabled on every table
select is((select relrowsecurity from pg_catalog.pg_class where oid = format('bevsession.%I', t)::regclass),
          true, format('RLS is enabled on bevsession.%s', t))
from unnest(array['sessions', 'personas', 'messages', 'persona_signals', 'session_policy',
                  'seal_keys']) as t;

select policies_are('bevsession', 'sessions', array[
    'Visitors can read their own session',
    'Visitors can start their own session',
    'Visitors can update their own session'], 'sessions: read / start / update own');
select policies_are('bevsession', 'personas', array[
    'Visitors can read their own persona',
    'Visitors can create the persona of their live session',
    'Visitors can update their own persona',
    'Visitors can delete their own persona'], 'personas: read / create / update / delete own');
select policies_are('bevsession', 'messages', array[
    'Visitors can read their own messages',
    'Visitors can add messages to their live session',
    'Visitors can delete their own messages'], 'messages: read / add / delete own, never update');
select policies_are('bevsession', 'persona_signals', array[
    'Visitors can read their own signals',
    'Visitors can record signals of their live session',
    'Visitors can delete their own signals'], 'persona_signals: read / record / delete own, never update');

-- columns the seed names, and ours
select columns_are('bevsession', 'messages', array[
    'id', 'seq', 'session_id', 'user_id', 'message_role', 'message_content', 'persona_snapshot',
    'pain_points_inferred', 'ui_specification', 'generation_mode', 'estimated_read_time', 'created_at',
    'token_count'],
    'messages has every column of the seed''s conversation_history plus seq and token_count');
select has_column('bevsession', 'personas', c, format('personas.%s exists', c))
from unnest(array['sales_focus_score', 'large_score', 'pain_points_confidence', 'questions_asked',
                  'functional_role', 'functional_role_confidence', 'functional_role_history',
                  'product_focus_history', 'vectors_updated_at', 'last_updated']) as c;
select col_type_is('bevsession', 'personas', 'sales_focus_score', 'bevsession.score',
                   'scores use the domain bevsession.score');
select is((select pg_catalog.format_type(typbasetype, typtypmod) from pg_catalog.pg_type
           where oid = 'bevsession.score'::regtype), 'numeric(5,4)',
          'bevsession.score is numeric(5,4): four decimals, not the seed''s two');
select col_is_unique('bevsession', 'personas', array['session_id'], 'one persona per session');
select col_is_unique('bevsession', 'messages', array['seq'], 'messages.seq is unique (keyset cursor)');
select has_index('bevsession', 'messages', 'messages_session_seq_idx', array['session_id', 'seq'],
                 'keyset index on messages (session_id, seq desc)');
select fk_ok('bevsession', 'messages', 'session_id', 'bevsession', 'sessions', 'id');
select fk_ok('bevsession', 'persona_signals', 'session_id', 'bevsession', 'sessions', 'id');
select fk_ok('bevsession', 'personas', 'session_id', 'bevsession', 'sessions', 'id');

-- ---------------------------------------------------------------------------------------------
-- Roles
-- ---------------------------------------------------------------------------------------------
select has_role('session_visitor');
select is((select rolcanlogin from pg_catalog.pg_roles where rolname = 'session_visitor'), false,
          'session_visitor cannot log in');
select is_member_of('session_visitor', array['authenticator'],
                    'authenticator may switch to session_visitor');
select is((select rolbypassrls from pg_catalog.pg_roles where rolname = 'service_role'), true,
          'service_role bypasses RLS');
select is(has_schema_privilege('anon', 'bevsession', 'usage'), false, 'anon cannot use schema bevsession');
select is(has_schema_privilege('authenticated', 'bevsession', 'usage'), false,
          'authenticated cannot use schema bevsession');

-- ---------------------------------------------------------------------------------------------
-- Functions: the API surface, its properties, and its grants
-- ---------------------------------------------------------------------------------------------
select functions_are('public', array[
    'get_session', 'update_persona', 'record_persona_signal', 'add_conversation_message',
    'get_conversation_history', 'clear_session', 'forget_session', 'begin_chat_turn',
    'finish_chat_turn', 'admin_session_stats', 'get_session_policy', 'register_seal_keys',
    'purge_sessions', 'touch_sessions'],
    'public holds exactly the fourteen RPC functions');
select is((select count(*)::int from pg_catalog.pg_proc
           where pronamespace = 'public'::regnamespace and prosecdef), 0,
          'every public function is security invoker');
select is((select count(*)::int from pg_catalog.pg_proc
           where pronamespace = 'public'::regnamespace
             and not coalesce('search_path=""' = any (proconfig), false)), 0,
          'every public function sets search_path to ''''');
select is((select count(*)::int from pg_catalog.pg_proc
           where pronamespace = 'public'::regnamespace and prorettype <> 'jsonb'::regtype), 0,
          'every public function returns jsonb');
select is((select array_agg(p.oid::regprocedure::text order by 1) from pg_catalog.pg_proc p
           where p.pronamespace = 'bevsession'::regnamespace and p.prosecdef),
          array['bevsession.current_session_id()'],
          'the only security definer function is bevsession.current_session_id()');

-- execute grants: 14 functions x 4 roles
select is(has_function_privilege(r.role, f.sig, 'execute'), r.role = 'service_role' or (f.visitor and r.role = 'session_visitor'),
          format('%s %s execute %s', r.role, case when r.role = 'service_role' or (f.visitor and r.role = 'session_visitor') then 'may' else 'may not' end, f.sig))
from (values
        ('public.get_session(boolean)', true),
        ('public.update_persona(jsonb)', true),
        ('public.record_persona_signal(text,text,text,text[],jsonb,text,text)', true),
        ('public.add_conversation_message(text,text,text,jsonb,text,text[])', true),
        ('public.get_conversation_history(integer,bigint,integer)', true),
        ('public.clear_session()', true),
        ('public.forget_session()', true),
        ('public.begin_chat_turn(text,jsonb,integer,text)', true),
        ('public.finish_chat_turn(text,jsonb,text,text)', true),
        ('public.admin_session_stats()', false),
        ('public.get_session_policy()', true),
        ('public.register_seal_keys(jsonb)', false),
        ('public.purge_sessions(bigint,integer)', false),
        ('public.touch_sessions(uuid[],bigint[])', false)
     ) as f(sig, visitor)
cross join (values ('anon'), ('authenticated'), ('session_visitor'), ('service_role')) as r(role)
order by f.sig, r.role;

select is((select count(*)::int from pg_catalog.pg_proc p, aclexplode(p.proacl) a
           where p.pronamespace in ('public'::regnamespace, 'bevsession'::regnamespace)
             and a.grantee = 0 and a.privilege_type = 'EXECUTE'), 0,
          'PUBLIC may execute no function in public or bevsession');
select is((select count(*)::int from pg_catalog.pg_proc p
           where p.pronamespace in ('public'::regnamespace, 'bevsession'::regnamespace) and p.proacl is null), 0,
          'no function in public or bevsession falls back to the default ACL (PUBLIC execute)');
select ok(exists (select 1 from pg_catalog.pg_default_acl d
                  where d.defaclrole = current_user::regrole and d.defaclnamespace = 0 and d.defaclobjtype = 'f'
                    and not exists (select 1 from aclexplode(d.defaclacl) a where a.grantee = 0)),
          'default privileges: new functions are not executable by PUBLIC');

-- ---------------------------------------------------------------------------------------------
-- CHECK constraints guard what the functions validate
-- ---------------------------------------------------------------------------------------------
insert into bevsession.sessions (id) values ('00000000-0000-4000-8000-000000000001');
select throws_ok($$insert into bevsession.personas (session_id, sales_focus_score)
                   values ('00000000-0000-4000-8000-000000000001', 1.5)$$,
                 '23514', null, 'a score above 1 violates a CHECK');
select throws_ok($$insert into bevsession.personas (session_id, pain_points_detected)
                   values ('00000000-0000-4000-8000-000000000001', array['Not A Name'])$$,
                 '23514', null, 'a malformed pain point name violates a CHECK');
select throws_ok($$insert into bevsession.messages (session_id, message_role, message_content)
                   values ('00000000-0000-4000-8000-000000000001', 'bot', 'x')$$,
                 '23514', null, 'an unknown message role violates a CHECK');
select throws_ok(format($$insert into bevsession.messages (session_id, message_role, message_content)
                   values ('00000000-0000-4000-8000-000000000001', 'user', %L)$$,
                   repeat('x', bevsession.max_message_chars() + 1)),
                 '23514', null, 'a message longer than max_message_chars() violates a CHECK');
select throws_ok($$insert into bevsession.persona_signals (session_id, signal_type, signal_text, signal_strength,
                   confidence_before, confidence_after)
                   values ('00000000-0000-4000-8000-000000000001', 'x', 'y', 'huge', 0, 0)$$,
                 '23514', null, 'an unknown signal strength violates a CHECK');
select throws_ok($$insert into bevsession.personas (session_id, functional_role_history)
                   values ('00000000-0000-4000-8000-000000000001',
                           (select jsonb_agg(i) from generate_series(1, 11) i))$$,
                 '23514', null, 'a detection history of 11 entries violates a CHECK');
select throws_ok($$update bevsession.sessions set current_mode = 'sleepy'
                   where id = '00000000-0000-4000-8000-000000000001'$$,
                 '23514', null, 'an unknown current_mode violates a CHECK');
update bevsession.sessions set revoked_at = now() where id = '00000000-0000-4000-8000-000000000001';
select throws_ok($$update bevsession.sessions set revoked_at = null
                   where id = '00000000-0000-4000-8000-000000000001'$$,
                 'PT403', 'session revoked: revocation is permanent',
                 'revocation is permanent, even for the table owner');

select * from finish();
rollback;
