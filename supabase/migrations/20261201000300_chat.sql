-- =============================================================================================
-- 20261201000300_chat.sql — what the visitor said: conversation_history, the chat turn
-- =============================================================================================
--
-- The seed's conversation_history, every message with the persona snapshot taken when it was
-- stored, and the chat turn in two round trips: begin_chat_turn (the user's message and its
-- signals, returning what a prompt needs) and finish_chat_turn (the reply). A turn costs about
-- what its writes cost: the persona snapshot is built once per turn (the reply stores the
-- snapshot its turn began with), the history handed to the prompt holds only what a prompt
-- reads, and the session row is written once per call.
--
-- Sections: 1 the table · 2 row-level security and privileges · 3 JSON · 4 history ·
-- 5 storing messages · 6 the chat rate limit · 7 API: add_conversation_message,
-- get_conversation_history, begin_chat_turn, finish_chat_turn.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The table
-- ---------------------------------------------------------------------------------------------

-- Why token counts: an LLM prompt has a token budget, not a message count. The counting rule:
-- about four characters of English per token (the usual rule of thumb for BPE tokenizers),
-- rounded up, plus 4 tokens per message for the role and separators of chat formats. A real
-- tokenizer plugs in by replacing this one function (same signature, immutable); messages
-- stored afterwards use it, older rows keep their count.
create function bevsession.count_tokens(content text) returns integer
    language sql immutable parallel safe
return (pg_catalog.ceil(pg_catalog.char_length(coalesce(content, '')) / 4.0))::integer + 4;
comment on function bevsession.count_tokens(text) is
    'Estimated tokens of one message: ceil(characters / 4) + 4. Replace to plug in a real tokenizer.';
revoke all on function bevsession.count_tokens(text) from public;
grant execute on function bevsession.count_tokens(text) to session_visitor, service_role;

-- `seq` is the keyset cursor of the history.
create table bevsession.conversation_history (
    id                      uuid primary key default gen_random_uuid(),
    seq                     bigint generated always as identity
        constraint conversation_history_seq_key unique,
    session_id              uuid not null references bevsession.sessions (id) on delete cascade,
    user_id                 uuid,
    message_role            bevsession.message_role not null,
    message_content         bevsession.message_content not null,
    persona_snapshot        jsonb compression lz4,     -- lz4: compresses a snapshot several times faster than pglz
    pain_points_inferred    bevsession.pain_points not null default '{}',
    ui_specification        bevsession.ui_specification compression lz4,
    generation_mode         bevsession.identifier,
    estimated_read_time     bevsession.read_time,
    created_at              timestamptz not null default now(),
    token_count             integer not null
        generated always as (bevsession.count_tokens(message_content)) stored
);
comment on table bevsession.conversation_history is
    'The seed''s conversation_history: every chat message with the persona snapshot taken when it was stored.';
comment on column bevsession.conversation_history.token_count is 'Tokens of the message by bevsession.count_tokens().';

create index idx_ch_session_seq on bevsession.conversation_history (session_id, seq desc);             -- keyset history
create index idx_ch_session_messages on bevsession.conversation_history (session_id, created_at);     -- the seed's
create index idx_ch_user_id on bevsession.conversation_history (user_id) where user_id is not null;   -- the seed's
create index idx_ch_generation_mode on bevsession.conversation_history (generation_mode)
    where generation_mode is not null;                                                               -- the seed's


-- ---------------------------------------------------------------------------------------------
-- 2. Row-level security and privileges (messages are immutable once written: no update policy)
-- ---------------------------------------------------------------------------------------------

alter table bevsession.conversation_history enable row level security;

create policy "Visitors can read their own messages"
    on bevsession.conversation_history for select to session_visitor
    using (session_id = (select bevsession.current_session_id()));

create policy "Visitors can add messages to their live session"
    on bevsession.conversation_history for insert to session_visitor
    with check (
        session_id = (select bevsession.current_session_id())
        and exists (select 1 from bevsession.sessions as s
                    where s.id = session_id and s.revoked_at is null));

create policy "Visitors can delete their own messages"
    on bevsession.conversation_history for delete to session_visitor
    using (session_id = (select bevsession.current_session_id()));

