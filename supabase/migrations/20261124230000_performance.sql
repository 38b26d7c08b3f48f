-- =============================================================================================
-- 20261124230000_performance.sql — the hot helpers, same results, a fraction of the cost
-- =============================================================================================
--
-- Why: `python -m bench` (pgbench on the RPCs, with `track_functions = all`) showed that most of
-- a call's time went into small helpers, not into the work they describe. Every helper was
-- `language sql … set search_path = ''`. The SET clause (our rule for every function, kept here)
-- stops PostgreSQL from inlining a SQL function into its caller, and a SQL function that is not
-- inlined is parsed and planned again in every transaction that calls it (its cache lives only
-- as long as the calling expression's state), then run through a full executor start/stop on
-- every call. Measured per call before this migration:
--
--   bevsession.current_session_id()  ~25 µs (and auth.jwt() twice inside it), called by every
--                                    RLS policy and identity check: ~14 times per chat turn
--   bevsession.persona_json()        ~260-500 µs on its first call in a transaction
--   bevsession.session_json()        ~50-85 µs     bevsession.to_ms()  ~12-20 µs (20 per turn)
--   bevsession.save_persona()        ~300-470 µs (its UPDATE planned again in each transaction)
--   CHECK helpers (is_pain_point_list, is_confidence_map, is_question_list, is_identifier,
--   is_detection_history)            10-100 µs per row written
--   bevsession.compute_confidence()  ~120-155 µs, and the small persona arithmetic (with_score,
--   score_of, strength_weight, clamp01, reinforce) 10-40 µs each
--
-- PL/pgSQL keeps a function's compiled body and its statement plans for the life of the
-- connection, and evaluates a plain `return <expression>` without starting an executor. So each
-- helper below is the same function — same name, arguments, result, volatility, `parallel safe`,
-- `security definer` where it was, `set search_path = ''`, owner, grants and comment (CREATE OR
-- REPLACE keeps them) — with its body written in PL/pgSQL: the same expression, or the same
-- test spelled as a loop. Nothing a caller can observe changes but the time.
--
-- Not touched (other migrations own them): the RPCs in `public`, the session lifetime checks
-- (find_session, lock_session, touch_session, ensure_session, check_live, policy), history
-- (history_page, history_window, message_json) and the rate limit.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. Identity: the claim every RLS policy compares with
-- ---------------------------------------------------------------------------------------------
-- Still security definer (see 20261124200000_session_schema.sql: auth.jwt() belongs to another
-- owner on Supabase) and still reading the claims through auth.jwt() — now once per call (the
-- SQL version's sub-select was flattened into two calls of auth.jwt()).
create or replace function bevsession.current_session_id() returns uuid
    language plpgsql stable security definer parallel safe
    set search_path = ''
as $$
declare
    v_claim text := auth.jwt() ->> 'session_id';
begin
    if v_claim ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        return v_claim::uuid;
    end if;
    return null;  -- missing or not a uuid: matches no row
end
$$;


-- ---------------------------------------------------------------------------------------------
-- 2. Value rules used by CHECK constraints and argument checks
-- ---------------------------------------------------------------------------------------------

create or replace function bevsession.is_identifier(p_value text) returns boolean
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return p_value ~ '^[a-z][a-z0-9_]{0,63}$';
end
$$;

-- The SQL version's `p_list is not null and cardinality <= max and no null element and every
-- element an identifier` (never null), as early returns.
create or replace function bevsession.is_pain_point_list(p_list text[]) returns boolean
    language plpgsql immutable parallel safe set search_path = ''
as $$
declare
    v_item text;
begin
    if p_list is null
       or pg_catalog.cardinality(p_list) > bevsession.max_pain_points()
       or pg_catalog.array_position(p_list, null) is not null then
        return false;
    end if;
    foreach v_item in array p_list loop
        if not bevsession.is_identifier(v_item) then
            return false;
        end if;
    end loop;
    return true;
end
$$;

-- Not an object → false; otherwise every entry an identifier with a number in [0, 1] (an
-- empty object passes) and at most max_pain_points() keys. The entry test is the SQL version's,
-- evaluated left to right as before (a non-number is never cast), stopping at the first failure.
create or replace function bevsession.is_confidence_map(p_map jsonb) returns boolean
    language plpgsql immutable parallel safe set search_path = ''
as $$
declare
    v_key text;
    v_value jsonb;
    v_all boolean := true;
    v_ok boolean;
begin
    if pg_catalog.jsonb_typeof(p_map) is distinct from 'object' then
        return false;
    end if;
    for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(p_map) as e loop
        v_ok := bevsession.is_identifier(v_key)
                and pg_catalog.jsonb_typeof(v_value) = 'number'
                and v_value::numeric between 0 and 1;
        v_all := v_all and v_ok;  -- bool_and: false wins, null only without a false
        if v_ok is false then
            exit;
        end if;
    end loop;
    return v_all and (select count(*) from pg_catalog.jsonb_object_keys(p_map)) <= bevsession.max_pain_points();
end
$$;


create or replace function bevsession.is_detection_history(p_history jsonb) returns boolean
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return pg_catalog.jsonb_typeof(p_history) = 'array'
       and pg_catalog.jsonb_array_length(p_history) <= bevsession.max_history_entries();
end
$$;

-- As is_pain_point_list: the SQL version's conjunction (never null), as early returns.
create or replace function bevsession.is_question_list(p_list text[]) returns boolean
    language plpgsql immutable parallel safe set search_path = ''
as $$
declare
    v_item text;
begin
    if p_list is null
       or pg_catalog.cardinality(p_list) > bevsession.max_questions()
       or pg_catalog.array_position(p_list, null) is not null then
        return false;
    end if;
    foreach v_item in array p_list loop
        if pg_catalog.char_length(v_item) > bevsession.max_question_chars() then
            return false;
        end if;
    end loop;
    return true;
end
$$;


-- ---------------------------------------------------------------------------------------------
-- 3. JSON shapes and the confidence formula
-- ---------------------------------------------------------------------------------------------

create or replace function bevsession.to_ms(p_at timestamptz) returns bigint
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return floor(extract(epoch from p_at) * 1000)::bigint;
end
$$;

create or replace function bevsession.persona_json(p bevsession.personas) returns jsonb
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

create or replace function bevsession.session_json(s bevsession.sessions) returns jsonb
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

create or replace function bevsession.compute_confidence(p bevsession.personas) returns numeric
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


-- The persona rules' arithmetic (20261124200100_persona_logic.sql, section 2 and 5).
create or replace function bevsession.strength_weight(p_strength text) returns numeric
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return case p_strength when 'weak' then 0.10 when 'medium' then 0.25 when 'strong' then 0.50 end;
end
$$;

create or replace function bevsession.clamp01(p_value numeric) returns numeric
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return greatest(0::numeric, least(1::numeric, p_value));
end
$$;

create or replace function bevsession.reinforce(p_confidence numeric, p_weight numeric) returns numeric
    language plpgsql immutable parallel safe set search_path = ''
as $$
begin
    return round(p_confidence + p_weight * (1 - p_confidence), 4);
end
$$;

create or replace function bevsession.with_score(p bevsession.personas, p_score text, p_value numeric)
    returns bevsession.personas
    language plpgsql stable parallel safe set search_path = ''
as $$
begin
    return pg_catalog.jsonb_populate_record(p, pg_catalog.jsonb_build_object(p_score, bevsession.clamp01(p_value)));
end
$$;

create or replace function bevsession.score_of(p bevsession.personas, p_score text) returns numeric
    language plpgsql stable parallel safe set search_path = ''
as $$
begin
    return (pg_catalog.to_jsonb(p) ->> p_score)::numeric;
end
$$;


-- ---------------------------------------------------------------------------------------------
-- 4. Writing the persona: the one UPDATE, planned once per connection instead of per call
-- ---------------------------------------------------------------------------------------------

create or replace function bevsession.save_persona(p bevsession.personas) returns bevsession.personas
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
