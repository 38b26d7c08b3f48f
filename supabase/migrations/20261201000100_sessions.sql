-- =============================================================================================
-- 20261201000100_sessions.sql — a visitor's session: its row, its lifetime, reading, ending it
-- =============================================================================================
--
-- One row per anonymous visitor session; the id is the session_id claim. A session is *live*
-- while it is not revoked and has passed neither expiry of the session policy (section 2); every
-- path, the batched touch of the edge worker's read cache included, uses the one rule
-- bevsession.expired(). A revoked session is refused for good (PT403), an expired one with PT410.
--
-- get_session, forget_session and purge_sessions also reach the persona and chat tables of the
-- migrations that follow: PL/pgSQL resolves those names when it first runs.
--
-- Errors: PT401 no session identity · PT403 session revoked · PT404 session not found ·
-- PT410 session expired · 22023 "<argument>: <problem>". PostgREST turns PTxyz into HTTP xyz.
--
-- Sections: 1 the sessions table · 2 the session policy · 3 row-level security and privileges ·
-- 4 liveness, finding and locking · 5 API: get_session, get_session_policy, clear_session,
-- forget_session · 6 API for the edge worker: touch_sessions · 7 API for retention: purge_sessions.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The sessions table
-- ---------------------------------------------------------------------------------------------
-- The seed's SessionData, minus what only the cookie needs.

create table bevsession.sessions (
    id                          uuid primary key,
    user_id                     uuid,
    created_at                  timestamptz not null default now(),
    last_activity_at            timestamptz not null default now(),
    last_message_at             timestamptz,
    last_message                bevsession.message_content,
    message_count               integer not null default 0
        constraint "message_count is not negative" check (message_count >= 0),
    current_mode                bevsession.session_mode not null default 'fresh',
    has_completed_onboarding    boolean not null default false,
    has_brochure                boolean not null default false,
    is_data_connected           boolean not null default false,
    last_generated_brochure_id  bevsession.brochure_id,
    last_brochure_generated_at  timestamptz,
    -- clear_session sets revoked_at; forget_session sets both. Never undone (trigger below).
    revoked_at                  timestamptz,
    forgotten_at                timestamptz,
    -- Why a "theoretical arrival time" (GCRA) and not a counter per window: one timestamp per
    -- session is the whole bucket of the chat rate limit (20261201000300_chat.sql), a burst of
    -- the full allowance is allowed, and the wait is exact.
    chat_rate_tat               timestamptz,
    constraint "a forgotten session is revoked" check (forgotten_at is null or revoked_at is not null)
) with (fillfactor = 80);
comment on table bevsession.sessions is
    'One row per anonymous visitor session; the id is the session_id claim. A revoked row is refused for good.';
comment on column bevsession.sessions.chat_rate_tat is
    'Chat rate limit state (GCRA): the theoretical arrival time of the next chat turn; null before the first one.';

-- Why no index on last_activity_at: every call moves it, and an indexed column that changes
-- rules out HOT updates (the row written twice per chat turn would update every index each
-- time). The retention purge, a daily batch job, scans instead. fillfactor leaves each page
-- room for those HOT versions.
create index sessions_revoked_at_idx on bevsession.sessions (revoked_at) where revoked_at is not null;
create index sessions_user_id_idx on bevsession.sessions (user_id) where user_id is not null;

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
revoke all on function bevsession.keep_revocation_permanent() from public;

create trigger sessions_keep_revocation_permanent
    before update of revoked_at, forgotten_at, id on bevsession.sessions
    for each row execute function bevsession.keep_revocation_permanent();


-- ---------------------------------------------------------------------------------------------
-- 2. The session policy: the two expiries, one row
-- ---------------------------------------------------------------------------------------------
-- An ABSOLUTE lifetime counted from creation (activity cannot keep a session alive for ever)
-- and an IDLE timeout counted from the last activity. Why a table and not constants: operators
-- change lifetimes without a migration (`update bevsession.session_policy set idle_timeout =
-- '30 minutes'`, as the owner or service_role). The edge worker's SESSION_TTL /
-- SESSION_IDLE_TIMEOUT must match; get_session_policy() lets it check at start-up.

create table bevsession.session_policy (
    singleton         boolean primary key default true
        constraint "one row" check (singleton),
    absolute_lifetime interval not null default interval '24 hours'
        constraint "absolute_lifetime is positive" check (absolute_lifetime > interval '0'),
    idle_timeout      interval default interval '2 hours'
        constraint "idle_timeout is positive or null" check (idle_timeout is null or idle_timeout > interval '0')
);
comment on table bevsession.session_policy is
    'One row: absolute_lifetime (from created_at) and idle_timeout (from last_activity_at; null = none).';
