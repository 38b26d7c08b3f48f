-- 20261201000000_setup.sql and what holds across every migration: the visitor role, the private
-- schema, the vocabularies (enums) and value rules (domains, whose constraint names are the error
-- messages), identity (current_session_id inlined, require_session_id), errors and time, the API
-- surface, every EXECUTE grant, and default privileges left alone.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor;
grant execute on all functions in schema extensions to session_visitor;
set local search_path = extensions, public;

select plan(244);

-- ---------------------------------------------------------------------------------------------
-- The visitor role
-- ---------------------------------------------------------------------------------------------
select has_role('session_visitor');
select is((select rolcanlogin from pg_catalog.pg_roles where rolname = 'session_visitor'), false,
          'session_visitor cannot log in');
select is((select rolinherit from pg_catalog.pg_roles where rolname = 'session_visitor'), false,
          'session_visitor inherits no other role''s privileges (noinherit)');
select is((select rolbypassrls or rolsuper from pg_catalog.pg_roles where rolname = 'session_visitor'), false,
          'session_visitor is no superuser and does not bypass RLS');
select ok((select 'statement_timeout=8s' = any (rolconfig) from pg_catalog.pg_roles where rolname = 'session_visitor'),
          'session_visitor has the statement timeout Supabase gives authenticated (8s)');
select is_member_of('session_visitor', array['authenticator'],
                    'authenticator may switch to session_visitor');
select ok(pg_catalog.pg_has_role(current_user, 'session_visitor', 'member'),
          'the migration role is a member of session_visitor (pgTAP''s set role)');
select is((select rolbypassrls from pg_catalog.pg_roles where rolname = 'service_role'), true,
          'service_role bypasses RLS');
select has_role('session_worker');
select is((select (rolcanlogin, rolinherit, rolbypassrls or rolsuper) from pg_catalog.pg_roles where rolname = 'session_worker'),
          (false, false, false), 'session_worker cannot log in, inherits nothing, is no superuser and does not bypass RLS');
select ok((select 'statement_timeout=8s' = any (rolconfig) from pg_catalog.pg_roles where rolname = 'session_worker'),
          'session_worker has the same statement timeout (8s)');
select is_member_of('session_worker', array['authenticator'], 'authenticator may switch to session_worker');
select is(pg_catalog.pg_has_role('authenticator', 'session_worker', 'usage'), false,
          'authenticator does not inherit session_worker''s privileges (it must switch)');

-- ---------------------------------------------------------------------------------------------
-- The private schema, and nothing in public but functions
-- ---------------------------------------------------------------------------------------------
select has_schema('bevsession', 'the private schema bevsession exists');
select tables_are('bevsession', array['sessions', 'session_policy', 'user_personas', 'persona_signals',
                                     'conversation_history', 'seal_keys', 'chat_rate_policy', 'seed_imports'],
                  'bevsession holds sessions, session_policy, user_personas, persona_signals, conversation_history, seal_keys, chat_rate_policy and seed_imports');
select is((select count(*)::int from pg_catalog.pg_class
           where relnamespace = 'bevsession'::regnamespace and relkind in ('r', 'p') and not relrowsecurity),
          0, 'every table in bevsession has row-level security enabled');
select is((select count(*)::int from pg_catalog.pg_class
           where relnamespace = 'public'::regnamespace and relkind in ('r', 'p', 'v', 'm', 'f')),
          0, 'public holds no table, view, materialized view or foreign table');
select is((select count(*)::int from pg_catalog.pg_class
           where relnamespace = 'public'::regnamespace and relkind = 'S'),
          0, 'public holds no sequence');
select schema_privs_are('bevsession', 'session_visitor', array['USAGE'], 'session_visitor may use schema bevsession');
select schema_privs_are('bevsession', 'service_role', array['USAGE'], 'service_role may use schema bevsession');
select is(has_schema_privilege('anon', 'bevsession', 'usage'), false, 'anon cannot use schema bevsession');
select schema_privs_are('bevsession', 'authenticated', array['USAGE'],
          'authenticated may use schema bevsession (to read the rows linked to its account, 20261201002000_linking), and nothing more');
