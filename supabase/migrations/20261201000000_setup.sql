-- =============================================================================================
-- 20261201000000_setup.sql — the visitor role, the private schema, the vocabularies, identity
-- =============================================================================================
--
-- The seed keeps three tables in `public` and lets application code read-modify-write them.
-- Here the tables live in the private schema `bevsession` (PostgREST does not expose it), the
-- only API is the functions in `public`, and a visitor acts as the least-privilege role
-- `session_visitor` with a `session_id` JWT claim that every row-level policy compares with.
--
-- The feature migrations that follow each hold their tables, triggers, policies, helpers, API
-- functions and grants: sessions, personas, chat, admin. Every object is granted explicitly,
-- next to its definition; this migration does not alter the database's default privileges, so
-- on a shared Supabase database other applications keep the grants they expect.
--
-- Sections: 1 the visitor role · 2 the private schema · 3 vocabularies and value rules ·
-- 4 identity · 5 errors and time.
--
-- Performance rules, measured with `python -m bench` (track_functions = all), kept throughout:
--   * a one-expression helper is `language sql` with a `return` body and no SET clause, so the
--     planner inlines it into its caller (a SET clause or SECURITY DEFINER prevents that, and a
--     SQL function that is not inlined is planned again in every transaction);
--   * helpers with statements or loops are PL/pgSQL, which keeps their plans for the life of
--     the connection; they carry `set search_path = ''` and qualify every name;
--   * a limit is a literal in the one domain or CHECK that enforces it; argument checks coerce
--     to that domain, so a limit is written once (the constraint's name is its error message).
--
-- Plain SQL for `supabase db push` and our migrator; no psql meta-commands.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The visitor role
-- ---------------------------------------------------------------------------------------------
-- Roles are cluster-wide: a second database of the same cluster (tests create many) finds the
-- role already there, so it is created only when missing, tolerating a concurrent creator.
-- nologin: PostgREST's `authenticator` switches to it when a JWT says
-- {"role": "session_visitor"}, and the asyncpg transport does the same with `set role`.
-- The migration role must be a member too, for pgTAP's `set role` (`supabase test db` connects
-- as postgres, which is no superuser on Supabase and, on PostgreSQL 15 and older, not a member of
-- the roles it creates).

do $$
begin
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'session_visitor') then
        begin
            create role session_visitor nologin noinherit;
        exception
            when duplicate_object or unique_violation then null;
        end;
    end if;
    if not pg_catalog.pg_has_role('authenticator', 'session_visitor', 'member') then
        grant session_visitor to authenticator;
    end if;
    if not pg_catalog.pg_has_role(current_user, 'session_visitor', 'member') then
        execute pg_catalog.format('grant session_visitor to %I', current_user);
    end if;
end
$$;

comment on role session_visitor is
    'One anonymous visitor session: the session_id JWT claim names the only rows it may touch.';

-- Same ceiling as Supabase gives `authenticated`; PostgREST applies role settings on switch.
alter role session_visitor set statement_timeout = '8s';


-- ---------------------------------------------------------------------------------------------
-- 2. The private schema
-- ---------------------------------------------------------------------------------------------

create schema if not exists bevsession;

comment on schema bevsession is
    'Private: session tables and helper functions. Not exposed by the REST API; use the RPCs in public.';

revoke all on schema bevsession from public;
grant usage on schema bevsession to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 3. Vocabularies and value rules
-- ---------------------------------------------------------------------------------------------
-- Each vocabulary is one enum and each value rule one domain. A constraint's name is the
-- sentence an argument error shows ("content: at most 8000 characters"), so it states the
-- literal its CHECK enforces; python_client/bevsession/limits.py mirrors the numbers and a test
-- compares the two.

create type bevsession.session_mode as enum ('fresh', 'returning', 'data_connected');
comment on type bevsession.session_mode is 'What the assistant knows of a visitor: new, back again, or with connected data.';

create type bevsession.message_role as enum ('user', 'assistant', 'system');
comment on type bevsession.message_role is 'Who wrote a chat message.';

create type bevsession.signal_strength as enum ('weak', 'medium', 'strong');
comment on type bevsession.signal_strength is 'How strongly a signal speaks for what it suggests: weight 0.10, 0.25, 0.50.';

create type bevsession.vector_name as enum ('functional_role', 'org_type', 'org_size', 'product_focus');
comment on type bevsession.vector_name is 'The four detection vectors of a persona.';

create type bevsession.score_name as enum (
    'sales_focus_score', 'marketing_focus_score', 'operations_focus_score', 'compliance_focus_score',
    'supplier_score', 'distributor_score',
    'craft_score', 'mid_sized_score', 'large_score');
