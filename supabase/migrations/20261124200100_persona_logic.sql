-- =============================================================================================
-- 20261124200100_persona_logic.sql — the persona rules and the private building blocks of the RPCs
-- =============================================================================================
--
-- Everything the seed did in TypeScript with a read-modify-write of the cookie (score merging,
-- confidence recalculation, detection vectors) happens here, in one transaction per RPC, on a
-- locked row: concurrent requests of one visitor serialise on their session row instead of
-- overwriting each other's persona.
--
-- All functions live in the private schema `bevsession`, are `security invoker` (they run as the
-- calling role, so RLS applies to every statement they make) and have an empty search_path
-- (everything is schema-qualified). Pure rule functions take and return a persona row value and
-- touch no table; the few that read or write tables say so.
--
-- THE PERSONA RULES (docs/rpc-api.md, "The persona rules")
--
--   strength weight w:   weak 0.10 · medium 0.25 · strong 0.50
--   score delta:         score := clamp(score + delta, 0, 1)                (signals; update_persona sets absolutes)
--   reinforce(c, w):     c + w·(1 − c)                                     (pain point confidence; same vector value again)
--   vector detection:    empty            → value, confidence w
--                        same value       → confidence reinforce(c, w)
--                        different value  → old confidence weakens to c·(1 − w);
--                                           the new value takes over with confidence w when w > c·(1 − w)
--                        every detection is appended to the vector's history; the newest 10 are kept
--   overall confidence:  round(0.5·V + 0.3·S + 0.2·P, 4)
--                        V = (c_functional_role + c_org_type + c_org_size + c_product_focus) / 4   (0 for an empty vector)
--                        S = ( max(sales, marketing, operations, compliance)
--                            + max(supplier, distributor)
--                            + max(craft, mid_sized, large) ) / 3
--                        P = min(1, |pain_points_detected| / 3)
--   total_interactions:  + 1 per update_persona call and per signal
--
-- Every confidence is kept to four decimals (round half away from zero). In JSON (and inside
-- pain_points_confidence) they are written as float8, whose shortest form of a four-decimal
-- value is exact: 0.4375, never 0.43750000000000006 or 0.4375000.
--
-- Sections: 1 errors and identity · 2 vocabularies and small arithmetic · 3 JSON shapes ·
-- 4 argument checks · 5 the persona rules (pure) · 6 reading and locking rows · 7 writing rows ·
-- 8 privileges.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. Errors and identity
-- ---------------------------------------------------------------------------------------------

