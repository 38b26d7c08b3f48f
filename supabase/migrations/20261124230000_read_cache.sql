-- =============================================================================================
-- bevgenie-session · batched activity for reads the edge worker answers from a checked cookie
--
-- Why: a page that polls GET /api/session would otherwise cost one RPC per request, and the
-- database, not the edge worker, would set the pace of every read (measured by `python -m
-- bench`: ~0.2x an encrypted-cookie app without a database). Each edge worker therefore keeps
-- a short list of cookies the database confirmed (functions/bevsession_edge/read_cache.py) and
-- answers a repeated read from it. Those reads still reach the database, once a second per
-- worker, in ONE call for every session read in that second:
--   * the sessions' last_activity_at moves forward (the idle timeout and retention see reads);
--   * the call answers which of the worker's copies are stale — the session is gone, revoked,
--     expired, busy, or changed since the worker checked it — so the worker drops them and the
--     next read of those sessions is a full get_session again.
-- A revocation by another worker or an admin therefore reaches every worker within one flush
-- interval; writes (chat turns, clear, forget) always go to the database at once.
--
-- Sections: 1 limits · 2 touch_sessions.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. Limits
-- ---------------------------------------------------------------------------------------------
create function bevsession.max_touch_batch() returns integer
    language sql immutable parallel safe set search_path = ''
as $$ select 10000 $$;
comment on function bevsession.max_touch_batch() is
    'Most sessions one touch_sessions call takes (a worker flushes more in several calls).';
revoke all on function bevsession.max_touch_batch() from public, anon, authenticated;
grant execute on function bevsession.max_touch_batch() to service_role;

-- A change committed just after a worker's check can carry a timestamp just before it (its
-- transaction started first). Changes this close to the check count as newer than it: the
-- worker re-reads once too often rather than serving a stale copy.
create function bevsession.touch_change_margin() returns interval
    language sql immutable parallel safe set search_path = ''
as $$ select interval '1 second' $$;
comment on function bevsession.touch_change_margin() is
    'How close to a worker''s check a change may be and still count as after it.';
revoke all on function bevsession.touch_change_margin() from public, anon, authenticated;
grant execute on function bevsession.touch_change_margin() to service_role;


-- ---------------------------------------------------------------------------------------------
-- 2. touch_sessions
-- ---------------------------------------------------------------------------------------------
-- p_session_ids[i] was confirmed by the database at p_seen_ms[i] (the last_activity_at, in ms,
-- that get_session or a chat turn returned for it: the database's own clock, so no skew between
-- hosts). Live sessions are touched; the answer lists the ids whose copy the worker must drop:
--   missing · revoked · past the absolute lifetime or the idle timeout (bevsession.policy) ·
--   locked by a writer right now (it is changing; skipped, never waited for) ·
--   a message or persona write at or after p_seen_ms minus bevsession.touch_change_margin()
--   (creating the persona with the session is not a change).
-- Rows are locked in id order with SKIP LOCKED, so a flush never waits for a chat turn and two
-- workers' flushes cannot deadlock. service_role only: it reaches across sessions (BYPASSRLS).
create function public.touch_sessions(p_session_ids uuid[], p_seen_ms bigint[])
    returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_policy bevsession.session_policy := bevsession.policy();
    v_touched uuid[];
    v_stale uuid[];
begin
    if p_session_ids is null or p_seen_ms is null
       or pg_catalog.cardinality(p_session_ids) <> pg_catalog.cardinality(p_seen_ms) then
        perform bevsession.invalid_argument('p_seen_ms', 'must have one entry per session id');
    end if;
    if pg_catalog.cardinality(p_session_ids) > bevsession.max_touch_batch() then
        perform bevsession.invalid_argument('p_session_ids',
            'at most ' || bevsession.max_touch_batch() || ' ids per call');
    end if;
    if pg_catalog.array_position(p_session_ids, null) is not null
       or pg_catalog.array_position(p_seen_ms, null) is not null then
        perform bevsession.invalid_argument('p_session_ids', 'must not contain null');
    end if;

    with given as (
        -- the oldest check of each id decides (a worker may send an id twice)
        select g.id, pg_catalog.min(g.seen_ms) as seen_ms
        from rows from (pg_catalog.unnest(p_session_ids), pg_catalog.unnest(p_seen_ms)) as g(id, seen_ms)
        group by g.id
    ),
    fresh as (
        select s.id
        from bevsession.sessions as s
        join given as g on g.id = s.id
        left join bevsession.personas as p on p.session_id = s.id
        where s.revoked_at is null
          and s.created_at + v_policy.absolute_lifetime > pg_catalog.now()
          and (v_policy.idle_timeout is null
               or s.last_activity_at + v_policy.idle_timeout > pg_catalog.now())
          -- a persona never written since it was created (last_updated = created_at) has not
          -- changed: a brand-new session's copy stays good
          and coalesce(greatest(s.last_message_at,
                                case when p.last_updated > p.created_at then p.last_updated end),
                       '-infinity')
              < bevsession.from_ms(g.seen_ms) - bevsession.touch_change_margin()
        order by s.id
        for no key update of s skip locked
    ),
    touched as (
        update bevsession.sessions as s
        set last_activity_at = greatest(s.last_activity_at, pg_catalog.now())
        from fresh
        where s.id = fresh.id
        returning s.id
    )
    select coalesce(pg_catalog.array_agg(t.id), '{}') into v_touched from touched as t;

    select coalesce(pg_catalog.array_agg(g.id order by g.id), '{}') into v_stale
    from (select distinct u.id from pg_catalog.unnest(p_session_ids) as u(id)) as g
    where g.id <> all (v_touched);

    return pg_catalog.jsonb_build_object(
        'touched', pg_catalog.cardinality(v_touched),
        'stale',   pg_catalog.to_jsonb(v_stale));
end
$$;
comment on function public.touch_sessions(uuid[], bigint[]) is
    'Batched activity of reads an edge worker answered from cookies the database confirmed at p_seen_ms: touch the live, unchanged ones; return {touched, stale: [ids the worker must re-read]}. service_role only.';
revoke execute on function public.touch_sessions(uuid[], bigint[]) from public, anon, authenticated, session_visitor;
grant execute on function public.touch_sessions(uuid[], bigint[]) to service_role;
