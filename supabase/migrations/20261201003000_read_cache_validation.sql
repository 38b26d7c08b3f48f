-- =============================================================================================
-- 20261201003000_read_cache_validation.sql — every cached copy re-checked on every flush
-- =============================================================================================
--
-- An edge worker answers repeated reads from cookies the database confirmed
-- (functions/bevsession_edge/read_cache.py) and reported to touch_sessions only the ids it had
-- *read* since its last flush. A copy nobody read was never re-checked, so a session revoked
-- elsewhere (another worker, an admin) stayed servable from that copy until its cache age ran
-- out: measured 10 s and 50 s after a clear on another worker, against the 1 s the README
-- promised. Now each flush also sends every other id the worker holds here, and a copy is
-- served only while the last flush that covered it is recent (read_cache.py); this function
-- answers which copies must go, and which of them are revoked (the worker then refuses their
-- cookies for good, even while the database is away).
--
-- Read-only: it touches nothing (an unread copy is no activity) and takes no lock, so a flush
-- of 10 000 ids never waits for a writer; the staleness rule is touch_sessions' own.
--
-- Sections: 1 API for the edge worker: validate_sessions.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. API for the edge worker: validate_sessions
-- ---------------------------------------------------------------------------------------------
-- session_ids[i] was confirmed at seen_ms[i] (the last_activity_at the database returned: its
-- own clock). Stale: missing · revoked · expired · a message or persona write at or after
-- seen_ms minus one second (the margin of touch_sessions). Revoked: the stale ids whose session
-- is revoked or forgotten. service_role only here; 20261201003200_worker_role.sql grants the
-- edge worker's own role.

create function public.validate_sessions(session_ids uuid[], seen_ms bigint[])
    returns jsonb
    language plpgsql
    stable
    security invoker
    set search_path = ''
as $$
declare
    v_rule text;
    v_ids bevsession.touch_batch;
    v_policy bevsession.session_policy;
    v_valid bigint;
    v_revoked uuid[];
    v_stale uuid[];
begin
    begin
        v_ids := session_ids;
    exception when check_violation or not_null_violation then
        get stacked diagnostics v_rule = constraint_name;
        perform bevsession.invalid_argument('session_ids', coalesce(nullif(v_rule, ''), 'is required'));
    end;
    if v_ids is null or seen_ms is null
       or pg_catalog.cardinality(v_ids) <> pg_catalog.cardinality(seen_ms)
       or pg_catalog.array_position(seen_ms, null) is not null then
        perform bevsession.invalid_argument('seen_ms', 'must have one entry per session id, none null');
    end if;
    select * into v_policy from bevsession.session_policy where singleton;

    -- one pass, set-based: a missing session is stale (the left join finds no row)
    with given as (
        select g.id, pg_catalog.min(g.seen_ms) as seen_ms
        from rows from (pg_catalog.unnest(v_ids), pg_catalog.unnest(validate_sessions.seen_ms)) as g(id, seen_ms)
        group by g.id
    ),
    checked as (
        select g.id,
               coalesce(s.revoked_at is not null, false) as revoked,
               coalesce(s.revoked_at is null
                        and not bevsession.expired(s, v_policy)
                        and coalesce(greatest(s.last_message_at,
                                              case when p.last_updated > p.created_at then p.last_updated end),
                                     '-infinity')
                            < bevsession.from_ms(g.seen_ms) - interval '1 second', false) as live
        from given as g
        left join bevsession.sessions as s on s.id = g.id
        left join bevsession.user_personas as p on p.session_id = s.id
    )
    select pg_catalog.count(*) filter (where c.live),
           coalesce(pg_catalog.array_agg(c.id order by c.id) filter (where not c.live), '{}'),
           coalesce(pg_catalog.array_agg(c.id order by c.id) filter (where c.revoked), '{}')
    into v_valid, v_stale, v_revoked
    from checked as c;

    return pg_catalog.jsonb_build_object(
        'valid',   v_valid,
        'stale',   pg_catalog.to_jsonb(v_stale),
        'revoked', pg_catalog.to_jsonb(v_revoked));
end
$$;
comment on function public.validate_sessions(uuid[], bigint[]) is
    'Re-check cookies an edge worker confirmed at seen_ms, touching nothing: {valid, stale: [ids the worker must drop], revoked: [the stale ids that are revoked]}. For the edge worker.';
revoke execute on function public.validate_sessions(uuid[], bigint[]) from public, anon, authenticated, session_visitor;
grant execute on function public.validate_sessions(uuid[], bigint[]) to service_role;

-- PostgREST caches the schema; tell it to reload (a no-op where nobody listens).
notify pgrst, 'reload schema';
