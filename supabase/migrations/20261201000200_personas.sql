-- =============================================================================================
-- 20261201000200_personas.sql — who we think the visitor is: user_personas, persona_signals
-- =============================================================================================
--
-- Everything the seed did in TypeScript with a read-modify-write of the cookie (score merging,
-- confidence recalculation, detection vectors) happens here, in one transaction per call, while
-- the caller holds its session's row lock: concurrent requests of one visitor queue instead of
-- overwriting each other's persona. Every writer of a persona locks its session first
-- (bevsession.lock_session / ensure_session), so the persona row needs no lock of its own.
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
-- Every confidence is kept to four decimals (round half away from zero). In JSON they are
-- written as float8, whose shortest form of a four-decimal value is exact: 0.4375.
--
-- Sections: 1 tables · 2 row-level security and privileges · 3 the rules (pure) · 4 JSON ·
-- 5 argument checks · 6 reading and writing personas · 7 API: update_persona,
-- record_persona_signal.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. Tables
-- ---------------------------------------------------------------------------------------------

-- The seed's user_personas, one row per session, plus the four detection vectors the seed kept
-- only in the cookie.
create table bevsession.user_personas (
    id                          uuid primary key default gen_random_uuid(),
    user_id                     uuid,
    session_id                  uuid not null references bevsession.sessions (id) on delete cascade
        constraint idx_up_session_id unique,
    -- functional role
    sales_focus_score           bevsession.score not null default 0,
    marketing_focus_score       bevsession.score not null default 0,
    operations_focus_score      bevsession.score not null default 0,
    compliance_focus_score      bevsession.score not null default 0,
    -- organisation type
    supplier_score              bevsession.score not null default 0,
    distributor_score           bevsession.score not null default 0,
    -- organisation size
    craft_score                 bevsession.score not null default 0,
    mid_sized_score             bevsession.score not null default 0,
    large_score                 bevsession.score not null default 0,
    -- pain points
    pain_points_detected        bevsession.pain_points not null default '{}',
    pain_points_confidence      bevsession.pain_point_confidences not null default '{}',
    -- metadata
    overall_confidence          bevsession.score not null default 0,
    total_interactions          integer not null default 0
        constraint "total_interactions is not negative" check (total_interactions >= 0),
    questions_asked             bevsession.questions not null default '{}',
    -- the four detection vectors: current value, its confidence, the newest detections
    functional_role             bevsession.identifier,
    functional_role_confidence  bevsession.score not null default 0,
    functional_role_history     bevsession.detection_history not null default '[]',
    org_type                    bevsession.identifier,
    org_type_confidence         bevsession.score not null default 0,
    org_type_history            bevsession.detection_history not null default '[]',
    org_size                    bevsession.identifier,
    org_size_confidence         bevsession.score not null default 0,
    org_size_history            bevsession.detection_history not null default '[]',
    product_focus               bevsession.identifier,
    product_focus_confidence    bevsession.score not null default 0,
    product_focus_history       bevsession.detection_history not null default '[]',
    vectors_updated_at          timestamptz,
    last_updated                timestamptz not null default now(),
    created_at                  timestamptz not null default now(),
    constraint "an empty vector has no confidence" check (
            (functional_role is not null or functional_role_confidence = 0)
        and (org_type is not null or org_type_confidence = 0)
        and (org_size is not null or org_size_confidence = 0)
        and (product_focus is not null or product_focus_confidence = 0))
) with (fillfactor = 80);  -- room for HOT updates: a persona is rewritten on every signal
comment on table bevsession.user_personas is
    'The seed''s user_personas: who we think the visitor is. Changed only through the persona RPCs.';

create index idx_up_user_id on bevsession.user_personas (user_id) where user_id is not null;
create index idx_up_created_at on bevsession.user_personas (created_at);

-- The seed's persona_signals: the audit trail of every signal applied to a persona.
create table bevsession.persona_signals (
    id                      uuid primary key default gen_random_uuid(),
    session_id              uuid not null references bevsession.sessions (id) on delete cascade,
    user_id                 uuid,
    signal_type             bevsession.identifier not null,
    signal_text             bevsession.signal_text not null,
    signal_strength         bevsession.signal_strength not null,
    pain_points_inferred    bevsession.pain_points not null default '{}',
    score_updates           jsonb not null default '{}'
        constraint "score_updates is an object" check (pg_catalog.jsonb_typeof(score_updates) = 'object'),
    vector                  bevsession.vector_name,
    vector_value            bevsession.identifier,
    confidence_before       bevsession.score not null,
    confidence_after        bevsession.score not null,
    created_at              timestamptz not null default now(),
    constraint "a vector has a value" check ((vector is null) = (vector_value is null))
);
comment on table bevsession.persona_signals is
    'Audit trail: one row per persona signal, with overall confidence before and after.';

create index idx_ps_session_created_at on bevsession.persona_signals (session_id, created_at);


-- ---------------------------------------------------------------------------------------------
-- 2. Row-level security and privileges
-- ---------------------------------------------------------------------------------------------
-- As for sessions: visitors meet these policies, service_role bypasses them, anon and
-- authenticated have no privilege. New rows additionally need a live (not revoked) session.

alter table bevsession.user_personas enable row level security;

