-- =============================================================================================
-- 20261201004100_lean_read.sql — a cold read that takes no lock and writes nothing
-- =============================================================================================
--
-- The edge worker answered every first read of a cookie (one it held no copy of) with
-- adopt_session: lock the session row, check the seed import, touch last_activity_at, build the
-- whole persona with its detection histories and questions — a transaction that writes (an xid,
-- WAL, a commit flush) for what is a read, and a persona the cookie drops again. Measured: 0.15×
-- to 0.19× a plain encrypted-cookie app, 640 µs of PostgreSQL CPU per read.
--
-- read_session is that read for a cookie this server sealed (the worker still adopts a seed
-- cookie, whose activity must be counted at once): it reads the row without a lock, writes
-- nothing, and returns the session and the persona's summary (what the cookie carries: no
-- detection histories, no questions). The worker reports the read with its batched
-- touch_sessions (read_at is the `seen_ms` it sends), as it does for the reads its read cache
-- answers, so last_activity_at moves at most one flush interval late.
--
-- When the read would need a write — no row (a cookie whose session the database never saw),
-- no persona row, an imported session not yet completed by a cookie — it answers
-- {session: null} and writes nothing: the worker then calls adopt_session, exactly as before.
--
-- `settled`: whether the transaction that last locked or changed the row version read (its
-- xmax) had finished before this read's snapshot. A writer in flight (a chat turn holding the
-- lock) or one that committed after the snapshot is not: such a read is answered but not kept
-- in a worker's read cache, since the writer's timestamps may predate read_at by more than
-- touch_sessions' one-second margin (get_session and adopt_session wait for the writer instead:
-- they lock). A lock-only xmax stays on the row after its transaction ends (every writer here
-- locks, then updates: the new version keeps the lock), hence the snapshot test, not xmax = 0.
--
-- Sections: 1 the persona's summary · 2 a row no writer has · 3 API: read_session ·
-- 4 touch_sessions without a quadratic stale list.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The persona's summary
-- ---------------------------------------------------------------------------------------------
-- persona_json without the detection histories and questions_asked: what a cookie carries
-- (functions/bevsession_edge/session_cookie.py, persona_summary); the client's PersonaScores
-- takes their defaults (empty lists).

create function bevsession.persona_summary_json(p bevsession.user_personas) returns jsonb
    language sql stable parallel safe
return pg_catalog.jsonb_build_object(
    'detection_vectors', pg_catalog.jsonb_build_object(
        'functional_role',            (p).functional_role,
        'functional_role_confidence', (p).functional_role_confidence::float8,
        'org_type',                   (p).org_type,
        'org_type_confidence',        (p).org_type_confidence::float8,
        'org_size',                   (p).org_size,
        'org_size_confidence',        (p).org_size_confidence::float8,
        'product_focus',              (p).product_focus,
        'product_focus_confidence',   (p).product_focus_confidence::float8,
        'vectors_updated_at',         coalesce(bevsession.to_ms((p).vectors_updated_at), 0)),
    'sales_focus_score',      (p).sales_focus_score::float8,
    'marketing_focus_score',  (p).marketing_focus_score::float8,
    'operations_focus_score', (p).operations_focus_score::float8,
    'compliance_focus_score', (p).compliance_focus_score::float8,
    'supplier_score',         (p).supplier_score::float8,
    'distributor_score',      (p).distributor_score::float8,
    'craft_score',            (p).craft_score::float8,
    'mid_sized_score',        (p).mid_sized_score::float8,
    'large_score',            (p).large_score::float8,
    'pain_points_detected',   pg_catalog.to_jsonb((p).pain_points_detected::text[]),
    'pain_points_confidence', (p).pain_points_confidence,
    'overall_confidence',     (p).overall_confidence::float8,
    'total_interactions',     (p).total_interactions);
comment on function bevsession.persona_summary_json(bevsession.user_personas) is
    'persona_json without detection histories and questions_asked: what a cookie carries.';
revoke all on function bevsession.persona_summary_json(bevsession.user_personas) from public;
grant execute on function bevsession.persona_summary_json(bevsession.user_personas) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 2. A row no writer has
-- ---------------------------------------------------------------------------------------------
-- xmax is 32 bits; its full id is the one nearest the snapshot's xmax with those low bits (a
-- live row's xmax is never 2^31 transactions away: vacuum freezes before); one past the
-- snapshot's xmax began after it. A multixact id (several lockers at once: not something this
-- API does to a session row) reads as an old id: settled, as every copy the worker kept before
-- this function existed. The calling transaction's own lock is no writer in flight
-- (read_session alone has none). Each is one expression without a subquery, so the planner
-- inlines both into read_session's query (a SQL function it cannot inline is planned anew on
-- every call).

create function bevsession.full_xid(locker xid) returns xid8
    language sql stable
return case when pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::bigint
                 + (locker::text::bigint
                    - pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::bigint % 4294967296
                    + 6442450944) % 4294967296 - 2147483648 >= 0
            then (pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::bigint
                  + (locker::text::bigint
                     - pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::bigint % 4294967296
                     + 6442450944) % 4294967296 - 2147483648)::text::xid8
       end;
comment on function bevsession.full_xid(xid) is
    'The 64-bit id of a 32-bit xid: the one nearest the current snapshot''s xmax (null before the first epoch).';