select is((select count(*)::int from pg_catalog.pg_namespace n, aclexplode(n.nspacl) a
           where n.oid = 'bevsession'::regnamespace and a.grantee = 0), 0,
          'PUBLIC has no privilege on schema bevsession');
select is((select count(*)::int
           from pg_catalog.pg_class c
           cross join (values ('select'), ('insert'), ('update'), ('delete'), ('truncate'), ('references'), ('trigger')) as p(priv)
           where c.relnamespace = 'bevsession'::regnamespace and c.relkind = 'r'
             and has_table_privilege('anon', c.oid, p.priv)), 0,
          'anon holds no privilege on any table in bevsession');
select is((select array_agg(c.relname || ' ' || p.priv order by c.relname, p.priv)
           from pg_catalog.pg_class c
           cross join (values ('select'), ('insert'), ('update'), ('delete'), ('truncate'), ('references'), ('trigger')) as p(priv)
           where c.relnamespace = 'bevsession'::regnamespace and c.relkind = 'r'
             and has_table_privilege('authenticated', c.oid, p.priv)),
          array['conversation_history select', 'persona_signals select', 'sessions select', 'user_personas select']::text[],
          'authenticated holds exactly SELECT on sessions, user_personas, conversation_history and persona_signals (RLS: its own linked rows), nothing else in bevsession');
select is((select count(*)::int
           from pg_catalog.pg_attribute a
           join pg_catalog.pg_class c on c.oid = a.attrelid
           cross join (values ('anon'), ('authenticated')) as r(role)
           cross join (values ('insert'), ('update'), ('references')) as p(priv)
           where c.relnamespace = 'bevsession'::regnamespace and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
             and has_column_privilege(r.role, c.oid, a.attnum, p.priv)), 0,
          'anon and authenticated may write no column of any table in bevsession');

-- ---------------------------------------------------------------------------------------------
-- Vocabularies: one enum each
-- ---------------------------------------------------------------------------------------------
select enum_has_labels('bevsession', 'session_mode', array['fresh', 'returning', 'data_connected'],
                       'session_mode: fresh, returning, data_connected');
select enum_has_labels('bevsession', 'message_role', array['user', 'assistant', 'system'],
                       'message_role: user, assistant, system');
select enum_has_labels('bevsession', 'signal_strength', array['weak', 'medium', 'strong'],
                       'signal_strength: weak, medium, strong');
select enum_has_labels('bevsession', 'vector_name', array['functional_role', 'org_type', 'org_size', 'product_focus'],
                       'vector_name: the four detection vectors');
select enum_has_labels('bevsession', 'score_name', array[
        'sales_focus_score', 'marketing_focus_score', 'operations_focus_score', 'compliance_focus_score',
        'supplier_score', 'distributor_score', 'craft_score', 'mid_sized_score', 'large_score'],
                       'score_name: the nine persona scores');

-- ---------------------------------------------------------------------------------------------
-- Value rules: one domain each; the constraint name is the error message
-- ---------------------------------------------------------------------------------------------
select is((select pg_catalog.format_type(typbasetype, typtypmod) from pg_catalog.pg_type
           where oid = 'bevsession.score'::regtype), 'numeric(5,4)',
          'bevsession.score is numeric(5,4): four decimals, not the seed''s two');
select is(0.12345::bevsession.score::numeric, 0.1235::numeric, 'a score keeps four decimals (rounded)');
select lives_ok($$select 0::bevsession.score, 1::bevsession.score$$, 'a score may be 0 or 1');
select throws_ok($$select 1.5::bevsession.score$$, '23514',
                 'value for domain bevsession.score violates check constraint "must be a number in [0, 1]"',
                 'a score above 1 is refused: "must be a number in [0, 1]"');
select throws_ok($$select (-0.1)::bevsession.score$$, '23514',
                 'value for domain bevsession.score violates check constraint "must be a number in [0, 1]"',
                 'a score below 0 is refused');