create policy "Visitors can read their own persona"
    on bevsession.user_personas for select to session_visitor
    using (session_id = (select bevsession.current_session_id()));

create policy "Visitors can create the persona of their live session"
    on bevsession.user_personas for insert to session_visitor
    with check (
        session_id = (select bevsession.current_session_id())
        and exists (select 1 from bevsession.sessions as s
                    where s.id = session_id and s.revoked_at is null));

create policy "Visitors can update their own persona"
    on bevsession.user_personas for update to session_visitor
    using (session_id = (select bevsession.current_session_id()))
    with check (session_id = (select bevsession.current_session_id()));

create policy "Visitors can delete their own persona"
    on bevsession.user_personas for delete to session_visitor
    using (session_id = (select bevsession.current_session_id()));

revoke all on bevsession.user_personas from public, anon, authenticated;
grant all on bevsession.user_personas to service_role;
grant select, delete on bevsession.user_personas to session_visitor;
grant insert (session_id, user_id) on bevsession.user_personas to session_visitor;
grant update (sales_focus_score, marketing_focus_score, operations_focus_score, compliance_focus_score,
              supplier_score, distributor_score, craft_score, mid_sized_score, large_score,
              pain_points_detected, pain_points_confidence, overall_confidence, total_interactions,
              questions_asked,
              functional_role, functional_role_confidence, functional_role_history,
              org_type, org_type_confidence, org_type_history,
              org_size, org_size_confidence, org_size_history,
              product_focus, product_focus_confidence, product_focus_history,
              vectors_updated_at, last_updated)
    on bevsession.user_personas to session_visitor;

-- An audit trail: no update policy.
alter table bevsession.persona_signals enable row level security;

create policy "Visitors can read their own signals"
    on bevsession.persona_signals for select to session_visitor
    using (session_id = (select bevsession.current_session_id()));

create policy "Visitors can record signals of their live session"
    on bevsession.persona_signals for insert to session_visitor
    with check (
        session_id = (select bevsession.current_session_id())
        and exists (select 1 from bevsession.sessions as s
                    where s.id = session_id and s.revoked_at is null));

create policy "Visitors can delete their own signals"
    on bevsession.persona_signals for delete to session_visitor
    using (session_id = (select bevsession.current_session_id()));

revoke all on bevsession.persona_signals from public, anon, authenticated;
grant all on bevsession.persona_signals to service_role;
grant select, delete on bevsession.persona_signals to session_visitor;
grant insert (session_id, user_id, signal_type, signal_text, signal_strength, pain_points_inferred,
              score_updates, vector, vector_value, confidence_before, confidence_after)
    on bevsession.persona_signals to session_visitor;