comment on type bevsession.score_name is 'The nine persona scores: functional role ×4, organisation type ×2, organisation size ×3.';

-- Scores and confidences. The seed declares them DECIMAL(3,2); two decimals would round away
-- small signal deltas (a weak signal adding 0.005, pain point confidence 0.1 → 0.19 → 0.271…),
-- so we keep four.
create domain bevsession.score as numeric(5, 4)
    constraint "must be a number in [0, 1]" check (value between 0 and 1);
comment on domain bevsession.score is 'A persona score or confidence: a number in [0, 1] with four decimals.';

create domain bevsession.identifier as text
    constraint "must be lower snake_case, 1-64 characters" check (value ~ '^[a-z][a-z0-9_]{0,63}$');
comment on domain bevsession.identifier is
    'Pain point names, signal types, vector values and generation modes.';

create domain bevsession.pain_points as bevsession.identifier[]
    constraint "at most 32 pain points, none null"
    check (pg_catalog.cardinality(value) <= 32 and pg_catalog.array_position(value, null) is null);
comment on domain bevsession.pain_points is 'A list of pain point names.';

create domain bevsession.pain_point_confidences as jsonb
    constraint "must be an object of at most 32 {name: number in [0, 1]}"
    check (pg_catalog.jsonb_typeof(value) = 'object'
           and pg_catalog.jsonb_array_length(pg_catalog.jsonb_path_query_array(value, '$.keyvalue()')) <= 32
           and not pg_catalog.jsonb_path_exists(value,
               '$.keyvalue() ? (!(@.key like_regex "^[a-z][a-z0-9_]{0,63}$") || @.value.type() != "number" || @.value < 0 || @.value > 1)'));
comment on domain bevsession.pain_point_confidences is 'A persona''s confidence per pain point.';

create domain bevsession.question as text
    constraint "at most 1000 characters" check (pg_catalog.char_length(value) <= 1000);
create domain bevsession.questions as bevsession.question[]
    constraint "at most 50 questions, none null"
    check (pg_catalog.cardinality(value) <= 50 and pg_catalog.array_position(value, null) is null);
comment on domain bevsession.questions is 'Questions a visitor asked (the newest 50 are kept).';

create domain bevsession.detection_history as jsonb
    constraint "must be an array of at most 10 detections"
    check (pg_catalog.jsonb_typeof(value) = 'array' and pg_catalog.jsonb_array_length(value) <= 10);
comment on domain bevsession.detection_history is 'The newest detections of one vector (the seed let them grow without bound).';

create domain bevsession.message_content as text
    constraint "at most 8000 characters" check (pg_catalog.char_length(value) <= 8000);
comment on domain bevsession.message_content is
    'A chat message (the HTTP API allows 4000): enough for a turn, bounded per request.';

create domain bevsession.signal_text as text
    constraint "at most 2000 characters" check (pg_catalog.char_length(value) <= 2000);
comment on domain bevsession.signal_text is 'The evidence of a persona signal.';

create domain bevsession.ui_specification as jsonb
    constraint "at most 262144 bytes of JSON" check (pg_catalog.octet_length(value::text) <= 262144);
comment on domain bevsession.ui_specification is 'A generated page specification, not a file store.';

create domain bevsession.read_time as text
    constraint "at most 20 characters" check (pg_catalog.char_length(value) <= 20);
comment on domain bevsession.read_time is 'estimated_read_time ("3 min read"): the seed''s VARCHAR(20).';

create domain bevsession.brochure_id as text
    constraint "at most 200 characters" check (pg_catalog.char_length(value) <= 200);
comment on domain bevsession.brochure_id is 'last_generated_brochure_id.';

create domain bevsession.page_size as integer
    constraint "must be between 1 and 200" check (value between 1 and 200);
comment on domain bevsession.page_size is 'Messages one history page or chat turn returns (the HTTP API: 100).';

create domain bevsession.token_budget as integer
    constraint "must be at least 1" check (value >= 1);
comment on domain bevsession.token_budget is 'Tokens a history window may hold.';

grant usage on type bevsession.session_mode, bevsession.message_role, bevsession.signal_strength,
    bevsession.vector_name, bevsession.score_name, bevsession.score, bevsession.identifier,
    bevsession.pain_points, bevsession.pain_point_confidences, bevsession.question,
    bevsession.questions, bevsession.detection_history, bevsession.message_content,
    bevsession.signal_text, bevsession.ui_specification, bevsession.read_time,
    bevsession.brochure_id, bevsession.page_size, bevsession.token_budget
    to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 4. Identity
