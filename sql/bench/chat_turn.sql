-- =============================================================================================
-- sql/bench/chat_turn.sql — one chat turn, straight to the SQL functions (pgbench workload)
-- =============================================================================================
--
-- The database ceiling of `python -m bench` (section "database"): what PostgreSQL alone does
-- with the chat-turn functions, to set next to the same turns through `SessionService`.
--
-- A chat turn is what `POST /api/chat` costs the database: `begin_chat_turn` (create-or-touch,
-- apply one signal, store the visitor's message, return persona + newest 20 messages) and
-- `finish_chat_turn` (store the reply), each its own transaction — exactly the two statements
-- the postgres transport (python_client/bevsession/transports/postgres.py) sends, with the same
-- preamble: the sub-select sets search_path, request.jwt.claims (with the session_id claim),
-- request.method and request.path transaction-locally before the outer target list calls the
-- function (`offset 0` keeps it apart).
--
-- Run it as the transport does: logged in as `authenticator`, with the role switched once per
-- connection (`PGOPTIONS='-c role=session_visitor -c statement_timeout=8s'`: the role and its
-- `ALTER ROLE … SET` settings), and `-M prepared` (the transport prepares every statement):
--
--   pgbench -n -M prepared -c 8 -j 2 -T 10 -f sql/bench/chat_turn.sql \
--           -D sessions=1000 -D base=0 -U authenticator <database>
--
-- Variables (pgbench -D): `sessions` — how many distinct visitors the turns are spread over;
-- `base` — the first visitor number (so two runs can use disjoint visitors). Visitor n has the
-- session id 00000000-0000-4000-8000-<n as 12 digits>; the bench pre-creates them, and
-- begin_chat_turn creates any that do not exist yet.
--
-- pgbench meta-commands (`\set`) are fine here: this is a workload, not a migration.
-- =============================================================================================

\set visitor :base + random(1, :sessions)

-- 1. begin_chat_turn: one weak org_type signal (what the keyword detector finds in the message),
--    history window of 20, as POST /api/chat asks for.
select public.begin_chat_turn(
           content => 'We brew craft beer and sell through two distributors.',
           signals => '[{"signal_type":"org_type_mention","signal_text":"We brew craft beer","signal_strength":"weak","pain_points_inferred":[],"score_updates":{"supplier_score":0.05},"vector":"org_type","vector_value":"supplier"}]'::jsonb,
           history_limit => 20,
           generation_mode => null) as result
from (select set_config('search_path', 'public, extensions', true),
             set_config('request.jwt.claims',
                        format('{"role":"session_visitor","session_id":"00000000-0000-4000-8000-%s","iat":%s,"exp":%s,"iss":"bevsession"}',
                               lpad(:visitor::text, 12, '0'),
                               extract(epoch from now())::bigint,
                               extract(epoch from now())::bigint + 300),
                        true),
             set_config('request.method', 'POST', true),
             set_config('request.path', '/rpc/begin_chat_turn', true)
      offset 0) as pre;

-- 2. finish_chat_turn: the assistant's reply (what the template generator writes).
select public.finish_chat_turn(
           content => 'Thanks, so far I understand you work with a supplier. Which part of the business do you own: sales, marketing, operations or compliance?',
           ui_specification => null,
           generation_mode => 'fresh',
           estimated_read_time => null) as result
from (select set_config('search_path', 'public, extensions', true),
             set_config('request.jwt.claims',
                        format('{"role":"session_visitor","session_id":"00000000-0000-4000-8000-%s","iat":%s,"exp":%s,"iss":"bevsession"}',
                               lpad(:visitor::text, 12, '0'),
                               extract(epoch from now())::bigint,
                               extract(epoch from now())::bigint + 300),
                        true),
             set_config('request.method', 'POST', true),
             set_config('request.path', '/rpc/finish_chat_turn', true)
      offset 0) as pre;
