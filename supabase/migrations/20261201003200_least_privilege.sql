-- =============================================================================================
-- 20261201003200_least_privilege.sql — the edge worker's own role; visitors write only live rows
-- =============================================================================================
--
-- The edge worker held service_role for its whole life (the postgres transport's service pool,
-- the supabase transport's service key) to call two functions besides the visitors' own:
-- touch_sessions and register_seal_keys (and, since 20261201003000, validate_sessions). Here it
-- gets a role that can do exactly that: `session_worker`, reached through `authenticator` like
-- session_visitor (a minted token on the supabase transport). service_role stays for
-- `bevsession purge` and the admin commands only.
--
-- A visitor's own rows were also writable beyond what the API does, one mistake away from SQL
-- access: the update policies did not ask for a live session (a revoked session could be
-- changed), chat_rate_tat could be reset, and the chat rate limit was a setting any session may
-- change (`set local bevsession.chat_rate_limit = 'off'`). Now:
--   * a visitor updates only the persona of a live session, and a revoked session row changes
--     only by being forgotten (forget_session on a cleared session), a forgotten one not at all;
--   * chat_rate_tat only moves forward for a role under RLS;
--   * the chat rate limit is a row of bevsession.chat_rate_policy, which only service_role (and
--     the owner) may change; the setting is no longer read.
--
-- Sections: 1 the worker role · 2 what the worker may read and write · 3 what it may call ·
-- 4 visitors write live sessions only · 5 the chat rate limit as a table.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The worker role
-- ---------------------------------------------------------------------------------------------
-- As session_visitor (20261201000000_setup.sql): cluster-wide, created when missing, nologin,
-- reached through authenticator; the migration role is a member for pgTAP's `set role`.

do $$
begin
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'session_worker') then
        begin
            create role session_worker nologin noinherit;
        exception
            when duplicate_object or unique_violation then null;
        end;
    end if;
    if not pg_catalog.pg_has_role('authenticator', 'session_worker', 'member') then
        grant session_worker to authenticator;
    end if;
    if not pg_catalog.pg_has_role(current_user, 'session_worker', 'member') then
        execute pg_catalog.format('grant %I to %I', 'session_worker', current_user);
    end if;
end
$$;

comment on role session_worker is
    'The edge worker between visitor calls: batched touches, re-checks of its read cache, seal key registration. Reads session rows, writes only their activity.';

alter role session_worker set statement_timeout = '8s';

grant usage on schema bevsession to session_worker;
grant usage on type bevsession.touch_batch to session_worker;


-- ---------------------------------------------------------------------------------------------
-- 2. What the worker may read and write
-- ---------------------------------------------------------------------------------------------
-- The session rows (touch_sessions and validate_sessions reach across sessions and hand whole
-- rows to bevsession.expired, which needs every column), the activity stamp of live ones, when
-- each persona changed, the policy, and the seal key registry. No message, no signal, no
-- persona score; no write but last_activity_at and the seal keys.

grant select on bevsession.sessions to session_worker;
grant update (last_activity_at) on bevsession.sessions to session_worker;

create policy "The edge worker can see every session's liveness"
    on bevsession.sessions for select to session_worker
    using (true);

create policy "The edge worker can touch live sessions"
    on bevsession.sessions for update to session_worker
    using (revoked_at is null)
    with check (revoked_at is null);

grant select (session_id, created_at, last_updated) on bevsession.user_personas to session_worker;

create policy "The edge worker can see when each persona changed"
    on bevsession.user_personas for select to session_worker
    using (true);

grant select on bevsession.session_policy to session_worker;

create policy "The edge worker can read the session policy"
    on bevsession.session_policy for select to session_worker
    using (true);

grant select, insert (key_id, fingerprint), update (last_seen_at) on bevsession.seal_keys to session_worker;

create policy "The edge worker can read the seal key fingerprints"
    on bevsession.seal_keys for select to session_worker
    using (true);

create policy "The edge worker can register a seal key"
    on bevsession.seal_keys for insert to session_worker
    with check (true);

create policy "The edge worker can mark a seal key as seen"
    on bevsession.seal_keys for update to session_worker
    using (true)
    with check (true);


-- ---------------------------------------------------------------------------------------------
-- 3. What the worker may call
-- ---------------------------------------------------------------------------------------------
-- The API functions it needs, and the helpers those run as the caller.

grant execute on function public.touch_sessions(uuid[], bigint[]) to session_worker;
grant execute on function public.validate_sessions(uuid[], bigint[]) to session_worker;
grant execute on function public.register_seal_keys(jsonb) to session_worker;
grant execute on function public.get_session_policy() to session_worker;

grant execute on function bevsession.invalid_argument(text, text) to session_worker;
grant execute on function bevsession.expired(bevsession.sessions, bevsession.session_policy) to session_worker;
grant execute on function bevsession.from_ms(numeric) to session_worker;
grant execute on function bevsession.to_ms(timestamptz) to session_worker;