select lives_ok($$select ('a' || repeat('b', 63))::bevsession.identifier$$, 'an identifier may be 64 characters long');
select throws_ok($$select 'Not A Name'::bevsession.identifier$$, '23514',
                 'value for domain bevsession.identifier violates check constraint "must be lower snake_case, 1-64 characters"',
                 'an identifier must be lower snake_case');
select throws_ok($$select ('a' || repeat('b', 64))::bevsession.identifier$$, '23514',
                 'value for domain bevsession.identifier violates check constraint "must be lower snake_case, 1-64 characters"',
                 'an identifier of 65 characters is refused');
select throws_ok($$select ''::bevsession.identifier$$, '23514', null, 'an empty identifier is refused');
select throws_ok($$select array['Bad Name']::bevsession.pain_points$$, '23514',
                 'value for domain bevsession.identifier violates check constraint "must be lower snake_case, 1-64 characters"',
                 'every pain point name is an identifier');
select throws_ok($$select array(select 'p' || i from generate_series(1, 33) i)::bevsession.pain_points$$, '23514',
                 'value for domain bevsession.pain_points violates check constraint "at most 32 pain points, none null"',
                 'at most 32 pain points');
select throws_ok($$select array['a', null]::bevsession.pain_points$$, '23514',
                 'value for domain bevsession.pain_points violates check constraint "at most 32 pain points, none null"',
                 'a null pain point is refused');
select lives_ok($$select '{"roi_proof": 0.5, "sales_velocity": 1}'::jsonb::bevsession.pain_point_confidences$$,
                'pain point confidences: {name: number in [0, 1]}');
select throws_ok($$select '{"roi_proof": 1.5}'::jsonb::bevsession.pain_point_confidences$$, '23514', null,
                 'a confidence above 1 is refused');
select throws_matching($$select '{"roi_proof": 1.5}'::jsonb::bevsession.pain_point_confidences$$,
                       '^value for domain bevsession\.pain_point_confidences violates check constraint "must be an object of at most 32 \{[^"]*\}"$',
                       'the pain point confidences rule reads whole in its error message (the {…} closed, not cut at 63 bytes)');
select throws_ok($$select '{"Bad Name": 0.5}'::jsonb::bevsession.pain_point_confidences$$, '23514', null,
                 'a malformed pain point name in the confidences is refused');
select throws_ok($$select '[]'::jsonb::bevsession.pain_point_confidences$$, '23514', null,
                 'pain point confidences must be an object');
select throws_ok($$select (select jsonb_object_agg('p' || i, 0.5) from generate_series(1, 33) i)::bevsession.pain_point_confidences$$,
                 '23514', null, 'at most 32 pain point confidences');
select throws_ok($$select repeat('q', 1001)::bevsession.question$$, '23514',
                 'value for domain bevsession.question violates check constraint "at most 1000 characters"',
                 'a question has at most 1000 characters');
select throws_ok($$select array(select 'q' || i from generate_series(1, 51) i)::bevsession.questions$$, '23514',
                 'value for domain bevsession.questions violates check constraint "at most 50 questions, none null"',
                 'at most 50 questions');
select throws_ok($$select (select jsonb_agg(i) from generate_series(1, 11) i)::bevsession.detection_history$$, '23514',
                 'value for domain bevsession.detection_history violates check constraint "must be an array of at most 10 detections"',
                 'a detection history holds at most 10 entries');
select lives_ok($$select repeat('x', 8000)::bevsession.message_content$$, 'a message may have 8000 characters');
select throws_ok($$select repeat('x', 8001)::bevsession.message_content$$, '23514',
                 'value for domain bevsession.message_content violates check constraint "at most 8000 characters"',
                 'a message has at most 8000 characters');
select throws_ok($$select repeat('x', 2001)::bevsession.signal_text$$, '23514',
                 'value for domain bevsession.signal_text violates check constraint "at most 2000 characters"',
                 'a signal text has at most 2000 characters');
