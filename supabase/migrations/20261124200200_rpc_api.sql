-- =============================================================================================
-- 20261124200200_rpc_api.sql — the API: the functions in `public` (docs/rpc-api.md)
-- =============================================================================================
--
-- `public` holds no table and no view: these functions are the whole API surface that PostgREST
-- exposes (POST /rest/v1/rpc/<name>) and that the asyncpg transport calls the same way.
--
--   * security invoker: a visitor's call runs as session_visitor, so every statement inside is
--     subject to the RLS policies of 20261124200000_session_schema.sql; the session id comes
--     from the request's claims, never from an argument;
--   * set search_path = '': every name is schema-qualified;
--   * one call = one statement = one transaction: a raised error undoes everything the call did;
--     writers lock the session row first, so concurrent calls of one session queue, never lose
--     an update;
--   * each function is followed by its grants: PUBLIC, anon and authenticated may execute none;
--     visitor functions go to session_visitor and service_role, admin ones to service_role only;
--   * every function returns jsonb, the shapes of docs/rpc-api.md.
--
-- Errors: PT401 no session identity · PT403 session revoked · PT404 session not found ·
-- 22023 "<argument>: <problem>". PostgREST turns PTxyz into HTTP status xyz.
--
-- Sections: 1 the seed's six operations (get_session, update_persona, record_persona_signal,
-- add_conversation_message, get_conversation_history, clear_session) · 2 forget_session ·
-- 3 the chat turn in two calls · 4 admin.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The seed's six operations
-- ---------------------------------------------------------------------------------------------

-- getSession(): get or create the caller's session. Creating is idempotent under races (two
-- first requests of one visitor create one row). A revoked session is refused (PT403), so a
-- cleared or stolen cookie cannot bring it back.
create function public.get_session(p_touch boolean default true) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_ensured record;
    v_persona bevsession.personas;
begin
    select * into v_ensured from bevsession.ensure_session(v_session_id, coalesce(p_touch, true));
    select * into v_persona from bevsession.personas where session_id = v_session_id;
    if not found then
        v_persona := bevsession.lock_persona(v_ensured.session);
    end if;
    return pg_catalog.jsonb_build_object(
        'session', bevsession.session_json(v_ensured.session),
        'persona', bevsession.persona_json(v_persona),
        'created', v_ensured.created);
end
$$;
comment on function public.get_session(boolean) is
    'Get or create the calling session (claims: session_id); touch last_activity_at unless p_touch is false. Returns {session, persona, created}.';
revoke execute on function public.get_session(boolean) from public, anon, authenticated;
grant execute on function public.get_session(boolean) to session_visitor, service_role;


-- updatePersona(updates): absolute values, applied to the locked row, so two concurrent
-- updates of different fields both survive (the seed wrote the whole persona from the cookie).
create function public.update_persona(p_updates jsonb) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_session bevsession.sessions;
    v_wanted bevsession.sessions;
    v_persona bevsession.personas;
begin
    perform bevsession.check_update_keys(p_updates);
    v_session := bevsession.touch_session(v_session_id);
    v_persona := bevsession.lock_persona(v_session);

    v_persona := bevsession.save_persona(bevsession.apply_persona_updates(v_persona, p_updates, now()));

    v_wanted := bevsession.apply_session_updates(v_session, p_updates);
    if v_wanted is distinct from v_session then
        update bevsession.sessions set
            current_mode               = v_wanted.current_mode,
            has_completed_onboarding   = v_wanted.has_completed_onboarding,
            has_brochure               = v_wanted.has_brochure,
            is_data_connected          = v_wanted.is_data_connected,
            last_generated_brochure_id = v_wanted.last_generated_brochure_id,
            last_brochure_generated_at = v_wanted.last_brochure_generated_at
        where id = v_session_id
        returning * into v_session;
    end if;

    return pg_catalog.jsonb_build_object(
        'persona', bevsession.persona_json(v_persona),
        'session', bevsession.session_json(v_session));
end
$$;
comment on function public.update_persona(jsonb) is
    'Set scores (clamped), merge pain points / confidences, append questions, set mode and flags; recompute confidence; +1 interaction. Returns {persona, session}.';
revoke execute on function public.update_persona(jsonb) from public, anon, authenticated;
grant execute on function public.update_persona(jsonb) to session_visitor, service_role;


