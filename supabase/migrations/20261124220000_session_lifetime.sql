-- =============================================================================================
-- bevgenie-session · session lifetime, token-budgeted history, seal key registry
--
-- Why: users of other session libraries keep hitting the same problems, and each has a fix here.
--   1. Two expiries, both enforced in SQL too (not only in the edge worker's cookie check):
--      an ABSOLUTE lifetime counted from creation (activity cannot keep a session alive for
--      ever) and an IDLE timeout counted from the last activity. A session past either is
--      refused with SQLSTATE PT410 'session expired'; the edge worker starts a fresh one.
--   2. History for an LLM: every message stores a token count; get_conversation_history takes
--      an optional token budget and returns the newest messages that fit, oldest first.
--   3. A deployment whose cookie password changes on every start logs everyone out, silently.
--      The edge worker registers a fingerprint of each password id at start-up; a known id whose
--      fingerprint changed is reported (and refused in production).
--
-- Sections: 1 session policy · 2 the liveness check · 3 token counts · 4 history with a token
-- budget · 5 seal key registry.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. Session policy: the two expiries, one row
-- ---------------------------------------------------------------------------------------------

-- Why a table and not constants: operators change lifetimes without a migration
-- (`update bevsession.session_policy set idle_timeout = '30 minutes'`, as the owner or
-- service_role). Keep SESSION_TTL / SESSION_IDLE_TIMEOUT of the edge worker equal to these;
-- public.get_session_policy() lets it check at start-up.
create table bevsession.session_policy (
    singleton         boolean primary key default true check (singleton),
    absolute_lifetime interval not null default interval '24 hours'
                      check (absolute_lifetime > interval '0'),
    idle_timeout      interval          default interval '2 hours'
                      check (idle_timeout is null or idle_timeout > interval '0')
);
comment on table bevsession.session_policy is
    'One row: absolute_lifetime (from created_at) and idle_timeout (from last_activity_at; null = none).';
insert into bevsession.session_policy default values;

alter table bevsession.session_policy enable row level security;
create policy "Everyone with a session role can read the session policy"
    on bevsession.session_policy for select
    to session_visitor, service_role
    using (true);
grant select on bevsession.session_policy to session_visitor;
grant select, update on bevsession.session_policy to service_role;

create function bevsession.policy() returns bevsession.session_policy
    language sql stable
    set search_path = ''
as $$
    select p from bevsession.session_policy as p where p.singleton
$$;
comment on function bevsession.policy() is 'The session policy row.';

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
-- 2. The liveness check every session lookup goes through
-- ---------------------------------------------------------------------------------------------

-- Why one function: find_session and lock_session used to repeat the revoked check; the expiry
-- checks join it here, so no lookup can forget one. p_allow_dead lets clear_session and
-- forget_session work on a revoked or expired session (a visitor may always erase their data).
create function bevsession.check_live(p_session bevsession.sessions, p_allow_dead boolean)
    returns bevsession.sessions
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_policy bevsession.session_policy := bevsession.policy();
begin
    if p_allow_dead then
        return p_session;
    end if;
    if p_session.revoked_at is not null then
        raise exception using errcode = 'PT403', message = 'session revoked',
            detail = pg_catalog.format('session %s was revoked at %s and is refused for good',
                                       p_session.id, p_session.revoked_at);
    end if;
    if p_session.created_at + v_policy.absolute_lifetime <= now() then
        raise exception using errcode = 'PT410', message = 'session expired',
            detail = pg_catalog.format('session %s passed its absolute lifetime of %s',
                                       p_session.id, v_policy.absolute_lifetime);
    end if;
    if v_policy.idle_timeout is not null
       and p_session.last_activity_at + v_policy.idle_timeout <= now() then
        raise exception using errcode = 'PT410', message = 'session expired',
            detail = pg_catalog.format('session %s was idle for more than %s',
                                       p_session.id, v_policy.idle_timeout);
    end if;
    return p_session;
end
$$;
comment on function bevsession.check_live(bevsession.sessions, boolean) is
    'Raise PT403 (revoked) or PT410 (absolute lifetime or idle timeout passed) unless p_allow_dead.';

create or replace function bevsession.find_session(p_session_id uuid, p_allow_revoked boolean default false)
    returns bevsession.sessions
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_session bevsession.sessions;
begin
    select * into v_session from bevsession.sessions where id = p_session_id;
    if not found then
        raise exception using errcode = 'PT404', message = 'session not found',
            detail = pg_catalog.format('no session %s; get_session or begin_chat_turn creates it', p_session_id);
    end if;
    return bevsession.check_live(v_session, p_allow_revoked);
end
$$;
comment on function bevsession.find_session(uuid, boolean) is
    'The session row (no lock); PT404 when missing, PT403/PT410 when revoked/expired unless allowed.';

create or replace function bevsession.lock_session(p_session_id uuid, p_allow_revoked boolean default false)
    returns bevsession.sessions
    language plpgsql
    set search_path = ''
as $$
declare
    v_session bevsession.sessions;
begin
    -- NO KEY UPDATE: blocks the other writers of this session, not inserts referencing it
    select * into v_session from bevsession.sessions where id = p_session_id for no key update;
    if not found then
        raise exception using errcode = 'PT404', message = 'session not found',
            detail = pg_catalog.format('no session %s; get_session or begin_chat_turn creates it', p_session_id);
    end if;
    return bevsession.check_live(v_session, p_allow_revoked);
end
$$;
comment on function bevsession.lock_session(uuid, boolean) is
    'The session row, locked for this transaction; PT404 when missing, PT403/PT410 when revoked/expired unless allowed.';


-- ---------------------------------------------------------------------------------------------
-- 3. Token counts
-- ---------------------------------------------------------------------------------------------

-- The counting rule, documented: about four characters of English per token (the usual rule of
-- thumb for BPE tokenizers), rounded up, plus 4 tokens per message for the role and separators
-- of chat formats. A real tokenizer plugs in by replacing this one function (same signature);
-- messages stored afterwards use it, older rows keep their count.
create function bevsession.count_tokens(p_content text) returns integer
    language sql immutable parallel safe
    set search_path = ''
as $$
    select (pg_catalog.ceil(pg_catalog.char_length(coalesce(p_content, '')) / 4.0))::integer + 4
$$;
comment on function bevsession.count_tokens(text) is
    'Estimated tokens of one message: ceil(characters / 4) + 4. Replace to plug in a real tokenizer.';

alter table bevsession.messages add column token_count integer;
update bevsession.messages set token_count = bevsession.count_tokens(message_content);
alter table bevsession.messages
    alter column token_count set not null,
    add constraint messages_token_count_check check (token_count >= 0);
comment on column bevsession.messages.token_count is 'Tokens of the message by bevsession.count_tokens().';

create function bevsession.set_token_count() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    new.token_count := bevsession.count_tokens(new.message_content);
    return new;
end
$$;
comment on function bevsession.set_token_count() is 'Trigger: every stored message gets its token count.';

create trigger messages_token_count
    before insert on bevsession.messages
    for each row execute function bevsession.set_token_count();

create or replace function bevsession.message_json(m bevsession.messages) returns jsonb
    language sql stable parallel safe set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'id',                   m.id,
        'seq',                  m.seq,
        'session_id',           m.session_id,
        'message_role',         m.message_role,
        'message_content',      m.message_content,
        'persona_snapshot',     m.persona_snapshot,
        'pain_points_inferred', pg_catalog.to_jsonb(m.pain_points_inferred),
        'ui_specification',     m.ui_specification,
        'generation_mode',      m.generation_mode,
        'estimated_read_time',  m.estimated_read_time,
        'token_count',          m.token_count,
        'created_at',           bevsession.to_ms(m.created_at))
