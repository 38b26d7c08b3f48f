-- =============================================================================================
-- 20261124210000_abuse_limits.sql — the retention purge
-- =============================================================================================
--
-- Two abuse limits must hold for every edge worker at once, so they live in the database
-- (a limit kept in one worker's memory is multiplied by the number of workers):
--
--   * a chat-turn rate limit per session: begin_chat_turn refuses a turn beyond the limit with
--     SQLSTATE PT429 (PostgREST: HTTP 429), saying after how many seconds to retry. The limit is
--     the setting `bevsession.chat_rate_limit` ('20/minute' unless set). It is part of the base
--     migrations: sessions.chat_rate_tat in 20261124200000_session_schema.sql,
--     chat_rate_limit() / take_chat_turn() in 20261124200100_persona_logic.sql (section 7), the
--     take_chat_turn step in begin_chat_turn (20261124200200_rpc_api.sql);
--   * here, a retention purge for admin work (service_role only): sessions that never did
--     anything (bots, a page load that created the row) and revoked / forgotten tombstones are
--     deleted once older than a given age, with all their rows.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- The retention purge (service_role only)
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