-- ---------------------------------------------------------------------------------------------
-- 3. The rules — pure functions (the formulas are in this file's header)
-- ---------------------------------------------------------------------------------------------

create function bevsession.strength_weight(strength bevsession.signal_strength) returns numeric
    language sql immutable parallel safe
return case strength when 'weak' then 0.10 when 'medium' then 0.25 when 'strong' then 0.50 end;
comment on function bevsession.strength_weight(bevsession.signal_strength) is 'Signal weight w: weak 0.10, medium 0.25, strong 0.50.';
revoke all on function bevsession.strength_weight(bevsession.signal_strength) from public;
grant execute on function bevsession.strength_weight(bevsession.signal_strength) to session_visitor, service_role;

create function bevsession.reinforce(confidence numeric, weight numeric) returns numeric
    language sql immutable parallel safe
return round(confidence + weight * (1 - confidence), 4);
comment on function bevsession.reinforce(numeric, numeric) is
    'Evidence for something already believed: c + w·(1 − c), four decimals. Approaches 1, never exceeds it.';
revoke all on function bevsession.reinforce(numeric, numeric) from public;
grant execute on function bevsession.reinforce(numeric, numeric) to session_visitor, service_role;

create function bevsession.compute_confidence(p bevsession.user_personas) returns numeric
    language sql immutable parallel safe
return round(
      0.5 * ( case when (p).functional_role is null then 0 else (p).functional_role_confidence end
            + case when (p).org_type        is null then 0 else (p).org_type_confidence        end
            + case when (p).org_size        is null then 0 else (p).org_size_confidence        end
            + case when (p).product_focus   is null then 0 else (p).product_focus_confidence   end ) / 4
    + 0.3 * ( greatest((p).sales_focus_score, (p).marketing_focus_score,
                       (p).operations_focus_score, (p).compliance_focus_score)
            + greatest((p).supplier_score, (p).distributor_score)
            + greatest((p).craft_score, (p).mid_sized_score, (p).large_score) ) / 3
    + 0.2 * least(1, pg_catalog.cardinality((p).pain_points_detected) / 3.0),
    4);
comment on function bevsession.compute_confidence(bevsession.user_personas) is
    'Overall confidence = round(0.5·V + 0.3·S + 0.2·P, 4); see the header of 20261201000200_personas.sql.';
revoke all on function bevsession.compute_confidence(bevsession.user_personas) from public;
grant execute on function bevsession.compute_confidence(bevsession.user_personas) to session_visitor, service_role;

-- The nine scores and the four vectors are columns, but signals and updates name them as data.
-- Why CASE and not to_jsonb / jsonb_populate_record: those convert the whole 35-column row
-- each time, which measured as most of a signal's cost.
create function bevsession.with_score(p bevsession.user_personas, score bevsession.score_name, value numeric)
    returns bevsession.user_personas
    language plpgsql immutable parallel safe
    set search_path = ''
as $$
declare
    v_value numeric := greatest(0, least(1, value));
begin
    case score
        when 'sales_focus_score'      then p.sales_focus_score      := v_value;
        when 'marketing_focus_score'  then p.marketing_focus_score  := v_value;
        when 'operations_focus_score' then p.operations_focus_score := v_value;
        when 'compliance_focus_score' then p.compliance_focus_score := v_value;
        when 'supplier_score'         then p.supplier_score         := v_value;
        when 'distributor_score'      then p.distributor_score      := v_value;
        when 'craft_score'            then p.craft_score            := v_value;
        when 'mid_sized_score'        then p.mid_sized_score        := v_value;
        when 'large_score'            then p.large_score            := v_value;
    end case;
    return p;
end
$$;
comment on function bevsession.with_score(bevsession.user_personas, bevsession.score_name, numeric) is
    'The persona with one score set to clamp(value, 0, 1) (the column rounds to four decimals).';
revoke all on function bevsession.with_score(bevsession.user_personas, bevsession.score_name, numeric) from public;
grant execute on function bevsession.with_score(bevsession.user_personas, bevsession.score_name, numeric) to session_visitor, service_role;

create function bevsession.score_of(p bevsession.user_personas, score bevsession.score_name) returns numeric
    language sql immutable parallel safe
return case score
    when 'sales_focus_score'      then (p).sales_focus_score
    when 'marketing_focus_score'  then (p).marketing_focus_score
    when 'operations_focus_score' then (p).operations_focus_score
    when 'compliance_focus_score' then (p).compliance_focus_score
    when 'supplier_score'         then (p).supplier_score
    when 'distributor_score'      then (p).distributor_score
    when 'craft_score'            then (p).craft_score
    when 'mid_sized_score'        then (p).mid_sized_score
    when 'large_score'            then (p).large_score
end;
comment on function bevsession.score_of(bevsession.user_personas, bevsession.score_name) is 'The value of one named score.';
revoke all on function bevsession.score_of(bevsession.user_personas, bevsession.score_name) from public;
grant execute on function bevsession.score_of(bevsession.user_personas, bevsession.score_name) to session_visitor, service_role;

-- A history entry records {value, confidence, strength, evidence, detected_at}, where confidence
-- is what this detection gives its value: reinforce(c, w) when it repeats the current value,
-- otherwise w. Evidence keeps the first 200 characters of the signal text (the persona travels
-- with every response); the history its newest 10 entries (bevsession.detection_history).
create function bevsession.apply_detection(
    p bevsession.user_personas,
    vector bevsession.vector_name,
    value bevsession.identifier,
    strength bevsession.signal_strength,
    evidence text,
    at timestamptz
) returns bevsession.user_personas
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_weight numeric := bevsession.strength_weight(strength);
    v_current text;
    v_confidence numeric;
    v_history jsonb;
    v_weakened numeric;
    v_entry_confidence numeric;
begin
    case vector
        when 'functional_role' then v_current := p.functional_role; v_confidence := p.functional_role_confidence; v_history := p.functional_role_history;
        when 'org_type'        then v_current := p.org_type;        v_confidence := p.org_type_confidence;        v_history := p.org_type_history;
        when 'org_size'        then v_current := p.org_size;        v_confidence := p.org_size_confidence;        v_history := p.org_size_history;
        when 'product_focus'   then v_current := p.product_focus;   v_confidence := p.product_focus_confidence;   v_history := p.product_focus_history;
    end case;

    if v_current is null then
        v_current := value;
        v_confidence := v_weight;
        v_entry_confidence := v_weight;
    elsif v_current = value then
        v_confidence := bevsession.reinforce(v_confidence, v_weight);
        v_entry_confidence := v_confidence;
    else
        v_weakened := round(v_confidence * (1 - v_weight), 4);
        if v_weight > v_weakened then
            v_current := value;
            v_confidence := v_weight;
        else
            v_confidence := v_weakened;
        end if;
        v_entry_confidence := v_weight;
    end if;
    v_history := pg_catalog.jsonb_path_query_array(
        v_history || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'value',       value,
            'confidence',  v_entry_confidence::float8,
            'strength',    strength,
            'evidence',    pg_catalog.left(evidence, 200),
            'detected_at', bevsession.to_ms(at))),
        '$[last - 9 to last]');

    case vector
        when 'functional_role' then p.functional_role := v_current; p.functional_role_confidence := v_confidence; p.functional_role_history := v_history;
        when 'org_type'        then p.org_type := v_current;        p.org_type_confidence := v_confidence;        p.org_type_history := v_history;
        when 'org_size'        then p.org_size := v_current;        p.org_size_confidence := v_confidence;        p.org_size_history := v_history;
        when 'product_focus'   then p.product_focus := v_current;   p.product_focus_confidence := v_confidence;   p.product_focus_history := v_history;
    end case;
    p.vectors_updated_at := at;
    return p;
end
$$;
comment on function bevsession.apply_detection(bevsession.user_personas, bevsession.vector_name, bevsession.identifier, bevsession.signal_strength, text, timestamptz) is
    'One detection of a vector value: switch/reinforce/weaken by the vector rule, append to the capped history.';