-- Why: every argument error must be SQLSTATE 22023 with a message that starts with the field,
-- so the caller (and PostgREST's error JSON) can say what was wrong without parsing prose.
create function bevsession.invalid_argument(p_field text, p_problem text) returns void
    language plpgsql
    set search_path = ''
as $$
begin
    raise exception using errcode = '22023', message = p_field || ': ' || p_problem;
end
$$;
comment on function bevsession.invalid_argument(text, text) is
    'Raise 22023 "<field>: <problem>" — the one way argument errors are reported.';

-- Why: RLS already hides other sessions, but a call without identity should say so (PT401 →
-- HTTP 401) rather than fail later with an empty result or a policy violation.
create function bevsession.require_session_id() returns uuid
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.current_session_id();
begin
    if v_session_id is null then
        raise exception using errcode = 'PT401', message = 'no session identity',
            detail = 'request.jwt.claims has no session_id claim, or it is not a uuid',
            hint = 'call as session_visitor with request.jwt.claims = {"role": "session_visitor", "session_id": "<uuid>"}';
    end if;
    return v_session_id;
end
$$;
comment on function bevsession.require_session_id() is
    'The calling session id; raises PT401 "no session identity" when the claim is missing or invalid.';


-- ---------------------------------------------------------------------------------------------
-- 2. Vocabularies and small arithmetic
-- ---------------------------------------------------------------------------------------------

create function bevsession.score_names() returns text[]
    language sql immutable parallel safe set search_path = ''
as $$
    select array['sales_focus_score', 'marketing_focus_score', 'operations_focus_score', 'compliance_focus_score',
                 'supplier_score', 'distributor_score',
                 'craft_score', 'mid_sized_score', 'large_score']
$$;
comment on function bevsession.score_names() is 'The nine persona score columns (role ×4, org type ×2, org size ×3).';

create function bevsession.vector_names() returns text[]
    language sql immutable parallel safe set search_path = ''
as $$ select array['functional_role', 'org_type', 'org_size', 'product_focus'] $$;
comment on function bevsession.vector_names() is 'The four detection vectors.';

-- The persona rules' arithmetic (used by section 5). PL/pgSQL, as the hot helpers of
-- 20261124200000_session_schema.sql (see its header): no executor start per call.
create function bevsession.strength_weight(p_strength text) returns numeric
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return case p_strength when 'weak' then 0.10 when 'medium' then 0.25 when 'strong' then 0.50 end;
end
$$;
comment on function bevsession.strength_weight(text) is
    'Signal strength weight w: weak 0.10, medium 0.25, strong 0.50 (null for anything else).';

create function bevsession.clamp01(p_value numeric) returns numeric
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return greatest(0::numeric, least(1::numeric, p_value));
end
$$;
comment on function bevsession.clamp01(numeric) is 'Clamp to [0, 1].';

create function bevsession.reinforce(p_confidence numeric, p_weight numeric) returns numeric
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return round(p_confidence + p_weight * (1 - p_confidence), 4);
end
$$;
comment on function bevsession.reinforce(numeric, numeric) is
    'Evidence for something already believed: c + w·(1 − c), four decimals. Approaches 1, never exceeds it.';

create function bevsession.to_ms(p_at timestamptz) returns bigint
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return floor(extract(epoch from p_at) * 1000)::bigint;
end
$$;
comment on function bevsession.to_ms(timestamptz) is
    'Milliseconds since the Unix epoch (the seed''s Date.now() numbers); null stays null.';

create function bevsession.from_ms(p_ms numeric) returns timestamptz
    language sql immutable parallel safe set search_path = ''
as $$ select pg_catalog.to_timestamp(p_ms / 1000.0) $$;
comment on function bevsession.from_ms(numeric) is 'The inverse of to_ms.';


-- ---------------------------------------------------------------------------------------------
-- 3. JSON shapes (docs/rpc-api.md): what every RPC returns, built in one place each
-- ---------------------------------------------------------------------------------------------
-- Scores go out as float8 so 0.2500 reads 0.25; timestamps as integer milliseconds.

create function bevsession.persona_json(p bevsession.personas) returns jsonb
    language plpgsql stable parallel safe set search_path = ''
as $$
begin
    return pg_catalog.jsonb_build_object(
        'detection_vectors', pg_catalog.jsonb_build_object(
            'functional_role',            p.functional_role,
            'functional_role_confidence', p.functional_role_confidence::float8,
            'functional_role_history',    p.functional_role_history,
            'org_type',                   p.org_type,
            'org_type_confidence',        p.org_type_confidence::float8,
            'org_type_history',           p.org_type_history,
            'org_size',                   p.org_size,
            'org_size_confidence',        p.org_size_confidence::float8,
            'org_size_history',           p.org_size_history,
            'product_focus',              p.product_focus,
            'product_focus_confidence',   p.product_focus_confidence::float8,
            'product_focus_history',      p.product_focus_history,
            'vectors_updated_at',         coalesce(bevsession.to_ms(p.vectors_updated_at), 0)),
        'sales_focus_score',      p.sales_focus_score::float8,
        'marketing_focus_score',  p.marketing_focus_score::float8,
        'operations_focus_score', p.operations_focus_score::float8,
        'compliance_focus_score', p.compliance_focus_score::float8,
        'supplier_score',         p.supplier_score::float8,
        'distributor_score',      p.distributor_score::float8,
        'craft_score',            p.craft_score::float8,
        'mid_sized_score',        p.mid_sized_score::float8,
        'large_score',            p.large_score::float8,
        'pain_points_detected',   pg_catalog.to_jsonb(p.pain_points_detected),
        'pain_points_confidence', p.pain_points_confidence,
        'overall_confidence',     p.overall_confidence::float8,
        'total_interactions',     p.total_interactions,
        'questions_asked',        pg_catalog.to_jsonb(p.questions_asked));
end
$$;
comment on function bevsession.persona_json(bevsession.personas) is
    'Persona JSON with the seed''s names (PersonaScores), also stored as each message''s persona_snapshot.';

create function bevsession.session_json(s bevsession.sessions) returns jsonb
    language plpgsql stable parallel safe set search_path = ''
as $$
begin
    return pg_catalog.jsonb_build_object(
        'session_id',                 s.id,
        'user_id',                    s.user_id,
        'created_at',                 bevsession.to_ms(s.created_at),
        'last_activity_at',           bevsession.to_ms(s.last_activity_at),
        'last_message_at',            bevsession.to_ms(s.last_message_at),
        'last_message',               s.last_message,
        'message_count',              s.message_count,
        'current_mode',               s.current_mode,
        'has_completed_onboarding',   s.has_completed_onboarding,
        'has_brochure',               s.has_brochure,
        'is_data_connected',          s.is_data_connected,
        'last_generated_brochure_id', s.last_generated_brochure_id,
        'last_brochure_generated_at', bevsession.to_ms(s.last_brochure_generated_at),
        'revoked_at',                 bevsession.to_ms(s.revoked_at));
end
$$;
comment on function bevsession.session_json(bevsession.sessions) is 'Session JSON (the seed''s SessionData fields).';

create function bevsession.message_json(m bevsession.messages) returns jsonb
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

create function bevsession.signal_json(s bevsession.persona_signals) returns jsonb
    language sql stable parallel safe set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'id',                   s.id,
        'signal_type',          s.signal_type,
        'signal_text',          s.signal_text,
        'signal_strength',      s.signal_strength,
        'pain_points_inferred', pg_catalog.to_jsonb(s.pain_points_inferred),
        'score_updates',        s.score_updates,
        'vector',               s.vector,
        'vector_value',         s.vector_value,
        'confidence_before',    s.confidence_before::float8,
        'confidence_after',     s.confidence_after::float8,
        'created_at',           bevsession.to_ms(s.created_at))
$$;
comment on function bevsession.signal_json(bevsession.persona_signals) is 'Signal JSON: the audit row of one applied signal.';


-- ---------------------------------------------------------------------------------------------
-- 4. Argument checks (22023 "<field>: <problem>" before anything is written)
-- ---------------------------------------------------------------------------------------------

-- Why: a signal arrives either as record_persona_signal's arguments or as one element of
-- begin_chat_turn's p_signals; both go through this one check, which also normalises it
-- (missing optional parts become [] / {} / null, duplicate pain points collapse).
-- p_field is the prefix of the field names in error messages: 'p_' for record_persona_signal's
-- arguments (p_signal_type…), 'p_signals[3].' for begin_chat_turn.
create function bevsession.parse_signal(p_signal jsonb, p_field text) returns jsonb
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_allowed constant text[] := array['signal_type', 'signal_text', 'signal_strength',
        'pain_points_inferred', 'score_updates', 'vector', 'vector_value'];
    v_key text;
    v_value jsonb;
    v_type jsonb;
    v_text jsonb;
    v_strength jsonb;
    v_pains jsonb;
    v_scores jsonb;
    v_vector jsonb;
    v_vector_value jsonb;
    v_clean_pains text[] := '{}';
    v_pain text;
