-- 20261201001000_sliding_expiry.sql and 20261201001100_from_the_seed.sql: the seed's lifetimes,
-- the rules that bring seed values in (clamp, normalise, skip), adopt_session (a cookie's session
-- the database has never seen; an imported session's first cookie) and the import functions
-- (idempotent, counted by reason, the database wins over the seed).
-- Identity as PostgREST gives it: `set local role` and the request.jwt.claims setting.
begin;
create extension if not exists pgtap with schema extensions;
grant usage on schema extensions to session_visitor, service_role, anon, authenticated;
grant execute on all functions in schema extensions to session_visitor, service_role, anon, authenticated;
set local search_path = extensions, public;

select plan(75);

create temporary table result (name text primary key, body jsonb not null);
grant all on result to public;

-- ---------------------------------------------------------------------------------------------
-- Sliding expiry: the seed's 24 h past the last activity, within 30 days
-- ---------------------------------------------------------------------------------------------
select is((select (absolute_lifetime, idle_timeout)::text from bevsession.session_policy),
          '("30 days",24:00:00)', 'the policy row: 30 days absolute, 24 h idle');
select col_default_is('bevsession', 'session_policy', 'absolute_lifetime', interval '30 days',
                      'absolute_lifetime defaults to 30 days');
select col_default_is('bevsession', 'session_policy', 'idle_timeout', interval '24 hours',
                      'idle_timeout defaults to 24 hours');

insert into bevsession.sessions (id, created_at, last_activity_at)
values ('0000000a-0000-4000-8000-000000000001', now() - interval '30 hours', now() - interval '1 hour');
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "0000000a-0000-4000-8000-000000000001"}', true);
select is(public.get_session() -> 'session' ->> 'session_id', '0000000a-0000-4000-8000-000000000001',
          'a session created 30 h ago and active an hour ago is still the same session');
reset role;

-- ---------------------------------------------------------------------------------------------
-- The rules, value by value
-- ---------------------------------------------------------------------------------------------
select is(bevsession.seed_uuid(' {A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11} '), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
          'seed_uuid: braces, upper case and spaces are one uuid');