insert into bevsession.session_policy default values;


-- ---------------------------------------------------------------------------------------------
-- 3. Row-level security and privileges
-- ---------------------------------------------------------------------------------------------
-- RLS is enabled, not forced: the owner (the migration role) is no request role, and the RPCs
-- are security invoker, so a visitor's call meets these policies. service_role has BYPASSRLS
-- (admin work); anon and authenticated have no privilege at all. `(select …)` evaluates the
-- claim once per statement.

alter table bevsession.sessions enable row level security;

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

revoke all on bevsession.sessions from public, anon, authenticated;
grant all on bevsession.sessions to service_role;
grant select on bevsession.sessions to session_visitor;
grant insert (id) on bevsession.sessions to session_visitor;
grant update (last_activity_at, last_message_at, last_message, message_count, current_mode,
              has_completed_onboarding, has_brochure, is_data_connected,
              last_generated_brochure_id, last_brochure_generated_at, revoked_at, forgotten_at,
              chat_rate_tat)
    on bevsession.sessions to session_visitor;

alter table bevsession.session_policy enable row level security;
create policy "Session roles can read the session policy"
    on bevsession.session_policy for select to session_visitor, service_role
    using (true);
revoke all on bevsession.session_policy from public, anon, authenticated;
grant select on bevsession.session_policy to session_visitor;
grant select, update on bevsession.session_policy to service_role;


-- ---------------------------------------------------------------------------------------------
-- 4. Liveness, finding and locking
-- ---------------------------------------------------------------------------------------------

-- The one expiry rule, inlined wherever it is used (the API's checks and touch_sessions' batch).
create function bevsession.expired(s bevsession.sessions, policy bevsession.session_policy)
    returns boolean
    language sql stable parallel safe
return (s).created_at + (policy).absolute_lifetime <= pg_catalog.now()
    or ((policy).idle_timeout is not null
        and (s).last_activity_at + (policy).idle_timeout <= pg_catalog.now());
comment on function bevsession.expired(bevsession.sessions, bevsession.session_policy) is
    'Past the absolute lifetime (from created_at) or the idle timeout (from last_activity_at).';
revoke all on function bevsession.expired(bevsession.sessions, bevsession.session_policy) from public;
grant execute on function bevsession.expired(bevsession.sessions, bevsession.session_policy) to session_visitor, service_role;

-- Reads the policy once; every lookup of an API call goes through here exactly once.
-- allow_dead lets clear_session and forget_session work on a revoked or expired session (a
-- visitor may always end a session and erase their data).
create function bevsession.check_live(s bevsession.sessions, allow_dead boolean)
    returns bevsession.sessions
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_policy bevsession.session_policy;
begin
    if allow_dead then
        return s;
    end if;
    if s.revoked_at is not null then
        raise exception using errcode = 'PT403', message = 'session revoked',
            detail = pg_catalog.format('session %s was revoked at %s and is refused for good', s.id, s.revoked_at);
    end if;
    select * into v_policy from bevsession.session_policy where singleton;
    if bevsession.expired(s, v_policy) then
        raise exception using errcode = 'PT410', message = 'session expired',
            detail = pg_catalog.format('session %s passed its absolute lifetime (%s) or idle timeout (%s)',
                                       s.id, v_policy.absolute_lifetime, v_policy.idle_timeout);
    end if;
    return s;
end
$$;
comment on function bevsession.check_live(bevsession.sessions, boolean) is
    'Raise PT403 (revoked) or PT410 (expired) unless allow_dead; the session otherwise.';
revoke all on function bevsession.check_live(bevsession.sessions, boolean) from public;
grant execute on function bevsession.check_live(bevsession.sessions, boolean) to session_visitor, service_role;

-- Why two: get_conversation_history is read-only (PostgREST may run it in a read-only
-- transaction) and must not lock; every writer locks the session row first (then the persona),
-- so concurrent calls of one session queue instead of losing updates or deadlocking, and a
-- concurrent clear or forget is seen before anything is written.
create function bevsession.find_session(session_id uuid, allow_dead boolean default false)
    returns bevsession.sessions
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_session bevsession.sessions;
begin
    select * into v_session from bevsession.sessions as s where s.id = find_session.session_id;
    if not found then
        raise exception using errcode = 'PT404', message = 'session not found',
            detail = pg_catalog.format('no session %s; get_session or begin_chat_turn creates it', session_id);
    end if;
    return bevsession.check_live(v_session, allow_dead);