revoke all on function bevsession.apply_detection(bevsession.user_personas, bevsession.vector_name, bevsession.identifier, bevsession.signal_strength, text, timestamptz) from public;
grant execute on function bevsession.apply_detection(bevsession.user_personas, bevsession.vector_name, bevsession.identifier, bevsession.signal_strength, text, timestamptz) to session_visitor, service_role;

-- One signal (already checked by parse_signal): score deltas, pain points, the vector, then the
-- confidence and the interaction count. A persona its pain points would take past the domain's
-- limit is refused as an argument error (22023 "pain_points_inferred: …").
create function bevsession.apply_signal(p bevsession.user_personas, signal jsonb, at timestamptz)
    returns bevsession.user_personas
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_weight numeric := bevsession.strength_weight((signal ->> 'signal_strength')::bevsession.signal_strength);
    v_key text;
    v_delta jsonb;
    v_pain text;
    v_rule text;
begin
    for v_key, v_delta in select e.key, e.value from pg_catalog.jsonb_each(signal -> 'score_updates') as e loop
        p := bevsession.with_score(p, v_key::bevsession.score_name,
                                   bevsession.score_of(p, v_key::bevsession.score_name) + v_delta::numeric);
    end loop;

    begin
        for v_pain in select pg_catalog.jsonb_array_elements_text(signal -> 'pain_points_inferred') loop
            if not v_pain = any (p.pain_points_detected) then
                p.pain_points_detected := p.pain_points_detected || v_pain;
            end if;
            p.pain_points_confidence := p.pain_points_confidence || pg_catalog.jsonb_build_object(v_pain,
                bevsession.reinforce(coalesce((p.pain_points_confidence ->> v_pain)::numeric, 0), v_weight)::float8);
        end loop;
    exception when check_violation then  -- the persona would pass its domains' limit
        get stacked diagnostics v_rule = constraint_name;
        perform bevsession.refuse('pain_points_inferred', 'the persona''s pain points: ' || v_rule);
    end;

    if signal ->> 'vector' is not null then
        p := bevsession.apply_detection(p, (signal ->> 'vector')::bevsession.vector_name, signal ->> 'vector_value',
                                        (signal ->> 'signal_strength')::bevsession.signal_strength,
                                        signal ->> 'signal_text', at);
    end if;

    p.overall_confidence := bevsession.compute_confidence(p);
    p.total_interactions := p.total_interactions + 1;
    p.last_updated := at;
    return p;
end
$$;
comment on function bevsession.apply_signal(bevsession.user_personas, jsonb, timestamptz) is
    'The persona after one signal (deltas clamped, pain points reinforced, vector rule, confidence, +1 interaction).';
revoke all on function bevsession.apply_signal(bevsession.user_personas, jsonb, timestamptz) from public;
grant execute on function bevsession.apply_signal(bevsession.user_personas, jsonb, timestamptz) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 4. JSON (docs/rpc-api.md): scores as float8 so 0.2500 reads 0.25, times as ms
-- ---------------------------------------------------------------------------------------------

create function bevsession.persona_json(p bevsession.user_personas) returns jsonb
    language sql stable parallel safe
return pg_catalog.jsonb_build_object(
    'detection_vectors', pg_catalog.jsonb_build_object(
        'functional_role',            (p).functional_role,
        'functional_role_confidence', (p).functional_role_confidence::float8,
        'functional_role_history',    (p).functional_role_history,
        'org_type',                   (p).org_type,
        'org_type_confidence',        (p).org_type_confidence::float8,
        'org_type_history',           (p).org_type_history,
        'org_size',                   (p).org_size,
        'org_size_confidence',        (p).org_size_confidence::float8,
        'org_size_history',           (p).org_size_history,
        'product_focus',              (p).product_focus,
        'product_focus_confidence',   (p).product_focus_confidence::float8,
        'product_focus_history',      (p).product_focus_history,
        'vectors_updated_at',         coalesce(bevsession.to_ms((p).vectors_updated_at), 0)),
    'sales_focus_score',      (p).sales_focus_score::float8,
    'marketing_focus_score',  (p).marketing_focus_score::float8,
    'operations_focus_score', (p).operations_focus_score::float8,
    'compliance_focus_score', (p).compliance_focus_score::float8,
    'supplier_score',         (p).supplier_score::float8,
    'distributor_score',      (p).distributor_score::float8,
    'craft_score',            (p).craft_score::float8,
    'mid_sized_score',        (p).mid_sized_score::float8,
    'large_score',            (p).large_score::float8,
    'pain_points_detected',   pg_catalog.to_jsonb((p).pain_points_detected::text[]),
    'pain_points_confidence', (p).pain_points_confidence,
    'overall_confidence',     (p).overall_confidence::float8,
    'total_interactions',     (p).total_interactions,
    'questions_asked',        pg_catalog.to_jsonb((p).questions_asked::text[]));
comment on function bevsession.persona_json(bevsession.user_personas) is
    'Persona JSON with the seed''s names (PersonaScores); also the persona_snapshot stored with messages.';
revoke all on function bevsession.persona_json(bevsession.user_personas) from public;
grant execute on function bevsession.persona_json(bevsession.user_personas) to session_visitor, service_role;