revoke all on bevsession.conversation_history from public, anon, authenticated;
grant all on bevsession.conversation_history to service_role;
grant select, delete on bevsession.conversation_history to session_visitor;
grant insert (session_id, user_id, message_role, message_content, persona_snapshot,
              pain_points_inferred, ui_specification, generation_mode, estimated_read_time)
    on bevsession.conversation_history to session_visitor;


-- ---------------------------------------------------------------------------------------------
-- 3. JSON
-- ---------------------------------------------------------------------------------------------

-- A stored message as the API returns it; the snapshot only where asked for (history pages),
-- since it is the persona the caller already holds.
create function bevsession.message_json(m bevsession.conversation_history) returns jsonb
    language sql stable parallel safe
return pg_catalog.jsonb_build_object(
    'id',                   (m).id,
    'seq',                  (m).seq,
    'session_id',           (m).session_id,
    'message_role',         (m).message_role,
    'message_content',      (m).message_content,
    'pain_points_inferred', pg_catalog.to_jsonb((m).pain_points_inferred::text[]),
    'ui_specification',     (m).ui_specification,
    'generation_mode',      (m).generation_mode,
    'estimated_read_time',  (m).estimated_read_time,
    'token_count',          (m).token_count,
    'created_at',           bevsession.to_ms((m).created_at));
comment on function bevsession.message_json(bevsession.conversation_history) is
    'Message JSON (the seed''s conversation_history row without its snapshot, plus the token count).';
revoke all on function bevsession.message_json(bevsession.conversation_history) from public;
grant execute on function bevsession.message_json(bevsession.conversation_history) to session_visitor, service_role;

-- ---------------------------------------------------------------------------------------------
-- 4. History
-- ---------------------------------------------------------------------------------------------
-- Both walk back from the newest message (keyset on seq, the (session_id, seq) index), read one
-- more than asked (to know whether anything older exists) and return {messages (oldest first),
-- tokens, next_before}. Two functions because they read different columns: the prompt history
-- never touches persona_snapshot or ui_specification (large, often TOASTed values).

-- A page of stored messages with their snapshots (get_conversation_history), cut to a token
-- budget when given: messages are kept while their running total fits.
create function bevsession.history_page(
    session_id uuid, history_limit integer, before bigint, token_budget integer
) returns jsonb
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_page jsonb;
begin
    with newest as (
        select m, pg_catalog.sum(m.token_count) over (order by m.seq desc) as running_tokens
        from bevsession.conversation_history as m
        where m.session_id = history_page.session_id
          and (history_page.before is null or m.seq < history_page.before)
        order by m.seq desc
        limit history_limit + 1
    ), page as (
        select n.m, n.running_tokens from newest as n
        where history_page.token_budget is null or n.running_tokens <= history_page.token_budget
        order by (n.m).seq desc
        limit history_limit
    )
    select pg_catalog.jsonb_build_object(
        'messages', coalesce(pg_catalog.jsonb_agg(
                        bevsession.message_json(p.m) || pg_catalog.jsonb_build_object('persona_snapshot', (p.m).persona_snapshot)
                        order by (p.m).seq), '[]'),
        'tokens', coalesce(pg_catalog.max(p.running_tokens), 0),
        -- the cursor of the page before this one; null when nothing older exists, or when not
        -- even the newest message fits the budget (no page to continue from)
        'next_before', case when (select count(*) from newest) > pg_catalog.count(p.m)
                            then pg_catalog.min((p.m).seq) end)
    into v_page
    from page as p;
    return v_page;
end
$$;
comment on function bevsession.history_page(uuid, integer, bigint, integer) is
    'Keyset page: the newest messages with seq < before, at most history_limit and (if given) token_budget tokens, oldest first, with snapshots. Returns {messages, tokens, next_before}.';
revoke all on function bevsession.history_page(uuid, integer, bigint, integer) from public;
grant execute on function bevsession.history_page(uuid, integer, bigint, integer) to session_visitor, service_role;