begin
    if pg_catalog.jsonb_typeof(p_signal) is distinct from 'object' then
        perform bevsession.invalid_argument(pg_catalog.rtrim(p_field, '.'), 'must be a JSON object');
    end if;
    select k into v_key from pg_catalog.jsonb_object_keys(p_signal) as k where k <> all (v_allowed) order by k limit 1;
    if v_key is not null then
        perform bevsession.invalid_argument(p_field || v_key, 'unknown key (allowed: ' || pg_catalog.array_to_string(v_allowed, ', ') || ')');
    end if;

    -- JSON null and a missing key mean the same: absent
    v_type         := nullif(p_signal -> 'signal_type', 'null');
    v_text         := nullif(p_signal -> 'signal_text', 'null');
    v_strength     := nullif(p_signal -> 'signal_strength', 'null');
    v_pains        := coalesce(nullif(p_signal -> 'pain_points_inferred', 'null'), '[]');
    v_scores       := coalesce(nullif(p_signal -> 'score_updates', 'null'), '{}');
    v_vector       := nullif(p_signal -> 'vector', 'null');
    v_vector_value := nullif(p_signal -> 'vector_value', 'null');

    if pg_catalog.jsonb_typeof(v_type) is distinct from 'string' or not bevsession.is_identifier(v_type ->> 0) then
        perform bevsession.invalid_argument(p_field || 'signal_type', 'is required: lower snake_case, 1-64 characters');
    end if;
    if pg_catalog.jsonb_typeof(v_text) is distinct from 'string' then
        perform bevsession.invalid_argument(p_field || 'signal_text', 'is required: a string');
    end if;
    if pg_catalog.char_length(v_text ->> 0) > bevsession.max_signal_text_chars() then
        perform bevsession.invalid_argument(p_field || 'signal_text',
            'too long (at most ' || bevsession.max_signal_text_chars() || ' characters)');
    end if;
    if pg_catalog.jsonb_typeof(v_strength) is distinct from 'string'
       or bevsession.strength_weight(v_strength ->> 0) is null then
        perform bevsession.invalid_argument(p_field || 'signal_strength', 'must be ''weak'', ''medium'' or ''strong''');
    end if;

    if pg_catalog.jsonb_typeof(v_pains) <> 'array' then
        perform bevsession.invalid_argument(p_field || 'pain_points_inferred', 'must be an array of pain point names');
    end if;
    for v_value in select e from pg_catalog.jsonb_array_elements(v_pains) as e loop
        if pg_catalog.jsonb_typeof(v_value) <> 'string' or not bevsession.is_identifier(v_value ->> 0) then
            perform bevsession.invalid_argument(p_field || 'pain_points_inferred',
                'each pain point name must be lower snake_case, 1-64 characters (got ' || v_value::text || ')');
        end if;
        v_pain := v_value ->> 0;
        if not v_pain = any (v_clean_pains) then
            v_clean_pains := v_clean_pains || v_pain;
        end if;
    end loop;
    if pg_catalog.cardinality(v_clean_pains) > bevsession.max_pain_points() then
        perform bevsession.invalid_argument(p_field || 'pain_points_inferred',
            'at most ' || bevsession.max_pain_points() || ' pain points');
    end if;

    if pg_catalog.jsonb_typeof(v_scores) <> 'object' then
        perform bevsession.invalid_argument(p_field || 'score_updates', 'must be an object {score name: delta}');
    end if;
    for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(v_scores) as e loop
        if not v_key = any (bevsession.score_names()) then
            perform bevsession.invalid_argument(p_field || 'score_updates.' || v_key,
                'unknown score (allowed: ' || pg_catalog.array_to_string(bevsession.score_names(), ', ') || ')');
        end if;
        if pg_catalog.jsonb_typeof(v_value) <> 'number' or v_value::numeric not between -1 and 1 then
            perform bevsession.invalid_argument(p_field || 'score_updates.' || v_key, 'must be a number in [-1, 1]');
        end if;
    end loop;

    if v_vector is not null then
        if pg_catalog.jsonb_typeof(v_vector) <> 'string' or not (v_vector ->> 0) = any (bevsession.vector_names()) then
            perform bevsession.invalid_argument(p_field || 'vector',
                'must be one of ' || pg_catalog.array_to_string(bevsession.vector_names(), ', '));
        end if;
        if pg_catalog.jsonb_typeof(v_vector_value) is distinct from 'string'
           or not bevsession.is_identifier(v_vector_value ->> 0) then
            perform bevsession.invalid_argument(p_field || 'vector_value',
                'is required with vector: lower snake_case, 1-64 characters');
        end if;
    elsif v_vector_value is not null then
        perform bevsession.invalid_argument(p_field || 'vector_value', 'needs vector');
    end if;

    return pg_catalog.jsonb_build_object(
        'signal_type',          v_type,
        'signal_text',          v_text,
        'signal_strength',      v_strength,
        'pain_points_inferred', pg_catalog.to_jsonb(v_clean_pains),
        'score_updates',        v_scores,
        'vector',               v_vector,
        'vector_value',         v_vector_value);
end
$$;
comment on function bevsession.parse_signal(jsonb, text) is
    'Validate and normalise one persona signal; raises 22023 naming the offending field.';

-- Why: add_conversation_message, begin_chat_turn and finish_chat_turn store messages with the
-- same rules; the arguments are checked once, here, with their RPC argument names.
create function bevsession.check_message_args(
    p_role text,
    p_content text,
    p_generation_mode text,
    p_ui_specification jsonb,
    p_estimated_read_time text,
    p_pain_points_inferred text[]
) returns void
    language plpgsql stable
    set search_path = ''