end
$$;
comment on function bevsession.find_session(uuid, boolean) is
    'The session row (no lock); PT404 when missing, PT403/PT410 when revoked/expired unless allowed.';
revoke all on function bevsession.find_session(uuid, boolean) from public;
grant execute on function bevsession.find_session(uuid, boolean) to session_visitor, service_role;

create function bevsession.lock_session(session_id uuid, allow_dead boolean default false)
    returns bevsession.sessions
    language plpgsql
    set search_path = ''
as $$
declare
    v_session bevsession.sessions;
begin
    -- NO KEY UPDATE: blocks the other writers of this session, not inserts that reference it
    select * into v_session from bevsession.sessions as s where s.id = lock_session.session_id
        for no key update;
    if not found then
        raise exception using errcode = 'PT404', message = 'session not found',
            detail = pg_catalog.format('no session %s; get_session or begin_chat_turn creates it', session_id);
    end if;
    return bevsession.check_live(v_session, allow_dead);
end
$$;
comment on function bevsession.lock_session(uuid, boolean) is
    'The session row, locked for this transaction; PT404 when missing, PT403/PT410 when revoked/expired unless allowed.';
revoke all on function bevsession.lock_session(uuid, boolean) from public;
grant execute on function bevsession.lock_session(uuid, boolean) to session_visitor, service_role;

-- Why: get_session and begin_chat_turn create a session on first sight. The common case (the
-- session exists) is one statement: lock the row. Two first requests of one visitor may race:
-- ON CONFLICT DO NOTHING lets exactly one insert, the other then locks the row.
-- An existing session is locked and checked live; with touch its last_activity_at moves (the
-- seed updates it on every request). begin_chat_turn does not touch here: its one UPDATE of the
-- session row moves the activity with the counters.
create function bevsession.ensure_session(
    session_id uuid,
    touch boolean,
    out session bevsession.sessions,
    out created boolean
)
    language plpgsql
    set search_path = ''
as $$
begin
    created := false;
    select * into session from bevsession.sessions as s where s.id = ensure_session.session_id
        for no key update;
    if not found then
        insert into bevsession.sessions (id) values (ensure_session.session_id)
            on conflict (id) do nothing
            returning * into session;
        created := found;
        if created then
            insert into bevsession.user_personas (session_id) values (ensure_session.session_id);
            return;
        end if;
        session := bevsession.lock_session(ensure_session.session_id);  -- a concurrent first request made it
    end if;
    session := bevsession.check_live(session, false);
    if touch then
        update bevsession.sessions as s set last_activity_at = pg_catalog.now()
            where s.id = ensure_session.session_id
            returning * into session;
    end if;
end
$$;
comment on function bevsession.ensure_session(uuid, boolean) is
    'Create the session (and its persona) if missing; else lock it, check it is live and, with touch, set last_activity_at.';
revoke all on function bevsession.ensure_session(uuid, boolean) from public;
grant execute on function bevsession.ensure_session(uuid, boolean) to session_visitor, service_role;