-- The newest history_limit messages as a prompt reads them (begin_chat_turn).
create function bevsession.prompt_history(session_id uuid, history_limit integer) returns jsonb
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_page jsonb;
begin
    select pg_catalog.jsonb_build_object(
        'messages', coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                        'message_role',    n.message_role,
                        'message_content', n.message_content,
                        'generation_mode', n.generation_mode,
                        'token_count',     n.token_count,
                        'created_at',      bevsession.to_ms(n.created_at)) order by n.seq)
                        filter (where n.rank <= history_limit), '[]'),
        'tokens', coalesce(pg_catalog.sum(n.token_count) filter (where n.rank <= history_limit), 0),
        'next_before', case when pg_catalog.count(*) > history_limit
                            then pg_catalog.min(n.seq) filter (where n.rank <= history_limit) end)
    into v_page
    from (select m.seq, m.message_role, m.message_content, m.generation_mode, m.token_count, m.created_at,
                 pg_catalog.row_number() over (order by m.seq desc) as rank
          from bevsession.conversation_history as m
          where m.session_id = prompt_history.session_id
          order by m.seq desc
          limit history_limit + 1) as n;
    return v_page;
end
$$;
comment on function bevsession.prompt_history(uuid, integer) is
    'The newest history_limit messages, oldest first, as prompt messages. Returns {messages, tokens, next_before}.';
revoke all on function bevsession.prompt_history(uuid, integer) from public;
grant execute on function bevsession.prompt_history(uuid, integer) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 5. Storing messages
-- ---------------------------------------------------------------------------------------------

-- The checks of a message to store, under the API's argument names; the rules are the domains
-- of the columns.
create function bevsession.check_message(
    role text,
    content text,
    generation_mode text,
    ui_specification jsonb,
    estimated_read_time text,
    pain_points_inferred text[]
) returns void
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_field text;
    v_rule text;
    v_vocabulary regtype;
    v_role bevsession.message_role;
    v_content bevsession.message_content;
    v_mode bevsession.identifier;
    v_ui bevsession.ui_specification;
    v_read_time bevsession.read_time;
    v_pains bevsession.pain_points;
begin
    if content is null then
        perform bevsession.invalid_argument('content', 'is required');
    end if;
    begin
        v_field := 'role'; v_vocabulary := 'bevsession.message_role';
        v_role := coalesce(role, '');
        v_vocabulary := null;
        v_field := 'content';              v_content := content;
        v_field := 'generation_mode';      v_mode := generation_mode;
        v_field := 'ui_specification';     v_ui := ui_specification;
        v_field := 'estimated_read_time';  v_read_time := estimated_read_time;
        v_field := 'pain_points_inferred'; v_pains := pain_points_inferred;
    exception when check_violation or invalid_text_representation then
        get stacked diagnostics v_rule = constraint_name;
        perform bevsession.refuse(v_field, v_rule, v_vocabulary);
    end;
end
$$;
comment on function bevsession.check_message(text, text, text, jsonb, text, text[]) is
    'Validate a message to store; raises 22023 naming the offending argument.';
revoke all on function bevsession.check_message(text, text, text, jsonb, text, text[]) from public;
grant execute on function bevsession.check_message(text, text, text, jsonb, text, text[]) to session_visitor, service_role;

-- Store one message and count it on the session, in one INSERT and one UPDATE of the (locked)
-- session row, which also moves the activity and, for a chat turn, the rate limit state.
create function bevsession.append_message(
    s bevsession.sessions,
    snapshot jsonb,
    role bevsession.message_role,
    content text,
    generation_mode text,
    ui_specification jsonb,
    estimated_read_time text,
    pain_points_inferred text[],
    chat_rate_tat timestamptz,
    out message bevsession.conversation_history,
    out session bevsession.sessions
)
    language plpgsql
    set search_path = ''
as $$
begin
    insert into bevsession.conversation_history (
        session_id, user_id, message_role, message_content, persona_snapshot, pain_points_inferred,
        ui_specification, generation_mode, estimated_read_time)
    values (
        s.id, s.user_id, role, content, snapshot, coalesce(pain_points_inferred, '{}'),
        ui_specification, generation_mode, estimated_read_time)
    returning * into message;

    update bevsession.sessions as t set
        message_count    = t.message_count + 1,
        last_message     = append_message.content,
        last_message_at  = message.created_at,
        last_activity_at = pg_catalog.now(),
        chat_rate_tat    = coalesce(append_message.chat_rate_tat, t.chat_rate_tat)
    where t.id = s.id
    returning * into session;
end
$$;
comment on function bevsession.append_message(bevsession.sessions, jsonb, bevsession.message_role, text, text, jsonb, text, text[], timestamptz) is
    'Store one message with its persona snapshot and count it on the session (message_count, last_message, activity, rate limit state).';
