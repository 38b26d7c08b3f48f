-- =============================================================================================
-- 20261201000400_admin.sql — for operators and the edge worker's start-up: seal keys, counts
-- =============================================================================================
--
-- service_role only: these reach across sessions (service_role has BYPASSRLS); a visitor cannot
-- even execute them.
--
-- Sections: 1 the seal key registry · 2 session statistics.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The seal key registry
-- ---------------------------------------------------------------------------------------------
-- Why: a cookie password that changes on every start (generated at boot, a secret that is not
-- pinned) turns every cookie into "cannot decrypt" — found late, as a storm of new sessions.
-- Each edge worker registers an HMAC fingerprint per password id (never the password); the first
-- fingerprint of an id wins, and a later different one is reported back (refused at start-up in
-- production).

create table bevsession.seal_keys (
    key_id        text primary key
        constraint "key_id is 1-64 word characters" check (key_id ~ '^\w{1,64}$'),
    fingerprint   text not null
        constraint "fingerprint is 32-128 hex digits" check (fingerprint ~ '^[0-9a-f]{32,128}$'),
    first_seen_at timestamptz not null default now(),
    last_seen_at  timestamptz not null default now()
);
comment on table bevsession.seal_keys is
    'Fingerprints (HMAC, not the secret) of the cookie password ids seen by edge workers.';

alter table bevsession.seal_keys enable row level security;
revoke all on bevsession.seal_keys from public, anon, authenticated;
grant select, insert, update, delete on bevsession.seal_keys to service_role;

create function public.register_seal_keys(fingerprints jsonb) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_changed text[];
begin
    if pg_catalog.jsonb_typeof(fingerprints) is distinct from 'object' then
        perform bevsession.invalid_argument('fingerprints', 'must be an object {key_id: fingerprint}');
    end if;
    select coalesce(pg_catalog.array_agg(k.key order by k.key), '{}') into v_changed
    from pg_catalog.jsonb_each_text(fingerprints) as k
    join bevsession.seal_keys as s on s.key_id = k.key
    where s.fingerprint <> k.value;

    insert into bevsession.seal_keys (key_id, fingerprint)
    select k.key, k.value from pg_catalog.jsonb_each_text(fingerprints) as k
    on conflict (key_id) do update set last_seen_at = pg_catalog.now();

    return pg_catalog.jsonb_build_object('changed', pg_catalog.to_jsonb(v_changed));
end
$$;
comment on function public.register_seal_keys(jsonb) is
    'Record password-id fingerprints; returns {changed: [ids whose fingerprint differs from the first one seen]}. service_role only.';
revoke execute on function public.register_seal_keys(jsonb) from public, anon, authenticated, session_visitor;
grant execute on function public.register_seal_keys(jsonb) to service_role;


-- ---------------------------------------------------------------------------------------------
-- 2. Session statistics
-- ---------------------------------------------------------------------------------------------

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
        'personas', (select count(*) from bevsession.user_personas),
        'messages', (select count(*) from bevsession.conversation_history),
        'signals',  (select count(*) from bevsession.persona_signals))
$$;
comment on function public.admin_session_stats() is
    'Counts: {sessions: {total, active, revoked, forgotten}, personas, messages, signals}. service_role only.';
revoke execute on function public.admin_session_stats() from public, anon, authenticated, session_visitor;
grant execute on function public.admin_session_stats() to service_role;


-- PostgREST caches the schema; tell it to reload (a no-op where nobody listens).
notify pgrst, 'reload schema';
