-- 20261201000200_personas.sql: the persona tables and the persona rules, through the RPCs, as a
-- visitor: clamping, the confidence formula on a worked example, vector switching, capped
-- histories, update_persona, argument errors (22023 "<argument>: <problem>"), missing identity
-- (PT401) and missing session (PT404).
-- Identity as PostgREST gives it: `set local role` and the request.jwt.claims setting.
begin;
create extension if not exists pgtap with schema extensions;
-- pgTAP runs as whichever role the test switches to (this transaction only)
grant usage on schema extensions to session_visitor;
grant execute on all functions in schema extensions to session_visitor;
set local search_path = extensions, public;

select plan(120);

-- results of RPC calls, kept for several assertions
create temporary table result (name text primary key, body jsonb not null);
grant all on result to public;

-- ---------------------------------------------------------------------------------------------
-- The tables: user_personas (the seed's, plus the four detection vectors), persona_signals
-- ---------------------------------------------------------------------------------------------
select is((select relrowsecurity from pg_catalog.pg_class where oid = format('bevsession.%I', t)::regclass),
          true, format('RLS is enabled on bevsession.%s', t))
from unnest(array['user_personas', 'persona_signals']) as t;
select policies_are('bevsession', 'user_personas', array[
    'Visitors can read their own persona',
    'Visitors can create the persona of their live session',
    'Visitors can update the persona of their live session',
    'Visitors can delete their own persona',
    'Signed-in users can read their own personas',
    'The edge worker can see when each persona changed'],
    'user_personas: read / create / update / delete own; a signed-in user reads the personas linked to it (20261201002000_linking); the edge worker sees changes');
select policies_are('bevsession', 'persona_signals', array[
    'Visitors can read their own signals',
    'Visitors can record signals of their live session',
    'Visitors can delete their own signals',
    'Visitors can link their own signals to their account',
    'Signed-in users can read their own signals'],
    'persona_signals: read / record / delete own, updated only to link them (user_id, 20261201002000_linking); a signed-in user reads the signals linked to it');
select has_column('bevsession', 'user_personas', c, format('user_personas.%s exists', c))
from unnest(array['sales_focus_score', 'large_score', 'pain_points_confidence', 'questions_asked',
                  'functional_role', 'functional_role_confidence', 'functional_role_history',
                  'product_focus_history', 'vectors_updated_at', 'last_updated']) as c;
select col_type_is('bevsession', 'user_personas', 'sales_focus_score', 'bevsession.score',
                   'scores use the domain bevsession.score');
select col_type_is('bevsession', 'user_personas', 'functional_role_history', 'bevsession.detection_history',
                   'a vector''s history uses the domain bevsession.detection_history');
select col_type_is('bevsession', 'persona_signals', 'signal_strength', 'bevsession.signal_strength',
                   'persona_signals.signal_strength is the signal_strength enum');
select col_type_is('bevsession', 'persona_signals', 'vector', 'bevsession.vector_name',
                   'persona_signals.vector is the vector_name enum');
select col_is_unique('bevsession', 'user_personas', array['session_id'], 'one persona per session');
select fk_ok('bevsession', 'user_personas', 'session_id', 'bevsession', 'sessions', 'id');
select fk_ok('bevsession', 'persona_signals', 'session_id', 'bevsession', 'sessions', 'id');

-- CHECK constraints and domains guard what the functions validate (as the owner)
insert into bevsession.sessions (id) values ('00000000-0000-4000-8000-000000000001');
select throws_ok($$insert into bevsession.user_personas (session_id, sales_focus_score)
                   values ('00000000-0000-4000-8000-000000000001', 1.5)$$,
                 '23514', 'value for domain bevsession.score violates check constraint "must be a number in [0, 1]"',
                 'a score above 1 violates the score domain');
select throws_ok($$insert into bevsession.user_personas (session_id, pain_points_detected)
                   values ('00000000-0000-4000-8000-000000000001', array['Not A Name'])$$,
                 '23514', 'value for domain bevsession.identifier violates check constraint "must be lower snake_case, 1-64 characters"',
                 'a malformed pain point name violates the identifier domain');
select throws_ok($$insert into bevsession.user_personas (session_id, functional_role_history)
                   values ('00000000-0000-4000-8000-000000000001',
                           (select jsonb_agg(i) from generate_series(1, 11) i))$$,
                 '23514', null, 'a detection history of 11 entries violates its domain');
select throws_ok($$insert into bevsession.user_personas (session_id, functional_role_confidence)
                   values ('00000000-0000-4000-8000-000000000001', 0.5)$$,
                 '23514', 'new row for relation "user_personas" violates check constraint "an empty vector has no confidence"',
                 'an empty vector has no confidence');
select throws_ok($$insert into bevsession.user_personas (session_id, total_interactions)
                   values ('00000000-0000-4000-8000-000000000001', -1)$$,
                 '23514', 'new row for relation "user_personas" violates check constraint "total_interactions is not negative"',
                 'total_interactions is never negative');
select throws_ok($$insert into bevsession.persona_signals (session_id, signal_type, signal_text, signal_strength,
                   confidence_before, confidence_after)
                   values ('00000000-0000-4000-8000-000000000001', 'x', 'y', 'huge', 0, 0)$$,
                 '22P02', null, 'an unknown signal strength is refused by its enum');
select throws_ok($$insert into bevsession.persona_signals (session_id, signal_type, signal_text, signal_strength,
                   vector, confidence_before, confidence_after)
                   values ('00000000-0000-4000-8000-000000000001', 'x', 'y', 'weak', 'org_type', 0, 0)$$,
                 '23514', 'new row for relation "persona_signals" violates check constraint "a vector has a value"',
                 'a signal''s vector has a value');
select throws_ok($$insert into bevsession.persona_signals (session_id, signal_type, signal_text, signal_strength,
                   score_updates, confidence_before, confidence_after)
                   values ('00000000-0000-4000-8000-000000000001', 'x', 'y', 'weak', '[]', 0, 0)$$,
                 '23514', 'new row for relation "persona_signals" violates check constraint "score_updates is an object"',
                 'a signal''s score_updates is an object');
delete from bevsession.sessions where id = '00000000-0000-4000-8000-000000000001';

-- the pure rules
select is(bevsession.strength_weight(s), w, format('a %s signal weighs %s', s, w))
from (values ('weak'::bevsession.signal_strength, 0.10), ('medium', 0.25), ('strong', 0.50)) as t(s, w);
select is(bevsession.reinforce(0.5, 0.25), 0.6250, 'reinforce(c, w) = c + w·(1 − c)');

-- the visitor: session A, created by get_session (01_sessions tests get_session itself)
set local role session_visitor;
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"}', true);
select count(public.get_session());

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
select is((select overall_confidence::numeric from bevsession.user_personas),
          bevsession.compute_confidence((select p from bevsession.user_personas p where p.session_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa')),
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
select is((select pg_catalog.jsonb_array_length(product_focus_history) from bevsession.user_personas), 10,
          'after 12 detections the history keeps 10');
select is((select product_focus_history -> 0 ->> 'evidence' from bevsession.user_personas), 'detection 3',
          'the two oldest were dropped');
select is((select product_focus_history -> 9 ->> 'evidence' from bevsession.user_personas), 'detection 12',
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
                        + 0.3 * (2.5 / 3) + 0.2 * (2 / 3.0), 4) from bevsession.user_personas),
          'update_persona recomputes the overall confidence');
select is((select (body -> 'persona' ->> 'total_interactions')::int from result where name = 'upd'),
          (select count(*)::int + 1 from bevsession.persona_signals),
          'total_interactions counts every signal and every update_persona call');

select throws_ok($$select public.update_persona('{"bogus": 1}')$$, '22023',
                 'updates.bogus: unknown key (allowed: sales_focus_score, marketing_focus_score, operations_focus_score, compliance_focus_score, supplier_score, distributor_score, craft_score, mid_sized_score, large_score, pain_points_detected, pain_points_confidence, questions_asked, current_mode, has_completed_onboarding, has_brochure, is_data_connected, last_generated_brochure_id, last_brochure_generated_at)',
                 'update_persona rejects an unknown key, naming it and the allowed ones');
select throws_ok($$select public.update_persona('{"overall_confidence": 1}')$$, '22023',
                 'updates.overall_confidence: unknown key (allowed: sales_focus_score, marketing_focus_score, operations_focus_score, compliance_focus_score, supplier_score, distributor_score, craft_score, mid_sized_score, large_score, pain_points_detected, pain_points_confidence, questions_asked, current_mode, has_completed_onboarding, has_brochure, is_data_connected, last_generated_brochure_id, last_brochure_generated_at)',
                 'overall_confidence is computed, never set');
select throws_ok($$select public.update_persona('{"sales_focus_score": "high"}')$$, '22023',
                 'updates.sales_focus_score: must be a number (clamped to [0, 1])', 'a score must be a number');
select throws_ok($$select public.update_persona('{"current_mode": "sleepy"}')$$, '22023',
                 'updates.current_mode: must be one of fresh, returning, data_connected',
                 'current_mode must be fresh, returning or data_connected');
select throws_ok($$select public.update_persona('{"current_mode": 3}')$$, '22023',
                 'updates.current_mode: must be one of fresh, returning, data_connected',
                 'current_mode must be a string');
select throws_ok($$select public.update_persona('[]')$$, '22023', 'updates: must be a JSON object',
                 'updates must be an object');
select throws_ok($$select public.update_persona(null)$$, '22023', 'updates: must be a JSON object',
                 'updates must not be null');
select throws_ok($$select public.update_persona('{"pain_points_detected": ["Bad Name"]}')$$, '22023',
                 'updates.pain_points_detected: must be lower snake_case, 1-64 characters',
                 'a malformed pain point name is refused by its domain''s rule');
select throws_ok($$select public.update_persona('{"pain_points_detected": "roi_proof"}')$$, '22023',
                 'updates.pain_points_detected: must be an array of pain point names',
                 'pain_points_detected must be an array');
select throws_ok($$select public.update_persona(jsonb_build_object('pain_points_confidence',
                       (select jsonb_object_agg('p' || i, 0.5) from generate_series(1, 33) i)))$$, '22023', null,
                 'more than 32 pain point confidences are refused');
select throws_matching($$select public.update_persona(jsonb_build_object('pain_points_confidence',
                           (select jsonb_object_agg('p' || i, 0.5) from generate_series(1, 33) i)))$$,
                       '^updates\.pain_points_confidence: must be an object of at most 32 \{[^}]*\}$',
                       'and the message states the whole rule (the {…} closed, not cut at 63 bytes)');
select throws_ok($$select public.update_persona('{"pain_points_confidence": {"roi_proof": "high"}}')$$, '22023',
                 'updates.pain_points_confidence: must be an object {pain point name: number (clamped to [0, 1])}',
                 'a pain point confidence must be a number');
select throws_ok($$select public.update_persona('{"questions_asked": [1]}')$$, '22023',
                 'updates.questions_asked: must be an array of strings', 'questions_asked must be strings');
select throws_ok($$select public.update_persona(jsonb_build_object('questions_asked', jsonb_build_array(repeat('q', 1001))))$$, '22023',
                 'updates.questions_asked: at most 1000 characters', 'a question longer than 1000 characters is refused');
select throws_ok($$select public.update_persona('{"has_brochure": "yes"}')$$, '22023',
                 'updates.has_brochure: must be true or false', 'a flag must be a boolean');
select throws_ok($$select public.update_persona(jsonb_build_object('last_generated_brochure_id', repeat('b', 201)))$$, '22023',
                 'updates.last_generated_brochure_id: at most 200 characters', 'a brochure id longer than 200 characters is refused');
select throws_ok($$select public.update_persona('{"last_brochure_generated_at": "yesterday"}')$$, '22023',
                 'updates.last_brochure_generated_at: must be milliseconds since the epoch, or null',
                 'the brochure time must be milliseconds');
select is((select total_interactions from bevsession.user_personas), 20,
          'a refused update_persona changed nothing');

-- ---------------------------------------------------------------------------------------------
-- record_persona_signal argument errors (nothing is written)
-- ---------------------------------------------------------------------------------------------
select throws_ok($$select public.record_persona_signal('x', 'y', 'huge')$$, '22023',
                 'signal_strength: must be one of weak, medium, strong', 'an unknown strength is refused');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{"happiness_score": 0.1}')$$, '22023',
                 'score_updates.happiness_score: must be one of sales_focus_score, marketing_focus_score, operations_focus_score, compliance_focus_score, supplier_score, distributor_score, craft_score, mid_sized_score, large_score',
                 'an unknown score name is refused');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{"craft_score": 2}')$$, '22023',
                 'score_updates.craft_score: must be a number in [-1, 1]', 'a delta outside [-1, 1] is refused');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{"craft_score": "lots"}')$$, '22023',
                 'score_updates.craft_score: must be a number in [-1, 1]', 'a delta must be a number');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '[]')$$, '22023',
                 'score_updates: must be an object {score name: delta}', 'score_updates must be an object');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{}', 'mood', 'happy')$$, '22023',
                 'vector: must be one of functional_role, org_type, org_size, product_focus', 'an unknown vector is refused');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{}', 'org_type', null)$$, '22023',
                 'vector_value: is required with vector: a string', 'a vector needs a value');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{}', null, 'supplier')$$, '22023',
                 'vector_value: needs vector', 'a vector value needs a vector');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', '{}', '{}', 'org_type', 'Big Supplier')$$, '22023',
                 'vector_value: must be lower snake_case, 1-64 characters', 'a malformed vector value is refused');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', array['Bad Name'])$$, '22023',
                 'pain_points_inferred: must be lower snake_case, 1-64 characters', 'a malformed pain point name is refused');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak', array(select 'p' || i from generate_series(1, 33) i))$$, '22023',
                 'pain_points_inferred: at most 32 pain points, none null', 'more than 32 pain points in one signal are refused');