revoke all on function bevsession.append_message(bevsession.sessions, jsonb, bevsession.message_role, text, text, jsonb, text, text[], timestamptz) from public;
grant execute on function bevsession.append_message(bevsession.sessions, jsonb, bevsession.message_role, text, text, jsonb, text, text[], timestamptz) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 6. The chat rate limit
-- ---------------------------------------------------------------------------------------------
-- It must hold for every edge worker at once, so it lives in the database. begin_chat_turn
-- refuses a turn beyond it with SQLSTATE PT429 (PostgREST: HTTP 429), saying after how many
-- seconds to retry. The limit is the setting `bevsession.chat_rate_limit` ('20/minute' unless
-- set; not chosen by the caller of the RPC, the same for every worker):
--   alter database <db> set bevsession.chat_rate_limit = '30/minute';
-- A value that does not parse falls back to the default rather than refusing every chat turn.

create function bevsession.chat_rate_limit(out turns integer, out per_seconds integer)
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_text text := pg_catalog.lower(pg_catalog.btrim(
        coalesce(pg_catalog.current_setting('bevsession.chat_rate_limit', true), '')));
    v_match text[];
    v_count numeric;
    v_unit integer;
begin
    turns := 20;           -- the default: 20 chat turns per minute and session
    per_seconds := 60;
    if v_text in ('off', 'none', 'unlimited', '0') then
        turns := 0;        -- 0: no limit
        return;
    end if;
    v_match := pg_catalog.regexp_match(v_text,
        '^([0-9]{1,6})\s*/\s*([0-9]{0,6})\s*(s|sec|second|seconds|m|min|minute|minutes|h|hour|hours)$');
    if v_match is null or v_match[1]::integer = 0 then
        return;
    end if;
    v_count := coalesce(nullif(v_match[2], '')::numeric, 1);
    v_unit := case
        when v_match[3] in ('s', 'sec', 'second', 'seconds') then 1
        when v_match[3] in ('m', 'min', 'minute', 'minutes') then 60
        else 3600 end;
    if v_count = 0 or v_count * v_unit > 86400 then
        return;
    end if;
    turns := v_match[1]::integer;
    per_seconds := (v_count * v_unit)::integer;
end
$$;
comment on function bevsession.chat_rate_limit() is
    'The chat rate limit from the setting bevsession.chat_rate_limit ("N/minute", "N/10s", "N/hour"; "off" or "0": none): turns per per_seconds. Default and fallback: 20 per 60 s.';
revoke all on function bevsession.chat_rate_limit() from public;
grant execute on function bevsession.chat_rate_limit() to session_visitor, service_role;

-- GCRA on sessions.chat_rate_tat: the state after one more turn, or PT429 with detail
-- "retry_after=<seconds>"; null when there is no limit. Why clock_timestamp() and not now():
-- the caller holds the session row lock, so concurrent turns of one session take their turn one
-- after another and the time read under the lock only moves forward; now() is the transaction's
-- start, and a turn that started first but got the lock last would be judged as if it came
-- before the ones already counted. A refused turn rolls back with everything else.
create function bevsession.take_chat_turn(s bevsession.sessions) returns timestamptz
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_limit record := bevsession.chat_rate_limit();
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_interval interval;
    v_tolerance interval;
    v_tat timestamptz;
    v_wait numeric;
begin
    if v_limit.turns = 0 then
        return null;
    end if;
    v_interval := pg_catalog.make_interval(secs => v_limit.per_seconds::double precision / v_limit.turns);
    v_tolerance := pg_catalog.make_interval(secs => v_limit.per_seconds) - v_interval;
    v_tat := greatest(coalesce(s.chat_rate_tat, v_now), v_now);
    if v_tat - v_now > v_tolerance then
        v_wait := greatest(1, pg_catalog.ceil(extract(epoch from (v_tat - v_now - v_tolerance))));
        raise exception using errcode = 'PT429',
            message = pg_catalog.format('rate limited: at most %s chat turns per %s seconds',
                                        v_limit.turns, v_limit.per_seconds),
            detail = pg_catalog.format('retry_after=%s', v_wait),
            hint = 'wait retry_after seconds before the next chat turn of this session';
    end if;
    return v_tat + v_interval;