create function bevsession.signal_json(s bevsession.persona_signals) returns jsonb
    language sql stable parallel safe
return pg_catalog.jsonb_build_object(
    'id',                   (s).id,
    'signal_type',          (s).signal_type,
    'signal_text',          (s).signal_text,
    'signal_strength',      (s).signal_strength,
    'pain_points_inferred', pg_catalog.to_jsonb((s).pain_points_inferred::text[]),
    'score_updates',        (s).score_updates,
    'vector',               (s).vector,
    'vector_value',         (s).vector_value,
    'confidence_before',    (s).confidence_before::float8,
    'confidence_after',     (s).confidence_after::float8,
    'created_at',           bevsession.to_ms((s).created_at));
comment on function bevsession.signal_json(bevsession.persona_signals) is 'Signal JSON: the audit row of one applied signal.';
revoke all on function bevsession.signal_json(bevsession.persona_signals) from public;
grant execute on function bevsession.signal_json(bevsession.persona_signals) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 5. Argument checks (22023 "<field>: <problem>" before anything is written)
-- ---------------------------------------------------------------------------------------------

-- Why: a signal arrives either as record_persona_signal's arguments or as one element of
-- begin_chat_turn's `signals`; both go through this one check, which also normalises it
-- (missing optional parts become [] / {} / null, duplicate pain points collapse). `field` is
-- the prefix of field names in error messages: '' for record_persona_signal's arguments,
-- 'signals[3].' for begin_chat_turn.
create function bevsession.parse_signal(signal jsonb, field text) returns jsonb
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_allowed constant text[] := array['signal_type', 'signal_text', 'signal_strength',
        'pain_points_inferred', 'score_updates', 'vector', 'vector_value'];
    v_part text;
    v_vocabulary regtype;
    v_rule text;
    v_key text;
    v_value jsonb;
    v_type bevsession.identifier;
    v_text bevsession.signal_text;
    v_strength bevsession.signal_strength;
    v_pains text[] := '{}';
    v_checked_pains bevsession.pain_points;
    v_scores jsonb;
    v_vector bevsession.vector_name;
    v_vector_value bevsession.identifier;
begin
    if pg_catalog.jsonb_typeof(signal) is distinct from 'object' then
        perform bevsession.invalid_argument(coalesce(nullif(pg_catalog.rtrim(field, '.'), ''), 'signal'), 'must be a JSON object');
    end if;
    select k into v_key from pg_catalog.jsonb_object_keys(signal) as k where k <> all (v_allowed) order by k limit 1;
    if v_key is not null then
        perform bevsession.invalid_argument(field || v_key, 'unknown key (allowed: ' || pg_catalog.array_to_string(v_allowed, ', ') || ')');
    end if;

    -- JSON null and a missing key mean the same: absent
    if pg_catalog.jsonb_typeof(signal -> 'signal_type') is distinct from 'string' then
        perform bevsession.invalid_argument(field || 'signal_type', 'is required: a string');
    end if;
    if pg_catalog.jsonb_typeof(signal -> 'signal_text') is distinct from 'string' then
        perform bevsession.invalid_argument(field || 'signal_text', 'is required: a string');
    end if;
    if pg_catalog.jsonb_typeof(signal -> 'signal_strength') is distinct from 'string' then
        perform bevsession.invalid_argument(field || 'signal_strength', 'is required: a string');
    end if;
    v_value := coalesce(nullif(signal -> 'pain_points_inferred', 'null'), '[]');
    if pg_catalog.jsonb_typeof(v_value) <> 'array'
       or pg_catalog.jsonb_path_exists(v_value, '$[*] ? (@.type() != "string")') then
        perform bevsession.invalid_argument(field || 'pain_points_inferred', 'must be an array of pain point names');
    end if;
    select coalesce(pg_catalog.array_agg(p.name order by p.first), '{}') into v_pains
    from (select e.name, min(e.i) as first
          from pg_catalog.jsonb_array_elements_text(v_value) with ordinality as e(name, i)
          group by e.name) as p;
    v_scores := coalesce(nullif(signal -> 'score_updates', 'null'), '{}');
    if pg_catalog.jsonb_typeof(v_scores) <> 'object' then
        perform bevsession.invalid_argument(field || 'score_updates', 'must be an object {score name: delta}');
    end if;
    if nullif(signal -> 'vector', 'null') is not null then
        if pg_catalog.jsonb_typeof(signal -> 'vector_value') is distinct from 'string' then
            perform bevsession.invalid_argument(field || 'vector_value', 'is required with vector: a string');
        end if;
    elsif nullif(signal -> 'vector_value', 'null') is not null then
        perform bevsession.invalid_argument(field || 'vector_value', 'needs vector');
    end if;

    begin
        v_part := 'signal_type';          v_type := signal ->> 'signal_type';
        v_part := 'signal_text';          v_text := signal ->> 'signal_text';
        v_part := 'signal_strength';      v_vocabulary := 'bevsession.signal_strength';
                                          v_strength := signal ->> 'signal_strength';
        v_part := 'pain_points_inferred'; v_checked_pains := v_pains;
        v_part := 'vector';               v_vocabulary := 'bevsession.vector_name';
                                          v_vector := signal ->> 'vector';
        v_part := 'vector_value';         v_vector_value := signal ->> 'vector_value';
        for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(v_scores) as e loop
            v_part := 'score_updates.' || v_key;
            v_vocabulary := 'bevsession.score_name';
            perform v_key::bevsession.score_name;
            if pg_catalog.jsonb_typeof(v_value) <> 'number' or v_value::numeric not between -1 and 1 then
                perform bevsession.invalid_argument(field || v_part, 'must be a number in [-1, 1]');
            end if;
        end loop;
    exception when check_violation or invalid_text_representation then
        get stacked diagnostics v_rule = constraint_name;
        perform bevsession.refuse(field || v_part, v_rule, v_vocabulary);
    end;

    return pg_catalog.jsonb_build_object(
        'signal_type',          v_type,
        'signal_text',          v_text,
        'signal_strength',      v_strength,
        'pain_points_inferred', pg_catalog.to_jsonb(v_pains),
        'score_updates',        v_scores,
        'vector',               v_vector,
        'vector_value',         v_vector_value);
