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
-- Sections: 1 the persona's summary · 2 a row no writer has · 3 API: read_session.
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
-- snapshot's xmax began after it. A multixact id
-- (several lockers at once: not something this API does to a session row) reads as an old id:
-- settled, as the rows the worker confirmed before this function existed. The calling
-- transaction's own lock is no writer in flight (read_session alone has none).

create function bevsession.row_settled(locker xid) returns boolean
    language sql stable
return (
    select locker::text = '0'
        or (c.whole >= 0 and (pg_catalog.pg_visible_in_snapshot(c.whole::text::xid8, c.snap)
                              or c.whole::text::xid8 is not distinct from pg_catalog.pg_current_xact_id_if_assigned()))
    from (select n.snap,
                 n.next + (locker::text::bigint - n.next % 4294967296 + 6442450944) % 4294967296 - 2147483648 as whole
          from (select pg_catalog.pg_current_snapshot() as snap,
                       pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::bigint as next) as n) as c);
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
    v_persona bevsession.user_personas;
begin
    select s as version, bevsession.row_settled(s.xmax) as settled into v_found
    from bevsession.sessions as s where s.id = v_session_id;
    if not found then
        return pg_catalog.jsonb_build_object('session', null);
    end if;
    v_session := bevsession.check_live(v_found.version, false);
    select * into v_persona from bevsession.user_personas as p where p.session_id = v_session_id;
    if not found or exists (select from bevsession.seed_imports as i
                            where i.session_id = v_session_id and i.completed_at is null) then
        return pg_catalog.jsonb_build_object('session', null);
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
        'persona',  bevsession.persona_summary_json(v_persona),
        'read_at',  bevsession.to_ms(pg_catalog.now()),
        'settled',  v_found.settled);
end
$$;
comment on function public.read_session() is
    'The calling session for a read, without a lock or a write: {session (no last_message), persona (summary: no histories, no questions), read_at (ms, the seen_ms of the batched touch_sessions that reports the read), settled (no writer touched the row version read)}; {session: null} when the read would need a write (no row, no persona, an import to complete): call adopt_session. PT403 revoked, PT410 expired.';
revoke execute on function public.read_session() from public, anon, authenticated;
grant execute on function public.read_session() to session_visitor, service_role;

-- PostgREST caches the schema; tell it to reload (a no-op where nobody listens).
notify pgrst, 'reload schema';