select is(bevsession.seed_uuid('a0eebc999c0b4ef8bb6d6bb9bd380a11'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
          'seed_uuid: without hyphens');
select is(bevsession.seed_uuid('{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), null, 'seed_uuid: one brace is no uuid (never an error)');
select is(bevsession.seed_uuid('visitor-42'), null, 'seed_uuid: a name is no uuid');
select is(bevsession.seed_identifier('Execution Blind-Spot'), 'execution_blind_spot', 'seed_identifier: lower snake_case');
select is(bevsession.seed_identifier('  __ROI__ '), 'roi', 'seed_identifier: no underscore at either end');
select is(bevsession.seed_identifier('3-tier'), null, 'seed_identifier: nothing usable without a letter first');
select is(pg_catalog.char_length(bevsession.seed_identifier(repeat('a', 100))), 64, 'seed_identifier: at most 64 characters');
select is(bevsession.seed_score('9.99'), 1.0000, 'seed_score: 9.99 (DECIMAL(3,2) allows it) is clamped to 1');
select is(bevsession.seed_score('-0.5'), 0.0000, 'seed_score: below 0 is clamped to 0');
select is(bevsession.seed_score_problem('9.99'), 'score_clamped', 'seed_score_problem says why');
select is(bevsession.seed_score_problem('"high"'), 'value_dropped', 'seed_score_problem: a string is no score');
select is(bevsession.seed_score_problem('null'), null, 'seed_score_problem: null is the default, not counted');
select is(bevsession.seed_count('-3'), 0, 'seed_count: below 0 is 0');
select is(bevsession.seed_count_problem('2.5'), 'count_clamped', 'seed_count_problem: a fraction is rounded and counted');
select is(bevsession.seed_timestamp('"2026-11-20T10:00:00+00:00"'), '2026-11-20 10:00:00+00'::timestamptz,
          'seed_timestamp: an ISO string (the seed''s rows)');
select is(bevsession.seed_timestamp('1790000000123'), bevsession.from_ms(1790000000123), 'seed_timestamp: milliseconds (the cookie)');
select is(bevsession.seed_timestamp('"yesterday-ish"'), null, 'seed_timestamp: not a time is null, never an error');
select is(bevsession.seed_timestamp('0'), null, 'seed_timestamp: 0 is the seed''s "never"');
select is((select (p.pain_points::text[], p.reasons) from bevsession.seed_pain_points(
              '["Execution Blind-Spot", "roi", 5, "9lives", "roi"]') as p)::text,
          '("{execution_blind_spot,roi}","{name_normalised,value_dropped,name_dropped}")',
          'seed_pain_points: normalised, a set; what is not a name is dropped and counted');
select is((select cardinality(p.pain_points) from bevsession.seed_pain_points(
              (select jsonb_agg('pain_' || n) from generate_series(1, 40) as n)) as p), 32,
          'seed_pain_points: the first 32');
select is((select p.confidences::jsonb from bevsession.seed_confidences('{"ROI": 1.7, "x": "high", "9": 0.2}') as p),
          '{"roi": 1}'::jsonb, 'seed_confidences: names normalised, confidences clamped, the rest dropped');
select is((select cardinality(p.questions::text[]) from bevsession.seed_questions(
              (select jsonb_agg('question ' || n) from generate_series(1, 60) as n)) as p), 50,
          'seed_questions: the newest 50');
select is((select p.history::jsonb from bevsession.seed_history(
              '[{"value": "Sales Lead", "confidence": 0.6, "timestamp": 1790000000000}, {"nothing": true}]',
              '2026-01-01') as p),
          '[{"value": "sales_lead", "evidence": "", "strength": "weak", "confidence": 0.6, "detected_at": 1790000000000}]'::jsonb,
          'seed_history: this project''s entry shape; an entry without a value is dropped');
select is((select jsonb_array_length(p.history::jsonb) from bevsession.seed_history(
              (select jsonb_agg(jsonb_build_object('value', 'v' || n)) from generate_series(1, 14) as n), now()) as p), 10,
          'seed_history: the newest 10');

select is((select ((p).sales_focus_score, (p).craft_score, (p).overall_confidence, (p).total_interactions, (p).functional_role,
                   (p).functional_role_confidence)::text
           from bevsession.seed_persona('{"sales_focus_score": 0.85, "craft_score": 9.99, "overall_confidence": 0.61,
               "total_interactions": 4, "detection_vectors": {"functional_role": "Sales", "functional_role_confidence": 0.7}}') as x(p, r)),
          '(0.8500,1.0000,0.6100,4,sales,0.7000)',
          'seed_persona: scores kept (clamped), overall_confidence and interactions as the seed had them, vectors normalised');
select is((select (p).org_type_confidence::numeric from bevsession.seed_persona(
              '{"detection_vectors": {"org_type": "***", "org_type_confidence": 0.9}}') as x(p, r)), 0.0000,
          'seed_persona: a vector whose value is unusable is empty, with no confidence');

-- ---------------------------------------------------------------------------------------------
-- adopt_session: a cookie's session the database has never seen
-- ---------------------------------------------------------------------------------------------
create temporary table cookie (name text primary key, body jsonb not null);
grant select on cookie to public;
insert into cookie values ('node', pg_catalog.jsonb_build_object(
    'sessionId', 'bbbbbbbb-0000-4000-8000-000000000001',
    'createdAt', bevsession.to_ms(now() - interval '2 hours'),
    'lastActivityAt', bevsession.to_ms(now() - interval '10 minutes'),
    'lastMessageAt', bevsession.to_ms(now() - interval '10 minutes'),
    'messageCount', 6, 'lastMessage', 'We need to prove ROI',
    'currentMode', 'returning', 'hasCompletedOnboarding', true, 'hasBrochure', false, 'isDataConnected', true,
    'lastGeneratedBrochureId', 'broch-7',
    'persona', pg_catalog.jsonb_build_object(
        'detection_vectors', pg_catalog.jsonb_build_object(
            'functional_role', 'sales', 'functional_role_confidence', 0.5,
            'functional_role_history', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                'value', 'sales', 'confidence', 0.5, 'strength', 'strong', 'evidence', 'I run sales',
                'detected_at', bevsession.to_ms(now() - interval '1 hour'))),
            'org_type', null, 'org_type_confidence', 0, 'org_type_history', '[]'::jsonb,
            'org_size', 'Craft', 'org_size_confidence', 1.4, 'org_size_history', '[]'::jsonb,
            'product_focus', null, 'product_focus_confidence', 0, 'product_focus_history', '[]'::jsonb,
            'vectors_updated_at', bevsession.to_ms(now() - interval '1 hour')),
        'sales_focus_score', 0.75, 'craft_score', 0.5, 'large_score', 3,
        'pain_points_detected', '["execution_blind_spot", "Prove ROI"]'::jsonb,
        'pain_points_confidence', '{"execution_blind_spot": 0.5}'::jsonb,
        'overall_confidence', 0.42, 'total_interactions', 9)));

set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "bbbbbbbb-0000-4000-8000-000000000001"}', true);
insert into result select 'adopted', public.adopt_session((select body from cookie where name = 'node'));
select is((select (body ->> 'created')::boolean and (body ->> 'adopted')::boolean from result where name = 'adopted'), true,
          'adopt_session creates a missing session from the cookie');
select is((select (body -> 'session') - 'session_id' - 'created_at' - 'last_activity_at' - 'last_message_at' from result where name = 'adopted'),
          '{"user_id": null, "revoked_at": null, "current_mode": "returning", "has_brochure": false, "last_message": "We need to prove ROI",
            "message_count": 6, "is_data_connected": true, "has_completed_onboarding": true,
            "last_generated_brochure_id": "broch-7", "last_brochure_generated_at": null}'::jsonb,
          'the counters, the last message, the mode and the flags are the cookie''s');