as $$
begin
    if p_role is null or p_role not in ('user', 'assistant', 'system') then
        perform bevsession.invalid_argument('p_role', 'must be ''user'', ''assistant'' or ''system''');
    end if;
    if p_content is null then
        perform bevsession.invalid_argument('p_content', 'is required');
    end if;
    if pg_catalog.char_length(p_content) > bevsession.max_message_chars() then
        perform bevsession.invalid_argument('p_content',
            'too long (at most ' || bevsession.max_message_chars() || ' characters)');
    end if;
    if p_generation_mode is not null and not bevsession.is_identifier(p_generation_mode) then
        perform bevsession.invalid_argument('p_generation_mode', 'must be lower snake_case, 1-64 characters');
    end if;
    if p_ui_specification is not null
       and pg_catalog.octet_length(p_ui_specification::text) > bevsession.max_ui_specification_bytes() then
        perform bevsession.invalid_argument('p_ui_specification',
            'too large (at most ' || bevsession.max_ui_specification_bytes() || ' bytes of JSON)');
    end if;
    if pg_catalog.char_length(p_estimated_read_time) > bevsession.max_estimated_read_time_chars() then
        perform bevsession.invalid_argument('p_estimated_read_time',
            'too long (at most ' || bevsession.max_estimated_read_time_chars() || ' characters)');
    end if;
    if p_pain_points_inferred is not null and not bevsession.is_pain_point_list(p_pain_points_inferred) then
        perform bevsession.invalid_argument('p_pain_points_inferred',
            'each pain point name must be lower snake_case, 1-64 characters, at most '
            || bevsession.max_pain_points() || ' names');
    end if;
end
$$;
comment on function bevsession.check_message_args(text, text, text, jsonb, text, text[]) is
    'Validate the arguments of a message to store; raises 22023 naming the offending argument.';

create function bevsession.check_history_limit(p_limit integer, p_field text) returns void
    language plpgsql stable
    set search_path = ''
as $$
begin
    if p_limit is null or p_limit not between 1 and bevsession.max_history_page() then
        perform bevsession.invalid_argument(p_field, 'must be between 1 and ' || bevsession.max_history_page());
    end if;
end
$$;
comment on function bevsession.check_history_limit(integer, text) is 'A page size of history: 1..max_history_page().';


-- ---------------------------------------------------------------------------------------------
-- 5. The persona rules — pure functions: a persona row value in, a persona row value out
-- ---------------------------------------------------------------------------------------------

-- The formula is written out in this file's header.
create function bevsession.compute_confidence(p bevsession.personas) returns numeric
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return round(
          0.5 * ( case when p.functional_role is null then 0 else p.functional_role_confidence end
                + case when p.org_type        is null then 0 else p.org_type_confidence        end
                + case when p.org_size        is null then 0 else p.org_size_confidence        end
                + case when p.product_focus   is null then 0 else p.product_focus_confidence   end ) / 4
        + 0.3 * ( greatest(p.sales_focus_score, p.marketing_focus_score,
                           p.operations_focus_score, p.compliance_focus_score)
                + greatest(p.supplier_score, p.distributor_score)
                + greatest(p.craft_score, p.mid_sized_score, p.large_score) ) / 3
        + 0.2 * least(1, pg_catalog.cardinality(p.pain_points_detected) / 3.0),
        4);
end
$$;
comment on function bevsession.compute_confidence(bevsession.personas) is
    'Overall confidence = round(0.5·V + 0.3·S + 0.2·P, 4); see the header of 20261124200100_persona_logic.sql.';

-- Why a helper: the nine scores are columns, but signals and updates name them as data; this
-- sets one named column of the row value (the column type rounds to four decimals).
create function bevsession.with_score(p bevsession.personas, p_score text, p_value numeric)
    returns bevsession.personas
    language plpgsql stable parallel safe set search_path = ''
as $$
begin
    return pg_catalog.jsonb_populate_record(p, pg_catalog.jsonb_build_object(p_score, bevsession.clamp01(p_value)));
end
$$;
comment on function bevsession.with_score(bevsession.personas, text, numeric) is
    'The persona with one score set to clamp(value, 0, 1).';

create function bevsession.score_of(p bevsession.personas, p_score text) returns numeric
    language plpgsql stable parallel safe set search_path = ''
as $$
begin
    return (pg_catalog.to_jsonb(p) ->> p_score)::numeric;
end
$$;
comment on function bevsession.score_of(bevsession.personas, text) is 'The value of one named score column.';

-- The vector rule (header): empty → take it; same → reinforce; different → the old value
-- weakens and the new one takes over when its weight beats what is left.
-- A history entry records {value, confidence, strength, evidence, detected_at}, where confidence
-- is what this detection gives its value: reinforce(c, w) when it repeats the current value,
-- otherwise w. Evidence is cut to max_evidence_chars().
create function bevsession.apply_detection(
    p bevsession.personas,
    p_vector text,
    p_value text,
    p_strength text,
    p_evidence text,
    p_at timestamptz
) returns bevsession.personas
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_row jsonb := pg_catalog.to_jsonb(p);
    v_weight numeric := bevsession.strength_weight(p_strength);
    v_current text := v_row ->> p_vector;
    v_confidence numeric := (v_row ->> (p_vector || '_confidence'))::numeric;
    v_history jsonb := v_row -> (p_vector || '_history');
    v_weakened numeric;
    v_new_value text;
    v_new_confidence numeric;
    v_entry_confidence numeric;
    v_len integer;