select throws_ok($$select jsonb_build_object('x', repeat('y', 262144))::bevsession.ui_specification$$, '23514',
                 'value for domain bevsession.ui_specification violates check constraint "at most 262144 bytes of JSON"',
                 'a ui specification has at most 262144 bytes of JSON');
select throws_ok($$select repeat('x', 21)::bevsession.read_time$$, '23514',
                 'value for domain bevsession.read_time violates check constraint "at most 20 characters"',
                 'an estimated read time has at most 20 characters');
select throws_ok($$select repeat('x', 201)::bevsession.brochure_id$$, '23514',
                 'value for domain bevsession.brochure_id violates check constraint "at most 200 characters"',
                 'a brochure id has at most 200 characters');
select throws_ok($$select 0::bevsession.page_size$$, '23514',
                 'value for domain bevsession.page_size violates check constraint "must be between 1 and 200"',
                 'a page holds at least 1 message');
select throws_ok($$select 201::bevsession.page_size$$, '23514',
                 'value for domain bevsession.page_size violates check constraint "must be between 1 and 200"',
                 'a page holds at most 200 messages');
select throws_ok($$select 0::bevsession.token_budget$$, '23514',
                 'value for domain bevsession.token_budget violates check constraint "must be at least 1"',
                 'a token budget is at least 1');
select is((select count(*)::int
           from pg_catalog.pg_type t
           join pg_catalog.pg_constraint c on c.contypid = t.oid
           where t.typnamespace = 'bevsession'::regnamespace and t.typtype = 'd'
             and c.conname !~ '^(must|at most) '), 0,
          'every domain constraint is named as the sentence an argument error shows ("must …" / "at most …")');
select is((select array_agg(c.conname::text order by 1) from pg_catalog.pg_constraint c
           where c.connamespace = 'bevsession'::regnamespace and pg_catalog.octet_length(c.conname) >= 63), null,
          'no constraint name reaches 63 bytes (NAMEDATALEN - 1): none was silently truncated, so every message is whole');
select is((select count(*)::int
           from pg_catalog.pg_type t
           cross join (values ('session_visitor'), ('service_role')) as r(role)
           where t.typnamespace = 'bevsession'::regnamespace and t.typtype in ('e', 'd')
             and t.typname not in ('touch_batch', 'retention_ms', 'purge_batch')
             and not has_type_privilege(r.role, t.oid, 'usage')), 0,
          'session_visitor and service_role may use every vocabulary and value rule');

-- ---------------------------------------------------------------------------------------------
-- Identity: bevsession.current_session_id(), inlined; require_session_id()
-- ---------------------------------------------------------------------------------------------
select function_lang_is('bevsession', 'current_session_id', array[]::name[], 'sql',
                        'current_session_id is a SQL function');
select volatility_is('bevsession', 'current_session_id', array[]::name[], 'stable',
                     'current_session_id is stable (evaluated once per statement where it can be)');
select isnt_definer('bevsession', 'current_session_id', array[]::name[],
                    'current_session_id is not security definer (no auth.jwt() borrowed)');
select is((select proconfig from pg_catalog.pg_proc where oid = 'bevsession.current_session_id()'::regprocedure),
          null, 'current_session_id has no SET clause (proconfig is null)');
select ok((select prosqlbody is not null from pg_catalog.pg_proc where oid = 'bevsession.current_session_id()'::regprocedure),
          'current_session_id is one `return` expression');

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
select ok(pg_temp.plan_of('select bevsession.current_session_id()') !~ 'current_session_id'
          and pg_temp.plan_of('select bevsession.current_session_id()') ~ 'current_setting',
          'the planner inlines current_session_id into its caller (the plan reads the setting, calls no function)');
set local role session_visitor;
select ok(pg_temp.plan_of('select * from bevsession.sessions') !~ 'current_session_id'
          and pg_temp.plan_of('select * from bevsession.sessions') ~ 'current_setting',
          'a visitor''s row-level policy has current_session_id inlined');