select is((select (body -> 'session' ->> 'created_at')::bigint from result where name = 'adopted'),
          (select (body ->> 'createdAt')::bigint from cookie where name = 'node'),
          'createdAt is the cookie''s: the absolute lifetime keeps counting from it');
select is((select body -> 'persona' -> 'detection_vectors' -> 'functional_role_history' -> 0 ->> 'evidence' from result where name = 'adopted'),
          'I run sales', 'the detection histories are the cookie''s');
select is((select (body -> 'persona' ->> 'sales_focus_score', body -> 'persona' ->> 'large_score', body -> 'persona' ->> 'overall_confidence',
                   body -> 'persona' ->> 'total_interactions', body -> 'persona' -> 'detection_vectors' ->> 'org_size',
                   body -> 'persona' -> 'pain_points_detected')::text from result where name = 'adopted'),
          '(0.75,1,0.42,9,craft,"[""execution_blind_spot"", ""prove_roi""]")',
          'the persona is the cookie''s, its out-of-range values clamped and its names normalised');
select is((select body -> 'dropped' from result where name = 'adopted'),
          '{"score_clamped": 2, "name_normalised": 2}'::jsonb, 'what the rules changed is counted by reason');

insert into result select 'again', public.adopt_session(
    (select body || '{"messageCount": 99, "currentMode": "fresh"}' from cookie where name = 'node'));
select is((select (body ->> 'created', body ->> 'adopted', body -> 'session' ->> 'message_count', body -> 'session' ->> 'current_mode')::text
           from result where name = 'again'),
          '(false,false,6,returning)', 'once the database has the session, the database wins');
select throws_ok($$select public.adopt_session('{"sessionId": "bbbbbbbb-0000-4000-8000-000000000002"}')$$, '22023',
                 'cookie.sessionId: must be the calling session''s id', 'a cookie for another session is refused');
select throws_ok($$select public.adopt_session('[1]')$$, '22023',
                 'cookie: must be a JSON object (the cookie''s SessionData)', 'a cookie that is no object is refused');

select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "bbbbbbbb-0000-4000-8000-000000000003"}', true);
select throws_ok(format($$select public.adopt_session(%L)$$, pg_catalog.jsonb_build_object(
                     'createdAt', bevsession.to_ms(now() - interval '3 days'), 'lastActivityAt', bevsession.to_ms(now() - interval '2 days'))),
                 'PT410', 'session expired', 'a cookie past the idle timeout creates nothing');
select is((select count(*)::int from bevsession.sessions), 0, 'and nothing was written for it');
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "bbbbbbbb-0000-4000-8000-000000000004"}', true);
insert into result select 'future', public.adopt_session(pg_catalog.jsonb_build_object(
    'createdAt', bevsession.to_ms(now() + interval '300 days'), 'messageCount', 'many', 'hasBrochure', 'yes', 'persona', 'odd'));
select is((select (body -> 'session' ->> 'created_at')::bigint <= bevsession.to_ms(now()) from result where name = 'future'), true,
          'a createdAt in the future is clamped to now (it would stretch the absolute lifetime)');
select is((select body -> 'dropped' from result where name = 'future'),
          '{"value_dropped": 3, "timestamp_clamped": 1}'::jsonb, 'values of the wrong type are dropped and counted');
reset role;