end
$$;
comment on function bevsession.parse_signal(jsonb, text) is
    'Validate and normalise one persona signal; raises 22023 naming the offending field.';
revoke all on function bevsession.parse_signal(jsonb, text) from public;
grant execute on function bevsession.parse_signal(jsonb, text) to session_visitor, service_role;

-- update_persona's rules. Persona keys: absolute scores (clamped), pain point set union,
-- confidence merge (clamped), questions appended (the newest 50 kept); then the confidence and
-- +1 interaction. overall_confidence and total_interactions are computed, never set.
create function bevsession.apply_persona_updates(p bevsession.user_personas, updates jsonb, at timestamptz)
    returns bevsession.user_personas
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_field text;
    v_rule text;
    v_key text;
    v_value jsonb;
    v_name text;
    v_item jsonb;
    v_questions bevsession.question[];
begin
    begin
        for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(updates) as e loop
            v_field := 'updates.' || v_key;
            if v_key = any (pg_catalog.enum_range(null::bevsession.score_name)::text[]) then
                if pg_catalog.jsonb_typeof(v_value) <> 'number' then
                    perform bevsession.invalid_argument(v_field, 'must be a number (clamped to [0, 1])');
                end if;
                p := bevsession.with_score(p, v_key::bevsession.score_name, v_value::numeric);

            elsif v_key = 'pain_points_detected' then
                if pg_catalog.jsonb_typeof(v_value) <> 'array'
                   or pg_catalog.jsonb_path_exists(v_value, '$[*] ? (@.type() != "string")') then
                    perform bevsession.invalid_argument(v_field, 'must be an array of pain point names');
                end if;
                for v_name in select pg_catalog.jsonb_array_elements_text(v_value) loop
                    if not v_name = any (p.pain_points_detected) then
                        p.pain_points_detected := p.pain_points_detected || v_name::bevsession.identifier;
                    end if;
                end loop;

            elsif v_key = 'pain_points_confidence' then
                if pg_catalog.jsonb_typeof(v_value) <> 'object'
                   or pg_catalog.jsonb_path_exists(v_value, '$.* ? (@.type() != "number")') then
                    perform bevsession.invalid_argument(v_field, 'must be an object {pain point name: number (clamped to [0, 1])}');
                end if;
                for v_name, v_item in select e.key, e.value from pg_catalog.jsonb_each(v_value) as e loop
                    p.pain_points_confidence := p.pain_points_confidence
                        || pg_catalog.jsonb_build_object(v_name::bevsession.identifier,
                                                         round(greatest(0, least(1, v_item::numeric)), 4)::float8);
                end loop;

            elsif v_key = 'questions_asked' then
                if pg_catalog.jsonb_typeof(v_value) <> 'array'
                   or pg_catalog.jsonb_path_exists(v_value, '$[*] ? (@.type() != "string")') then
                    perform bevsession.invalid_argument(v_field, 'must be an array of strings');
                end if;
                v_questions := p.questions_asked::bevsession.question[]
                    || array(select pg_catalog.jsonb_array_elements_text(v_value)::bevsession.question);
                p.questions_asked := v_questions[greatest(1, pg_catalog.cardinality(v_questions) - 49):];
            end if;
        end loop;
    exception when check_violation then
        get stacked diagnostics v_rule = constraint_name;
        perform bevsession.refuse(v_field, v_rule);
    end;

    p.overall_confidence := bevsession.compute_confidence(p);
    p.total_interactions := p.total_interactions + 1;
    p.last_updated := at;
    return p;
end
$$;
comment on function bevsession.apply_persona_updates(bevsession.user_personas, jsonb, timestamptz) is
    'update_persona''s rules for persona keys (absolute clamped scores, set union, merge, append), then confidence and +1 interaction.';
revoke all on function bevsession.apply_persona_updates(bevsession.user_personas, jsonb, timestamptz) from public;
grant execute on function bevsession.apply_persona_updates(bevsession.user_personas, jsonb, timestamptz) to session_visitor, service_role;

-- update_persona's session keys: the mode, the three flags, the brochure reference.
create function bevsession.apply_session_updates(s bevsession.sessions, updates jsonb)
    returns bevsession.sessions
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_field text;
    v_rule text;
    v_key text;
    v_value jsonb;