begin
    if v_current is null then
        v_new_value := p_value;
        v_new_confidence := v_weight;
        v_entry_confidence := v_weight;
    elsif v_current = p_value then
        v_new_value := v_current;
        v_new_confidence := bevsession.reinforce(v_confidence, v_weight);
        v_entry_confidence := v_new_confidence;
    else
        v_weakened := round(v_confidence * (1 - v_weight), 4);
        if v_weight > v_weakened then
            v_new_value := p_value;
            v_new_confidence := v_weight;
        else
            v_new_value := v_current;
            v_new_confidence := v_weakened;
        end if;
        v_entry_confidence := v_weight;
    end if;

    v_history := v_history || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
        'value',       p_value,
        'confidence',  v_entry_confidence::float8,
        'strength',    p_strength,
        'evidence',    pg_catalog.left(p_evidence, bevsession.max_evidence_chars()),
        'detected_at', bevsession.to_ms(p_at)));
    v_len := pg_catalog.jsonb_array_length(v_history);
    if v_len > bevsession.max_history_entries() then
        select pg_catalog.jsonb_agg(t.e order by t.i) into v_history
        from pg_catalog.jsonb_array_elements(v_history) with ordinality as t(e, i)
        where t.i > v_len - bevsession.max_history_entries();
    end if;

    return pg_catalog.jsonb_populate_record(p, pg_catalog.jsonb_build_object(
        p_vector,                     v_new_value,
        p_vector || '_confidence',    v_new_confidence,
        p_vector || '_history',       v_history,
        'vectors_updated_at',         p_at));
end
$$;
comment on function bevsession.apply_detection(bevsession.personas, text, text, text, text, timestamptz) is
    'One detection of a vector value: switch/reinforce/weaken by the vector rule, append to the capped history.';

-- One signal (already checked by parse_signal): score deltas, pain points, the vector, then the
-- confidence and the interaction count.
create function bevsession.apply_signal(p bevsession.personas, p_signal jsonb, p_at timestamptz)
    returns bevsession.personas
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_weight numeric := bevsession.strength_weight(p_signal ->> 'signal_strength');
    v_key text;
    v_delta jsonb;
    v_pain text;
begin
    for v_key, v_delta in select e.key, e.value from pg_catalog.jsonb_each(p_signal -> 'score_updates') as e loop
        p := bevsession.with_score(p, v_key, bevsession.score_of(p, v_key) + v_delta::numeric);
    end loop;

    for v_pain in select pg_catalog.jsonb_array_elements_text(p_signal -> 'pain_points_inferred') loop
        if not v_pain = any (p.pain_points_detected) then
            p.pain_points_detected := p.pain_points_detected || v_pain;
        end if;
        p.pain_points_confidence := p.pain_points_confidence || pg_catalog.jsonb_build_object(v_pain,
            bevsession.reinforce(coalesce((p.pain_points_confidence ->> v_pain)::numeric, 0), v_weight)::float8);
    end loop;
    if pg_catalog.cardinality(p.pain_points_detected) > bevsession.max_pain_points() then
        perform bevsession.invalid_argument('pain_points_inferred',
            'the persona would exceed ' || bevsession.max_pain_points() || ' detected pain points');
    end if;

    if p_signal ->> 'vector' is not null then
        p := bevsession.apply_detection(p, p_signal ->> 'vector', p_signal ->> 'vector_value',
                                        p_signal ->> 'signal_strength', p_signal ->> 'signal_text', p_at);
    end if;

    p.overall_confidence := bevsession.compute_confidence(p);
    p.total_interactions := p.total_interactions + 1;
    p.last_updated := p_at;
    return p;
end
$$;
comment on function bevsession.apply_signal(bevsession.personas, jsonb, timestamptz) is
    'The persona after one signal (deltas clamped, pain points reinforced, vector rule, confidence, +1 interaction).';

-- update_persona's persona keys: absolute scores, pain point set union, confidence merge,
-- questions appended. Session keys are handled by apply_session_updates; anything else is an
-- error (check_update_keys).
create function bevsession.apply_persona_updates(p bevsession.personas, p_updates jsonb, p_at timestamptz)
    returns bevsession.personas
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_key text;
    v_value jsonb;
    v_item jsonb;
    v_name text;
    v_questions text[];
begin
    for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(p_updates) as e loop
        if v_key = any (bevsession.score_names()) then
            if pg_catalog.jsonb_typeof(v_value) <> 'number' then
                perform bevsession.invalid_argument('p_updates.' || v_key, 'must be a number (clamped to [0, 1])');
            end if;
            p := bevsession.with_score(p, v_key, v_value::numeric);

        elsif v_key = 'pain_points_detected' then
            if pg_catalog.jsonb_typeof(v_value) <> 'array' then
                perform bevsession.invalid_argument('p_updates.pain_points_detected', 'must be an array of pain point names');
            end if;
            for v_item in select e from pg_catalog.jsonb_array_elements(v_value) as e loop
                if pg_catalog.jsonb_typeof(v_item) <> 'string' or not bevsession.is_identifier(v_item ->> 0) then
                    perform bevsession.invalid_argument('p_updates.pain_points_detected',
                        'each pain point name must be lower snake_case, 1-64 characters (got ' || v_item::text || ')');
                end if;
                if not (v_item ->> 0) = any (p.pain_points_detected) then
                    p.pain_points_detected := p.pain_points_detected || (v_item ->> 0);
                end if;
            end loop;
            if pg_catalog.cardinality(p.pain_points_detected) > bevsession.max_pain_points() then
                perform bevsession.invalid_argument('p_updates.pain_points_detected',
                    'at most ' || bevsession.max_pain_points() || ' pain points');
            end if;

        elsif v_key = 'pain_points_confidence' then
            if pg_catalog.jsonb_typeof(v_value) <> 'object' then
                perform bevsession.invalid_argument('p_updates.pain_points_confidence',
                    'must be an object {pain point name: number}');
            end if;
            for v_name, v_item in select e.key, e.value from pg_catalog.jsonb_each(v_value) as e loop
                if not bevsession.is_identifier(v_name) or pg_catalog.jsonb_typeof(v_item) <> 'number' then
                    perform bevsession.invalid_argument('p_updates.pain_points_confidence.' || v_name,
                        'must be a lower snake_case name with a number (clamped to [0, 1])');
                end if;
                p.pain_points_confidence := p.pain_points_confidence
                    || pg_catalog.jsonb_build_object(v_name, round(bevsession.clamp01(v_item::numeric), 4)::float8);
            end loop;
            if (select count(*) from pg_catalog.jsonb_object_keys(p.pain_points_confidence)) > bevsession.max_pain_points() then
                perform bevsession.invalid_argument('p_updates.pain_points_confidence',
                    'at most ' || bevsession.max_pain_points() || ' pain points');
            end if;

        elsif v_key = 'questions_asked' then
            if pg_catalog.jsonb_typeof(v_value) <> 'array' then
                perform bevsession.invalid_argument('p_updates.questions_asked', 'must be an array of strings');
            end if;
            for v_item in select e from pg_catalog.jsonb_array_elements(v_value) as e loop
                if pg_catalog.jsonb_typeof(v_item) <> 'string'
                   or pg_catalog.char_length(v_item ->> 0) > bevsession.max_question_chars() then
                    perform bevsession.invalid_argument('p_updates.questions_asked',
                        'each question must be a string of at most ' || bevsession.max_question_chars() || ' characters');
                end if;
                p.questions_asked := p.questions_asked || (v_item ->> 0);
            end loop;
            -- keep the newest max_questions()
            v_questions := p.questions_asked;
            if pg_catalog.cardinality(v_questions) > bevsession.max_questions() then
                p.questions_asked := v_questions[pg_catalog.cardinality(v_questions) - bevsession.max_questions() + 1 :];
            end if;
        end if;
    end loop;

    p.overall_confidence := bevsession.compute_confidence(p);
    p.total_interactions := p.total_interactions + 1;
    p.last_updated := p_at;
    return p;