-- The activity a Node app saw counts: a session idle here but active in the cookie lives on.
update bevsession.sessions set last_activity_at = now() - interval '25 hours' where id = 'bbbbbbbb-0000-4000-8000-000000000001';
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "bbbbbbbb-0000-4000-8000-000000000001"}', true);
select throws_ok($$select public.get_session()$$, 'PT410', 'session expired', 'get_session: idle for 25 hours here');
select throws_ok(format($$select public.adopt_session(%L)$$, (select body from cookie where name = 'node')),
                 'PT410', 'session expired', 'adopt_session: the database''s clock wins over a cookie this server sealed');
select lives_ok(format($$select public.adopt_session(%L, count_cookie_activity => true)$$, (select body from cookie where name = 'node')),
                'adopt_session: a cookie the Node app sealed proves activity 10 minutes ago');
reset role;
update bevsession.sessions set last_activity_at = now() - interval '25 hours' where id = 'bbbbbbbb-0000-4000-8000-000000000001';
set local role session_visitor;
select throws_ok(format($$select public.adopt_session(%L, true)$$, (select body - 'lastActivityAt' from cookie where name = 'node')),
                 'PT410', 'session expired', 'a cookie without an activity time proves nothing');
reset role;

-- ---------------------------------------------------------------------------------------------
-- The import functions: service_role only
-- ---------------------------------------------------------------------------------------------
set local role session_visitor;
select throws_ok($$select public.import_seed_sessions('[]', now())$$, '42501', null, 'a visitor may not import');
reset role;
set local role anon;
select throws_ok($$select public.import_seed_messages('[]', now())$$, '42501', null, 'anon may not import');
reset role;

set local role service_role;
select throws_ok($$select public.import_seed_sessions('{}', now())$$, '22023',
                 'seed_rows: must be a JSON array of at most 50000 rows', 'a batch is a JSON array');
select throws_ok($$select public.import_seed_messages('[]', null)$$, '22023', 'started_at: is required', 'started_at is required');

-- a session this server made (the database wins), a forgotten one, two imported ones
reset role;
insert into bevsession.sessions (id) values ('cccccccc-0000-4000-8000-000000000001');
insert into bevsession.sessions (id, revoked_at, forgotten_at) values ('cccccccc-0000-4000-8000-000000000002', now(), now());
set local role service_role;
insert into result select 'sessions', public.import_seed_sessions(pg_catalog.jsonb_build_array(
    '{"session_id": "CCCCCCCC-0000-4000-8000-000000000003", "first_at": "2026-11-01T10:00:00+00:00", "last_at": "2026-11-02T10:00:00+00:00"}'::jsonb,
    '{"session_id": "cccccccc-0000-4000-8000-000000000004", "first_at": null, "last_at": null}'::jsonb,
    '{"session_id": "cccccccc-0000-4000-8000-000000000001"}'::jsonb,
    '{"session_id": "cccccccc-0000-4000-8000-000000000002"}'::jsonb,
    '{"session_id": "visitor-42"}'::jsonb), now());
select is((select body from result where name = 'sessions'),
          '{"read": 5, "imported": 2, "skipped": {"session_exists": 1, "session_revoked": 1, "session_id_not_uuid": 1},
            "adjusted": {"timestamp_defaulted": 1, "session_id_normalised": 1}, "extended": 0}'::jsonb,
          'sessions: imported, skipped and adjusted, each counted by reason');
select is((select (created_at, last_activity_at)::text from bevsession.sessions where id = 'cccccccc-0000-4000-8000-000000000003'),
          '("2026-11-01 10:00:00+00","2026-11-02 10:00:00+00")', 'created at its earliest row, last active at its latest');
select is((select count(*)::int from bevsession.seed_imports), 2, 'the imported sessions are recorded');

insert into result select 'personas', public.import_seed_personas(pg_catalog.jsonb_build_array(
    '{"id": "dddddddd-0000-4000-8000-000000000001", "session_id": "cccccccc-0000-4000-8000-000000000003",
      "sales_focus_score": 0.85, "craft_score": 9.99, "pain_points_detected": ["Execution Blind-Spot"],
      "pain_points_confidence": {"execution_blind_spot": 0.4}, "overall_confidence": 0.55, "total_interactions": 7,
      "questions_asked": ["How?"], "created_at": "2026-11-01T10:00:00+00:00", "last_updated": "2026-11-02T10:00:00+00:00"}'::jsonb,
    '{"id": "dddddddd-0000-4000-8000-000000000002", "session_id": "cccccccc-0000-4000-8000-000000000003"}'::jsonb,
    '{"id": "dddddddd-0000-4000-8000-000000000003", "session_id": "cccccccc-0000-4000-8000-000000000001"}'::jsonb), now());