-- recordPersonaSignal(...): apply one signal and write its audit row, atomically.
create function public.record_persona_signal(
    p_signal_type text,
    p_signal_text text,
    p_signal_strength text,
    p_pain_points_inferred text[] default '{}',
    p_score_updates jsonb default '{}',
    p_vector text default null,
    p_vector_value text default null
) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_signal jsonb;
    v_session bevsession.sessions;
    v_persona bevsession.personas;
    v_recorded record;
begin
    v_signal := bevsession.parse_signal(pg_catalog.jsonb_build_object(
        'signal_type',          p_signal_type,
        'signal_text',          p_signal_text,
        'signal_strength',      p_signal_strength,
        'pain_points_inferred', pg_catalog.to_jsonb(p_pain_points_inferred),
        'score_updates',        p_score_updates,
        'vector',               p_vector,
        'vector_value',         p_vector_value), 'p_');
    v_session := bevsession.touch_session(v_session_id);
    v_persona := bevsession.lock_persona(v_session);

    select * into v_recorded from bevsession.record_signal(v_persona, v_signal);
    v_persona := bevsession.save_persona(v_recorded.persona);

    return pg_catalog.jsonb_build_object(
        'signal',  bevsession.signal_json(v_recorded.signal),
        'persona', bevsession.persona_json(v_persona));
end
$$;
comment on function public.record_persona_signal(text, text, text, text[], jsonb, text, text) is
    'Apply one persona signal (score deltas, pain points, detection vector) and write its audit row. Returns {signal, persona}.';
revoke execute on function public.record_persona_signal(text, text, text, text[], jsonb, text, text) from public, anon, authenticated;
grant execute on function public.record_persona_signal(text, text, text, text[], jsonb, text, text) to session_visitor, service_role;


-- addConversationMessage(role, content, mode, uiSpecification): the persona snapshot is taken
-- in SQL from the stored persona, and the session's counters move in the same transaction.
create function public.add_conversation_message(
    p_role text,
    p_content text,
    p_generation_mode text default null,
    p_ui_specification jsonb default null,
    p_estimated_read_time text default null,
    p_pain_points_inferred text[] default '{}'
) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_session bevsession.sessions;
    v_stored record;
begin
    perform bevsession.check_message_args(p_role, p_content, p_generation_mode, p_ui_specification,
                                          p_estimated_read_time, p_pain_points_inferred);
    v_session := bevsession.lock_session(v_session_id);
    select * into v_stored from bevsession.append_message(
        v_session, bevsession.lock_persona(v_session), p_role, p_content, p_generation_mode,
        p_ui_specification, p_estimated_read_time, p_pain_points_inferred);
    return pg_catalog.jsonb_build_object(
        'message', bevsession.message_json(v_stored.message),
        'session', bevsession.session_json(v_stored.session));
end
$$;
comment on function public.add_conversation_message(text, text, text, jsonb, text, text[]) is
    'Store one message with the current persona snapshot; message_count + 1, last_message(_at). Returns {message, session}.';
revoke execute on function public.add_conversation_message(text, text, text, jsonb, text, text[]) from public, anon, authenticated;
grant execute on function public.add_conversation_message(text, text, text, jsonb, text, text[]) to session_visitor, service_role;


-- getConversationHistory(): pages instead of everything (the seed returned the whole history):
-- newest first by keyset, returned oldest first, optionally cut to a token budget (for an LLM
-- prompt; see bevsession.history_window). Read-only (stable), so PostgREST may call it with GET
-- in a read-only transaction. Like every operation but get_session and begin_chat_turn it needs
-- an existing session (PT404) and refuses a revoked (PT403) or expired (PT410) one.
create function public.get_conversation_history(
    p_limit integer default 50,
    p_before bigint default null,
    p_token_budget integer default null
)
    returns jsonb
    language plpgsql
    stable
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
begin
    perform bevsession.check_history_limit(p_limit, 'p_limit');
    if p_token_budget is not null and p_token_budget < 1 then
        perform bevsession.invalid_argument('p_token_budget', 'must be at least 1');
    end if;
    perform bevsession.find_session(v_session_id);
    return bevsession.history_window(v_session_id, p_limit, p_before, p_token_budget);