end
$$;
comment on function bevsession.apply_persona_updates(bevsession.personas, jsonb, timestamptz) is
    'update_persona''s rules for persona keys (absolute clamped scores, set union, merge, append), then confidence and +1 interaction.';

create function bevsession.apply_session_updates(s bevsession.sessions, p_updates jsonb)
    returns bevsession.sessions
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_key text;
    v_value jsonb;
begin
    for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(p_updates) as e loop
        if v_key = 'current_mode' then
            if pg_catalog.jsonb_typeof(v_value) <> 'string'
               or (v_value ->> 0) not in ('fresh', 'returning', 'data_connected') then
                perform bevsession.invalid_argument('p_updates.current_mode',
                    'must be ''fresh'', ''returning'' or ''data_connected''');
            end if;
            s.current_mode := v_value ->> 0;
        elsif v_key in ('has_completed_onboarding', 'has_brochure', 'is_data_connected') then
            if pg_catalog.jsonb_typeof(v_value) <> 'boolean' then
                perform bevsession.invalid_argument('p_updates.' || v_key, 'must be true or false');
            end if;
            s := pg_catalog.jsonb_populate_record(s, pg_catalog.jsonb_build_object(v_key, v_value));
        elsif v_key = 'last_generated_brochure_id' then
            if pg_catalog.jsonb_typeof(v_value) not in ('string', 'null')
               or pg_catalog.char_length(v_value ->> 0) > bevsession.max_brochure_id_chars() then
                perform bevsession.invalid_argument('p_updates.last_generated_brochure_id',
                    'must be a string of at most ' || bevsession.max_brochure_id_chars() || ' characters, or null');
            end if;
            s.last_generated_brochure_id := v_value ->> 0;
        elsif v_key = 'last_brochure_generated_at' then
            if pg_catalog.jsonb_typeof(v_value) not in ('number', 'null') then
                perform bevsession.invalid_argument('p_updates.last_brochure_generated_at',
                    'must be milliseconds since the epoch, or null');
            end if;
            s.last_brochure_generated_at := bevsession.from_ms((v_value ->> 0)::numeric);
        end if;
    end loop;
    return s;
end
$$;
comment on function bevsession.apply_session_updates(bevsession.sessions, jsonb) is
    'update_persona''s rules for session keys: current_mode, the three flags, the brochure reference.';

create function bevsession.check_update_keys(p_updates jsonb) returns void
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_allowed constant text[] := bevsession.score_names() || array[
        'pain_points_detected', 'pain_points_confidence', 'questions_asked',
        'current_mode', 'has_completed_onboarding', 'has_brochure', 'is_data_connected',
        'last_generated_brochure_id', 'last_brochure_generated_at'];
    v_key text;
begin
    if pg_catalog.jsonb_typeof(p_updates) is distinct from 'object' then
        perform bevsession.invalid_argument('p_updates', 'must be a JSON object');
    end if;
    select k into v_key from pg_catalog.jsonb_object_keys(p_updates) as k where k <> all (v_allowed) order by k limit 1;
    if v_key is not null then
        perform bevsession.invalid_argument('p_updates.' || v_key,
            'unknown key (allowed: ' || pg_catalog.array_to_string(v_allowed, ', ') || ')');
    end if;
end
$$;
comment on function bevsession.check_update_keys(jsonb) is
    'update_persona accepts only the keys its rules know; overall_confidence and total_interactions are computed, never set.';


-- ---------------------------------------------------------------------------------------------
-- 6. Reading and locking rows (these touch tables, as the calling role, under RLS)
-- ---------------------------------------------------------------------------------------------

-- Why one liveness check: find_session and lock_session would otherwise each repeat the revoked
-- and expiry checks; here no lookup can forget one. p_allow_dead lets clear_session and
-- forget_session work on a revoked or expired session (a visitor may always erase their data).
-- The expiries are the session policy (20261124200000_session_schema.sql, section 11).
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

