-- =============================================================================================
-- 20261201002000_linking.sql — visitors who sign in: a session attached to an account
-- =============================================================================================
--
-- The seed keeps a `user_id` on sessions, personas, messages and signals "if auth is added
-- later" and promises "users can only read their own personas", but nothing could ever set
-- user_id, so for a visitor who signs in the promise meant nothing. Here a visitor's session is
-- attached to a Supabase Auth account, and the account reads — never writes — the rows of every
-- session attached to it.
--
-- Who says which account: the edge worker verifies the visitor's Supabase access token (its
-- signature against the project's JWKS or the legacy JWT secret, `aud` "authenticated", `exp`)
-- and only then runs ONE call, link_session(), with a `linked_user_id` claim beside
-- `session_id` in the claims it mints (a JWT only it can sign, or the claims the postgres
-- transport sets). The account is never an argument: a visitor cannot choose it.
--
-- The rules:
--   * user_id on a row is null or the account a verified token proved for that row's session:
--     link_session sets it on the session and its persona, messages and signals in one
--     transaction; rows written later inherit it from the session (the insert policies now
--     check that); a trigger lets user_id change only from null to the linked_user_id claim.
--   * A link is permanent, as a revocation is: linking a session of account X to account Y is
--     refused (PT409) and changes nothing. Re-linking to the same account is a no-op.
--   * One account may have many sessions (several browsers, a visitor who came back).
--   * `authenticated` may read the rows whose user_id is auth.uid(), in the four tables, and
--     nothing else; `anon` still nothing.
--
-- Errors: PT401 no session identity · PT401 no account identity · PT403 session revoked ·
-- PT410 session expired · PT409 session linked to another account · 42501 user_id: only the
-- linked account. PostgREST turns PTxyz into HTTP xyz.
--
-- Sections: 1 identity: the linked account · 2 a link is permanent · 3 row-level security and
-- privileges · 4 API: link_session.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. Identity: the linked account
-- ---------------------------------------------------------------------------------------------
-- As bevsession.current_session_id(): one stable SQL expression the planner inlines, reading
-- request.jwt.claims directly; a missing or malformed claim gives null.

create function bevsession.current_linked_user_id() returns uuid
    language sql stable parallel safe
return case
    when nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'linked_user_id'
         ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    then (nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'linked_user_id')::uuid
end;
comment on function bevsession.current_linked_user_id() is
    'The linked_user_id claim of the current request as uuid (the account the edge worker verified); null when absent or not a uuid.';
revoke all on function bevsession.current_linked_user_id() from public;
grant execute on function bevsession.current_linked_user_id() to session_visitor, service_role;

-- Why: link_session without a verified account should say so (PT401 → HTTP 401), not write
-- nulls or fail later on the trigger.
create function bevsession.require_linked_user_id() returns uuid
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_user_id uuid := bevsession.current_linked_user_id();
begin
    if v_user_id is null then
        raise exception using errcode = 'PT401', message = 'no account identity',
            detail = 'request.jwt.claims has no linked_user_id claim, or it is not a uuid',
            hint = 'the edge worker adds linked_user_id to the claims of link_session only after it verified the visitor''s access token';
    end if;
    return v_user_id;
end
$$;
comment on function bevsession.require_linked_user_id() is
    'The linked account of the call; raises PT401 "no account identity" when the claim is missing or invalid.';
revoke all on function bevsession.require_linked_user_id() from public;
grant execute on function bevsession.require_linked_user_id() to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 2. A link is permanent
-- ---------------------------------------------------------------------------------------------
-- Why a trigger: the update policies say which rows a visitor may change, not what a column
-- may become, and user_id must hold even for a caller that writes a table directly
-- (service_role, a future function with a bug). It fires only for UPDATEs that name user_id,
-- so chat turns, which never do, do not pay for it. New rows are covered by the insert policies
-- (section 3): a visitor's new row carries its session's user_id.

