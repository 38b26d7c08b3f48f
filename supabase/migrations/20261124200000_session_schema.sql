-- =============================================================================================
-- 20261124200000_session_schema.sql — where sessions live, and who may touch them
-- =============================================================================================
--
-- The seed keeps three tables in `public` (user_personas, conversation_history, persona_signals)
-- and lets application code read-modify-write them. Here:
--
--   * the tables live in the private schema `bevsession`: PostgREST does not expose it and
--     anon/authenticated have no privilege on it; the only API is the functions in `public`
--     (20261124200200_rpc_api.sql);
--   * a visitor acts as the least-privilege role `session_visitor` with a `session_id` claim,
--     and row-level security compares every row with that claim — RLS, not application code,
--     keeps one session out of another's rows;
--   * `service_role` (bypassrls) keeps full access for admin work: analytics, retention purge.
--
-- Sections: 1 role · 2 default privileges · 3 schema · 4 limits and value rules · 5 identity ·
-- 6 tables · 7 indexes · 8 triggers · 9 row-level security · 10 privileges · 11 session policy.
--
-- Why the small helpers here and in 20261124200100_persona_logic.sql are PL/pgSQL and not
-- `language sql`: `python -m bench` (pgbench on the RPCs, with `track_functions = all`) showed
-- that most of a call's time went into small helpers, not into the work they describe. Every
-- function has `set search_path = ''` (our rule, kept), and that SET clause stops PostgreSQL
-- from inlining a SQL function into its caller; a SQL function that is not inlined is parsed and
-- planned again in every transaction that calls it (its cache lives only as long as the calling
-- expression's state), then run through a full executor start/stop on every call. Measured per
-- call as `language sql`:
--
--   bevsession.current_session_id()  ~25 µs (and auth.jwt() twice inside it), called by every
--                                    RLS policy and identity check: ~14 times per chat turn
--   bevsession.persona_json()        ~260-500 µs on its first call in a transaction
--   bevsession.session_json()        ~50-85 µs     bevsession.to_ms()  ~12-20 µs (20 per turn)
--   bevsession.save_persona()        ~300-470 µs (its UPDATE planned again in each transaction)
--   CHECK helpers (is_pain_point_list, is_confidence_map, is_question_list, is_identifier,
--   is_detection_history)            10-100 µs per row written
--   bevsession.compute_confidence()  ~120-155 µs, and the small persona arithmetic (with_score,
--   score_of, strength_weight, clamp01, reinforce) 10-40 µs each
--
-- PL/pgSQL keeps a function's compiled body and its statement plans for the life of the
-- connection, and evaluates a plain `return <expression>` without starting an executor. So these
-- hot helpers are written in PL/pgSQL: the same expression as the SQL form, or the same test
-- spelled as a loop. Constant functions (max_*(), score_names(), …) stay `language sql`.
--
-- Plain SQL for `supabase db push` and our migrator; no psql meta-commands.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The visitor role
-- ---------------------------------------------------------------------------------------------
-- Roles are cluster-wide: a second database in the same cluster (tests create many) finds the
-- role already there, so create it only when missing and tolerate a concurrent creator.
-- nologin: nobody connects as it; PostgREST's `authenticator` switches to it when a JWT says
-- {"role": "session_visitor"}, and our asyncpg transport does the same with `set local role`.

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
    -- The migration role (postgres) must be able to `set role session_visitor` for pgTAP tests
    -- (`supabase test db` connects as postgres, which is not a superuser on Supabase and, on
    -- PostgreSQL 15, not a member of the roles it creates). A superuser is a member of every role.
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
-- 2. Default privileges
-- ---------------------------------------------------------------------------------------------
-- PostgreSQL lets PUBLIC execute every new function, and Supabase (older projects) adds grants
-- to anon/authenticated on everything new in `public`. We want the opposite: nothing callable
-- unless granted by name. The first statement is global (per-schema default privileges can only
-- add to the global ones, never take PUBLIC's execute away); the others undo Supabase's
-- per-schema grants for `public`. Every function of ours is therefore granted explicitly.

alter default privileges revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from anon, authenticated;
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;


-- ---------------------------------------------------------------------------------------------
-- 3. The private schema
-- ---------------------------------------------------------------------------------------------

create schema if not exists bevsession;

comment on schema bevsession is
    'Private: session tables and helper functions. Not exposed by the REST API; use the RPCs in public.';

revoke all on schema bevsession from public;
grant usage on schema bevsession to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 4. Limits and value rules — the one place each number and pattern is written down
-- ---------------------------------------------------------------------------------------------
-- CHECK constraints and the RPC argument checks both call these, so a limit changes here only.

create function bevsession.max_message_chars() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 8000 $$;
comment on function bevsession.max_message_chars() is
    'Longest message_content (characters). Enough for a chat turn; bounds what one request can store.';

create function bevsession.max_signal_text_chars() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 2000 $$;
comment on function bevsession.max_signal_text_chars() is
    'Longest signal_text (the evidence of a persona signal), in characters.';

create function bevsession.max_evidence_chars() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 200 $$;
comment on function bevsession.max_evidence_chars() is
    'Evidence kept in a detection-history entry (signal_text cut to this many characters): the persona travels with every response.';

create function bevsession.max_history_entries() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 10 $$;
comment on function bevsession.max_history_entries() is
    'Newest detections kept per vector history (the seed let them grow without bound).';

create function bevsession.max_pain_points() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 32 $$;
comment on function bevsession.max_pain_points() is
    'Most pain point names in one list (detected on a persona, or inferred by one signal or message).';

create function bevsession.max_questions() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 50 $$;
comment on function bevsession.max_questions() is
    'Newest questions_asked kept on a persona; older ones are dropped when more are appended.';

create function bevsession.max_question_chars() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 1000 $$;
comment on function bevsession.max_question_chars() is 'Longest entry of questions_asked, in characters.';

create function bevsession.max_ui_specification_bytes() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 262144 $$;
comment on function bevsession.max_ui_specification_bytes() is
    'Largest ui_specification (bytes of its JSON text): a generated page spec, not a file store.';

create function bevsession.max_estimated_read_time_chars() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 20 $$;
comment on function bevsession.max_estimated_read_time_chars() is
    'Longest estimated_read_time ("3 min read"), in characters — the seed''s VARCHAR(20).';

create function bevsession.max_brochure_id_chars() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 200 $$;
comment on function bevsession.max_brochure_id_chars() is 'Longest last_generated_brochure_id, in characters.';

create function bevsession.max_history_page() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 200 $$;
comment on function bevsession.max_history_page() is
    'Most messages one get_conversation_history / begin_chat_turn call returns.';

create function bevsession.max_signals_per_turn() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 50 $$;
comment on function bevsession.max_signals_per_turn() is 'Most signals one begin_chat_turn call may apply.';

create function bevsession.is_identifier(p_value text) returns boolean
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return p_value ~ '^[a-z][a-z0-9_]{0,63}$';
end
$$;
comment on function bevsession.is_identifier(text) is
    'Pain point names, signal types, vector values and generation modes: lower snake_case, 1-64 characters.';

-- The SQL version's `p_list is not null and cardinality <= max and no null element and every
-- element an identifier` (never null), as early returns.
create function bevsession.is_pain_point_list(p_list text[]) returns boolean
    language plpgsql immutable parallel safe set search_path = ''
as $$
declare
    v_item text;
begin
    if p_list is null
       or pg_catalog.cardinality(p_list) > bevsession.max_pain_points()
       or pg_catalog.array_position(p_list, null) is not null then
        return false;
    end if;
    foreach v_item in array p_list loop
        if not bevsession.is_identifier(v_item) then
            return false;
        end if;
    end loop;
    return true;
end
$$;
comment on function bevsession.is_pain_point_list(text[]) is
    'A list of pain point names: no nulls, each an identifier, at most max_pain_points().';

-- Not an object → false; otherwise every entry an identifier with a number in [0, 1] (an
-- empty object passes) and at most max_pain_points() keys. The entry test is the SQL version's,
-- evaluated left to right as before (a non-number is never cast), stopping at the first failure.
create function bevsession.is_confidence_map(p_map jsonb) returns boolean
    language plpgsql immutable parallel safe set search_path = ''
as $$
declare
    v_key text;
    v_value jsonb;
    v_all boolean := true;
    v_ok boolean;
begin
    if pg_catalog.jsonb_typeof(p_map) is distinct from 'object' then
        return false;
    end if;
    for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(p_map) as e loop
        v_ok := bevsession.is_identifier(v_key)
                and pg_catalog.jsonb_typeof(v_value) = 'number'
                and v_value::numeric between 0 and 1;
        v_all := v_all and v_ok;  -- bool_and: false wins, null only without a false
        if v_ok is false then
            exit;
        end if;
    end loop;
    return v_all and (select count(*) from pg_catalog.jsonb_object_keys(p_map)) <= bevsession.max_pain_points();
end
$$;
comment on function bevsession.is_confidence_map(jsonb) is
    'pain_points_confidence: an object {pain point name: number in [0, 1]}.';

create function bevsession.is_detection_history(p_history jsonb) returns boolean
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return pg_catalog.jsonb_typeof(p_history) = 'array'
       and pg_catalog.jsonb_array_length(p_history) <= bevsession.max_history_entries();
end
$$;
comment on function bevsession.is_detection_history(jsonb) is
    'A detection vector history: a JSON array of at most max_history_entries() entries.';

-- As is_pain_point_list: the SQL version's conjunction (never null), as early returns.
create function bevsession.is_question_list(p_list text[]) returns boolean
    language plpgsql immutable parallel safe set search_path = ''
as $$
declare
    v_item text;
begin
    if p_list is null
       or pg_catalog.cardinality(p_list) > bevsession.max_questions()
       or pg_catalog.array_position(p_list, null) is not null then
        return false;
    end if;
    foreach v_item in array p_list loop
        if pg_catalog.char_length(v_item) > bevsession.max_question_chars() then
            return false;
        end if;
    end loop;
    return true;
end
$$;
comment on function bevsession.is_question_list(text[]) is 'questions_asked: no nulls, bounded count and length.';

-- Scores and confidences. The seed declares them DECIMAL(3,2); two decimals would round away
-- small signal deltas (a weak signal adding 0.005, pain point confidence 0.1 → 0.19 → 0.271…),
-- so we keep four: numeric(5,4), always within [0, 1].
create domain bevsession.score as numeric(5, 4)
    constraint score_between_0_and_1 check (value between 0 and 1);
comment on domain bevsession.score is 'A persona score or confidence: a number in [0, 1] with four decimals.';


-- ---------------------------------------------------------------------------------------------
-- 5. Identity: which session is calling
-- ---------------------------------------------------------------------------------------------

-- Why security definer: RLS policies call this as the querying role, and reading the claims
-- goes through auth.jwt() in schema `auth`, which on Supabase belongs to supabase_admin and
-- which our migration role (postgres) may use but cannot grant to session_visitor. The function
-- only reads the request's own GUC, so running it as its owner gives nothing away.
-- A missing or malformed claim gives null, which matches no row.
-- PL/pgSQL (see the header): auth.jwt() is read once per call (the SQL version's sub-select was
-- flattened into two calls of auth.jwt()).
create function bevsession.current_session_id() returns uuid
    language plpgsql stable security definer parallel safe
    set search_path = ''
as $$
declare
    v_claim text := auth.jwt() ->> 'session_id';
begin
    if v_claim ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        return v_claim::uuid;
    end if;
    return null;  -- missing or not a uuid: matches no row
end
$$;
comment on function bevsession.current_session_id() is
    'The session_id claim of the current request (request.jwt.claims) as uuid; null when absent or not a uuid.';


-- ---------------------------------------------------------------------------------------------
-- 6. Tables
-- ---------------------------------------------------------------------------------------------

-- One row per visitor session (the seed's SessionData, minus what only the cookie needs).
create table bevsession.sessions (
    id                          uuid primary key,
    user_id                     uuid,
    created_at                  timestamptz not null default now(),
    last_activity_at            timestamptz not null default now(),
    last_message_at             timestamptz,
    last_message                text
        constraint sessions_last_message_length
        check (pg_catalog.char_length(last_message) <= bevsession.max_message_chars()),
    message_count               integer not null default 0
        constraint sessions_message_count_not_negative check (message_count >= 0),
    current_mode                text not null default 'fresh'
        constraint sessions_current_mode_valid
        check (current_mode in ('fresh', 'returning', 'data_connected')),
    has_completed_onboarding    boolean not null default false,
    has_brochure                boolean not null default false,
    is_data_connected           boolean not null default false,
    last_generated_brochure_id  text
        constraint sessions_brochure_id_length check (pg_catalog.char_length(last_generated_brochure_id) <= bevsession.max_brochure_id_chars()),
    last_brochure_generated_at  timestamptz,
    -- clear_session sets revoked_at; forget_session sets both. Never undone (trigger below).
    revoked_at                  timestamptz,
    forgotten_at                timestamptz,
    -- Why a "theoretical arrival time" (GCRA) and not a counter per window: one timestamp per
    -- session is the whole bucket of the chat rate limit (bevsession.take_chat_turn), a burst of
    -- the full allowance is allowed, and the wait is exact (no window edge where twice the limit
    -- gets through). null = no chat turn yet.
    chat_rate_tat               timestamptz,
    constraint sessions_forgotten_means_revoked check (forgotten_at is null or revoked_at is not null)
);
comment on table bevsession.sessions is
    'One row per anonymous visitor session; the id is the session_id claim. A revoked row is refused for good.';
comment on column bevsession.sessions.chat_rate_tat is
    'Chat rate limit state (GCRA): the theoretical arrival time of the next chat turn; null before the first one.';

-- The seed's user_personas, one row per session, plus the four detection vectors that the seed
-- kept only in the cookie.
create table bevsession.personas (
    id                          uuid primary key default gen_random_uuid(),
    user_id                     uuid,
    session_id                  uuid not null unique
        references bevsession.sessions (id) on delete cascade,
    -- functional role
    sales_focus_score           bevsession.score not null default 0,
    marketing_focus_score       bevsession.score not null default 0,
    operations_focus_score      bevsession.score not null default 0,
    compliance_focus_score      bevsession.score not null default 0,
    -- organisation type
    supplier_score              bevsession.score not null default 0,
    distributor_score           bevsession.score not null default 0,
    -- organisation size
    craft_score                 bevsession.score not null default 0,
    mid_sized_score             bevsession.score not null default 0,
    large_score                 bevsession.score not null default 0,
    -- pain points
    pain_points_detected        text[] not null default '{}'
        constraint personas_pain_points_valid check (bevsession.is_pain_point_list(pain_points_detected)),
    pain_points_confidence      jsonb not null default '{}'
        constraint personas_pain_points_confidence_valid check (bevsession.is_confidence_map(pain_points_confidence)),
    -- metadata
    overall_confidence          bevsession.score not null default 0,
    total_interactions          integer not null default 0
        constraint personas_total_interactions_not_negative check (total_interactions >= 0),
    questions_asked             text[] not null default '{}'
        constraint personas_questions_valid check (bevsession.is_question_list(questions_asked)),
    -- the four detection vectors: current value, its confidence, the newest detections
    functional_role             text
        constraint personas_functional_role_valid check (bevsession.is_identifier(functional_role)),
    functional_role_confidence  bevsession.score not null default 0,
    functional_role_history     jsonb not null default '[]'
        constraint personas_functional_role_history_valid check (bevsession.is_detection_history(functional_role_history)),
    org_type                    text
        constraint personas_org_type_valid check (bevsession.is_identifier(org_type)),
    org_type_confidence         bevsession.score not null default 0,
    org_type_history            jsonb not null default '[]'
        constraint personas_org_type_history_valid check (bevsession.is_detection_history(org_type_history)),
    org_size                    text
        constraint personas_org_size_valid check (bevsession.is_identifier(org_size)),
    org_size_confidence         bevsession.score not null default 0,
    org_size_history            jsonb not null default '[]'
        constraint personas_org_size_history_valid check (bevsession.is_detection_history(org_size_history)),
    product_focus               text
        constraint personas_product_focus_valid check (bevsession.is_identifier(product_focus)),
    product_focus_confidence    bevsession.score not null default 0,
    product_focus_history       jsonb not null default '[]'
        constraint personas_product_focus_history_valid check (bevsession.is_detection_history(product_focus_history)),
    vectors_updated_at          timestamptz,
    last_updated                timestamptz not null default now(),
    created_at                  timestamptz not null default now(),
    -- an empty vector has no confidence
    constraint personas_empty_vectors_have_no_confidence check (
            (functional_role is not null or functional_role_confidence = 0)
        and (org_type is not null or org_type_confidence = 0)
        and (org_size is not null or org_size_confidence = 0)
        and (product_focus is not null or product_focus_confidence = 0))
);
comment on table bevsession.personas is
    'The seed''s user_personas: who we think the visitor is. Changed only through the persona RPCs.';

-- The seed's conversation_history. `seq` is the keyset cursor of get_conversation_history.
create table bevsession.messages (
    id                      uuid primary key default gen_random_uuid(),
    seq                     bigint generated always as identity
        constraint messages_seq_unique unique,
    session_id              uuid not null references bevsession.sessions (id) on delete cascade,
    user_id                 uuid,
    message_role            text not null
        constraint messages_role_valid check (message_role in ('user', 'assistant', 'system')),
    message_content         text not null
        constraint messages_content_length
        check (pg_catalog.char_length(message_content) <= bevsession.max_message_chars()),
    persona_snapshot        jsonb,
    pain_points_inferred    text[] not null default '{}'
        constraint messages_pain_points_valid check (bevsession.is_pain_point_list(pain_points_inferred)),
    ui_specification        jsonb
        constraint messages_ui_specification_size
        check (pg_catalog.octet_length(ui_specification::text) <= bevsession.max_ui_specification_bytes()),
    generation_mode         text
        constraint messages_generation_mode_valid check (bevsession.is_identifier(generation_mode)),
    estimated_read_time     text
        constraint messages_estimated_read_time_length check (pg_catalog.char_length(estimated_read_time) <= bevsession.max_estimated_read_time_chars()),
    created_at              timestamptz not null default now(),
    -- set by the trigger messages_token_count (section 8) from bevsession.count_tokens()
    token_count             integer not null
        constraint messages_token_count_check check (token_count >= 0)
);
comment on table bevsession.messages is
    'The seed''s conversation_history: every chat message with the persona snapshot taken when it was stored.';
comment on column bevsession.messages.token_count is 'Tokens of the message by bevsession.count_tokens().';

-- The seed's persona_signals: the audit trail of every signal applied to a persona.
create table bevsession.persona_signals (
    id                      uuid primary key default gen_random_uuid(),
    session_id              uuid not null references bevsession.sessions (id) on delete cascade,
    signal_type             text not null
        constraint persona_signals_type_valid check (bevsession.is_identifier(signal_type)),
    signal_text             text not null
        constraint persona_signals_text_length
        check (pg_catalog.char_length(signal_text) <= bevsession.max_signal_text_chars()),
    signal_strength         text not null
        constraint persona_signals_strength_valid check (signal_strength in ('weak', 'medium', 'strong')),
    pain_points_inferred    text[] not null default '{}'
        constraint persona_signals_pain_points_valid check (bevsession.is_pain_point_list(pain_points_inferred)),
    score_updates           jsonb not null default '{}'
        constraint persona_signals_score_updates_object check (pg_catalog.jsonb_typeof(score_updates) = 'object'),
    vector                  text
        constraint persona_signals_vector_valid
        check (vector in ('functional_role', 'org_type', 'org_size', 'product_focus')),
    vector_value            text
        constraint persona_signals_vector_value_valid check (bevsession.is_identifier(vector_value)),
    confidence_before       bevsession.score not null,
    confidence_after        bevsession.score not null,
    created_at              timestamptz not null default now(),
    constraint persona_signals_vector_has_value check ((vector is null) = (vector_value is null))
);
comment on table bevsession.persona_signals is
    'Audit trail: one row per persona signal, with overall confidence before and after.';


-- ---------------------------------------------------------------------------------------------
-- 7. Indexes
-- ---------------------------------------------------------------------------------------------
-- Primary keys and unique constraints index sessions.id, personas.session_id (the seed's
-- idx_up_session_id), messages.seq. The rest: the seed's indexes, the keyset cursor, the foreign
-- keys that RLS and forget_session filter on, and retention purge.

create index sessions_last_activity_at_idx on bevsession.sessions (last_activity_at);
create index sessions_user_id_idx on bevsession.sessions (user_id) where user_id is not null;

create index personas_user_id_idx on bevsession.personas (user_id) where user_id is not null;   -- seed idx_up_user_id
create index personas_created_at_idx on bevsession.personas (created_at);                         -- seed idx_up_created_at

create index messages_session_seq_idx on bevsession.messages (session_id, seq desc);              -- keyset history
create index messages_session_created_at_idx on bevsession.messages (session_id, created_at);     -- seed idx_ch_session_messages
create index messages_user_id_idx on bevsession.messages (user_id) where user_id is not null;     -- seed idx_ch_user_id
create index messages_generation_mode_idx on bevsession.messages (generation_mode)
    where generation_mode is not null;                                                             -- seed idx_ch_generation_mode

create index persona_signals_session_created_at_idx on bevsession.persona_signals (session_id, created_at);


-- ---------------------------------------------------------------------------------------------
-- 8. Triggers
-- ---------------------------------------------------------------------------------------------

-- Why: "a revoked session id is refused" must hold even for a caller that writes the table
-- directly (service_role, a future function with a bug). Revocation and forgetting are one-way.
create function bevsession.keep_revocation_permanent() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    if old.revoked_at is not null and new.revoked_at is distinct from old.revoked_at then
        raise exception using errcode = 'PT403', message = 'session revoked: revocation is permanent',
            detail = pg_catalog.format('session %s was revoked at %s', old.id, old.revoked_at);
    end if;
    if old.forgotten_at is not null and new.forgotten_at is distinct from old.forgotten_at then
        raise exception using errcode = 'PT403', message = 'session revoked: a forgotten session stays forgotten',
            detail = pg_catalog.format('session %s was forgotten at %s', old.id, old.forgotten_at);
    end if;
    if new.id is distinct from old.id then
        raise exception using errcode = '22023', message = 'id: a session id never changes';
    end if;
    return new;
end
$$;
comment on function bevsession.keep_revocation_permanent() is
    'Trigger: revoked_at / forgotten_at, once set, never change; a session id never changes.';

create trigger sessions_keep_revocation_permanent
    before update on bevsession.sessions
    for each row execute function bevsession.keep_revocation_permanent();

-- Why token counts: an LLM prompt has a token budget, not a message count
-- (get_conversation_history's p_token_budget). The counting rule, documented: about four
-- characters of English per token (the usual rule of thumb for BPE tokenizers), rounded up, plus
-- 4 tokens per message for the role and separators of chat formats. A real tokenizer plugs in by
-- replacing this one function (same signature); messages stored afterwards use it, older rows
-- keep their count.
create function bevsession.count_tokens(p_content text) returns integer
    language sql immutable parallel safe
    set search_path = ''
as $$
    select (pg_catalog.ceil(pg_catalog.char_length(coalesce(p_content, '')) / 4.0))::integer + 4
$$;
comment on function bevsession.count_tokens(text) is
    'Estimated tokens of one message: ceil(characters / 4) + 4. Replace to plug in a real tokenizer.';

create function bevsession.set_token_count() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    new.token_count := bevsession.count_tokens(new.message_content);
    return new;
end
$$;
comment on function bevsession.set_token_count() is 'Trigger: every stored message gets its token count.';

create trigger messages_token_count
    before insert on bevsession.messages
    for each row execute function bevsession.set_token_count();


-- ---------------------------------------------------------------------------------------------
-- 9. Row-level security
-- ---------------------------------------------------------------------------------------------
-- Enabled on every table. Not FORCEd: the owner (the migration role) is not a request role, and
-- the RPCs are security invoker, so a visitor's call runs as session_visitor and meets these
-- policies. service_role has BYPASSRLS (admin work); anon and authenticated have no privilege at
-- all (section 10), so no policy names them. `(select …)` makes the claim lookup run once per
-- statement instead of once per row.
-- New child rows (persona, message, signal) additionally need a live (not revoked) session.

alter table bevsession.sessions enable row level security;
alter table bevsession.personas enable row level security;
alter table bevsession.messages enable row level security;
alter table bevsession.persona_signals enable row level security;

-- sessions
create policy "Visitors can read their own session"
    on bevsession.sessions for select to session_visitor
    using (id = (select bevsession.current_session_id()));

create policy "Visitors can start their own session"
    on bevsession.sessions for insert to session_visitor
    with check (id = (select bevsession.current_session_id()) and revoked_at is null);

create policy "Visitors can update their own session"
    on bevsession.sessions for update to session_visitor
    using (id = (select bevsession.current_session_id()))
    with check (id = (select bevsession.current_session_id()));

-- personas
create policy "Visitors can read their own persona"
    on bevsession.personas for select to session_visitor
    using (session_id = (select bevsession.current_session_id()));

create policy "Visitors can create the persona of their live session"
    on bevsession.personas for insert to session_visitor
    with check (
        session_id = (select bevsession.current_session_id())
        and exists (select 1 from bevsession.sessions s
                    where s.id = session_id and s.revoked_at is null));

create policy "Visitors can update their own persona"
    on bevsession.personas for update to session_visitor
    using (session_id = (select bevsession.current_session_id()))
    with check (session_id = (select bevsession.current_session_id()));

create policy "Visitors can delete their own persona"
    on bevsession.personas for delete to session_visitor
    using (session_id = (select bevsession.current_session_id()));

-- messages (immutable once written: no update policy)
create policy "Visitors can read their own messages"
    on bevsession.messages for select to session_visitor
    using (session_id = (select bevsession.current_session_id()));

create policy "Visitors can add messages to their live session"
    on bevsession.messages for insert to session_visitor
    with check (
        session_id = (select bevsession.current_session_id())
        and exists (select 1 from bevsession.sessions s
                    where s.id = session_id and s.revoked_at is null));

create policy "Visitors can delete their own messages"
    on bevsession.messages for delete to session_visitor
    using (session_id = (select bevsession.current_session_id()));

-- persona_signals (an audit trail: no update policy)
create policy "Visitors can read their own signals"
    on bevsession.persona_signals for select to session_visitor
    using (session_id = (select bevsession.current_session_id()));

create policy "Visitors can record signals of their live session"
    on bevsession.persona_signals for insert to session_visitor
    with check (
        session_id = (select bevsession.current_session_id())
        and exists (select 1 from bevsession.sessions s
                    where s.id = session_id and s.revoked_at is null));

create policy "Visitors can delete their own signals"
    on bevsession.persona_signals for delete to session_visitor
    using (session_id = (select bevsession.current_session_id()));


-- ---------------------------------------------------------------------------------------------
-- 10. Table and function privileges
-- ---------------------------------------------------------------------------------------------
-- session_visitor gets only what the RPCs do, column by column where it writes; service_role
-- gets everything; anon and authenticated get nothing (and PUBLIC nothing).

revoke all on all tables in schema bevsession from public, anon, authenticated;
revoke all on all functions in schema bevsession from public, anon, authenticated;

grant all on all tables in schema bevsession to service_role;
grant usage, select on all sequences in schema bevsession to service_role;

grant select on bevsession.sessions to session_visitor;
grant insert (id) on bevsession.sessions to session_visitor;
grant update (last_activity_at, last_message_at, last_message, message_count, current_mode,
              has_completed_onboarding, has_brochure, is_data_connected,
              last_generated_brochure_id, last_brochure_generated_at, revoked_at, forgotten_at)
    on bevsession.sessions to session_visitor;
-- begin_chat_turn runs as the visitor (security invoker), on its own row only (RLS).
grant update (chat_rate_tat) on bevsession.sessions to session_visitor;

grant select, delete on bevsession.personas to session_visitor;
grant insert (session_id, user_id) on bevsession.personas to session_visitor;
grant update (sales_focus_score, marketing_focus_score, operations_focus_score, compliance_focus_score,
              supplier_score, distributor_score, craft_score, mid_sized_score, large_score,
              pain_points_detected, pain_points_confidence, overall_confidence, total_interactions,
              questions_asked,
              functional_role, functional_role_confidence, functional_role_history,
              org_type, org_type_confidence, org_type_history,
              org_size, org_size_confidence, org_size_history,
              product_focus, product_focus_confidence, product_focus_history,
              vectors_updated_at, last_updated)
    on bevsession.personas to session_visitor;

grant select, delete on bevsession.messages to session_visitor;
grant insert (session_id, user_id, message_role, message_content, persona_snapshot,
              pain_points_inferred, ui_specification, generation_mode, estimated_read_time)
    on bevsession.messages to session_visitor;

grant select, delete on bevsession.persona_signals to session_visitor;
grant insert (session_id, signal_type, signal_text, signal_strength, pain_points_inferred,
              score_updates, vector, vector_value, confidence_before, confidence_after)
    on bevsession.persona_signals to session_visitor;

-- The helpers above are called inside CHECKs, policies and RPCs running as these roles.
grant execute on all functions in schema bevsession to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 11. Session policy: the two expiries, one row
-- ---------------------------------------------------------------------------------------------
-- Two expiries, both enforced in SQL too (not only in the edge worker's cookie check): an
-- ABSOLUTE lifetime counted from creation (activity cannot keep a session alive for ever) and an
-- IDLE timeout counted from the last activity. A session past either is refused with SQLSTATE
-- PT410 'session expired' (bevsession.check_live); the edge worker starts a fresh one.
--
-- Why a table and not constants: operators change lifetimes without a migration
-- (`update bevsession.session_policy set idle_timeout = '30 minutes'`, as the owner or
-- service_role). Keep SESSION_TTL / SESSION_IDLE_TIMEOUT of the edge worker equal to these;
-- public.get_session_policy() lets it check at start-up. After section 10 on purpose: its
-- privileges are its own (service_role may read and update it, not more).
create table bevsession.session_policy (
    singleton         boolean primary key default true check (singleton),
    absolute_lifetime interval not null default interval '24 hours'
                      check (absolute_lifetime > interval '0'),
    idle_timeout      interval          default interval '2 hours'
                      check (idle_timeout is null or idle_timeout > interval '0')
);
comment on table bevsession.session_policy is
    'One row: absolute_lifetime (from created_at) and idle_timeout (from last_activity_at; null = none).';
insert into bevsession.session_policy default values;

alter table bevsession.session_policy enable row level security;
create policy "Everyone with a session role can read the session policy"
    on bevsession.session_policy for select
    to session_visitor, service_role
    using (true);
grant select on bevsession.session_policy to session_visitor;
grant select, update on bevsession.session_policy to service_role;

create function bevsession.policy() returns bevsession.session_policy
    language sql stable
    set search_path = ''
as $$
    select p from bevsession.session_policy as p where p.singleton
$$;
comment on function bevsession.policy() is 'The session policy row.';
grant execute on function bevsession.policy() to session_visitor, service_role;