end
$$;
comment on function public.get_conversation_history(integer, bigint, integer) is
    'The newest p_limit (1..200) messages with seq < p_before that fit p_token_budget, oldest first. Returns {messages, tokens, next_before}.';
revoke execute on function public.get_conversation_history(integer, bigint, integer) from public, anon, authenticated;
grant execute on function public.get_conversation_history(integer, bigint, integer) to session_visitor, service_role;


-- clearSession(): the seed only dropped the cookie, so a stolen cookie kept working until it
-- expired. Here the session is revoked for good; its data stays for analytics. Idempotent: a
-- second call returns the first revocation time.
create function public.clear_session() returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_session bevsession.sessions;
begin
    v_session := bevsession.lock_session(v_session_id, p_allow_revoked => true);
    if v_session.revoked_at is null then
        update bevsession.sessions set revoked_at = now() where id = v_session_id returning * into v_session;
    end if;
    return pg_catalog.jsonb_build_object(
        'session_id', v_session.id,
        'revoked_at', bevsession.to_ms(v_session.revoked_at));
end
$$;
comment on function public.clear_session() is
    'Revoke the calling session for good (data kept for analytics); idempotent. Returns {session_id, revoked_at}.';
revoke execute on function public.clear_session() from public, anon, authenticated;
grant execute on function public.clear_session() to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 2. Forgetting
-- ---------------------------------------------------------------------------------------------

-- Why: a visitor may ask to be forgotten. Messages, signals and the persona are deleted (and the
-- last message copied on the session row is blanked); the session row stays as a revoked
-- tombstone so its id can never be used again. Allowed on an already revoked session; repeating
-- it deletes nothing more.
create function public.forget_session() returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_messages bigint;
    v_signals bigint;
    v_personas bigint;
begin
    perform bevsession.lock_session(v_session_id, p_allow_revoked => true);

    delete from bevsession.messages where session_id = v_session_id;
    get diagnostics v_messages = row_count;
    delete from bevsession.persona_signals where session_id = v_session_id;
    get diagnostics v_signals = row_count;
    delete from bevsession.personas where session_id = v_session_id;
    get diagnostics v_personas = row_count;

    update bevsession.sessions set
        revoked_at   = coalesce(revoked_at, now()),
        forgotten_at = coalesce(forgotten_at, now()),
        last_message = null
    where id = v_session_id;

    return pg_catalog.jsonb_build_object(
        'session_id', v_session_id,
        'deleted', pg_catalog.jsonb_build_object(
            'messages', v_messages,
            'signals',  v_signals,
            'personas', v_personas));
end
$$;
comment on function public.forget_session() is
    'Erase the calling session''s messages, signals and persona; keep a revoked tombstone. Returns {session_id, deleted: {messages, signals, personas}}.';
revoke execute on function public.forget_session() from public, anon, authenticated;
grant execute on function public.forget_session() to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 3. A chat turn in two round trips
-- ---------------------------------------------------------------------------------------------

-- Why: the seed's orchestrator made one round trip per step (session, each signal, persona,
-- message, history). begin_chat_turn does the steps before the LLM call in one transaction and
-- returns everything the LLM prompt needs; finish_chat_turn stores the reply.
-- After the session is created or locked, and before anything is written, the turn is taken from
-- the session's chat rate limit (bevsession.take_chat_turn: SQLSTATE PT429, HTTP 429, with
-- retry_after). A migration that replaces begin_chat_turn must keep the `take_chat_turn` step.
create function public.begin_chat_turn(
    p_content text,
    p_signals jsonb default '[]',
    p_history_limit integer default 20,
    p_generation_mode text default null
) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_signals jsonb := coalesce(p_signals, '[]');
    v_parsed jsonb[] := '{}';
    v_signal jsonb;
    v_index integer;
    v_ensured record;
    v_persona bevsession.personas;
    v_recorded record;
    v_pains text[] := '{}';
    v_pain text;
    v_stored record;