create function bevsession.keep_account_link() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    if new.user_id is not distinct from old.user_id then
        return new;
    end if;
    if old.user_id is not null then
        raise exception using errcode = 'PT409', message = 'session linked to another account: a link never changes',
            detail = pg_catalog.format('a row of bevsession.%s is already linked to an account', tg_table_name);
    end if;
    if new.user_id is distinct from bevsession.current_linked_user_id() then
        raise exception using errcode = '42501', message = 'user_id: only the linked account of the request may be set',
            detail = pg_catalog.format('bevsession.%s.user_id may change only from null to the linked_user_id claim', tg_table_name),
            hint = 'call link_session(); the edge worker sets linked_user_id after verifying the access token';
    end if;
    return new;
end
$$;
comment on function bevsession.keep_account_link() is
    'Trigger: user_id changes only from null to the linked_user_id claim of the request, and never again (PT409).';
revoke all on function bevsession.keep_account_link() from public;

create trigger sessions_keep_account_link
    before update of user_id on bevsession.sessions
    for each row execute function bevsession.keep_account_link();
create trigger user_personas_keep_account_link
    before update of user_id on bevsession.user_personas
    for each row execute function bevsession.keep_account_link();
create trigger conversation_history_keep_account_link
    before update of user_id on bevsession.conversation_history
    for each row execute function bevsession.keep_account_link();
create trigger persona_signals_keep_account_link
    before update of user_id on bevsession.persona_signals
    for each row execute function bevsession.keep_account_link();


-- ---------------------------------------------------------------------------------------------
-- 3. Row-level security and privileges
-- ---------------------------------------------------------------------------------------------

-- A visitor's new rows carry their session's account (null until it is linked): the same
-- lookup of the session row these policies already make, one more column compared, so a
-- visitor cannot slip a row into someone else's account.
alter policy "Visitors can create the persona of their live session"
    on bevsession.user_personas
    with check (
        session_id = (select bevsession.current_session_id())
        and exists (select 1 from bevsession.sessions as s
                    where s.id = user_personas.session_id and s.revoked_at is null
                      and s.user_id is not distinct from user_personas.user_id));

alter policy "Visitors can add messages to their live session"
    on bevsession.conversation_history
    with check (
        session_id = (select bevsession.current_session_id())
        and exists (select 1 from bevsession.sessions as s
                    where s.id = conversation_history.session_id and s.revoked_at is null
                      and s.user_id is not distinct from conversation_history.user_id));

alter policy "Visitors can record signals of their live session"
    on bevsession.persona_signals
    with check (
        session_id = (select bevsession.current_session_id())
        and exists (select 1 from bevsession.sessions as s
                    where s.id = persona_signals.session_id and s.revoked_at is null
                      and s.user_id is not distinct from persona_signals.user_id));

-- link_session runs as the visitor: it may write user_id (and only user_id, on messages and
-- signals, which stay otherwise immutable) on its own session's rows; the trigger decides the
-- value.
grant update (user_id) on bevsession.sessions, bevsession.user_personas,
    bevsession.conversation_history, bevsession.persona_signals to session_visitor;

create policy "Visitors can link their own messages to their account"
    on bevsession.conversation_history for update to session_visitor
    using (session_id = (select bevsession.current_session_id()))
    with check (session_id = (select bevsession.current_session_id()));

create policy "Visitors can link their own signals to their account"
    on bevsession.persona_signals for update to session_visitor
    using (session_id = (select bevsession.current_session_id()))
    with check (session_id = (select bevsession.current_session_id()));

-- The seed's promise, now with an identity behind it: a signed-in user (role authenticated,
-- auth.uid() = the JWT's sub) reads the rows of every session linked to the account, and
-- writes none. `(select …)` evaluates auth.uid() once per statement. PostgREST does not expose
-- this schema: a client reads through a function of its own (security invoker) or a view in an
-- exposed schema, and these policies still decide what it sees.
grant usage on schema bevsession to authenticated;