-- ---------------------------------------------------------------------------------------------
-- 4. Visitors write live sessions only
-- ---------------------------------------------------------------------------------------------
-- The persona of a revoked session is never updated: its policy now asks for a live session.
-- The session row itself keeps its policy ("Visitors can update their own session"): clear and
-- forget lock it (SELECT … FOR NO KEY UPDATE, which meets the update policy) even when it is
-- revoked or forgotten, to stay idempotent. What a visitor may change on a revoked row is
-- decided by the trigger below instead: nothing, but the one step to a forgotten tombstone.

drop policy "Visitors can update their own persona" on bevsession.user_personas;
create policy "Visitors can update the persona of their live session"
    on bevsession.user_personas for update to session_visitor
    using (
        session_id = (select bevsession.current_session_id())
        and exists (select 1 from bevsession.sessions as s
                    where s.id = session_id and s.revoked_at is null))
    with check (session_id = (select bevsession.current_session_id()));

-- Why a trigger besides the policies: a policy sees rows, not which columns changed. For a role
-- under RLS (a visitor), forgetting a cleared session changes nothing but forgotten_at and the
-- blanked last_message, and the rate limit state never moves back (a reset would hand out a
-- fresh burst). Roles that bypass RLS (service_role, the owner) are operators: not limited here.
create function bevsession.guard_visitor_session_updates() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    if (select r.rolbypassrls or r.rolsuper from pg_catalog.pg_roles as r where r.rolname = current_user) then
        return new;
    end if;
    if old.chat_rate_tat is not null
       and (new.chat_rate_tat is null or new.chat_rate_tat < old.chat_rate_tat) then
        raise exception using errcode = '22023', message = 'chat_rate_tat: the rate limit state only moves forward',
            detail = pg_catalog.format('session %s', old.id);
    end if;
    if old.revoked_at is not null
       and ((new.last_activity_at, new.last_message_at, new.message_count, new.current_mode,
             new.has_completed_onboarding, new.has_brochure, new.is_data_connected,
             new.last_generated_brochure_id, new.last_brochure_generated_at, new.chat_rate_tat)
            is distinct from
            (old.last_activity_at, old.last_message_at, old.message_count, old.current_mode,
             old.has_completed_onboarding, old.has_brochure, old.is_data_connected,
             old.last_generated_brochure_id, old.last_brochure_generated_at, old.chat_rate_tat)
            or new.last_message is not null and new.last_message is distinct from old.last_message) then
        raise exception using errcode = 'PT403', message = 'session revoked: a revoked session only changes by being forgotten',
            detail = pg_catalog.format('session %s was revoked at %s', old.id, old.revoked_at);
    end if;
    return new;
end
$$;
comment on function bevsession.guard_visitor_session_updates() is
    'Trigger: for roles under RLS, chat_rate_tat never moves back and a revoked session changes only by being forgotten.';
revoke all on function bevsession.guard_visitor_session_updates() from public;

create trigger sessions_guard_visitor_updates
    before update on bevsession.sessions
    for each row execute function bevsession.guard_visitor_session_updates();


-- ---------------------------------------------------------------------------------------------
-- 5. The chat rate limit as a table
-- ---------------------------------------------------------------------------------------------
-- One row, as the session policy: every worker and transport reads the same limit, a visitor
-- can read it but not change it, and an operator changes it without a migration:
--   update bevsession.chat_rate_policy set chat_rate_limit = '30/minute';
-- The value keeps the setting's forms ('N/second', 'N/minute', 'N/hour', 'N/10s', 'off'); one
-- that does not parse falls back to the default rather than refusing every chat turn.

create table bevsession.chat_rate_policy (
    singleton       boolean primary key default true
        constraint "one row" check (singleton),
    chat_rate_limit text not null default '20/minute'
        constraint "at most 32 characters" check (pg_catalog.char_length(chat_rate_limit) <= 32)
);
comment on table bevsession.chat_rate_policy is
    'One row: the chat turns a session may take (GCRA), as ''N/minute'', ''N/10s'', ''N/hour'' or ''off''. service_role changes it.';
insert into bevsession.chat_rate_policy default values;

alter table bevsession.chat_rate_policy enable row level security;
create policy "Session roles can read the chat rate limit"
    on bevsession.chat_rate_policy for select to session_visitor, service_role
    using (true);
revoke all on bevsession.chat_rate_policy from public, anon, authenticated;
grant select on bevsession.chat_rate_policy to session_visitor;
grant select, update on bevsession.chat_rate_policy to service_role;

create or replace function bevsession.chat_rate_limit(out turns integer, out per_seconds integer)
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_text text;
    v_match text[];
    v_count numeric;
    v_unit integer;
begin
    select pg_catalog.lower(pg_catalog.btrim(p.chat_rate_limit)) into v_text
    from bevsession.chat_rate_policy as p where p.singleton;
    v_text := coalesce(v_text, '');
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
    'The chat rate limit from bevsession.chat_rate_policy ("N/minute", "N/10s", "N/hour"; "off" or "0": none): turns per per_seconds. Default and fallback: 20 per 60 s.';
revoke all on function bevsession.chat_rate_limit() from public;
grant execute on function bevsession.chat_rate_limit() to session_visitor, service_role;

-- PostgREST caches the schema; tell it to reload (a no-op where nobody listens).
notify pgrst, 'reload schema';