select throws_ok($$select public.record_persona_signal('Bad Type', 'y', 'weak')$$, '22023',
                 'signal_type: must be lower snake_case, 1-64 characters', 'a malformed signal type is refused');
select throws_ok($$select public.record_persona_signal(null, 'y', 'weak')$$, '22023',
                 'signal_type: is required: a string', 'a signal type is required');
select throws_ok($$select public.record_persona_signal('x', null, 'weak')$$, '22023',
                 'signal_text: is required: a string', 'a signal text is required');
select throws_ok($$select public.record_persona_signal('x', 'y', null)$$, '22023',
                 'signal_strength: is required: a string', 'a signal strength is required');
select throws_ok(format($$select public.record_persona_signal('x', %L, 'weak')$$, repeat('y', 2001)), '22023',
                 'signal_text: at most 2000 characters', 'an overlong signal text is refused');
select is((select count(*)::int from bevsession.persona_signals), 19, 'refused signals left no audit row');

-- ---------------------------------------------------------------------------------------------
-- more of the rules (session E, fresh)
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee"}', true);
select count(public.get_session());
insert into result select 'dupes', public.record_persona_signal(
    'pain_point_mention', repeat('long evidence ', 30), 'medium', array['roi_proof', 'sales_velocity', 'roi_proof'],
    '{}', 'org_size', 'craft');