create policy "Signed-in users can read their own sessions"
    on bevsession.sessions for select to authenticated
    using (user_id = (select auth.uid()));

create policy "Signed-in users can read their own personas"
    on bevsession.user_personas for select to authenticated
    using (user_id = (select auth.uid()));

create policy "Signed-in users can read their own messages"
    on bevsession.conversation_history for select to authenticated
    using (user_id = (select auth.uid()));

create policy "Signed-in users can read their own signals"
    on bevsession.persona_signals for select to authenticated
    using (user_id = (select auth.uid()));

grant select on bevsession.sessions, bevsession.user_personas, bevsession.conversation_history,
    bevsession.persona_signals to authenticated;

-- The seed indexes user_id on personas and messages (and 20261201000100 on sessions); signals
-- get theirs here, for the policy above.
create index idx_ps_user_id on bevsession.persona_signals (user_id) where user_id is not null;


-- ---------------------------------------------------------------------------------------------
-- 4. API: link_session
-- ---------------------------------------------------------------------------------------------
-- Attach the calling session (created if this is the visitor's first request) and its persona,
-- messages and signals to the account of the linked_user_id claim, in one transaction, under
-- the session row lock every writer takes first (a chat turn running at the same time either
-- commits before, and its rows are linked here, or after, and its rows inherit user_id).
-- Refuses a revoked (PT403) or expired (PT410) session as every call does, and a session
-- linked to another account (PT409) without changing anything. The counts are the rows this
-- call attached: all zero when the session was already linked to this account.

create function public.link_session() returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_user_id uuid := bevsession.require_linked_user_id();
    v_ensured record;
    v_session bevsession.sessions;
    v_sessions bigint := 0;
    v_personas bigint;
    v_messages bigint;
    v_signals bigint;
begin
    v_ensured := bevsession.ensure_session(v_session_id, touch => false);
    v_session := v_ensured.session;
    if v_session.user_id is not null and v_session.user_id <> v_user_id then
        raise exception using errcode = 'PT409', message = 'session linked to another account',
            detail = pg_catalog.format('session %s is linked to another account; a link never changes', v_session.id),
            hint = 'sign in with the account the session is linked to, or start a new session';
    end if;
    if v_session.user_id is null then
        v_sessions := 1;
    end if;

    update bevsession.sessions as s set
        user_id          = v_user_id,
        last_activity_at = pg_catalog.now()
    where s.id = v_session.id
    returning * into v_session;
    update bevsession.user_personas as p set user_id = v_user_id
        where p.session_id = v_session.id and p.user_id is distinct from v_user_id;
    get diagnostics v_personas = row_count;
    update bevsession.conversation_history as m set user_id = v_user_id
        where m.session_id = v_session.id and m.user_id is distinct from v_user_id;
    get diagnostics v_messages = row_count;
    update bevsession.persona_signals as g set user_id = v_user_id
        where g.session_id = v_session.id and g.user_id is distinct from v_user_id;
    get diagnostics v_signals = row_count;

    return pg_catalog.jsonb_build_object(
        'session_id', v_session.id,
        'user_id',    v_user_id,
        'linked', pg_catalog.jsonb_build_object(
            'sessions', v_sessions,
            'personas', v_personas,
            'messages', v_messages,
            'signals',  v_signals),
        'session',    bevsession.session_json(v_session),
        'created',    v_ensured.created);
end
$$;
comment on function public.link_session() is
    'Attach the calling session (claims: session_id) and its persona, messages and signals to the account of the linked_user_id claim; PT409 when linked to another account; idempotent. Returns {session_id, user_id, linked: {sessions, personas, messages, signals}, session, created}.';
revoke execute on function public.link_session() from public, anon, authenticated;
grant execute on function public.link_session() to session_visitor, service_role;


-- PostgREST caches the schema; tell it to reload (a no-op where nobody listens).
notify pgrst, 'reload schema';