reset role;

select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select is(bevsession.current_session_id(), 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'::uuid,
          'current_session_id is the session_id claim of request.jwt.claims');
select is(bevsession.require_session_id(), 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'::uuid,
          'require_session_id returns the claimed session id');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA"}', true);
select is(bevsession.current_session_id(), 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'::uuid,
          'an upper-case uuid claim is the same session');
select set_config('request.jwt.claims', '{"role": "session_visitor"}', true);
select is(bevsession.current_session_id(), null, 'no session_id claim: null');
select throws_ok($$select bevsession.require_session_id()$$, 'PT401', 'no session identity',
                 'require_session_id without a session_id claim raises PT401');
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "not-a-uuid"}', true);
select is(bevsession.current_session_id(), null, 'a session_id claim that is not a uuid: null');
select throws_ok($$select bevsession.require_session_id()$$, 'PT401', 'no session identity',
                 'require_session_id with a malformed claim raises PT401');
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": 42}', true);
select is(bevsession.current_session_id(), null, 'a numeric session_id claim: null');
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa; drop table x"}', true);
select is(bevsession.current_session_id(), null, 'a claim with anything after the uuid: null');
select set_config('request.jwt.claims', '', true);
select is(bevsession.current_session_id(), null, 'empty claims: null');
select throws_ok($$select bevsession.require_session_id()$$, 'PT401', 'no session identity',
                 'require_session_id without claims raises PT401');

-- ---------------------------------------------------------------------------------------------
-- Errors and time
-- ---------------------------------------------------------------------------------------------
select throws_ok($$select bevsession.invalid_argument('history_limit', 'must be between 1 and 200')$$, '22023',
                 'history_limit: must be between 1 and 200', 'invalid_argument raises 22023 "<field>: <problem>"');
select throws_ok($$select bevsession.refuse('content', 'at most 8000 characters')$$, '22023',
                 'content: at most 8000 characters', 'refuse reports a domain''s constraint name as the problem');
select throws_ok($$select bevsession.refuse('role', null, 'bevsession.message_role')$$, '22023',
                 'role: must be one of user, assistant, system', 'refuse lists an enum''s values in order');
select throws_ok($$select bevsession.refuse('x', '')$$, '22023', 'x: is not valid',
                 'refuse without a rule or vocabulary says "is not valid"');
select is(bevsession.to_ms('1970-01-01 00:00:01.2345+00'), 1234::bigint, 'to_ms: milliseconds since the epoch, truncated');
select is(bevsession.to_ms(null), null, 'to_ms(null) is null');
select is(bevsession.from_ms(1790000000123), '2026-09-21 14:13:20.123+00'::timestamptz, 'from_ms: the inverse of to_ms');
select is(bevsession.to_ms(bevsession.from_ms(1790000000123)), 1790000000123::bigint, 'to_ms(from_ms(ms)) = ms');

-- ---------------------------------------------------------------------------------------------
-- Functions: the API surface and its properties
-- ---------------------------------------------------------------------------------------------
select functions_are('public', array[
    'get_session', 'get_session_policy', 'clear_session', 'forget_session', 'touch_sessions', 'purge_sessions',
    'update_persona', 'record_persona_signal',
    'add_conversation_message', 'get_conversation_history', 'begin_chat_turn', 'finish_chat_turn',
    'register_seal_keys', 'admin_session_stats', 'link_session', 'validate_sessions',
    'adopt_session', 'import_seed_sessions', 'import_seed_personas', 'import_seed_messages', 'import_seed_signals',
    'import_seed_summary', 'read_session'],
    'public holds exactly the twenty-three RPC functions');
select is((select count(*)::int from pg_catalog.pg_proc
           where pronamespace = 'public'::regnamespace and prosecdef), 0,
          'every public function is security invoker');
select is((select array_agg(p.oid::regprocedure::text order by 1) from pg_catalog.pg_proc p
           where p.pronamespace = 'bevsession'::regnamespace and p.prosecdef), null,
          'no function in bevsession is security definer');