-- Why two: get_conversation_history is read-only (PostgREST may run it in a read-only
-- transaction) and must not lock; every writer locks the session row first, always in the same
-- order (session, then persona), so concurrent calls of one session queue instead of losing
-- updates or deadlocking, and a concurrent clear/forget is seen before anything is written.
create function bevsession.find_session(p_session_id uuid, p_allow_revoked boolean default false)
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

create function bevsession.lock_session(p_session_id uuid, p_allow_revoked boolean default false)
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

create function bevsession.touch_session(p_session_id uuid) returns bevsession.sessions
    language plpgsql
    set search_path = ''
as $$
declare
    v_session bevsession.sessions;
begin
    perform bevsession.lock_session(p_session_id);
    update bevsession.sessions set last_activity_at = now() where id = p_session_id returning * into v_session;
    return v_session;
end
$$;
comment on function bevsession.touch_session(uuid) is 'Lock a live session and set last_activity_at (the seed updates it on every request).';

-- Why: get_session and begin_chat_turn create a session on first sight. Two first requests of
-- one visitor may race: ON CONFLICT DO NOTHING lets exactly one insert, the other sees the row.
create function bevsession.ensure_session(
    p_session_id uuid,
    p_touch boolean,
    out session bevsession.sessions,
    out created boolean
)
    language plpgsql
    set search_path = ''
as $$
begin
    insert into bevsession.sessions (id) values (p_session_id)
        on conflict (id) do nothing
        returning * into session;
    created := found;
    if created then
        insert into bevsession.personas (session_id) values (p_session_id) on conflict (session_id) do nothing;
    elsif p_touch then
        session := bevsession.touch_session(p_session_id);
    else
        session := bevsession.find_session(p_session_id);
    end if;
end
$$;
comment on function bevsession.ensure_session(uuid, boolean) is
    'Create the session (and its persona) if missing, else check it is live and optionally touch it.';

-- Why: the persona row is created with the session, but a live session whose persona was removed
-- by an admin gets a fresh default persona rather than an error. Call after lock_session.
create function bevsession.lock_persona(p_session bevsession.sessions) returns bevsession.personas
    language plpgsql
    set search_path = ''
as $$
declare
    v_persona bevsession.personas;
begin
    select * into v_persona from bevsession.personas where session_id = p_session.id for update;
    if not found then
        insert into bevsession.personas (session_id, user_id) values (p_session.id, p_session.user_id)
            returning * into v_persona;
    end if;
    return v_persona;
end
$$;
comment on function bevsession.lock_persona(bevsession.sessions) is
    'The persona row of a (locked, live) session, locked; created with defaults if missing.';

-- History for an LLM: an LLM prompt has a token budget, not a message count. Walk back from the
-- newest message (keyset on seq, the (session_id, seq) index) and keep messages while their
-- running total of messages.token_count fits; the page is returned oldest first, like the
-- count-limited page.
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
create function bevsession.history_page(p_session_id uuid, p_limit integer, p_before bigint)
    returns jsonb
    language sql stable
    set search_path = ''
as $$
    select bevsession.history_window(p_session_id, p_limit, p_before, null)
$$;
comment on function bevsession.history_page(uuid, integer, bigint) is
    'Keyset page: the newest p_limit messages with seq < p_before, oldest first; next_before = oldest seq returned when older ones exist.';


-- ---------------------------------------------------------------------------------------------
-- 7. Writing rows
-- ---------------------------------------------------------------------------------------------

create function bevsession.save_persona(p bevsession.personas) returns bevsession.personas
    language plpgsql
    set search_path = ''
as $$
declare
    v_saved bevsession.personas;
begin
    update bevsession.personas as t set
        sales_focus_score        = p.sales_focus_score,
        marketing_focus_score    = p.marketing_focus_score,
        operations_focus_score   = p.operations_focus_score,
        compliance_focus_score   = p.compliance_focus_score,
        supplier_score           = p.supplier_score,
        distributor_score        = p.distributor_score,
        craft_score              = p.craft_score,
        mid_sized_score          = p.mid_sized_score,
        large_score              = p.large_score,
        pain_points_detected     = p.pain_points_detected,
        pain_points_confidence   = p.pain_points_confidence,
        overall_confidence       = p.overall_confidence,
        total_interactions       = p.total_interactions,
        questions_asked          = p.questions_asked,
        functional_role          = p.functional_role,
        functional_role_confidence = p.functional_role_confidence,
        functional_role_history  = p.functional_role_history,
        org_type                 = p.org_type,
        org_type_confidence      = p.org_type_confidence,
        org_type_history         = p.org_type_history,
        org_size                 = p.org_size,
        org_size_confidence      = p.org_size_confidence,
        org_size_history         = p.org_size_history,
        product_focus            = p.product_focus,
        product_focus_confidence = p.product_focus_confidence,
        product_focus_history    = p.product_focus_history,
        vectors_updated_at       = p.vectors_updated_at,
        last_updated             = p.last_updated
    where t.id = p.id
    returning t.* into v_saved;
    if not found then
        return null;  -- as the SQL version: no row, no result
    end if;
    return v_saved;
end
$$;
comment on function bevsession.save_persona(bevsession.personas) is
    'Write a (locked) persona row value back; the one UPDATE of a persona.';

-- Why: the audit row must carry the confidence before and after, so applying and recording
-- one signal is one step.
create function bevsession.record_signal(
    p_persona bevsession.personas,
    p_signal jsonb,
    out persona bevsession.personas,
    out signal bevsession.persona_signals
)
    language plpgsql
    set search_path = ''
