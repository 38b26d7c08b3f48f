-- =============================================================================================
-- 20261201003100_retention.sql — nothing outlives its lifetime plus the retention period
-- =============================================================================================
--
-- purge_sessions deleted sessions that never did anything and revoked ones, but a session with
-- messages that simply ended (its visitor left) was kept for ever: aged to 40 days, all 42 such
-- sessions of a test survived a purge of "older than 30 days". Now a third kind goes too:
-- sessions past their absolute lifetime by more than the retention period, whatever their
-- activity, with their messages, signals and persona. No cookie can open such a session (the
-- cookie lives no longer than the absolute lifetime), so nothing a visitor holds breaks.
--
-- What an operator wants kept for analytics is kept only when it says so, per session:
-- `update bevsession.sessions set kept_for_analytics = true where …` (owner or service_role;
-- a visitor has no grant on the column). Such sessions are skipped by every kind of purge.
--
-- Sections: 1 the analytics mark · 2 API for retention: purge_sessions (replaced).
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The analytics mark
-- ---------------------------------------------------------------------------------------------

alter table bevsession.sessions
    add column kept_for_analytics boolean not null default false;
comment on column bevsession.sessions.kept_for_analytics is
    'Set by an operator (service_role) to keep the session and its rows past retention; purge_sessions skips it.';

create index sessions_created_at_idx on bevsession.sessions (created_at) where not kept_for_analytics;


-- ---------------------------------------------------------------------------------------------
-- 2. API for retention: purge_sessions
-- ---------------------------------------------------------------------------------------------
-- Deleted, once older than older_than_ms (the cutoff), skipping what is kept for analytics:
--   * idle sessions that never did anything (as before);
--   * revoked and forgotten sessions whose revocation is older than the cutoff (as before);
--   * expired sessions: live ones that did something and whose absolute lifetime ended before
--     the cutoff, whatever their activity (one that did nothing is an idle session).
-- At most `batch` of each kind per call, oldest first, rows held by a request skipped.

create or replace function public.purge_sessions(older_than_ms bigint, batch integer default 10000)
    returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_field text;
    v_rule text;
    v_age bevsession.retention_ms;
    v_batch bevsession.purge_batch;
    v_cutoff timestamptz;
    v_lifetime interval;
    v_idle uuid[];
    v_revoked uuid[];
    v_expired uuid[];
    v_ids uuid[];
    v_messages bigint;
    v_signals bigint;
    v_personas bigint;
begin
    begin
        v_field := 'older_than_ms'; v_age := older_than_ms;
        v_field := 'batch';         v_batch := batch;
    exception when check_violation then
        get stacked diagnostics v_rule = constraint_name;
        perform bevsession.invalid_argument(v_field, v_rule);
    end;
    if v_age is null or v_batch is null then
        perform bevsession.invalid_argument(case when v_age is null then 'older_than_ms' else 'batch' end, 'is required');
    end if;
    v_cutoff := pg_catalog.now() - pg_catalog.make_interval(secs => v_age / 1000.0);
    select p.absolute_lifetime into v_lifetime from bevsession.session_policy as p where p.singleton;

    select coalesce(pg_catalog.array_agg(t.id), '{}') into v_idle
    from (select s.id
          from bevsession.sessions as s
          where s.revoked_at is null
            and not s.kept_for_analytics
            and s.last_activity_at < v_cutoff
            and s.message_count = 0
            and not exists (select 1 from bevsession.conversation_history as m where m.session_id = s.id)
            and not exists (select 1 from bevsession.persona_signals as g where g.session_id = s.id)
            and not exists (select 1 from bevsession.user_personas as p
                            where p.session_id = s.id and p.total_interactions > 0)
          order by s.last_activity_at
          limit v_batch
          for update of s skip locked) as t;

    select coalesce(pg_catalog.array_agg(t.id), '{}') into v_revoked
    from (select s.id
          from bevsession.sessions as s
          where s.revoked_at < v_cutoff
            and not s.kept_for_analytics
          order by s.revoked_at
          limit v_batch
          for update of s skip locked) as t;

    -- live sessions that did something: revoked ones are the kind above, and one that never
    -- did anything is an idle session (the first kind; its activity ended with its lifetime)
    select coalesce(pg_catalog.array_agg(t.id), '{}') into v_expired
    from (select s.id
          from bevsession.sessions as s
          where s.created_at < v_cutoff - v_lifetime
            and s.revoked_at is null
            and not s.kept_for_analytics
            and (s.message_count > 0
                 or exists (select 1 from bevsession.conversation_history as m where m.session_id = s.id)
                 or exists (select 1 from bevsession.persona_signals as g where g.session_id = s.id)
                 or exists (select 1 from bevsession.user_personas as p
                            where p.session_id = s.id and p.total_interactions > 0))
          order by s.created_at
          limit v_batch
          for update of s skip locked) as t;

    v_ids := v_idle || v_revoked || v_expired;
    delete from bevsession.conversation_history as m where m.session_id = any (v_ids);
    get diagnostics v_messages = row_count;
    delete from bevsession.persona_signals as g where g.session_id = any (v_ids);
    get diagnostics v_signals = row_count;
    delete from bevsession.user_personas as p where p.session_id = any (v_ids);
    get diagnostics v_personas = row_count;
    delete from bevsession.sessions as s where s.id = any (v_ids);

    return pg_catalog.jsonb_build_object(
        'cutoff', bevsession.to_ms(v_cutoff),
        'deleted', pg_catalog.jsonb_build_object(
            'idle_sessions',    pg_catalog.cardinality(v_idle),
            'revoked_sessions', pg_catalog.cardinality(v_revoked),
            'expired_sessions', pg_catalog.cardinality(v_expired),
            'personas',         v_personas,
            'messages',         v_messages,
            'signals',          v_signals),
        'more', pg_catalog.cardinality(v_idle) = v_batch or pg_catalog.cardinality(v_revoked) = v_batch
                or pg_catalog.cardinality(v_expired) = v_batch);
end
$$;
comment on function public.purge_sessions(bigint, integer) is
    'Retention: delete idle sessions that never did anything, revoked/forgotten sessions older than older_than_ms (at least one day), and sessions past their absolute lifetime by more than older_than_ms, with their rows, skipping those kept_for_analytics; at most batch of each kind per call. Returns {cutoff, deleted: {idle_sessions, revoked_sessions, expired_sessions, personas, messages, signals}, more}. service_role only.';
revoke execute on function public.purge_sessions(bigint, integer) from public, anon, authenticated, session_visitor;
grant execute on function public.purge_sessions(bigint, integer) to service_role;

-- PostgREST caches the schema; tell it to reload (a no-op where nobody listens).
notify pgrst, 'reload schema';