-- ---------------------------------------------------------------------------------------------
-- The session id is the `session_id` claim of the request (PostgREST puts the JWT's claims in
-- `request.jwt.claims`; the asyncpg transport sets the same). One stable SQL expression, as
-- Supabase writes auth.uid(): it reads the setting directly (auth.jwt() belongs to
-- supabase_admin on Supabase and cannot be granted to session_visitor), has no SET clause and
-- is not SECURITY DEFINER, so the planner inlines it into every policy and caller. A missing or
-- malformed claim gives null, which matches no row.

create function bevsession.current_session_id() returns uuid
    language sql stable parallel safe
return case
    when nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'session_id'
         ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    then (nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'session_id')::uuid
end;
comment on function bevsession.current_session_id() is
    'The session_id claim of the current request as uuid; null when absent or not a uuid.';
revoke all on function bevsession.current_session_id() from public;
grant execute on function bevsession.current_session_id() to session_visitor, service_role;

-- Why: RLS already hides other sessions, but a call without identity should say so (PT401 →
-- HTTP 401) rather than fail later with an empty result or a policy violation.
create function bevsession.require_session_id() returns uuid
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.current_session_id();
begin
    if v_session_id is null then
        raise exception using errcode = 'PT401', message = 'no session identity',
            detail = 'request.jwt.claims has no session_id claim, or it is not a uuid',
            hint = 'call as session_visitor with request.jwt.claims = {"role": "session_visitor", "session_id": "<uuid>"}';
    end if;
    return v_session_id;
end
$$;
comment on function bevsession.require_session_id() is
    'The calling session id; raises PT401 "no session identity" when the claim is missing or invalid.';
revoke all on function bevsession.require_session_id() from public;
grant execute on function bevsession.require_session_id() to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 5. Errors and time
-- ---------------------------------------------------------------------------------------------

-- Why: every argument error is SQLSTATE 22023 with a message that starts with the argument's
-- name, so the caller (and PostgREST's error JSON) can say what was wrong without parsing prose.
create function bevsession.invalid_argument(field text, problem text) returns void
    language plpgsql
    set search_path = ''
as $$
begin
    raise exception using errcode = '22023', message = field || ': ' || problem;
end
$$;
comment on function bevsession.invalid_argument(text, text) is
    'Raise 22023 "<field>: <problem>", the one way argument errors are reported.';
revoke all on function bevsession.invalid_argument(text, text) from public;
grant execute on function bevsession.invalid_argument(text, text) to session_visitor, service_role;

-- The seed's timestamps are Date.now() numbers; the API speaks them too.
create function bevsession.to_ms(at timestamptz) returns bigint
    language sql stable parallel safe
return pg_catalog.floor(extract(epoch from at) * 1000)::bigint;
comment on function bevsession.to_ms(timestamptz) is 'Milliseconds since the Unix epoch; null stays null.';
revoke all on function bevsession.to_ms(timestamptz) from public;
grant execute on function bevsession.to_ms(timestamptz) to session_visitor, service_role;

create function bevsession.from_ms(ms numeric) returns timestamptz
    language sql immutable parallel safe
return pg_catalog.to_timestamp(ms / 1000.0);
comment on function bevsession.from_ms(numeric) is 'The inverse of to_ms.';
revoke all on function bevsession.from_ms(numeric) from public;
grant execute on function bevsession.from_ms(numeric) to session_visitor, service_role;

-- Why: argument checks coerce a value to the domain or enum that holds its rule, inside a block
-- that catches the failure (check_violation, invalid_text_representation) and calls this: the
-- domain's constraint name is the problem ("content: at most 8000 characters"); an enum lists
-- its values.
create function bevsession.refuse(field text, rule text, vocabulary regtype default null) returns void
    language plpgsql stable
    set search_path = ''
as $$
begin
    if nullif(rule, '') is null and vocabulary is not null then
        rule := 'must be one of ' || (select pg_catalog.string_agg(e.enumlabel::text, ', ' order by e.enumsortorder)
                                     from pg_catalog.pg_enum as e where e.enumtypid = vocabulary);
    end if;
    perform bevsession.invalid_argument(field, coalesce(nullif(rule, ''), 'is not valid'));
end
$$;
comment on function bevsession.refuse(text, text, regtype) is
    'Raise 22023 "<field>: <rule>" for a value its domain (rule = constraint name) or enum (vocabulary) refused.';
revoke all on function bevsession.refuse(text, text, regtype) from public;
grant execute on function bevsession.refuse(text, text, regtype) to session_visitor, service_role;