select is((select body -> 'signal' -> 'pain_points_inferred' from result where name = 'dupes'),
          '["roi_proof", "sales_velocity"]'::jsonb, 'a pain point named twice in one signal is recorded once, in order');
select is((select body -> 'persona' -> 'pain_points_confidence' from result where name = 'dupes'),
          '{"roi_proof": 0.25, "sales_velocity": 0.25}'::jsonb, 'and reinforced once');
select is((select char_length(body -> 'persona' -> 'detection_vectors' -> 'org_size_history' -> 0 ->> 'evidence')
           from result where name = 'dupes'), 200, 'a history entry keeps the first 200 characters of the evidence');
select is((select body -> 'signal' ->> 'signal_strength' from result where name = 'dupes'), 'medium',
          'the audit row is returned as the signal');
select is((select array_agg(k order by k) from result, jsonb_object_keys(body) as k where name = 'dupes'),
          array['persona', 'signal'], 'record_persona_signal returns {signal, persona}');
select is((select body -> 'persona' -> 'pain_points_confidence' -> 'roi_proof' from result where name = 'dupes'),
          '0.25'::jsonb, 'scores and confidences are JSON numbers in their shortest form (0.25, not 0.2500)');

select count(public.update_persona(jsonb_build_object('questions_asked',
    (select jsonb_agg('question ' || i) from generate_series(1, 30) i))));