-- The session JSON of every API answer (the seed's SessionData fields; times in ms).
create function bevsession.session_json(s bevsession.sessions) returns jsonb
    language sql stable parallel safe
return pg_catalog.jsonb_build_object(
    'session_id',                 (s).id,
    'user_id',                    (s).user_id,
    'created_at',                 bevsession.to_ms((s).created_at),
    'last_activity_at',           bevsession.to_ms((s).last_activity_at),
    'last_message_at',            bevsession.to_ms((s).last_message_at),
    'last_message',               (s).last_message,
    'message_count',              (s).message_count,
    'current_mode',               (s).current_mode,
    'has_completed_onboarding',   (s).has_completed_onboarding,
    'has_brochure',               (s).has_brochure,
    'is_data_connected',          (s).is_data_connected,
    'last_generated_brochure_id', (s).last_generated_brochure_id,
    'last_brochure_generated_at', bevsession.to_ms((s).last_brochure_generated_at),
    'revoked_at',                 bevsession.to_ms((s).revoked_at));
comment on function bevsession.session_json(bevsession.sessions) is 'Session JSON: the seed''s SessionData fields, times in ms.';
revoke all on function bevsession.session_json(bevsession.sessions) from public;
grant execute on function bevsession.session_json(bevsession.sessions) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 5. API: get_session, get_session_policy, clear_session, forget_session
-- ---------------------------------------------------------------------------------------------
-- Every API function is security invoker (a visitor's call runs as session_visitor, under RLS),
-- takes the session id from the claims, never from an argument, and is one transaction.

-- getSession(): get or create the caller's session. Creating is idempotent under races. A
-- revoked session is refused (PT403), so a cleared or stolen cookie cannot bring it back.
create function public.get_session(touch boolean default true) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_session bevsession.sessions;
    v_ensured record;
    v_created boolean := false;
begin
    if coalesce(get_session.touch, true) then
        v_ensured := bevsession.ensure_session(v_session_id, touch => true);
        v_session := v_ensured.session;
        v_created := v_ensured.created;
    else
        -- a read without touch takes no lock and writes nothing for a session that exists (the
        -- edge worker reports such reads in its batched touch_sessions)
        select * into v_session from bevsession.sessions as s where s.id = v_session_id;
        if found then
            v_session := bevsession.check_live(v_session, false);
        else
            v_ensured := bevsession.ensure_session(v_session_id, touch => false);
            v_session := v_ensured.session;
            v_created := v_ensured.created;
        end if;
    end if;
    return pg_catalog.jsonb_build_object(
        'session', bevsession.session_json(v_session),
        'persona', bevsession.persona_json(bevsession.persona_of(v_session)),
        'created', v_created);
end
$$;
comment on function public.get_session(boolean) is
    'Get or create the calling session (claims: session_id); lock it and touch last_activity_at unless touch is false (then: no lock, no write). Returns {session, persona, created}.';
revoke execute on function public.get_session(boolean) from public, anon, authenticated;
grant execute on function public.get_session(boolean) to session_visitor, service_role;

-- Visitors (and the edge worker at start-up) may read the policy; nothing else is revealed.
create function public.get_session_policy() returns jsonb
    language sql stable
    security invoker
    set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'absolute_lifetime_seconds', extract(epoch from p.absolute_lifetime)::bigint,
        'idle_timeout_seconds',      extract(epoch from p.idle_timeout)::bigint)
    from bevsession.session_policy as p
    where p.singleton
$$;
comment on function public.get_session_policy() is
    'The two expiries in seconds: {absolute_lifetime_seconds, idle_timeout_seconds (null = none)}.';
revoke execute on function public.get_session_policy() from public, anon, authenticated;
grant execute on function public.get_session_policy() to session_visitor, service_role;

-- clearSession(): the seed only dropped the cookie, so a stolen cookie kept working until it
-- expired. Here the session is revoked for good; its data stays for analytics. Idempotent.
create function public.clear_session() returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session bevsession.sessions := bevsession.lock_session(bevsession.require_session_id(), allow_dead => true);
begin
    if v_session.revoked_at is null then
        update bevsession.sessions as s set revoked_at = pg_catalog.now()
            where s.id = v_session.id
            returning * into v_session;
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

-- A visitor may ask to be forgotten: messages, signals and the persona are deleted (and the last
-- message copied on the session row is blanked); the session row stays as a revoked tombstone so
-- its id can never be used again. Allowed on a revoked session; repeating it deletes nothing more.
create function public.forget_session() returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := (bevsession.lock_session(bevsession.require_session_id(), allow_dead => true)).id;
    v_messages bigint;
    v_signals bigint;
    v_personas bigint;
begin
    delete from bevsession.conversation_history as m where m.session_id = v_session_id;
    get diagnostics v_messages = row_count;
    delete from bevsession.persona_signals as g where g.session_id = v_session_id;
    get diagnostics v_signals = row_count;
    delete from bevsession.user_personas as p where p.session_id = v_session_id;
    get diagnostics v_personas = row_count;

    update bevsession.sessions as s set
        revoked_at   = coalesce(s.revoked_at, pg_catalog.now()),
        forgotten_at = coalesce(s.forgotten_at, pg_catalog.now()),
        last_message = null
    where s.id = v_session_id;

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
-- 6. API for the edge worker: touch_sessions
-- ---------------------------------------------------------------------------------------------
-- The edge worker answers repeated reads from cookies the database confirmed
-- (functions/bevsession_edge/read_cache.py) and reports those reads here, once per flush, in one
-- call: session_ids[i] was confirmed at seen_ms[i] (the last_activity_at the database returned
-- for it: the database's own clock, so no skew between hosts). Live sessions are touched; the
-- answer lists the ids whose copy the worker must drop: missing · revoked · expired ·
-- locked by a writer right now (it is changing; skipped, never waited for) · a message or
-- persona write at or after seen_ms minus one second (creating the persona with the session is
-- no change). The one-second margin: a change committed just after a worker's check can carry a
-- timestamp just before it (its transaction started first); such changes count as newer, so the
-- worker re-reads once too often rather than serving a stale copy.
-- Rows are locked in id order with SKIP LOCKED: a flush never waits for a chat turn and two
-- workers' flushes cannot deadlock. service_role only: it reaches across sessions.

create domain bevsession.touch_batch as uuid[]
    constraint "at most 10000 ids, none null"
    check (pg_catalog.cardinality(value) <= 10000 and pg_catalog.array_position(value, null) is null);
comment on domain bevsession.touch_batch is 'The session ids of one touch_sessions call (a worker flushes more in several calls).';
grant usage on type bevsession.touch_batch to service_role;

create function public.touch_sessions(session_ids uuid[], seen_ms bigint[])
    returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_rule text;
    v_ids bevsession.touch_batch;
    v_policy bevsession.session_policy;
    v_touched uuid[];
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
    select coalesce(pg_catalog.array_agg(t.id), '{}') into v_touched from touched as t;

    select coalesce(pg_catalog.array_agg(g.id order by g.id), '{}') into v_stale
    from (select distinct u.id from pg_catalog.unnest(v_ids) as u(id)) as g
    where g.id <> all (v_touched);

    return pg_catalog.jsonb_build_object(
        'touched', pg_catalog.cardinality(v_touched),
        'stale',   pg_catalog.to_jsonb(v_stale));
end
$$;
comment on function public.touch_sessions(uuid[], bigint[]) is
    'Batched activity of reads an edge worker answered from cookies the database confirmed at seen_ms: touch the live, unchanged ones; return {touched, stale: [ids the worker must re-read]}. service_role only.';
revoke execute on function public.touch_sessions(uuid[], bigint[]) from public, anon, authenticated, session_visitor;
grant execute on function public.touch_sessions(uuid[], bigint[]) to service_role;


-- ---------------------------------------------------------------------------------------------
-- 7. API for retention: purge_sessions
-- ---------------------------------------------------------------------------------------------
-- Every first page view creates a session row (the seed's row-per-visit), and a revoked session
-- is kept as a tombstone so its id stays refused. Neither may grow without bound. Deleted, once
-- older than older_than_ms:
--   * idle sessions that never did anything — live, inactive since before the cutoff, with no
--     message, no signal and an untouched persona (bots, page loads);
--   * revoked and forgotten sessions whose revocation is older than the cutoff, with their rows.
-- Choose an age longer than the cookie lifetime: a cookie naming a deleted revoked session would
-- otherwise open a fresh session under the old id. Rows a concurrent request holds are skipped
-- and at most `batch` sessions of each kind go per call: call again while "more".

create domain bevsession.retention_ms as bigint
    constraint "must be at least 86400000 (one day)" check (value >= 86400000);
comment on domain bevsession.retention_ms is
    'The age purge_sessions deletes from: never a session in use, and a revoked id stays refused while a cookie naming it can still open.';
create domain bevsession.purge_batch as integer
    constraint "must be between 1 and 100000" check (value between 1 and 100000);
comment on domain bevsession.purge_batch is 'Sessions of each kind one purge_sessions call deletes.';
grant usage on type bevsession.retention_ms, bevsession.purge_batch to service_role;

create function public.purge_sessions(older_than_ms bigint, batch integer default 10000)
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
    v_idle uuid[];
    v_revoked uuid[];
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

    select coalesce(pg_catalog.array_agg(t.id), '{}') into v_idle
    from (select s.id
          from bevsession.sessions as s
          where s.revoked_at is null
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
          order by s.revoked_at
          limit v_batch
          for update of s skip locked) as t;

    v_ids := v_idle || v_revoked;
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
            'personas',         v_personas,
            'messages',         v_messages,
            'signals',          v_signals),
        'more', pg_catalog.cardinality(v_idle) = v_batch or pg_catalog.cardinality(v_revoked) = v_batch);
end
$$;
comment on function public.purge_sessions(bigint, integer) is
    'Retention: delete idle sessions that never did anything and revoked/forgotten sessions older than older_than_ms (at least one day), with their rows; at most batch of each kind per call. Returns {cutoff, deleted: {idle_sessions, revoked_sessions, personas, messages, signals}, more}. service_role only.';
revoke execute on function public.purge_sessions(bigint, integer) from public, anon, authenticated, session_visitor;
grant execute on function public.purge_sessions(bigint, integer) to service_role;