select is((select body from result where name = 'personas'),
          '{"read": 3, "imported": 1, "skipped": {"persona_exists": 1, "session_exists": 1},
            "adjusted": {"score_clamped": 1, "name_normalised": 1}}'::jsonb,
          'personas: one per session; a session this server made keeps its own');
select is((select (sales_focus_score, craft_score, overall_confidence, total_interactions, pain_points_detected, questions_asked)::text
           from bevsession.user_personas where id = 'dddddddd-0000-4000-8000-000000000001'),
          '(0.8500,1.0000,0.5500,7,{execution_blind_spot},{How?})',
          'the seed''s scores, confidence, interactions, pain points and questions are kept');

insert into result select 'messages', public.import_seed_messages(pg_catalog.jsonb_build_array(
    '{"id": "eeeeeeee-0000-4000-8000-000000000002", "session_id": "cccccccc-0000-4000-8000-000000000003", "message_role": "assistant",
      "message_content": "Welcome!", "created_at": "2026-11-01T10:01:00+00:00", "generation_mode": "Fresh", "ui_specification": {"type": "page"},
      "estimated_read_time": "2 min", "persona_snapshot": {"sales_focus_score": 0.5}}'::jsonb,
    '{"id": "eeeeeeee-0000-4000-8000-000000000001", "session_id": "cccccccc-0000-4000-8000-000000000003", "message_role": " User",
      "message_content": "We are a craft brewery", "created_at": "2026-11-01T10:00:00+00:00"}'::jsonb,
    pg_catalog.jsonb_build_object('id', 'eeeeeeee-0000-4000-8000-000000000003', 'session_id', 'cccccccc-0000-4000-8000-000000000004',
      'message_role', 'user', 'message_content', repeat('y', 9000), 'created_at', '2026-11-03T10:00:00+00:00'),
    '{"id": "eeeeeeee-0000-4000-8000-000000000004", "session_id": "cccccccc-0000-4000-8000-000000000003", "message_role": "bot",
      "message_content": "x"}'::jsonb,
    '{"id": "eeeeeeee-0000-4000-8000-000000000005", "session_id": "cccccccc-0000-4000-8000-000000000002", "message_role": "user",
      "message_content": "forgotten"}'::jsonb), now());
select is((select body from result where name = 'messages'),
          '{"read": 5, "imported": 3, "skipped": {"unknown_role": 1, "session_revoked": 1},
            "adjusted": {"name_normalised": 1, "role_normalised": 1, "message_truncated": 1}, "sessions_counted": 2}'::jsonb,
          'messages: imported, skipped and adjusted by reason; a forgotten visitor stays forgotten');
select is((select array_agg(message_content::text order by seq) from bevsession.conversation_history
           where session_id = 'cccccccc-0000-4000-8000-000000000003'),
          array['We are a craft brewery', 'Welcome!'], 'the history keeps the seed''s created_at order');
select is((select (message_role, generation_mode, ui_specification, estimated_read_time, persona_snapshot ->> 'sales_focus_score')::text
           from bevsession.conversation_history where id = 'eeeeeeee-0000-4000-8000-000000000002'),
          '(assistant,fresh,"{""type"": ""page""}","2 min",0.5)', 'role, mode, UI specification, read time and snapshot are kept');
select is((select (message_count, last_message, last_message_at)::text from bevsession.sessions where id = 'cccccccc-0000-4000-8000-000000000003'),
          '(2,Welcome!,"2026-11-01 10:01:00+00")', 'the messages are counted on their session (both roles)');
select is((select char_length(message_content) from bevsession.conversation_history where id = 'eeeeeeee-0000-4000-8000-000000000003'),
          8000, 'a message over the limit keeps its first 8000 characters');

insert into result select 'signals', public.import_seed_signals(pg_catalog.jsonb_build_array(
    '{"id": "ffffffff-0000-4000-8000-000000000001", "session_id": "cccccccc-0000-4000-8000-000000000003", "signal_type": "pain_point_mention",
      "signal_text": "We need ROI", "signal_strength": "Strong", "pain_points_inferred": ["roi"], "score_updates": {"sales_focus_score": 0.3},
      "confidence_before": 0.2, "confidence_after": 0.35, "created_at": "2026-11-01T10:00:00+00:00"}'::jsonb,
    '{"session_id": "cccccccc-0000-4000-8000-000000000003", "signal_text": "no type, no strength"}'::jsonb,
    '{"session_id": "cccccccc-0000-4000-8000-000000000003", "signal_strength": "huge"}'::jsonb), now());