insert into result select 'questions', public.update_persona(jsonb_build_object('questions_asked',
    (select jsonb_agg('question ' || i) from generate_series(31, 60) i)));
select is((select jsonb_array_length(body -> 'persona' -> 'questions_asked') from result where name = 'questions'), 50,
          'questions_asked keeps the newest 50');
select is((select body -> 'persona' -> 'questions_asked' ->> 0 from result where name = 'questions'), 'question 11',
          'the oldest questions are dropped first');
insert into result select 'session_keys', public.update_persona(
    '{"has_completed_onboarding": true, "is_data_connected": true, "current_mode": "data_connected", "last_brochure_generated_at": null}');
select is((select (body -> 'session' ->> 'has_completed_onboarding') || ' ' || (body -> 'session' ->> 'is_data_connected')
                  || ' ' || (body -> 'session' ->> 'current_mode') from result where name = 'session_keys'),
          'true true data_connected', 'update_persona sets the onboarding and data flags and the mode');
select is((select array_agg(k order by k) from result, jsonb_object_keys(body) as k where name = 'session_keys'),
          array['persona', 'session'], 'update_persona returns {persona, session}');

-- ---------------------------------------------------------------------------------------------
-- no identity (PT401), no session (PT404)
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims', '{"role": "session_visitor", "session_id": "not-a-uuid"}', true);
select throws_ok($$select public.update_persona('{}')$$, 'PT401', 'no session identity',
                 'update_persona with a session_id claim that is not a uuid → PT401');
select set_config('request.jwt.claims', '{"role": "session_visitor"}', true);
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak')$$, 'PT401', 'no session identity',
                 'record_persona_signal without a session_id claim → PT401');

select set_config('request.jwt.claims',
    '{"role": "session_visitor", "session_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc"}', true);
select throws_ok($$select public.update_persona('{"craft_score": 0.5}')$$, 'PT404', 'session not found',
                 'update_persona on a session that was never created → PT404');
select throws_ok($$select public.record_persona_signal('x', 'y', 'weak')$$, 'PT404', 'session not found',
                 'record_persona_signal on a missing session → PT404');
reset role;
select is((select count(*)::int from bevsession.sessions where id = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc'), 0,
          'and nothing was created');

select * from finish();
rollback;