end
$$;
comment on function bevsession.take_chat_turn(bevsession.sessions) is
    'Take one chat turn from the session''s allowance: the new chat_rate_tat (null: no limit), or PT429 with detail "retry_after=<seconds>". Call with the session row locked.';
revoke all on function bevsession.take_chat_turn(bevsession.sessions) from public;
grant execute on function bevsession.take_chat_turn(bevsession.sessions) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 7. API: add_conversation_message, get_conversation_history, begin_chat_turn, finish_chat_turn
-- ---------------------------------------------------------------------------------------------

-- addConversationMessage(role, content, mode, uiSpecification): the persona snapshot is taken
-- in SQL from the stored persona, never from a possibly stale copy the caller holds.
create function public.add_conversation_message(
    role text,
    content text,
    generation_mode text default null,
    ui_specification jsonb default null,
    estimated_read_time text default null,
    pain_points_inferred text[] default '{}'
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
    perform bevsession.check_message(role, content, generation_mode, ui_specification,
                                     estimated_read_time, pain_points_inferred);
    v_session := bevsession.lock_session(v_session_id);
    v_stored := bevsession.append_message(
        v_session, bevsession.persona_json(bevsession.persona_of(v_session)), role::bevsession.message_role,
        content, generation_mode, ui_specification, estimated_read_time, pain_points_inferred, null);
    return pg_catalog.jsonb_build_object(
        'message', bevsession.message_json(v_stored.message),
        'session', bevsession.session_json(v_stored.session));
end
$$;
comment on function public.add_conversation_message(text, text, text, jsonb, text, text[]) is
    'Store one message with the current persona snapshot; message_count + 1, last_message(_at). Returns {message, session}.';
revoke execute on function public.add_conversation_message(text, text, text, jsonb, text, text[]) from public, anon, authenticated;
grant execute on function public.add_conversation_message(text, text, text, jsonb, text, text[]) to session_visitor, service_role;

-- getConversationHistory(): pages instead of everything (the seed returned the whole history),
-- each message with its persona snapshot, optionally cut to a token budget. Read-only, so
-- PostgREST may run it in a read-only transaction; it needs an existing live session.
create function public.get_conversation_history(
    history_limit integer default 50,
    before bigint default null,
    token_budget integer default null
)
    returns jsonb
    language plpgsql
    stable
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_field text;
    v_rule text;
    v_limit bevsession.page_size;
    v_budget bevsession.token_budget;
begin
    begin
        v_field := 'history_limit'; v_limit := coalesce(history_limit, 0);
        v_field := 'token_budget';  v_budget := token_budget;
    exception when check_violation then
        get stacked diagnostics v_rule = constraint_name;
        perform bevsession.refuse(v_field, v_rule);
    end;
    perform bevsession.find_session(v_session_id);
    return bevsession.history_page(v_session_id, v_limit, get_conversation_history.before, v_budget);
end
$$;
comment on function public.get_conversation_history(integer, bigint, integer) is
    'The newest history_limit (1..200) messages with seq < before that fit token_budget, oldest first, with their persona snapshots. Returns {messages, tokens, next_before}.';
revoke execute on function public.get_conversation_history(integer, bigint, integer) from public, anon, authenticated;
grant execute on function public.get_conversation_history(integer, bigint, integer) to session_visitor, service_role;

-- Why: the seed's orchestrator made one round trip per step (session, each signal, persona,
-- message, history). begin_chat_turn does the steps before the LLM call in one transaction:
-- create or lock the session, take a turn from its rate limit (PT429), apply the signals, store
-- the user message with the persona snapshot, and return the persona and the prompt history.
create function public.begin_chat_turn(
    content text,
    signals jsonb default '[]',
    history_limit integer default 20,
    generation_mode text default null
) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_field text;
    v_rule text;
    v_limit bevsession.page_size;
    v_signals jsonb := coalesce(signals, '[]');
    v_parsed jsonb[] := '{}';
    v_signal jsonb;
    v_index integer;
    v_ensured record;
    v_rate_tat timestamptz;
    v_persona bevsession.user_personas;
    v_recorded record;
    v_pains text[] := '{}';
    v_snapshot jsonb;
    v_stored record;
