-- The persona rules, through the RPCs, as a visitor: session creation and touch, clamping,
-- the confidence formula on a worked example, vector switching, capped histories, update_persona,
-- argument errors (22023), missing identity (PT401) and missing session (PT404).
begin;
create extension if not exists pgtap with schema extensions;
-- pgTAP runs as whichever role the test switches to (this transaction only)
grant usage on schema extensions to session_visitor;
grant execute on all functions in schema extensions to session_visitor;
set local search_path = extensions, public;

select plan(67);

-- results of RPC calls, kept for several assertions
create temporary table result (name text primary key, body jsonb not null);
grant all on result to public;

-- the visitor: session A
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);

-- ---------------------------------------------------------------------------------------------
-- get_session: create, then find; touch
-- ---------------------------------------------------------------------------------------------
insert into result select 'first', public.get_session();
select is((select body ->> 'created' from result where name = 'first'), 'true', 'get_session creates a new session');
select is((select body -> 'session' ->> 'session_id' from result where name = 'first'),
          'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'the session id is the session_id claim');
select is((select body -> 'session' ->> 'current_mode' from result where name = 'first'), 'fresh',
          'a new session is fresh');
select is((select (body -> 'persona' ->> 'total_interactions')::int from result where name = 'first'), 0,
          'a new persona has no interactions');
select is((select body -> 'persona' -> 'detection_vectors' ->> 'vectors_updated_at' from result where name = 'first'), '0',
          'vectors_updated_at is 0 (never) on a new persona');
select is((select count(*)::int from bevsession.personas), 1, 'the persona row is created with the session');

insert into result select 'second', public.get_session();
select is((select body ->> 'created' from result where name = 'second'), 'false', 'a second get_session finds the session');

reset role;
update bevsession.sessions set last_activity_at = now() - interval '1 hour';
set local role session_visitor;
insert into result select 'untouched', public.get_session(p_touch => false);
insert into result select 'touched', public.get_session();
select ok((select (body -> 'session' ->> 'last_activity_at')::bigint from result where name = 'untouched')
          < bevsession.to_ms(now()) - 3000000, 'get_session(p_touch => false) leaves last_activity_at alone');
select is((select (body -> 'session' ->> 'last_activity_at')::bigint from result where name = 'touched'),
          bevsession.to_ms(now()), 'get_session() sets last_activity_at to now');

-- ---------------------------------------------------------------------------------------------
-- record_persona_signal: the worked example
--   strong signal (w = 0.5): functional_role = sales, sales_focus_score + 0.2, pain point roi_proof
--   V = (0.5 + 0 + 0 + 0) / 4 = 0.125     S = (0.2 + 0 + 0) / 3     P = min(1, 1/3)
--   overall = round(0.5·0.125 + 0.3·0.0667 + 0.2·0.3333, 4) = round(0.0625 + 0.02 + 0.066667, 4) = 0.1492
-- ---------------------------------------------------------------------------------------------
insert into result select 'signal1', public.record_persona_signal(
    'functional_role_mention', 'I run sales for a craft brewery', 'strong',
    array['roi_proof'], '{"sales_focus_score": 0.2}', 'functional_role', 'sales');

select is((select (body -> 'persona' ->> 'overall_confidence')::numeric from result where name = 'signal1'),
          round(0.5 * (0.5 / 4) + 0.3 * (0.2 / 3) + 0.2 * least(1, 1 / 3.0), 4),
          'overall confidence follows 0.5·V + 0.3·S + 0.2·P');
select is((select (body -> 'persona' ->> 'overall_confidence')::numeric from result where name = 'signal1'), 0.1492,
          'worked example: overall confidence 0.1492');
select is((select (body -> 'signal' ->> 'confidence_before')::numeric from result where name = 'signal1'), 0::numeric,
          'the audit row records the confidence before (0)');
select is((select (body -> 'signal' ->> 'confidence_after')::numeric from result where name = 'signal1'), 0.1492,
          'the audit row records the confidence after (0.1492)');
select is((select body -> 'persona' -> 'detection_vectors' ->> 'functional_role' from result where name = 'signal1'),
          'sales', 'an empty vector takes the detected value');
select is((select (body -> 'persona' -> 'detection_vectors' ->> 'functional_role_confidence')::numeric
           from result where name = 'signal1'), 0.5, 'with the signal''s weight as confidence (strong = 0.5)');
select is((select (body -> 'persona' ->> 'sales_focus_score')::numeric from result where name = 'signal1'), 0.2,
          'score deltas are added');
select is((select body -> 'persona' -> 'pain_points_confidence' from result where name = 'signal1'),
          '{"roi_proof": 0.5}'::jsonb, 'a new pain point gets confidence w');
select is((select (body -> 'persona' ->> 'total_interactions')::int from result where name = 'signal1'), 1,
          'a signal counts as an interaction');
select is((select count(*)::int from bevsession.persona_signals), 1, 'one audit row per signal');
select is((select pg_catalog.jsonb_array_length(body -> 'persona' -> 'detection_vectors' -> 'functional_role_history')
           from result where name = 'signal1'), 1, 'the detection is in the vector history');
select ok((select body -> 'persona' -> 'detection_vectors' -> 'functional_role_history' -> 0
           from result where name = 'signal1') ?& array['value', 'confidence', 'strength', 'evidence', 'detected_at'],
          'a history entry has value, confidence, strength, evidence, detected_at');
select is((select overall_confidence::numeric from bevsession.personas),
          bevsession.compute_confidence((select p from bevsession.personas p)),
          'the stored confidence is the formula applied to the stored row');

-- ---------------------------------------------------------------------------------------------
-- reinforcement, weakening, switching
-- ---------------------------------------------------------------------------------------------
insert into result select 'same', public.record_persona_signal(
    'functional_role_mention', 'our sales team', 'medium', array['roi_proof'], '{}', 'functional_role', 'sales');
select is((select (body -> 'persona' -> 'detection_vectors' ->> 'functional_role_confidence')::numeric
           from result where name = 'same'), 0.625, 'the same value again: 0.5 + 0.25·(1 − 0.5) = 0.625');
select is((select body -> 'persona' -> 'pain_points_confidence' ->> 'roi_proof' from result where name = 'same'),
          '0.625', 'a repeated pain point is reinforced: 0.5 + 0.25·(1 − 0.5)');
select is((select body -> 'persona' -> 'pain_points_detected' from result where name = 'same'),
          '["roi_proof"]'::jsonb, 'a repeated pain point is not listed twice');

insert into result select 'weak_other', public.record_persona_signal(
    'functional_role_mention', 'some marketing', 'weak', '{}', '{}', 'functional_role', 'marketing');
select is((select body -> 'persona' -> 'detection_vectors' ->> 'functional_role' from result where name = 'weak_other'),
          'sales', 'a weak different value does not take over (0.1 < 0.625·0.9)');
select is((select (body -> 'persona' -> 'detection_vectors' ->> 'functional_role_confidence')::numeric
           from result where name = 'weak_other'), 0.5625, 'but weakens the current one: 0.625·(1 − 0.1) = 0.5625');

insert into result select 'strong_other', public.record_persona_signal(
    'functional_role_mention', 'I lead marketing', 'strong', '{}', '{}', 'functional_role', 'marketing');
select is((select body -> 'persona' -> 'detection_vectors' ->> 'functional_role' from result where name = 'strong_other'),
          'marketing', 'a strong different value takes over (0.5 > 0.5625·0.5 = 0.2813)');
select is((select (body -> 'persona' -> 'detection_vectors' ->> 'functional_role_confidence')::numeric
           from result where name = 'strong_other'), 0.5, 'with confidence w = 0.5');
select is((select body -> 'persona' -> 'detection_vectors' -> 'functional_role_history' -> -1 ->> 'value'
           from result where name = 'strong_other'), 'marketing', 'the newest detection is last in the history');

-- ---------------------------------------------------------------------------------------------
-- history capped at the newest 10
-- ---------------------------------------------------------------------------------------------
select count(public.record_persona_signal('product_mention', 'detection ' || i, 'weak', '{}', '{}',
                                          'product_focus', case when i % 2 = 0 then 'beer' else 'wine' end))
from generate_series(1, 12) as i;
select is((select pg_catalog.jsonb_array_length(product_focus_history) from bevsession.personas), 10,
          'after 12 detections the history keeps 10');
select is((select product_focus_history -> 0 ->> 'evidence' from bevsession.personas), 'detection 3',
          'the two oldest were dropped');
select is((select product_focus_history -> 9 ->> 'evidence' from bevsession.personas), 'detection 12',
          'the newest is kept, last');
select is((select count(*)::int from bevsession.persona_signals), 16, 'every one of them has an audit row');

-- ---------------------------------------------------------------------------------------------
-- clamping
-- ---------------------------------------------------------------------------------------------
insert into result select 'over', public.record_persona_signal(
    'sales_mention', 'sales sales sales', 'strong', '{}', '{"sales_focus_score": 0.9}');
select is((select (body -> 'persona' ->> 'sales_focus_score')::numeric from result where name = 'over'), 1::numeric,
          'a delta past 1 is clamped to 1 (0.2 + 0.9)');
insert into result select 'under', public.record_persona_signal(
    'sales_mention', 'not sales at all', 'strong', '{}', '{"sales_focus_score": -1}');
select is((select (body -> 'persona' ->> 'sales_focus_score')::numeric from result where name = 'under'), 0::numeric,
          'a delta below 0 is clamped to 0');
insert into result select 'small', public.record_persona_signal(
    'craft_mention', 'tiny brewery', 'weak', '{}', '{"craft_score": 0.0125}');
select is((select (body -> 'persona' ->> 'craft_score')::numeric from result where name = 'small'), 0.0125,
          'a small delta is kept (four decimals, not the seed''s two)');

-- ---------------------------------------------------------------------------------------------
-- update_persona: absolute values, merges, session fields; a second worked example
-- ---------------------------------------------------------------------------------------------
insert into result select 'upd', public.update_persona('{
    "sales_focus_score": 0.6, "marketing_focus_score": 0.3, "supplier_score": 1.7, "distributor_score": -2,
    "craft_score": 0.9, "pain_points_detected": ["execution_blind_spot", "roi_proof"],
    "pain_points_confidence": {"execution_blind_spot": 0.4, "sales_velocity": 3},
    "questions_asked": ["How do I prove ROI?"], "current_mode": "returning", "has_brochure": true,
    "last_generated_brochure_id": "br_1", "last_brochure_generated_at": 1790000000000}');
select is((select (body -> 'persona' ->> 'supplier_score')::numeric from result where name = 'upd'), 1::numeric,
          'update_persona clamps an absolute score above 1');
select is((select (body -> 'persona' ->> 'distributor_score')::numeric from result where name = 'upd'), 0::numeric,
          'update_persona clamps an absolute score below 0');
select is((select body -> 'persona' -> 'pain_points_detected' from result where name = 'upd'),
          '["roi_proof", "execution_blind_spot"]'::jsonb, 'pain_points_detected is merged as a set union');
select is((select body -> 'persona' -> 'pain_points_confidence' from result where name = 'upd'),
          '{"roi_proof": 0.625, "sales_velocity": 1, "execution_blind_spot": 0.4}'::jsonb,
          'pain_points_confidence is merged and clamped');
select is((select body -> 'persona' -> 'questions_asked' from result where name = 'upd'),
          '["How do I prove ROI?"]'::jsonb, 'questions_asked is appended');
select is((select body -> 'session' ->> 'current_mode' from result where name = 'upd'), 'returning',
          'current_mode is set on the session');
select is((select (body -> 'session' ->> 'has_brochure') || ' ' || (body -> 'session' ->> 'last_generated_brochure_id')
                  || ' ' || (body -> 'session' ->> 'last_brochure_generated_at') from result where name = 'upd'),
          'true br_1 1790000000000', 'flags and the brochure reference are set on the session');
-- V = (0.5 [marketing] + 0 + 0 + 0.1 [product_focus beer/wine…]) — read from the row; S and P by hand:
--   S = (max(0.6, 0.3, 0, 0) + max(1, 0) + max(0.9, 0, 0)) / 3 = 2.5 / 3;  P = min(1, 2/3)
select is((select (body -> 'persona' ->> 'overall_confidence')::numeric from result where name = 'upd'),
          (select round(0.5 * (functional_role_confidence + product_focus_confidence) / 4
                        + 0.3 * (2.5 / 3) + 0.2 * (2 / 3.0), 4) from bevsession.personas),
          'update_persona recomputes the overall confidence');
select is((select (body -> 'persona' ->> 'total_interactions')::int from result where name = 'upd'),
          (select count(*)::int + 1 from bevsession.persona_signals),
          'total_interactions counts every signal and every update_persona call');

select throws_ok($$select public.update_persona('{"bogus": 1}')$$, '22023',
                 'p_updates.bogus: unknown key (allowed: sales_focus_score, marketing_focus_score, operations_focus_score, compliance_focus_score, supplier_score, distributor_score, craft_score, mid_sized_score, large_score, pain_points_detected, pain_points_confidence, questions_asked, current_mode, has_completed_onboarding, has_brochure, is_data_connected, last_generated_brochure_id, last_brochure_generated_at)',
                 'update_persona rejects an unknown key, naming it');
select throws_ok($$select public.update_persona('{"overall_confidence": 1}')$$, '22023', null,
                 'overall_confidence is computed, never set');
select throws_ok($$select public.update_persona('{"sales_focus_score": "high"}')$$, '22023',
                 'p_updates.sales_focus_score: must be a number (clamped to [0, 1])', 'a score must be a number');
select throws_ok($$select public.update_persona('{"current_mode": "sleepy"}')$$, '22023', null,
                 'current_mode must be fresh, returning or data_connected');
select throws_ok($$select public.update_persona('[]')$$, '22023', 'p_updates: must be a JSON object',
                 'p_updates must be an object');

-- ---------------------------------------------------------------------------------------------
-- record_persona_signal argument errors (nothing is written)
-- ---------------------------------------------------------------------------------------------
select throws_ok($$select public.record_persona_signal('x', 'y', 'huge')$$, '22023',
                 'p_signal_strength: must be ''weak'', ''medium'' or ''strong''', 'an unknown strength is refused');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{"happiness_score": 0.1}')$$, '22023',
                 null, 'an unknown score name is refused');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{"craft_score": 2}')$$, '22023',
                 'p_score_updates.craft_score: must be a number in [-1, 1]', 'a delta outside [-1, 1] is refused');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{}', 'mood', 'happy')$$, '22023',
                 null, 'an unknown vector is refused');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{}', 'org_type', null)$$, '22023',
                 'p_vector_value: is required with vector: lower snake_case, 1-64 characters', 'a vector needs a value');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', array['Bad Name'])$$, '22023',
                 null, 'a malformed pain point name is refused');