begin
    -- every argument is checked before anything is written
    perform bevsession.check_message_args('user', p_content, p_generation_mode, null, null, null);
    perform bevsession.check_history_limit(p_history_limit, 'p_history_limit');
    if pg_catalog.jsonb_typeof(v_signals) <> 'array' then
        perform bevsession.invalid_argument('p_signals', 'must be a JSON array of signals');
    end if;
    if pg_catalog.jsonb_array_length(v_signals) > bevsession.max_signals_per_turn() then
        perform bevsession.invalid_argument('p_signals', 'at most ' || bevsession.max_signals_per_turn() || ' signals');
    end if;
    for v_signal, v_index in select e, i - 1 from pg_catalog.jsonb_array_elements(v_signals) with ordinality as t(e, i) loop
        v_parsed := v_parsed || bevsession.parse_signal(v_signal, 'p_signals[' || v_index || '].');
    end loop;

    select * into v_ensured from bevsession.ensure_session(v_session_id, true);
    -- the session row is locked (or new and ours) from here on: the rate limit (PT429)
    perform bevsession.take_chat_turn(v_ensured.session);
    v_persona := bevsession.lock_persona(v_ensured.session);

    if pg_catalog.cardinality(v_parsed) > 0 then
        foreach v_signal in array v_parsed loop
            select * into v_recorded from bevsession.record_signal(v_persona, v_signal);
            v_persona := v_recorded.persona;
            for v_pain in select pg_catalog.jsonb_array_elements_text(v_signal -> 'pain_points_inferred') loop
                if not v_pain = any (v_pains) then
                    v_pains := v_pains || v_pain;
                end if;
            end loop;
        end loop;
        v_persona := bevsession.save_persona(v_persona);
    end if;

    select * into v_stored from bevsession.append_message(
        v_ensured.session, v_persona, 'user', p_content, p_generation_mode, null, null, v_pains);

    return pg_catalog.jsonb_build_object(
        'session', bevsession.session_json(v_stored.session),
        'persona', bevsession.persona_json(v_persona),
        'message', bevsession.message_json(v_stored.message),
        'history', bevsession.history_page(v_session_id, p_history_limit, null),
        'created', v_ensured.created);
end
$$;
comment on function public.begin_chat_turn(text, jsonb, integer, text) is
    'Create-or-touch the session, take a turn from its rate limit (PT429), apply the signals, store the user message (post-signal snapshot). Returns {session, persona, message, history, created}.';
revoke execute on function public.begin_chat_turn(text, jsonb, integer, text) from public, anon, authenticated;
grant execute on function public.begin_chat_turn(text, jsonb, integer, text) to session_visitor, service_role;


-- The reply is an assistant message like any other: one implementation, add_conversation_message.
create function public.finish_chat_turn(
    p_content text,
    p_ui_specification jsonb default null,
    p_generation_mode text default null,
    p_estimated_read_time text default null
) returns jsonb
    language sql
    security invoker
    set search_path = ''
as $$
    select public.add_conversation_message(
        'assistant', p_content, p_generation_mode, p_ui_specification, p_estimated_read_time, null)
$$;
comment on function public.finish_chat_turn(text, jsonb, text, text) is
    'Store the assistant reply of a chat turn. Returns {message, session}.';
revoke execute on function public.finish_chat_turn(text, jsonb, text, text) from public, anon, authenticated;
grant execute on function public.finish_chat_turn(text, jsonb, text, text) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 4. Admin (service_role only)
-- ---------------------------------------------------------------------------------------------

-- Why: operators need counts without table access from the API; service_role bypasses RLS, a
-- visitor cannot even execute this.
create function public.admin_session_stats() returns jsonb
    language sql
    stable
    security invoker
    set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'sessions', (
            select pg_catalog.jsonb_build_object(
                'total',     count(*),
                'active',    count(*) filter (where s.revoked_at is null),
                'revoked',   count(*) filter (where s.revoked_at is not null and s.forgotten_at is null),
                'forgotten', count(*) filter (where s.forgotten_at is not null))
            from bevsession.sessions as s),
        'personas', (select count(*) from bevsession.personas),
        'messages', (select count(*) from bevsession.messages),
        'signals',  (select count(*) from bevsession.persona_signals))
$$;
comment on function public.admin_session_stats() is
    'Counts: {sessions: {total, active, revoked, forgotten}, personas, messages, signals}. service_role only.';
revoke execute on function public.admin_session_stats() from public, anon, authenticated, session_visitor;
grant execute on function public.admin_session_stats() to service_role;


-- PostgREST caches the schema; tell it to reload (a no-op where nobody listens).
notify pgrst, 'reload schema';