select is((select body from result where name = 'signals'),
          '{"read": 3, "imported": 2, "skipped": {"unknown_signal_strength": 1}, "adjusted": {"timestamp_defaulted": 1}}'::jsonb,
          'signals: usual columns read when present, defaults otherwise; an unknown strength is skipped');
select is((select (signal_type, signal_strength, confidence_after)::text from bevsession.persona_signals
           where id = 'ffffffff-0000-4000-8000-000000000001'), '(pain_point_mention,strong,0.3500)', 'a signal keeps its confidences');
select is((select (signal_type, signal_strength)::text from bevsession.persona_signals where signal_text = 'no type, no strength'),
          '(unspecified,medium)', 'absent columns take their documented defaults');

-- a second import of the same rows imports nothing
insert into result select 'messages2', public.import_seed_messages(pg_catalog.jsonb_build_array(
    '{"id": "eeeeeeee-0000-4000-8000-000000000001", "session_id": "cccccccc-0000-4000-8000-000000000003", "message_role": "user",
      "message_content": "We are a craft brewery", "created_at": "2026-11-01T10:00:00+00:00"}'::jsonb), now());
select is((select (body ->> 'read', body ->> 'imported')::text from result where name = 'messages2'), '(1,0)',
          'a message imported before is not imported again');
select is((select message_count from bevsession.sessions where id = 'cccccccc-0000-4000-8000-000000000003'), 2,
          'nor counted again');
insert into result select 'sessions2', public.import_seed_sessions(
    '[{"session_id": "cccccccc-0000-4000-8000-000000000003", "first_at": "2026-11-01T10:00:00+00:00", "last_at": "2026-11-05T10:00:00+00:00"}]', now());
select is((select (body ->> 'imported', body ->> 'extended')::text from result where name = 'sessions2'), '(0,1)',
          'an imported session is not created again; newer seed rows extend its activity');
select is((select last_activity_at from bevsession.sessions where id = 'cccccccc-0000-4000-8000-000000000003'),
          '2026-11-05 10:00:00+00'::timestamptz, 'to the latest seed row');
select is((select (body ->> 'sessions_imported', body ->> 'expired_on_arrival')::text
           from (select public.import_seed_summary(now() - interval '1 minute') as body) as s), '(2,1)',
          'import_seed_summary: the imported sessions, and those already past the policy (idle since 2026-11-05)');
reset role;

-- ---------------------------------------------------------------------------------------------
-- An imported session's first cookie adds what the seed kept only there
-- ---------------------------------------------------------------------------------------------
update bevsession.sessions set last_activity_at = now() - interval '1 hour', created_at = now() - interval '3 days'
    where id = 'cccccccc-0000-4000-8000-000000000003';
set local role session_visitor;
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "cccccccc-0000-4000-8000-000000000003"}', true);
insert into result select 'completed', public.adopt_session(
    (select body || '{"sessionId": "cccccccc-0000-4000-8000-000000000003"}' from cookie where name = 'node'));
select is((select (body ->> 'created', body ->> 'adopted')::text from result where name = 'completed'), '(false,true)',
          'the first cookie of an imported session completes it');
select is((select (body -> 'session' ->> 'current_mode', body -> 'session' ->> 'has_completed_onboarding',
                   body -> 'session' ->> 'message_count', body -> 'persona' ->> 'sales_focus_score',
                   body -> 'persona' -> 'detection_vectors' ->> 'functional_role')::text from result where name = 'completed'),
          '(returning,true,2,0.85,sales)',
          'mode, flags and detection vectors from the cookie; counters and scores as imported');
insert into result select 'completed2', public.adopt_session(
    (select body || '{"sessionId": "cccccccc-0000-4000-8000-000000000003", "currentMode": "data_connected"}' from cookie where name = 'node'));
select is((select (body ->> 'adopted', body -> 'session' ->> 'current_mode')::text from result where name = 'completed2'),
          '(false,returning)', 'only once: from then on the database wins');
select is((select count(*)::int from bevsession.seed_imports), 1, 'a visitor sees the import record of its own session only');
select throws_ok($$update bevsession.seed_imports set imported_at = now()$$, '42501', null,
                 'a visitor may only mark its import record completed');
reset role;

select * from finish();
rollback;