as $$
begin
    persona := bevsession.apply_signal(p_persona, p_signal, now());
    insert into bevsession.persona_signals (
        session_id, signal_type, signal_text, signal_strength, pain_points_inferred, score_updates,
        vector, vector_value, confidence_before, confidence_after)
    values (
        p_persona.session_id,
        p_signal ->> 'signal_type',
        p_signal ->> 'signal_text',
        p_signal ->> 'signal_strength',
        array(select pg_catalog.jsonb_array_elements_text(p_signal -> 'pain_points_inferred')),
        p_signal -> 'score_updates',
        p_signal ->> 'vector',
        p_signal ->> 'vector_value',
        p_persona.overall_confidence,
        persona.overall_confidence)
    returning * into signal;
end
$$;
comment on function bevsession.record_signal(bevsession.personas, jsonb) is
    'Apply one parsed signal to a persona row value and write its audit row; the caller saves the persona.';

-- Why: the persona snapshot is taken here, in SQL, from the persona as it is now — never from a
-- possibly stale copy the caller holds.
create function bevsession.append_message(
    p_session bevsession.sessions,
    p_persona bevsession.personas,
    p_role text,
    p_content text,
    p_generation_mode text,
    p_ui_specification jsonb,
    p_estimated_read_time text,
    p_pain_points_inferred text[],
    out message bevsession.messages,
    out session bevsession.sessions
)
    language plpgsql
    set search_path = ''
as $$
begin
    insert into bevsession.messages (
        session_id, user_id, message_role, message_content, persona_snapshot, pain_points_inferred,
        ui_specification, generation_mode, estimated_read_time)
    values (
        p_session.id, p_session.user_id, p_role, p_content, bevsession.persona_json(p_persona),
        coalesce(p_pain_points_inferred, '{}'), p_ui_specification, p_generation_mode, p_estimated_read_time)
    returning * into message;

    update bevsession.sessions set
        message_count    = message_count + 1,
        last_message     = p_content,
        last_message_at  = message.created_at,
        last_activity_at = now()
    where id = p_session.id
    returning * into session;
end
$$;
comment on function bevsession.append_message(bevsession.sessions, bevsession.personas, text, text, text, jsonb, text, text[]) is
    'Store one message with the persona snapshot and count it on the session (message_count, last_message).';


-- The chat rate limit: it must hold for every edge worker at once, so it lives in the database
-- (a limit kept in one worker's memory is multiplied by the number of workers). begin_chat_turn
-- refuses a turn beyond the limit with SQLSTATE PT429 (PostgREST: HTTP 429), saying after how
-- many seconds to retry. The limit is the setting `bevsession.chat_rate_limit` ('20/minute'
-- unless set); the state is sessions.chat_rate_tat.
--
-- Why a setting and not an argument: the limit must not be chosen by the caller of the RPC, and
-- every worker (and PostgREST) reads the same value. Set it for all connections with
--   alter database <db> set bevsession.chat_rate_limit = '30/minute';
-- or for the visitor role only (PostgREST and the asyncpg transport apply role settings):
--   alter role session_visitor set bevsession.chat_rate_limit = '30/minute';
-- A value that does not parse falls back to the default rather than refusing every chat turn.
create function bevsession.chat_rate_limit(out turns integer, out per_seconds integer)
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_text text := pg_catalog.lower(pg_catalog.btrim(
        coalesce(pg_catalog.current_setting('bevsession.chat_rate_limit', true), '')));
    v_match text[];
    v_count numeric;
    v_unit integer;
begin
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
    'The chat rate limit from the setting bevsession.chat_rate_limit ("N/minute", "N/10s", "N/hour"; "off" or "0": none): turns per per_seconds. Default and fallback: 20 per 60 s.';

-- Why clock_timestamp() and not now(): the caller holds the session row lock (ensure_session /
-- lock_session), so concurrent turns of one session take their turn one after another, and the
-- time read under the lock only moves forward. now() is the transaction's start: a turn that
-- started first but got the lock last would be judged as if it came before the ones already
-- counted, and a burst of exactly the allowance could be refused. A refused turn rolls back
-- with everything else.
create function bevsession.take_chat_turn(p_session bevsession.sessions) returns void
    language plpgsql
    set search_path = ''
as $$
declare
    v_limit record;
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_interval interval;
    v_tolerance interval;
    v_tat timestamptz;
    v_wait numeric;
begin
    select * into v_limit from bevsession.chat_rate_limit();
    if v_limit.turns = 0 then
        return;
    end if;
    v_interval := pg_catalog.make_interval(secs => v_limit.per_seconds::double precision / v_limit.turns);
    v_tolerance := pg_catalog.make_interval(secs => v_limit.per_seconds) - v_interval;
    v_tat := greatest(coalesce(p_session.chat_rate_tat, v_now), v_now);
    if v_tat - v_now > v_tolerance then
        v_wait := greatest(1, pg_catalog.ceil(extract(epoch from (v_tat - v_now - v_tolerance))));
        raise exception using errcode = 'PT429',
            message = pg_catalog.format('rate limited: at most %s chat turns per %s seconds',
                                        v_limit.turns, v_limit.per_seconds),
            detail = pg_catalog.format('retry_after=%s', v_wait),
            hint = 'wait retry_after seconds before the next chat turn of this session';
    end if;
    update bevsession.sessions set chat_rate_tat = v_tat + v_interval where id = p_session.id;
end
$$;
comment on function bevsession.take_chat_turn(bevsession.sessions) is
    'Take one chat turn from the session''s allowance (GCRA on sessions.chat_rate_tat), or raise PT429 with detail "retry_after=<seconds>". Call with the session row locked.';


-- ---------------------------------------------------------------------------------------------
-- 8. Privileges
-- ---------------------------------------------------------------------------------------------
-- Default privileges (first migration) keep PUBLIC from executing these; the RPCs run as the
-- caller, so the caller's role needs them.

revoke all on all functions in schema bevsession from public, anon, authenticated;
grant execute on all functions in schema bevsession to session_visitor, service_role;
