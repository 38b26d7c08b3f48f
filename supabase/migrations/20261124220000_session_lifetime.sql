-- =============================================================================================
-- bevgenie-session · session lifetime: the policy RPC and the seal key registry
--
-- Why: users of other session libraries keep hitting the same problems, and each has a fix.
--   1. Two expiries, both enforced in SQL too (not only in the edge worker's cookie check):
--      an ABSOLUTE lifetime counted from creation and an IDLE timeout counted from the last
--      activity; a session past either is refused with SQLSTATE PT410 'session expired'. The
--      policy table is in 20261124200000_session_schema.sql (section 11), the check
--      (bevsession.check_live, used by find_session / lock_session) in
--      20261124200100_persona_logic.sql; here the RPC that lets the edge worker read it.
--   2. History for an LLM: every message stores a token count (messages.token_count,
--      20261124200000_session_schema.sql) and get_conversation_history takes an optional token
--      budget (20261124200200_rpc_api.sql; bevsession.history_window in persona_logic).
--   3. A deployment whose cookie password changes on every start logs everyone out, silently.
--      The edge worker registers a fingerprint of each password id at start-up; a known id whose
--      fingerprint changed is reported (and refused in production).
--
-- Sections: 1 the session policy for the edge worker · 2 seal key registry.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The session policy for the edge worker (SESSION_TTL / SESSION_IDLE_TIMEOUT check)
-- ---------------------------------------------------------------------------------------------
-- Visitors (and the edge worker at start-up) may read the policy; nothing else is revealed.
create function public.get_session_policy() returns jsonb
    language sql stable
    security invoker
    set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'absolute_lifetime_seconds', extract(epoch from p.absolute_lifetime)::bigint,
        'idle_timeout_seconds',      extract(epoch from p.idle_timeout)::bigint)
    from bevsession.policy() as p
$$;
comment on function public.get_session_policy() is
    'The two expiries in seconds: {absolute_lifetime_seconds, idle_timeout_seconds (null = none)}.';
revoke execute on function public.get_session_policy() from public, anon, authenticated;
grant execute on function public.get_session_policy() to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 2. Seal key registry
-- ---------------------------------------------------------------------------------------------

-- Why: a cookie password that changes on every start (generated at boot, a secret that is not
-- pinned) turns every cookie into "cannot decrypt" — found late, as a storm of new sessions.
-- The edge worker registers an HMAC fingerprint per password id (never the password); the
-- first fingerprint of an id wins, and a later different one is reported back.
create table bevsession.seal_keys (
    key_id        text primary key check (key_id ~ '^\w{1,64}$'),
    fingerprint   text not null check (fingerprint ~ '^[0-9a-f]{32,128}$'),
    first_seen_at timestamptz not null default now(),
    last_seen_at  timestamptz not null default now()
);
comment on table bevsession.seal_keys is
    'Fingerprints (HMAC, not the secret) of the cookie password ids seen by edge workers.';
alter table bevsession.seal_keys enable row level security;
grant select, insert, update, delete on bevsession.seal_keys to service_role;

create function public.register_seal_keys(p_fingerprints jsonb) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_changed text[];
begin
    if p_fingerprints is null or pg_catalog.jsonb_typeof(p_fingerprints) <> 'object' then
        perform bevsession.invalid_argument('p_fingerprints', 'must be an object {key_id: fingerprint}');
    end if;
    select coalesce(pg_catalog.array_agg(k.key order by k.key), '{}') into v_changed
    from pg_catalog.jsonb_each_text(p_fingerprints) as k
    join bevsession.seal_keys as s on s.key_id = k.key
    where s.fingerprint <> k.value;

    insert into bevsession.seal_keys (key_id, fingerprint)
    select k.key, k.value from pg_catalog.jsonb_each_text(p_fingerprints) as k
    on conflict (key_id) do update set last_seen_at = now();

    return pg_catalog.jsonb_build_object('changed', pg_catalog.to_jsonb(v_changed));
end
$$;
comment on function public.register_seal_keys(jsonb) is
    'Record password-id fingerprints; returns {changed: [ids whose fingerprint differs from the first one seen]}.';
revoke execute on function public.register_seal_keys(jsonb) from public, anon, authenticated, session_visitor;
grant execute on function public.register_seal_keys(jsonb) to service_role;
