-- =============================================================================================
-- 20261124210000_abuse_limits.sql — a per-session chat rate limit and the retention purge
-- =============================================================================================
--
-- Two abuse limits that must hold for every edge worker at once, so they live in the database
-- (a limit kept in one worker's memory is multiplied by the number of workers):
--
--   * a chat-turn rate limit per session: begin_chat_turn refuses a turn beyond the limit with
--     SQLSTATE PT429 (PostgREST: HTTP 429), saying after how many seconds to retry. The limit is
--     the setting `bevsession.chat_rate_limit` ('20/minute' unless set; see chat_rate_limit());
--   * a retention purge for admin work (service_role only): sessions that never did anything
--     (bots, a page load that created the row) and revoked / forgotten tombstones are deleted
--     once older than a given age, with all their rows.
--
-- Sections: 1 the rate limit · 2 begin_chat_turn with the limit · 3 the retention purge.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The rate limit
-- ---------------------------------------------------------------------------------------------

-- Why a "theoretical arrival time" (GCRA) and not a counter per window: one timestamp per
-- session is the whole bucket, a burst of the full allowance is allowed, and the wait is exact
-- (no window edge where twice the limit gets through). null = no chat turn yet.
alter table bevsession.sessions add column chat_rate_tat timestamptz;
comment on column bevsession.sessions.chat_rate_tat is
    'Chat rate limit state (GCRA): the theoretical arrival time of the next chat turn; null before the first one.';

-- begin_chat_turn runs as the visitor (security invoker), on its own row only (RLS).
grant update (chat_rate_tat) on bevsession.sessions to session_visitor;

-- Why a setting and not an argument: the limit must not be chosen by the caller of the RPC, and
-- every worker (and PostgREST) reads the same value. Set it for all connections with
--   alter database <db> set bevsession.chat_rate_limit = '30/minute';
-- or for the visitor role only (PostgREST and the asyncpg transport apply role settings):
--   alter role session_visitor set bevsession.chat_rate_limit = '30/minute';
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

-- Why clock_timestamp() and not now(): the caller holds the session row lock (ensure_session /
-- lock_session), so concurrent turns of one session take their turn one after another, and the
-- time read under the lock only moves forward. now() is the transaction's start: a turn that
-- started first but got the lock last would be judged as if it came before the ones already
-- counted, and a burst of exactly the allowance could be refused. A refused turn rolls back
-- with everything else.
create function bevsession.take_chat_turn(p_session bevsession.sessions) returns void
    language plpgsql
    set search_path = ''
as $$
declare
    v_limit record;
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_interval interval;
    v_tolerance interval;
    v_tat timestamptz;
    v_wait numeric;
begin
    select * into v_limit from bevsession.chat_rate_limit();
    if v_limit.turns = 0 then
        return;
    end if;
    v_interval := pg_catalog.make_interval(secs => v_limit.per_seconds::double precision / v_limit.turns);
    v_tolerance := pg_catalog.make_interval(secs => v_limit.per_seconds) - v_interval;
    v_tat := greatest(coalesce(p_session.chat_rate_tat, v_now), v_now);
    if v_tat - v_now > v_tolerance then
        v_wait := greatest(1, pg_catalog.ceil(extract(epoch from (v_tat - v_now - v_tolerance))));
        raise exception using errcode = 'PT429',
            message = pg_catalog.format('rate limited: at most %s chat turns per %s seconds',
                                        v_limit.turns, v_limit.per_seconds),
            detail = pg_catalog.format('retry_after=%s', v_wait),
            hint = 'wait retry_after seconds before the next chat turn of this session';
    end if;
    update bevsession.sessions set chat_rate_tat = v_tat + v_interval where id = p_session.id;
end
$$;
comment on function bevsession.take_chat_turn(bevsession.sessions) is
    'Take one chat turn from the session''s allowance (GCRA on sessions.chat_rate_tat), or raise PT429 with detail "retry_after=<seconds>". Call with the session row locked.';

revoke all on function bevsession.chat_rate_limit() from public, anon, authenticated;
revoke all on function bevsession.take_chat_turn(bevsession.sessions) from public, anon, authenticated;
grant execute on function bevsession.chat_rate_limit() to session_visitor, service_role;
grant execute on function bevsession.take_chat_turn(bevsession.sessions) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 2. begin_chat_turn, now rate limited
-- ---------------------------------------------------------------------------------------------
-- The body of 20261124200200_rpc_api.sql with one step added: after the session is created or
-- locked, and before anything is written, the turn is taken from the session's allowance.
-- A migration that replaces begin_chat_turn again must keep the `take_chat_turn` step.

create or replace function public.begin_chat_turn(
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


-- ---------------------------------------------------------------------------------------------
-- 3. The retention purge (service_role only)
-- ---------------------------------------------------------------------------------------------

create function bevsession.min_retention_ms() returns bigint
    language sql immutable parallel safe set search_path = ''
as $$ select 86400000::bigint $$;
comment on function bevsession.min_retention_ms() is
    'Shortest age purge_sessions accepts (one day): a purge must never reach a session in use, and a revoked id must stay refused while a cookie naming it can still open (the cookie TTL).';

create function bevsession.max_purge_batch() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 100000 $$;
comment on function bevsession.max_purge_batch() is 'Most sessions of each kind one purge_sessions call deletes (call again while "more").';

create index if not exists sessions_revoked_at_idx on bevsession.sessions (revoked_at)
    where revoked_at is not null;

-- Why: every first page view through /api/session creates a session row (the seed's
-- row-per-visit), and a revoked session is kept as a tombstone so its id stays refused. Neither
-- may grow without bound. Deleted, once older than p_older_than_ms:
--   * idle sessions that never did anything — live, inactive since before the cutoff, with no
--     message, no signal and an untouched persona (bots, page loads);
--   * revoked and forgotten sessions whose revocation is older than the cutoff, with their rows
--     (the analytics copy a clear keeps ends here).
-- Choose an age longer than the cookie lifetime (SESSION_TTL): a cookie naming a deleted revoked
-- session would otherwise open a fresh session under the old id. Rows a concurrent request holds
-- are skipped (they are in use) and at most p_batch sessions of each kind go per call: call again
-- while the result says "more".
create function public.purge_sessions(p_older_than_ms bigint, p_batch integer default 10000)
    returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_cutoff timestamptz;
    v_idle uuid[];
    v_revoked uuid[];
    v_ids uuid[];
    v_messages bigint;
    v_signals bigint;
    v_personas bigint;
begin
    if p_older_than_ms is null or p_older_than_ms < bevsession.min_retention_ms() then
        perform bevsession.invalid_argument('p_older_than_ms',
            'must be at least ' || bevsession.min_retention_ms() || ' (one day)');
    end if;
    if p_batch is null or p_batch < 1 or p_batch > bevsession.max_purge_batch() then
        perform bevsession.invalid_argument('p_batch', 'must be between 1 and ' || bevsession.max_purge_batch());
    end if;
    v_cutoff := pg_catalog.now() - pg_catalog.make_interval(secs => p_older_than_ms / 1000.0);

    select coalesce(pg_catalog.array_agg(t.id), '{}') into v_idle
    from (select s.id
          from bevsession.sessions as s
          where s.revoked_at is null
            and s.last_activity_at < v_cutoff
            and s.message_count = 0
            and not exists (select 1 from bevsession.messages as m where m.session_id = s.id)
            and not exists (select 1 from bevsession.persona_signals as g where g.session_id = s.id)
            and not exists (select 1 from bevsession.personas as p
                            where p.session_id = s.id and p.total_interactions > 0)
          order by s.last_activity_at
          limit p_batch
          for update of s skip locked) as t;

    select coalesce(pg_catalog.array_agg(t.id), '{}') into v_revoked
    from (select s.id
          from bevsession.sessions as s
          where s.revoked_at < v_cutoff
          order by s.revoked_at
          limit p_batch
          for update of s skip locked) as t;

    v_ids := v_idle || v_revoked;
    delete from bevsession.messages where session_id = any (v_ids);
    get diagnostics v_messages = row_count;
    delete from bevsession.persona_signals where session_id = any (v_ids);
    get diagnostics v_signals = row_count;
    delete from bevsession.personas where session_id = any (v_ids);
    get diagnostics v_personas = row_count;
    delete from bevsession.sessions where id = any (v_ids);

    return pg_catalog.jsonb_build_object(
        'cutoff', bevsession.to_ms(v_cutoff),
        'deleted', pg_catalog.jsonb_build_object(
            'idle_sessions',    pg_catalog.cardinality(v_idle),
            'revoked_sessions', pg_catalog.cardinality(v_revoked),
            'personas',         v_personas,
            'messages',         v_messages,
            'signals',          v_signals),
        'more', pg_catalog.cardinality(v_idle) = p_batch or pg_catalog.cardinality(v_revoked) = p_batch);
end
$$;
comment on function public.purge_sessions(bigint, integer) is
    'Retention: delete idle sessions that never did anything and revoked/forgotten sessions older than p_older_than_ms (at least one day), with their rows; at most p_batch of each kind per call. Returns {cutoff, deleted: {idle_sessions, revoked_sessions, personas, messages, signals}, more}. service_role only.';
revoke execute on function public.purge_sessions(bigint, integer) from public, anon, authenticated, session_visitor;
grant execute on function public.purge_sessions(bigint, integer) to service_role;

revoke all on function bevsession.min_retention_ms() from public, anon, authenticated;
revoke all on function bevsession.max_purge_batch() from public, anon, authenticated;
grant execute on function bevsession.min_retention_ms() to session_visitor, service_role;
grant execute on function bevsession.max_purge_batch() to session_visitor, service_role;


notify pgrst, 'reload schema';