begin
    -- every argument is checked before anything is written
    perform bevsession.check_message('user', content, generation_mode, null, null, null);
    begin
        v_field := 'history_limit'; v_limit := coalesce(history_limit, 0);
    exception when check_violation then
        get stacked diagnostics v_rule = constraint_name;
        perform bevsession.refuse(v_field, v_rule);
    end;
    if pg_catalog.jsonb_typeof(v_signals) <> 'array' then
        perform bevsession.invalid_argument('signals', 'must be a JSON array of signals');
    end if;
    if pg_catalog.jsonb_array_length(v_signals) > 50 then
        perform bevsession.invalid_argument('signals', 'at most 50 signals');
    end if;
    for v_signal, v_index in select e, i - 1 from pg_catalog.jsonb_array_elements(v_signals) with ordinality as t(e, i) loop
        v_parsed := v_parsed || bevsession.parse_signal(v_signal, 'signals[' || v_index || '].');
    end loop;

    v_ensured := bevsession.ensure_session(v_session_id, touch => false);
    v_rate_tat := bevsession.take_chat_turn(v_ensured.session);
    v_persona := bevsession.persona_of(v_ensured.session);
    if pg_catalog.cardinality(v_parsed) > 0 then
        foreach v_signal in array v_parsed loop
            v_recorded := bevsession.record_signal(v_persona, v_signal);
            v_persona := v_recorded.persona;
            v_pains := v_pains || array(select pg_catalog.jsonb_array_elements_text(v_signal -> 'pain_points_inferred'));
        end loop;
        v_persona := bevsession.save_persona(v_persona);
        v_pains := array(select u.p from pg_catalog.unnest(v_pains) with ordinality as u(p, i) group by u.p order by min(u.i));
    end if;

    v_snapshot := bevsession.persona_json(v_persona);
    v_stored := bevsession.append_message(
        v_ensured.session, v_snapshot, 'user', content, generation_mode, null, null, v_pains, v_rate_tat);

    return pg_catalog.jsonb_build_object(
        'session', bevsession.session_json(v_stored.session),
        'persona', v_snapshot,
        'message', bevsession.message_json(v_stored.message),
        'history', bevsession.prompt_history(v_session_id, v_limit),
        'created', v_ensured.created);
end
$$;
comment on function public.begin_chat_turn(text, jsonb, integer, text) is
    'Create-or-lock the session, take a turn from its rate limit (PT429), apply the signals, store the user message (post-signal snapshot). Returns {session, persona, message, history (prompt messages), created}.';
revoke execute on function public.begin_chat_turn(text, jsonb, integer, text) from public, anon, authenticated;
grant execute on function public.begin_chat_turn(text, jsonb, integer, text) to session_visitor, service_role;

-- The reply was generated from the persona its turn began with: it is stored with that
-- snapshot (the newest user message's), built once per turn. A reply with no user message
-- before it takes the current persona.
create function public.finish_chat_turn(
    content text,
    ui_specification jsonb default null,
    generation_mode text default null,
    estimated_read_time text default null
) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_session bevsession.sessions;
    v_snapshot jsonb;
    v_stored record;
begin
    perform bevsession.check_message('assistant', content, generation_mode, ui_specification,
                                     estimated_read_time, null);
    v_session := bevsession.lock_session(v_session_id);
    select m.persona_snapshot into v_snapshot
    from bevsession.conversation_history as m
    where m.session_id = v_session_id and m.message_role = 'user'
    order by m.seq desc
    limit 1;
    if v_snapshot is null then
        v_snapshot := bevsession.persona_json(bevsession.persona_of(v_session));
    end if;
    v_stored := bevsession.append_message(
        v_session, v_snapshot, 'assistant', content, generation_mode, ui_specification,
        estimated_read_time, null, null);
    return pg_catalog.jsonb_build_object(
        'message', bevsession.message_json(v_stored.message),
        'session', bevsession.session_json(v_stored.session));
end
$$;
comment on function public.finish_chat_turn(text, jsonb, text, text) is
    'Store the assistant reply of a chat turn with the snapshot its turn began with. Returns {message, session}.';
revoke execute on function public.finish_chat_turn(text, jsonb, text, text) from public, anon, authenticated;
grant execute on function public.finish_chat_turn(text, jsonb, text, text) to session_visitor, service_role;
