-- =============================================================================================
-- sql/bench/get_session.sql — GET /api/session's one RPC, straight to SQL (pgbench workload)
-- =============================================================================================
--
-- What the database does for a known visitor's `GET /api/session`: `get_session(touch => true)`
-- (lock and touch the session row, read the persona, build {session, persona, created}), with
-- the postgres transport's preamble (see chat_turn.sql for the shape and how to run it):
--
--   pgbench -n -M prepared -c 8 -j 2 -T 10 -f sql/bench/get_session.sql \
--           -D sessions=1000 -D base=0 -U authenticator <database>
--
-- (with PGOPTIONS='-c role=session_visitor -c statement_timeout=8s'). Visitor n has the session
-- id 00000000-0000-4000-8000-<n as 12 digits>.
-- =============================================================================================

\set visitor :base + random(1, :sessions)

select public.get_session(touch => true) as result
from (select set_config('search_path', 'public, extensions', true),
             set_config('request.jwt.claims',
                        format('{"role":"session_visitor","session_id":"00000000-0000-4000-8000-%s","iat":%s,"exp":%s,"iss":"bevsession"}',
                               lpad(:visitor::text, 12, '0'),
                               extract(epoch from now())::bigint,
                               extract(epoch from now())::bigint + 300),
                        true),
             set_config('request.method', 'POST', true),
             set_config('request.path', '/rpc/get_session', true)
      offset 0) as pre;