select is((select count(*)::int from pg_catalog.pg_proc
           where pronamespace = 'public'::regnamespace
             and not coalesce('search_path=""' = any (proconfig), false)), 0,
          'every public function sets search_path to ''''');
select is((select count(*)::int from pg_catalog.pg_proc
           where pronamespace = 'public'::regnamespace and prorettype <> 'jsonb'::regtype), 0,
          'every public function returns jsonb');
select is((select array_agg(p.oid::regprocedure::text order by 1) from pg_catalog.pg_proc p
           where p.pronamespace = 'bevsession'::regnamespace and p.prolang = (select oid from pg_language where lanname = 'plpgsql')
             and not coalesce('search_path=""' = any (p.proconfig), false)), null,
          'every PL/pgSQL helper in bevsession sets search_path to ''''');
select is((select array_agg(p.oid::regprocedure::text order by 1) from pg_catalog.pg_proc p
           where p.pronamespace = 'bevsession'::regnamespace and p.prolang = (select oid from pg_language where lanname = 'sql')
             and (p.proconfig is not null or p.prosecdef)), null,
          'no SQL helper in bevsession has a SET clause or security definer (so each can be inlined)');

-- ---------------------------------------------------------------------------------------------
-- EXECUTE grants: 23 functions × 5 roles, and the exact grantee list of each
-- ---------------------------------------------------------------------------------------------
create temporary table api (sig text primary key, visitor boolean not null, worker boolean not null default false);
insert into api values
    ('public.get_session(boolean)', true),
    ('public.get_session_policy()', true),
    ('public.clear_session()', true),
    ('public.forget_session()', true),
    ('public.touch_sessions(uuid[],bigint[])', false),
    ('public.purge_sessions(bigint,integer)', false),
    ('public.update_persona(jsonb)', true),
    ('public.record_persona_signal(text,text,text,text[],jsonb,text,text)', true),
    ('public.add_conversation_message(text,text,text,jsonb,text,text[])', true),
    ('public.get_conversation_history(integer,bigint,integer)', true),
    ('public.begin_chat_turn(text,jsonb,integer,text)', true),
    ('public.finish_chat_turn(text,jsonb,text,text)', true),
    ('public.register_seal_keys(jsonb)', false),
    ('public.admin_session_stats()', false),
    ('public.link_session()', true),
    ('public.validate_sessions(uuid[],bigint[])', false),
    ('public.adopt_session(jsonb,boolean)', true),
    ('public.import_seed_sessions(jsonb,timestamp with time zone)', false),
    ('public.import_seed_personas(jsonb,timestamp with time zone)', false),
    ('public.import_seed_messages(jsonb,timestamp with time zone)', false),
    ('public.import_seed_signals(jsonb,timestamp with time zone)', false),
    ('public.import_seed_summary(timestamp with time zone)', false),
    ('public.read_session()', true);
-- the edge worker's own calls (20261201003200_least_privilege.sql)
update api set worker = true where sig in ('public.touch_sessions(uuid[],bigint[])', 'public.validate_sessions(uuid[],bigint[])',
                                           'public.register_seal_keys(jsonb)', 'public.get_session_policy()');

select is(has_function_privilege(r.role, f.sig, 'execute'),
          r.role = 'service_role' or (f.visitor and r.role = 'session_visitor') or (f.worker and r.role = 'session_worker'),
          format('%s %s execute %s', r.role,
                 case when r.role = 'service_role' or (f.visitor and r.role = 'session_visitor')
                           or (f.worker and r.role = 'session_worker') then 'may' else 'may not' end, f.sig))
from api as f
cross join (values ('anon'), ('authenticated'), ('session_visitor'), ('session_worker'), ('service_role')) as r(role)
order by f.sig, r.role;