begin
    begin
        for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(updates) as e loop
            v_field := 'updates.' || v_key;
            if v_key = 'current_mode' then
                if pg_catalog.jsonb_typeof(v_value) <> 'string' then
                    perform bevsession.refuse(v_field, null, 'bevsession.session_mode');
                end if;
                s.current_mode := v_value ->> 0;
            elsif v_key in ('has_completed_onboarding', 'has_brochure', 'is_data_connected') then
                if pg_catalog.jsonb_typeof(v_value) <> 'boolean' then
                    perform bevsession.invalid_argument(v_field, 'must be true or false');
                end if;
                s := pg_catalog.jsonb_populate_record(s, pg_catalog.jsonb_build_object(v_key, v_value));
            elsif v_key = 'last_generated_brochure_id' then
                if pg_catalog.jsonb_typeof(v_value) not in ('string', 'null') then
                    perform bevsession.invalid_argument(v_field, 'must be a string or null');
                end if;
                s.last_generated_brochure_id := v_value ->> 0;
            elsif v_key = 'last_brochure_generated_at' then
                if pg_catalog.jsonb_typeof(v_value) not in ('number', 'null') then
                    perform bevsession.invalid_argument(v_field, 'must be milliseconds since the epoch, or null');
                end if;
                s.last_brochure_generated_at := bevsession.from_ms((v_value ->> 0)::numeric);
            end if;
        end loop;
    exception when check_violation or invalid_text_representation then
        get stacked diagnostics v_rule = constraint_name;
        perform bevsession.refuse(v_field, v_rule, 'bevsession.session_mode');
    end;
    return s;
end
$$;
comment on function bevsession.apply_session_updates(bevsession.sessions, jsonb) is
    'update_persona''s rules for session keys: current_mode, the three flags, the brochure reference.';
revoke all on function bevsession.apply_session_updates(bevsession.sessions, jsonb) from public;
grant execute on function bevsession.apply_session_updates(bevsession.sessions, jsonb) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 6. Reading and writing personas
-- ---------------------------------------------------------------------------------------------

-- Why create: the persona row comes with the session, but a live session whose persona an
-- admin removed gets a fresh default persona rather than an error.
create function bevsession.persona_of(s bevsession.sessions) returns bevsession.user_personas
    language plpgsql
    set search_path = ''
as $$
declare
    v_persona bevsession.user_personas;
begin
    select * into v_persona from bevsession.user_personas as p where p.session_id = s.id;
    if not found then
        insert into bevsession.user_personas (session_id, user_id) values (s.id, s.user_id)
            returning * into v_persona;
    end if;
    return v_persona;
end
$$;
comment on function bevsession.persona_of(bevsession.sessions) is
    'The persona of a live session (created with defaults if missing). Writers hold the session lock.';
revoke all on function bevsession.persona_of(bevsession.sessions) from public;
grant execute on function bevsession.persona_of(bevsession.sessions) to session_visitor, service_role;

create function bevsession.save_persona(p bevsession.user_personas) returns bevsession.user_personas
    language plpgsql
    set search_path = ''
as $$
declare
    v_saved bevsession.user_personas;
begin
    update bevsession.user_personas as t set
        sales_focus_score          = p.sales_focus_score,
        marketing_focus_score      = p.marketing_focus_score,
        operations_focus_score     = p.operations_focus_score,
        compliance_focus_score     = p.compliance_focus_score,
        supplier_score             = p.supplier_score,
        distributor_score          = p.distributor_score,
        craft_score                = p.craft_score,
        mid_sized_score            = p.mid_sized_score,
        large_score                = p.large_score,
        pain_points_detected       = p.pain_points_detected,
        pain_points_confidence     = p.pain_points_confidence,
        overall_confidence         = p.overall_confidence,
        total_interactions         = p.total_interactions,
        questions_asked            = p.questions_asked,
        functional_role            = p.functional_role,
        functional_role_confidence = p.functional_role_confidence,
        functional_role_history    = p.functional_role_history,
        org_type                   = p.org_type,
        org_type_confidence        = p.org_type_confidence,
        org_type_history           = p.org_type_history,
        org_size                   = p.org_size,
        org_size_confidence        = p.org_size_confidence,
        org_size_history           = p.org_size_history,
        product_focus              = p.product_focus,
        product_focus_confidence   = p.product_focus_confidence,
        product_focus_history      = p.product_focus_history,
        vectors_updated_at         = p.vectors_updated_at,
        last_updated               = p.last_updated
    where t.id = p.id
    returning t.* into v_saved;
    return v_saved;
end
$$;
comment on function bevsession.save_persona(bevsession.user_personas) is
    'Write a persona row value back: the one UPDATE of a persona.';
revoke all on function bevsession.save_persona(bevsession.user_personas) from public;
grant execute on function bevsession.save_persona(bevsession.user_personas) to session_visitor, service_role;

-- Why one step: the audit row carries the confidence before and after.
create function bevsession.record_signal(
    p bevsession.user_personas,
    signal jsonb,
    out persona bevsession.user_personas,
    out audit bevsession.persona_signals
)
    language plpgsql
    set search_path = ''