$$;
comment on function bevsession.message_json(bevsession.messages) is
    'Message JSON (the seed''s conversation_history row, plus its token count).';


-- ---------------------------------------------------------------------------------------------
-- 4. History with a token budget
-- ---------------------------------------------------------------------------------------------

-- Why: an LLM prompt has a token budget, not a message count. Walk back from the newest
-- message (keyset on seq, the (session_id, seq) index) and keep messages while their running
-- total fits; the page is returned oldest first, like the count-limited page.
create function bevsession.history_window(
    p_session_id uuid, p_limit integer, p_before bigint, p_token_budget integer
) returns jsonb
    language sql stable
    set search_path = ''
as $$
    with newest as (   -- one more than asked, to know whether anything older exists
        select m, sum(m.token_count) over (order by m.seq desc) as running_tokens
        from bevsession.messages as m
        where m.session_id = p_session_id
          and (p_before is null or m.seq < p_before)
        order by m.seq desc
        limit p_limit + 1
    ), page as (
        select m, running_tokens from newest
        where p_token_budget is null or running_tokens <= p_token_budget
        order by (m).seq desc
        limit p_limit
    )
    select pg_catalog.jsonb_build_object(
        'messages', coalesce((select pg_catalog.jsonb_agg(bevsession.message_json(page.m) order by (page.m).seq)
                              from page), '[]'),
        'tokens', coalesce((select max(page.running_tokens) from page), 0),
        -- the cursor of the page before this one; null when nothing older exists, or when not
        -- even the newest message fits the budget (no page to continue from)
        'next_before', case when (select count(*) from newest) > (select count(*) from page)
                            then (select min((page.m).seq) from page) end)
$$;
comment on function bevsession.history_window(uuid, integer, bigint, integer) is
    'Keyset page: the newest messages with seq < p_before, at most p_limit and (if given) p_token_budget tokens, oldest first.';

-- The count-limited page is the budget page without a budget (one implementation).
create or replace function bevsession.history_page(p_session_id uuid, p_limit integer, p_before bigint)
    returns jsonb
    language sql stable
    set search_path = ''
as $$
    select bevsession.history_window(p_session_id, p_limit, p_before, null)
$$;

drop function public.get_conversation_history(integer, bigint);

-- getConversationHistory(): newest first by keyset, returned oldest first, optionally cut to a
-- token budget (for an LLM prompt). Read-only (stable).
create function public.get_conversation_history(
    p_limit integer default 50,
    p_before bigint default null,
    p_token_budget integer default null
)
    returns jsonb
    language plpgsql
    stable
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
begin
    perform bevsession.check_history_limit(p_limit, 'p_limit');
    if p_token_budget is not null and p_token_budget < 1 then
        perform bevsession.invalid_argument('p_token_budget', 'must be at least 1');
    end if;
    perform bevsession.find_session(v_session_id);
    return bevsession.history_window(v_session_id, p_limit, p_before, p_token_budget);
end
$$;
comment on function public.get_conversation_history(integer, bigint, integer) is
    'The newest p_limit (1..200) messages with seq < p_before that fit p_token_budget, oldest first. Returns {messages, tokens, next_before}.';
revoke execute on function public.get_conversation_history(integer, bigint, integer) from public, anon, authenticated;
grant execute on function public.get_conversation_history(integer, bigint, integer) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 5. Seal key registry
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


-- ---------------------------------------------------------------------------------------------
-- Grants of the private helpers (as in the earlier migrations: the public functions run as the
-- caller, so the roles that may call them need the helpers they use).
-- ---------------------------------------------------------------------------------------------
grant execute on all functions in schema bevsession to session_visitor, service_role;
