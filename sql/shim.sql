-- =============================================================================================
-- sql/shim.sql — make a plain PostgreSQL (15 or newer) look like Supabase to our migrations
-- =============================================================================================
--
-- NEVER applied to a real Supabase database. The migrator (python_client/bevsession/migrations.py)
-- runs this file only when `auth.users` does not exist, i.e. when the database is not Supabase.
-- It creates exactly what our migrations and tests rely on and a Supabase database already has:
--
--   * the API roles  anon, authenticated (nologin), service_role (nologin, bypassrls) and
--     authenticator (login, noinherit, member of the three) — as supabase/postgres creates them;
--   * schema `auth` with auth.uid(), auth.role(), auth.email(), auth.jwt() defined as Supabase
--     defines them (`language sql stable`, reading the single-claim GUC `request.jwt.claim.<x>`
--     first, then the JSON document in `request.jwt.claims`, which is what PostgREST sets);
--   * schema `extensions` (where Supabase installs pgcrypto, uuid-ossp, pgtap…);
--   * the grants Supabase has: usage on `public`, `auth` and `extensions` for the API roles, and
--     the (permissive) default privileges Supabase sets on schema `public` — so our migrations are
--     tested against the same defaults they meet in production and must revoke explicitly.
--
-- Idempotent: every statement may run again (roles are cluster-wide and a test run creates many
-- databases in one cluster). Plain SQL, no psql meta-commands; DO blocks where a condition is
-- needed. It deliberately creates no `auth.users`: that table is how the migrator recognises a
-- real Supabase database.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. Roles (cluster-wide: create only when missing; tolerate a concurrent creator)
-- ---------------------------------------------------------------------------------------------

do $$
declare
    spec record;
begin
    for spec in
        select * from (values
            ('anon',          'create role anon nologin noinherit'),
            ('authenticated', 'create role authenticated nologin noinherit'),
            ('service_role',  'create role service_role nologin noinherit bypassrls'),
            ('authenticator', 'create role authenticator login noinherit')
        ) as t(rolname, ddl)
    loop
        if not exists (select 1 from pg_catalog.pg_roles r where r.rolname = spec.rolname) then
            begin
                execute spec.ddl;
            exception
                -- another database of the same cluster created it between our check and now
                when duplicate_object or unique_violation then null;
            end;
        end if;
    end loop;
end
$$;

-- PostgREST logs in as authenticator and switches to the role named by the JWT.
do $$
declare
    api_role text;
begin
    foreach api_role in array array['anon', 'authenticated', 'service_role'] loop
        if not pg_catalog.pg_has_role('authenticator', api_role, 'member') then
            execute pg_catalog.format('grant %I to authenticator', api_role);
        end if;
    end loop;
end
$$;

-- Supabase's statement timeouts for the API roles.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';


-- ---------------------------------------------------------------------------------------------
-- 2. Schemas
-- ---------------------------------------------------------------------------------------------

create schema if not exists auth;
create schema if not exists extensions;

grant usage on schema public to postgres, anon, authenticated, service_role;
grant usage on schema auth to anon, authenticated, service_role;
grant usage on schema extensions to postgres, anon, authenticated, service_role;

-- Supabase's default privileges on `public`: everything the migration role creates there is
-- granted to the API roles. (New Supabase projects since 2026 no longer do this — the
-- `[api] auto_expose_new_tables = false` setting — but older projects do, so our migrations
-- must not depend on either: they revoke and grant every privilege explicitly.)
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;

-- Supabase keeps extensions out of `public`. pgcrypto is there on every Supabase database; we
-- install it where the server has it (Debian's postgresql package does), and skip it otherwise:
-- our migrations only need the built-in gen_random_uuid().
do $$
begin
    if exists (select 1 from pg_catalog.pg_available_extensions where name = 'pgcrypto') then
        create extension if not exists pgcrypto with schema extensions;
    end if;
end
$$;


-- ---------------------------------------------------------------------------------------------
-- 3. auth.* — the request's JWT claims, as Supabase (supabase/auth migrations) defines them
-- ---------------------------------------------------------------------------------------------
-- Exactly as Supabase defines them: `language sql stable` and NO `set search_path` clause. The
-- bodies use only pg_catalog functions (always searched first), and a SET clause would stop
-- PostgreSQL from inlining these into the RLS policies and functions that call them many times
-- per request (measured: ~7 µs per call with the clause).

create or replace function auth.uid()
    returns uuid
    language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

create or replace function auth.role()
    returns text
    language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

create or replace function auth.email()
    returns text
    language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;

create or replace function auth.jwt()
    returns jsonb
    language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';
comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';
comment on function auth.jwt() is 'The JWT claims of the current request (request.jwt.claims), as jsonb.';

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
    to anon, authenticated, service_role;