revoke all on function bevsession.full_xid(xid) from public;
grant execute on function bevsession.full_xid(xid) to session_visitor, service_role;

create function bevsession.row_settled(locker xid) returns boolean
    language sql stable
return locker::text = '0'
    or coalesce(bevsession.full_xid(locker) = pg_catalog.pg_current_xact_id_if_assigned(), false)
    or coalesce(pg_catalog.pg_visible_in_snapshot(bevsession.full_xid(locker), pg_catalog.pg_current_snapshot()), false);
comment on function bevsession.row_settled(xid) is
    'Whether the transaction *locker* (a row''s xmax; 0: none) finished before the current snapshot (or is this one).';
revoke all on function bevsession.row_settled(xid) from public;
grant execute on function bevsession.row_settled(xid) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 3. API: read_session
-- ---------------------------------------------------------------------------------------------
-- Stable: one snapshot for the whole call, no lock, no write (PostgREST may run it read-only).
-- Revoked → PT403, expired → PT410, as every lookup (check_live). The session JSON leaves out
-- last_message (a cookie does not carry it) and revoked_at (null for a live session).

create function public.read_session() returns jsonb
    language plpgsql
    stable
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_found record;
    v_session bevsession.sessions;
begin
    -- one statement: the row, its persona, an import to complete, whether a writer has the row
    select s as version, p as persona, p.session_id is not null as has_persona,
           i.session_id is not null as importing, bevsession.row_settled(s.xmax) as settled
    into v_found
    from bevsession.sessions as s
    left join bevsession.user_personas as p on p.session_id = s.id
    left join bevsession.seed_imports as i on i.session_id = s.id and i.completed_at is null
    where s.id = v_session_id;
    if not found then
        return '{"session": null}';
    end if;
    v_session := bevsession.check_live(v_found.version, false);
    if not v_found.has_persona or v_found.importing then
        return '{"session": null}';
    end if;
    return pg_catalog.jsonb_build_object(
        'session', pg_catalog.jsonb_build_object(
            'session_id',                 v_session.id,
            'user_id',                    v_session.user_id,
            'created_at',                 bevsession.to_ms(v_session.created_at),
            'last_activity_at',           bevsession.to_ms(v_session.last_activity_at),
            'last_message_at',            bevsession.to_ms(v_session.last_message_at),
            'message_count',              v_session.message_count,
            'current_mode',               v_session.current_mode,
            'has_completed_onboarding',   v_session.has_completed_onboarding,
            'has_brochure',               v_session.has_brochure,
            'is_data_connected',          v_session.is_data_connected,
            'last_generated_brochure_id', v_session.last_generated_brochure_id,
            'last_brochure_generated_at', bevsession.to_ms(v_session.last_brochure_generated_at)),
        'persona',  bevsession.persona_summary_json(v_found.persona),
        'read_at',  bevsession.to_ms(pg_catalog.now()),
        'settled',  v_found.settled);
end
$$;
comment on function public.read_session() is
    'The calling session for a read, without a lock or a write: {session (no last_message), persona (summary: no histories, no questions), read_at (ms, the seen_ms of the batched touch_sessions that reports the read), settled (no writer touched the row version read)}; {session: null} when the read would need a write (no row, no persona, an import to complete): call adopt_session. PT403 revoked, PT410 expired.';
revoke execute on function public.read_session() from public, anon, authenticated;
grant execute on function public.read_session() to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 4. touch_sessions: the stale ids without comparing every id with every touched one
-- ---------------------------------------------------------------------------------------------
-- Every cold read now reaches the database through the batched touch, so a busy worker's batch
-- holds thousands of ids. touch_sessions built its `stale` list as `id <> all (touched)`: every
-- id compared with every touched id, 1.2 s for a batch of 6,000 (measured: two calls of
-- `python -m bench.read_cpu --cache warm`). Same rules and answer; the stale ids are now the
-- given ids the update did not return (an anti-join).

create or replace function public.touch_sessions(session_ids uuid[], seen_ms bigint[])
    returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_rule text;
    v_ids bevsession.touch_batch;
    v_policy bevsession.session_policy;
    v_touched bigint;
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

    with given as (
        -- the oldest check of each id decides (a worker may send an id twice)
        select g.id, pg_catalog.min(g.seen_ms) as seen_ms
        from rows from (pg_catalog.unnest(v_ids), pg_catalog.unnest(touch_sessions.seen_ms)) as g(id, seen_ms)
        group by g.id
    ),
    fresh as (
        select s.id
        from bevsession.sessions as s
        join given as g on g.id = s.id
        left join bevsession.user_personas as p on p.session_id = s.id
        where s.revoked_at is null
          and not bevsession.expired(s, v_policy)
          and coalesce(greatest(s.last_message_at,
                                case when p.last_updated > p.created_at then p.last_updated end),
                       '-infinity')
              < bevsession.from_ms(g.seen_ms) - interval '1 second'
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
    select (select pg_catalog.count(*) from touched),
           coalesce((select pg_catalog.array_agg(g.id order by g.id)
                     from given as g
                     where not exists (select from touched as t where t.id = g.id)), '{}')
    into v_touched, v_stale;

    return pg_catalog.jsonb_build_object(
        'touched', v_touched,
        'stale',   pg_catalog.to_jsonb(v_stale));
end
$$;

-- PostgREST caches the schema; tell it to reload (a no-op where nobody listens).
notify pgrst, 'reload schema';