as $$
begin
    persona := bevsession.apply_signal(p, signal, pg_catalog.now());
    insert into bevsession.persona_signals (
        session_id, user_id, signal_type, signal_text, signal_strength, pain_points_inferred,
        score_updates, vector, vector_value, confidence_before, confidence_after)
    values (
        p.session_id, p.user_id,
        signal ->> 'signal_type',
        signal ->> 'signal_text',
        (signal ->> 'signal_strength')::bevsession.signal_strength,
        array(select pg_catalog.jsonb_array_elements_text(signal -> 'pain_points_inferred')),
        signal -> 'score_updates',
        (signal ->> 'vector')::bevsession.vector_name,
        signal ->> 'vector_value',
        p.overall_confidence,
        persona.overall_confidence)
    returning * into audit;
end
$$;
comment on function bevsession.record_signal(bevsession.user_personas, jsonb) is
    'Apply one parsed signal to a persona row value and write its audit row; the caller saves the persona.';
revoke all on function bevsession.record_signal(bevsession.user_personas, jsonb) from public;
grant execute on function bevsession.record_signal(bevsession.user_personas, jsonb) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 7. API: update_persona, record_persona_signal
-- ---------------------------------------------------------------------------------------------

-- updatePersona(updates): absolute values, applied under the session lock, so two concurrent
-- updates of different fields both survive (the seed wrote the whole persona from the cookie).
create function public.update_persona(updates jsonb) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_allowed constant text[] := pg_catalog.enum_range(null::bevsession.score_name)::text[] || array[
        'pain_points_detected', 'pain_points_confidence', 'questions_asked',
        'current_mode', 'has_completed_onboarding', 'has_brochure', 'is_data_connected',
        'last_generated_brochure_id', 'last_brochure_generated_at'];
    v_session_id uuid := bevsession.require_session_id();
    v_key text;
    v_session bevsession.sessions;
    v_wanted bevsession.sessions;
    v_persona bevsession.user_personas;
begin
    if pg_catalog.jsonb_typeof(updates) is distinct from 'object' then
        perform bevsession.invalid_argument('updates', 'must be a JSON object');
    end if;
    select k into v_key from pg_catalog.jsonb_object_keys(updates) as k where k <> all (v_allowed) order by k limit 1;
    if v_key is not null then
        perform bevsession.invalid_argument('updates.' || v_key,
            'unknown key (allowed: ' || pg_catalog.array_to_string(v_allowed, ', ') || ')');
    end if;

    v_session := bevsession.lock_session(v_session_id);
    v_persona := bevsession.save_persona(bevsession.apply_persona_updates(
        bevsession.persona_of(v_session), updates, pg_catalog.now()));
    v_wanted := bevsession.apply_session_updates(v_session, updates);
    update bevsession.sessions as s set
        last_activity_at           = pg_catalog.now(),
        current_mode               = v_wanted.current_mode,
        has_completed_onboarding   = v_wanted.has_completed_onboarding,
        has_brochure               = v_wanted.has_brochure,
        is_data_connected          = v_wanted.is_data_connected,
        last_generated_brochure_id = v_wanted.last_generated_brochure_id,
        last_brochure_generated_at = v_wanted.last_brochure_generated_at
    where s.id = v_session.id
    returning * into v_session;

    return pg_catalog.jsonb_build_object(
        'persona', bevsession.persona_json(v_persona),
        'session', bevsession.session_json(v_session));
end
$$;
comment on function public.update_persona(jsonb) is
    'Set scores (clamped), merge pain points / confidences, append questions, set mode and flags; recompute confidence; +1 interaction. Returns {persona, session}.';
revoke execute on function public.update_persona(jsonb) from public, anon, authenticated;
grant execute on function public.update_persona(jsonb) to session_visitor, service_role;

-- recordPersonaSignal(...): apply one signal and write its audit row, atomically.
create function public.record_persona_signal(
    signal_type text,
    signal_text text,
    signal_strength text,
    pain_points_inferred text[] default '{}',
    score_updates jsonb default '{}',
    vector text default null,
    vector_value text default null
) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_signal jsonb := bevsession.parse_signal(pg_catalog.jsonb_build_object(
        'signal_type',          signal_type,
        'signal_text',          signal_text,
        'signal_strength',      signal_strength,
        'pain_points_inferred', pg_catalog.to_jsonb(pain_points_inferred),
        'score_updates',        score_updates,
        'vector',               vector,
        'vector_value',         vector_value), '');
    v_session bevsession.sessions;
    v_recorded record;
begin
    v_session := bevsession.lock_session(v_session_id);
    update bevsession.sessions as s set last_activity_at = pg_catalog.now() where s.id = v_session.id;
    v_recorded := bevsession.record_signal(bevsession.persona_of(v_session), v_signal);
    return pg_catalog.jsonb_build_object(
        'signal',  bevsession.signal_json(v_recorded.audit),
        'persona', bevsession.persona_json(bevsession.save_persona(v_recorded.persona)));
end
$$;
comment on function public.record_persona_signal(text, text, text, text[], jsonb, text, text) is
    'Apply one persona signal (score deltas, pain points, detection vector) and write its audit row. Returns {signal, persona}.';
revoke execute on function public.record_persona_signal(text, text, text, text[], jsonb, text, text) from public, anon, authenticated;
grant execute on function public.record_persona_signal(text, text, text, text[], jsonb, text, text) to session_visitor, service_role;