select throws_ok($$select public.record_persona_signal('Bad Type', 'y', 'weak')$$, '22023',
                 'p_signal_type: is required: lower snake_case, 1-64 characters', 'a malformed signal type is refused');
select throws_ok(format($$select public.record_persona_signal('x', %L, 'weak')$$, repeat('y', 2001)), '22023',
                 'p_signal_text: too long (at most 2000 characters)', 'an overlong signal text is refused');
select is((select count(*)::int from bevsession.persona_signals), 19, 'refused signals left no audit row');

-- ---------------------------------------------------------------------------------------------
-- no identity (PT401), no session (PT404)
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims', '{"role": "session_visitor"}', true);
select throws_ok($$select public.get_session()$$, 'PT401', 'no session identity', 'no session_id claim → PT401');
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "not-a-uuid"}', true);
select throws_ok($$select public.update_persona('{}')$$, 'PT401', 'no session identity',
                 'a session_id claim that is not a uuid → PT401');
select set_config('request.jwt.claims', '', true);
select throws_ok($$select public.get_conversation_history()$$, 'PT401', 'no session identity',
                 'no claims at all → PT401');

select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc"}', true);
select throws_ok($$select public.update_persona('{"craft_score": 0.5}')$$, 'PT404', 'session not found',
                 'update_persona on a session that was never created → PT404');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak')$$, 'PT404', 'session not found',
                 'record_persona_signal on a missing session → PT404');
select throws_ok($$select public.get_conversation_history()$$, 'PT404', 'session not found',
                 'get_conversation_history of a session never created → PT404');
select is((select count(*)::int from bevsession.sessions), 0, 'and nothing was created');

select * from finish();
rollback;