select is((select array_agg(case when a.grantee = 0 then 'PUBLIC' else a.grantee::regrole::text end order by 1)
           from pg_catalog.pg_proc p, aclexplode(p.proacl) a
           where p.oid = f.sig::regprocedure and a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner),
          array(select g from unnest(array['service_role', 'session_visitor', 'session_worker']) as g
                where g = 'service_role' or (f.visitor and g = 'session_visitor') or (f.worker and g = 'session_worker')
                order by 1),
          format('%s is granted to %s only (not PUBLIC, anon or authenticated)', f.sig,
                 concat_ws(', ', case when f.visitor then 'session_visitor' end,
                           case when f.worker then 'session_worker' end, 'service_role')))
from api as f
order by f.sig;

select is((select count(*)::int from pg_catalog.pg_proc p, aclexplode(p.proacl) a
           where p.pronamespace in ('public'::regnamespace, 'bevsession'::regnamespace)
             and a.grantee = 0 and a.privilege_type = 'EXECUTE'), 0,
          'PUBLIC may execute no function in public or bevsession');
select is((select count(*)::int from pg_catalog.pg_proc p
           where p.pronamespace in ('public'::regnamespace, 'bevsession'::regnamespace) and p.proacl is null), 0,
          'no function in public or bevsession falls back to the default ACL (PUBLIC execute)');
select is((select array_agg(p.oid::regprocedure::text order by 1) from pg_catalog.pg_proc p
           cross join (values ('anon'), ('authenticated')) as r(role)
           where p.pronamespace = 'bevsession'::regnamespace and has_function_privilege(r.role, p.oid, 'execute')), null,
          'anon and authenticated may execute no helper in bevsession');
select is((select array_agg(p.oid::regprocedure::text order by 1) from pg_catalog.pg_proc p
           where p.pronamespace = 'bevsession'::regnamespace and p.prorettype <> 'trigger'::regtype
             and not (has_function_privilege('session_visitor', p.oid, 'execute')
                      and has_function_privilege('service_role', p.oid, 'execute'))), null,
          'session_visitor and service_role may execute every helper in bevsession (the API runs as the caller)');
select is(has_function_privilege('session_visitor', 'bevsession.keep_revocation_permanent()', 'execute'), false,
          'the trigger function is executable by nobody but its owner');

-- ---------------------------------------------------------------------------------------------
-- Default privileges: the migrations alter none (every object is granted by name instead)
-- ---------------------------------------------------------------------------------------------
-- sql/shim.sql (a plain PostgreSQL only) sets Supabase's permissive defaults on schema public:
-- the migration role's new tables, functions and sequences there go to postgres, anon,
-- authenticated and service_role. The migrations must neither depend on that nor change it.
select is((select count(*)::int from pg_catalog.pg_default_acl
           where defaclrole = current_user::regrole and defaclnamespace = 0), 0,
          'the migrations set no database-wide default privileges (no global entry for the migration role)');
select is((select count(*)::int from pg_catalog.pg_default_acl
           where defaclnamespace = 'bevsession'::regnamespace), 0,
          'there are no default privileges in schema bevsession');
select ok((select bool_and(array['anon', 'authenticated']::regrole[] <@ (select array_agg(a.grantee::regrole) from aclexplode(d.defaclacl) a))
                  and count(*) = 3
           from pg_catalog.pg_default_acl d
           where d.defaclrole = current_user::regrole and d.defaclnamespace = 'public'::regnamespace
             and d.defaclobjtype in ('r', 'f', 'S')),
          'the platform''s default privileges on public (tables, functions, sequences to anon and authenticated) are left as they were');
select case when to_regclass('auth.users') is null
            then is((select array_agg(format('%s %s %s', d.defaclrole::regrole, d.defaclnamespace::regnamespace, d.defaclobjtype)
                                      order by d.defaclobjtype)
                     from pg_catalog.pg_default_acl d),
                    array[format('%s public S', current_user), format('%s public f', current_user), format('%s public r', current_user)],
                    'on the shim, pg_default_acl holds only the shim''s three entries (public: tables, functions, sequences)')
            else skip('a Supabase database: its own default privileges are not the shim''s', 1) end;

select * from finish();
rollback;
