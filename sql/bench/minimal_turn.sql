-- =============================================================================================
-- sql/bench/minimal_turn.sql — the smallest chat turn one could write by hand (bench reference)
-- =============================================================================================
--
-- The reference of the `python -m bench` row "chat turns/s, SessionService vs minimal turn":
-- what a chat turn costs when nothing but the turn itself is done. ONE PL/pgSQL function, one
-- round trip: upsert the session row and bump its turn counter, insert the user's message and
-- the assistant's reply, return the newest 20 messages as JSON. No roles, no JWT claims, no
-- row-level security, no persona, no signals, no rate limit, no expiry, no input checks — all
-- the things `SessionService` + the migrations do, and that this leaves out, are the gap.
--
-- It lives in its own schema, created by the bench in its own throwaway database (the
-- migrations never see it; supabase/migrations/ does not include it). Plain SQL, no psql
-- meta-commands: the bench runs it with asyncpg as one script. Called as
--
--   select minimal_turn.chat_turn($1::uuid, $2::text, $3::text)   -- visitor, user text, reply
-- =============================================================================================

create schema minimal_turn;

create table minimal_turn.sessions (
    id               uuid primary key,
    turns            integer not null default 0,
    created_at       timestamptz not null default now(),
    last_activity_at timestamptz not null default now()
);

create table minimal_turn.messages (
    id         bigint generated always as identity primary key,
    session_id uuid not null references minimal_turn.sessions (id) on delete cascade,
    role       text not null check (role in ('user', 'assistant')),
    content    text not null,
    created_at timestamptz not null default now()
);

-- The newest messages of one session, read backwards: the same shape of index the history
-- window of the real schema uses.
create index messages_session_newest on minimal_turn.messages (session_id, id desc);

create function minimal_turn.chat_turn(visitor uuid, user_text text, reply_text text)
returns jsonb
language plpgsql
as $$
begin
    insert into minimal_turn.sessions as s (id, turns) values (visitor, 1)
    on conflict (id) do update set turns = s.turns + 1, last_activity_at = now();

    insert into minimal_turn.messages (session_id, role, content)
    values (visitor, 'user', user_text), (visitor, 'assistant', reply_text);

    return (
        select coalesce(jsonb_agg(jsonb_build_object('id', m.id, 'role', m.role,
                                                     'content', m.content,
                                                     'created_at', m.created_at)
                                  order by m.id), '[]'::jsonb)
        from (select id, role, content, created_at
              from minimal_turn.messages
              where session_id = visitor
              order by id desc
              limit 20) as m
    );
end
$$;
