-- =============================================================================================
-- 20261201001100_from_the_seed.sql — a running seed installation moves over without losing anyone
-- =============================================================================================
--
-- The people adopting this project already run the seed (Next.js + iron-session + supabase-js):
-- rows in public.user_personas, public.conversation_history and public.persona_signals, and
-- visitors holding its cookie. Two ways in, one set of rules:
--
--   * `bevsession import-seed` copies the seed's tables, one batch at a time, through the
--     import functions of section 5 (service_role; the command reads the source and sends each
--     batch as a JSON array of its rows, so the source may be another database);
--   * public.adopt_session(cookie) is what the edge worker calls for a cookie: when the database
--     has no row for its session, the session and persona are created from what the sealed
--     cookie carries instead of defaults; when it has one, the database wins, as for get_session.
--
-- What the seed stored is not always storable here (a session_id that is not a uuid, a score of
-- 9.99 — DECIMAL(3,2) allows it —, a pain point named "Execution Blind-Spot", a message over the
-- limit, an unknown role). Every value goes through one documented rule — clamp, normalise, or
-- skip — and every rule that fired is counted under its reason (docs/from-the-seed.md has the
-- table). A rule never raises: one bad row never stops the rows around it.
--
--   null or absent            the default (0, [], {}, null, 'fresh', false) — not counted
--   score_clamped             a score or confidence outside [0, 1] → the nearest bound
--   count_clamped             a count below 0, above 2^31 − 1 or not whole → clamped, rounded
--   value_dropped             a value of the wrong JSON type (or a user id that is no uuid) → default
--   name_normalised           a name rewritten to lower snake_case ("Execution Blind-Spot" → execution_blind_spot)
--   name_dropped              a name with nothing to keep (no letter to start with) → left out
--   pain_points_trimmed       more than 32 pain points → the first 32
--   questions_trimmed         more than 50 questions → the newest 50
--   history_trimmed           more than 10 detections of a vector → the newest 10
--   history_entry_dropped     a detection without a usable value → left out
--   text_truncated            a text over its limit (question 1000, evidence 200, signal 2000, read time 20) → cut
--   message_truncated         a message over 8000 characters → its first 8000
--   ui_specification_dropped  a UI specification over 256 KiB → null (the message is kept)
--   snapshot_normalised       a persona snapshot that needed any of the rules above
--   snapshot_dropped          a persona snapshot that is not a JSON object → null
--   role_normalised           " User" → user
--   session_id_normalised     a session id spelled otherwise than canonically ({A0EE…}, upper case)
--   id_derived                a row id that is not a uuid → a stable uuid derived from it
--   timestamp_defaulted       no time at all → the import's start time (the cookie's: now)
--   timestamp_clamped         a time in the future → now; an activity before creation → creation
--   skipped: session_id_not_uuid · session_missing · session_revoked · session_exists ·
--            persona_exists · unknown_role · content_missing · unknown_signal_strength
--
-- Sections: 1 the seed's values in ours (pure rules) · 2 a persona, a session · 3 where imported
-- sessions are recorded · 4 API: adopt_session · 5 the import (service_role).
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The seed's values in ours: pure rules, one per kind of value
-- ---------------------------------------------------------------------------------------------
-- Each takes the JSON value as the seed's row (to_jsonb) or cookie holds it. A value and its
-- reason are two functions, so a set-based INSERT … SELECT can compute both inline.

create domain bevsession.seed_batch as jsonb
    constraint "must be a JSON array of at most 50000 rows"
    check (pg_catalog.jsonb_typeof(value) = 'array' and pg_catalog.jsonb_array_length(value) <= 50000);
comment on domain bevsession.seed_batch is 'One batch of seed rows for an import function (the command sends 2000 by default).';
grant usage on type bevsession.seed_batch to service_role;

-- The forms PostgreSQL's uuid input takes that a seed may hold: any case, hyphens or none, braces.
create function bevsession.seed_uuid(value text) returns uuid
    language sql immutable parallel safe
return case
    when value ~* '^\s*(\{[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}|[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})\s*$'
    then pg_catalog.btrim(value, E' \t\r\n')::uuid
end;
comment on function bevsession.seed_uuid(text) is 'The uuid a seed value spells (any case, with or without hyphens or braces); null when it is none.';
revoke all on function bevsession.seed_uuid(text) from public, anon, authenticated;
grant execute on function bevsession.seed_uuid(text) to session_visitor, service_role;

-- lower case, every run of other characters one underscore, no underscore at either end, at most
-- 64 characters; null when what is left does not start with a letter (bevsession.identifier).
-- (one expression, no subquery: substring() of an anchored pattern is the whole name or null)
create function bevsession.seed_identifier(value text) returns text
    language sql immutable parallel safe
return pg_catalog.substring(
    pg_catalog.rtrim(pg_catalog.left(pg_catalog.btrim(
        pg_catalog.regexp_replace(pg_catalog.lower(value), '[^a-z0-9]+', '_', 'g'), '_'), 64), '_'),
    '^[a-z][a-z0-9_]{0,63}$');
comment on function bevsession.seed_identifier(text) is
    'A seed name as an identifier: lower snake_case, at most 64 characters; null when nothing usable is left.';
revoke all on function bevsession.seed_identifier(text) from public, anon, authenticated;
grant execute on function bevsession.seed_identifier(text) to session_visitor, service_role;

create function bevsession.seed_name(value jsonb) returns text
    language sql immutable parallel safe
return case when pg_catalog.jsonb_typeof(value) = 'string' then bevsession.seed_identifier(value #>> '{}') end;
comment on function bevsession.seed_name(jsonb) is 'The identifier a JSON string normalises to (seed_identifier); null otherwise.';
revoke all on function bevsession.seed_name(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_name(jsonb) to session_visitor, service_role;

create function bevsession.seed_name_problem(value jsonb) returns text
    language sql immutable parallel safe
return case
    when value is null or pg_catalog.jsonb_typeof(value) = 'null' then null
    when pg_catalog.jsonb_typeof(value) <> 'string' then 'value_dropped'
    when bevsession.seed_identifier(value #>> '{}') is null then 'name_dropped'
    when bevsession.seed_identifier(value #>> '{}') <> value #>> '{}' then 'name_normalised'
end;
comment on function bevsession.seed_name_problem(jsonb) is 'The reason seed_name changed a value: name_normalised, name_dropped, value_dropped; null when kept.';
revoke all on function bevsession.seed_name_problem(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_name_problem(jsonb) to session_visitor, service_role;

create function bevsession.seed_score(value jsonb) returns numeric
    language sql immutable parallel safe
return case when pg_catalog.jsonb_typeof(value) = 'number'
            then round(greatest(0, least(1, value::numeric)), 4) else 0 end;
comment on function bevsession.seed_score(jsonb) is 'A seed score or confidence clamped to [0, 1], four decimals; 0 when absent or not a number.';
revoke all on function bevsession.seed_score(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_score(jsonb) to session_visitor, service_role;

create function bevsession.seed_score_problem(value jsonb) returns text
    language sql immutable parallel safe
return case
    when value is null or pg_catalog.jsonb_typeof(value) = 'null' then null
    when pg_catalog.jsonb_typeof(value) <> 'number' then 'value_dropped'
    when value::numeric between 0 and 1 then null
    else 'score_clamped'
end;
comment on function bevsession.seed_score_problem(jsonb) is 'The reason seed_score changed a value: score_clamped, value_dropped; null when kept.';
revoke all on function bevsession.seed_score_problem(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_score_problem(jsonb) to session_visitor, service_role;

create function bevsession.seed_count(value jsonb) returns integer
    language sql immutable parallel safe
return case when pg_catalog.jsonb_typeof(value) = 'number'
            then round(greatest(0, least(2147483647, value::numeric)))::integer else 0 end;
comment on function bevsession.seed_count(jsonb) is 'A seed counter as a whole number in [0, 2^31 − 1]; 0 when absent or not a number.';
revoke all on function bevsession.seed_count(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_count(jsonb) to session_visitor, service_role;

create function bevsession.seed_count_problem(value jsonb) returns text
    language sql immutable parallel safe
return case
    when value is null or pg_catalog.jsonb_typeof(value) = 'null' then null
    when pg_catalog.jsonb_typeof(value) <> 'number' then 'value_dropped'
    when value::numeric between 0 and 2147483647 and value::numeric = pg_catalog.trunc(value::numeric) then null
    else 'count_clamped'
end;
comment on function bevsession.seed_count_problem(jsonb) is 'The reason seed_count changed a value: count_clamped, value_dropped; null when kept.';
revoke all on function bevsession.seed_count_problem(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_count_problem(jsonb) to session_visitor, service_role;

create function bevsession.seed_text(value jsonb, max_chars integer) returns text
    language sql immutable parallel safe
return case when pg_catalog.jsonb_typeof(value) = 'string' then pg_catalog.left(value #>> '{}', max_chars) end;
comment on function bevsession.seed_text(jsonb, integer) is 'A seed text cut to max_chars characters; null when absent or not a string.';
revoke all on function bevsession.seed_text(jsonb, integer) from public, anon, authenticated;
grant execute on function bevsession.seed_text(jsonb, integer) to session_visitor, service_role;

create function bevsession.seed_text_problem(value jsonb, max_chars integer) returns text
    language sql immutable parallel safe
return case
    when value is null or pg_catalog.jsonb_typeof(value) = 'null' then null
    when pg_catalog.jsonb_typeof(value) <> 'string' then 'value_dropped'
    when pg_catalog.char_length(value #>> '{}') > max_chars then 'text_truncated'
end;
comment on function bevsession.seed_text_problem(jsonb, integer) is 'The reason seed_text changed a value: text_truncated, value_dropped; null when kept.';
revoke all on function bevsession.seed_text_problem(jsonb, integer) from public, anon, authenticated;
grant execute on function bevsession.seed_text_problem(jsonb, integer) to session_visitor, service_role;

create function bevsession.seed_flag(value jsonb) returns boolean
    language sql immutable parallel safe
return case when pg_catalog.jsonb_typeof(value) = 'boolean' then value::boolean else false end;
comment on function bevsession.seed_flag(jsonb) is 'A seed flag; false when absent or not a boolean.';
revoke all on function bevsession.seed_flag(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_flag(jsonb) to session_visitor, service_role;

create function bevsession.seed_flag_problem(value jsonb) returns text
    language sql immutable parallel safe
return case
    when value is null or pg_catalog.jsonb_typeof(value) in ('null', 'boolean') then null
    else 'value_dropped'
end;
comment on function bevsession.seed_flag_problem(jsonb) is 'The reason seed_flag changed a value: value_dropped; null when kept.';
revoke all on function bevsession.seed_flag_problem(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_flag_problem(jsonb) to session_visitor, service_role;

-- Why PL/pgSQL: a text that is no time is a data exception to catch, not a reason to stop. The
-- seed's rows hold ISO strings (to_jsonb of timestamptz), its cookie Date.now() milliseconds; 0
-- is the seed's "never" (vectors_updated_at).
create function bevsession.seed_timestamp(value jsonb) returns timestamptz
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_at timestamptz;
begin
    if pg_catalog.jsonb_typeof(value) = 'number' then
        if value::numeric > 0 and value::numeric < 1e14 then
            return bevsession.from_ms(value::numeric);
        end if;
        return null;
    elsif pg_catalog.jsonb_typeof(value) = 'string' then
        begin
            v_at := (value #>> '{}')::timestamptz;
        exception when data_exception then
            return null;
        end;
        return case when pg_catalog.isfinite(v_at) then v_at end;
    end if;
    return null;
end
$$;
comment on function bevsession.seed_timestamp(jsonb) is 'A seed time (milliseconds since the epoch, or an ISO string); null when absent, 0 or not a time.';
revoke all on function bevsession.seed_timestamp(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_timestamp(jsonb) to session_visitor, service_role;

-- A list of pain point names: each normalised, duplicates collapsed (a set), the first 32 kept.
create function bevsession.seed_pain_points(source jsonb, out pain_points bevsession.pain_points, out reasons text[])
    language plpgsql immutable
    set search_path = ''
as $$
declare
    v_names text[] := '{}';
    v_item jsonb;
    v_name text;
begin
    reasons := '{}';
    pain_points := '{}';
    if source is null or pg_catalog.jsonb_typeof(source) = 'null' then
        return;
    elsif pg_catalog.jsonb_typeof(source) <> 'array' then
        reasons := array['value_dropped'];
        return;
    end if;
    for v_item in select e from pg_catalog.jsonb_array_elements(source) as e loop
        v_name := bevsession.seed_name(v_item);
        reasons := reasons || bevsession.seed_name_problem(v_item);
        if v_name is not null and v_name <> all (v_names) then
            v_names := v_names || v_name;
        end if;
    end loop;
    if pg_catalog.cardinality(v_names) > 32 then
        reasons := reasons || 'pain_points_trimmed'::text;
        v_names := v_names[1:32];
    end if;
    pain_points := v_names;
    reasons := pg_catalog.array_remove(reasons, null);
end
$$;
comment on function bevsession.seed_pain_points(jsonb) is
    'Seed pain point names as bevsession.pain_points (normalised, a set, the first 32) and the reasons of what changed.';
revoke all on function bevsession.seed_pain_points(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_pain_points(jsonb) to session_visitor, service_role;

-- {name: confidence}: names normalised, confidences clamped, the first 32 names kept.
create function bevsession.seed_confidences(source jsonb, out confidences bevsession.pain_point_confidences, out reasons text[])
    language plpgsql immutable
    set search_path = ''
as $$
declare
    v_result jsonb := '{}';
    v_kept integer := 0;
    v_key text;
    v_value jsonb;
    v_name text;
begin
    reasons := '{}';
    confidences := '{}';
    if source is null or pg_catalog.jsonb_typeof(source) = 'null' then
        return;
    elsif pg_catalog.jsonb_typeof(source) <> 'object' then
        reasons := array['value_dropped'];
        return;
    end if;
    for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(source) as e loop
        v_name := bevsession.seed_identifier(v_key);
        if v_name is null then
            reasons := reasons || 'name_dropped'::text;
        elsif pg_catalog.jsonb_typeof(v_value) <> 'number' then
            reasons := reasons || 'value_dropped'::text;
        elsif not v_result ? v_name and v_kept >= 32 then
            reasons := reasons || 'pain_points_trimmed'::text;
        else
            if not v_result ? v_name then
                v_kept := v_kept + 1;
            end if;
            if v_name <> v_key then
                reasons := reasons || 'name_normalised'::text;
            end if;
            reasons := reasons || bevsession.seed_score_problem(v_value);
            v_result := v_result || pg_catalog.jsonb_build_object(v_name, bevsession.seed_score(v_value)::float8);
        end if;
    end loop;
    confidences := v_result;
    reasons := pg_catalog.array_remove(reasons, null);
end
$$;
comment on function bevsession.seed_confidences(jsonb) is
    'Seed pain point confidences as bevsession.pain_point_confidences (names normalised, clamped, 32 at most) and the reasons.';
revoke all on function bevsession.seed_confidences(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_confidences(jsonb) to session_visitor, service_role;

-- Questions: strings only, each at most 1000 characters, the newest 50.
create function bevsession.seed_questions(source jsonb, out questions bevsession.questions, out reasons text[])
    language plpgsql immutable
    set search_path = ''
as $$
declare
    v_list text[] := '{}';
    v_item jsonb;
begin
    reasons := '{}';
    questions := '{}';
    if source is null or pg_catalog.jsonb_typeof(source) = 'null' then
        return;
    elsif pg_catalog.jsonb_typeof(source) <> 'array' then
        reasons := array['value_dropped'];
        return;
    end if;
    for v_item in select e from pg_catalog.jsonb_array_elements(source) as e loop
        if pg_catalog.jsonb_typeof(v_item) = 'string' then
            v_list := v_list || bevsession.seed_text(v_item, 1000);
        end if;
        reasons := reasons || coalesce(bevsession.seed_text_problem(v_item, 1000),
                                       case when pg_catalog.jsonb_typeof(v_item) = 'null' then 'value_dropped' end);
    end loop;
    if pg_catalog.cardinality(v_list) > 50 then
        reasons := reasons || 'questions_trimmed'::text;
        v_list := v_list[pg_catalog.cardinality(v_list) - 49:];
    end if;
    questions := v_list;
    reasons := pg_catalog.array_remove(reasons, null);
end
$$;
comment on function bevsession.seed_questions(jsonb) is 'Seed questions_asked as bevsession.questions (strings, 1000 characters, the newest 50) and the reasons.';
revoke all on function bevsession.seed_questions(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_questions(jsonb) to session_visitor, service_role;

-- A detection history in this project's shape {value, confidence, strength, evidence,
-- detected_at} (the seed document does not define its DetectionHistory): an entry needs a usable
-- value; absent parts get defaults (strength weak, evidence '', detected_at the time given, the
-- vector's update); detected_at may also be called timestamp; other keys are not kept.
create function bevsession.seed_history(source jsonb, at timestamptz, out history bevsession.detection_history, out reasons text[])
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_entries jsonb := '[]';
    v_item jsonb;
    v_value text;
    v_strength text;
    v_at timestamptz;
begin
    reasons := '{}';
    history := '[]';
    if source is null or pg_catalog.jsonb_typeof(source) = 'null' then
        return;
    elsif pg_catalog.jsonb_typeof(source) <> 'array' then
        reasons := array['value_dropped'];
        return;
    end if;
    for v_item in select e from pg_catalog.jsonb_array_elements(source) as e loop
        v_value := case when pg_catalog.jsonb_typeof(v_item) = 'object' then bevsession.seed_name(v_item -> 'value') end;
        if v_value is null then
            reasons := reasons || 'history_entry_dropped'::text;
            continue;
        end if;
        if v_value <> v_item ->> 'value' then
            reasons := reasons || 'name_normalised'::text;
        end if;
        v_strength := pg_catalog.lower(v_item ->> 'strength');
        if v_strength is null or v_strength <> all (pg_catalog.enum_range(null::bevsession.signal_strength)::text[]) then
            reasons := reasons || case when v_strength is not null then 'value_dropped' end;
            v_strength := 'weak';
        end if;
        v_at := coalesce(bevsession.seed_timestamp(v_item -> 'detected_at'), bevsession.seed_timestamp(v_item -> 'timestamp'), at);
        if v_at > pg_catalog.now() then
            reasons := reasons || 'timestamp_clamped'::text;
            v_at := pg_catalog.now();
        end if;
        reasons := reasons || bevsession.seed_score_problem(v_item -> 'confidence')
                           || bevsession.seed_text_problem(v_item -> 'evidence', 200);
        v_entries := v_entries || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'value',       v_value,
            'confidence',  bevsession.seed_score(v_item -> 'confidence')::float8,
            'strength',    v_strength,
            'evidence',    coalesce(bevsession.seed_text(v_item -> 'evidence', 200), ''),
            'detected_at', coalesce(bevsession.to_ms(v_at), 0)));
    end loop;
    if pg_catalog.jsonb_array_length(v_entries) > 10 then
        reasons := reasons || 'history_trimmed'::text;
        v_entries := pg_catalog.jsonb_path_query_array(v_entries, '$[last - 9 to last]');
    end if;
    history := v_entries;
    reasons := pg_catalog.array_remove(reasons, null);
end
$$;
comment on function bevsession.seed_history(jsonb, timestamptz) is
    'A seed detection history in this project''s entry shape, the newest 10, and the reasons of what changed.';
revoke all on function bevsession.seed_history(jsonb, timestamptz) from public, anon, authenticated;
grant execute on function bevsession.seed_history(jsonb, timestamptz) to session_visitor, service_role;

-- A stable row id: the seed's own when it is a uuid; otherwise derived from the table and the id
-- (or, for a table without ids, from the whole row and its ordinal among equal rows, which the
-- import command adds as "_ordinal"), so a second import recognises the row.
create function bevsession.seed_row_id(kind text, source jsonb) returns uuid
    language sql immutable parallel safe
return coalesce(bevsession.seed_uuid(source ->> 'id'),
                pg_catalog.md5(kind || ':' || coalesce(source ->> 'id', source::text))::uuid);
comment on function bevsession.seed_row_id(text, jsonb) is 'The id a seed row keeps here: its uuid, or one derived from kind and its id (or its content).';
revoke all on function bevsession.seed_row_id(text, jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_row_id(text, jsonb) to session_visitor, service_role;

-- For the answer of adopt_session: how many times each rule fired.
create function bevsession.seed_reason_counts(reasons text[]) returns jsonb
    language sql immutable parallel safe
return (select coalesce(pg_catalog.jsonb_object_agg(r.reason, r.n), '{}')
        from (select u.reason, count(*) as n from pg_catalog.unnest(reasons) as u(reason)
              where u.reason is not null group by u.reason) as r);
comment on function bevsession.seed_reason_counts(text[]) is '{reason: how many times it fired}.';
revoke all on function bevsession.seed_reason_counts(text[]) from public, anon, authenticated;
grant execute on function bevsession.seed_reason_counts(text[]) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 2. A persona, a session: from the seed's shape to a row value (nothing is written here)
-- ---------------------------------------------------------------------------------------------

-- The seed's PersonaScores (the cookie's persona, a persona_snapshot) or a user_personas row: the
-- same names. The row value has no id, session, user or times; the caller sets those. Scores and
-- overall_confidence are kept as the seed computed them (clamped): the next change of the persona
-- recomputes the confidence with this project's formula. A vector whose value is unusable is
-- empty (no confidence): the constraint "an empty vector has no confidence".
create function bevsession.seed_persona(source jsonb, out persona bevsession.user_personas, out reasons text[])
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_source jsonb := source;
    v_vectors jsonb;
    v_updated timestamptz;
    v_part record;
begin
    if v_source is null or pg_catalog.jsonb_typeof(v_source) = 'null' then
        v_source := '{}';
        reasons := '{}';
    elsif pg_catalog.jsonb_typeof(v_source) <> 'object' then
        v_source := '{}';
        reasons := array['value_dropped'];
    else
        reasons := '{}';
    end if;

    -- Why written out, field by field: a snapshot comes with every imported message, and plain
    -- assignments of inlined SQL helpers cost a fraction of a loop of PL/pgSQL calls.
    persona.sales_focus_score      := bevsession.seed_score(v_source -> 'sales_focus_score');
    persona.marketing_focus_score  := bevsession.seed_score(v_source -> 'marketing_focus_score');
    persona.operations_focus_score := bevsession.seed_score(v_source -> 'operations_focus_score');
    persona.compliance_focus_score := bevsession.seed_score(v_source -> 'compliance_focus_score');
    persona.supplier_score         := bevsession.seed_score(v_source -> 'supplier_score');
    persona.distributor_score      := bevsession.seed_score(v_source -> 'distributor_score');
    persona.craft_score            := bevsession.seed_score(v_source -> 'craft_score');
    persona.mid_sized_score        := bevsession.seed_score(v_source -> 'mid_sized_score');
    persona.large_score            := bevsession.seed_score(v_source -> 'large_score');
    persona.overall_confidence     := bevsession.seed_score(v_source -> 'overall_confidence');
    persona.total_interactions     := bevsession.seed_count(v_source -> 'total_interactions');
    reasons := reasons || array[
        bevsession.seed_score_problem(v_source -> 'sales_focus_score'),
        bevsession.seed_score_problem(v_source -> 'marketing_focus_score'),
        bevsession.seed_score_problem(v_source -> 'operations_focus_score'),
        bevsession.seed_score_problem(v_source -> 'compliance_focus_score'),
        bevsession.seed_score_problem(v_source -> 'supplier_score'),
        bevsession.seed_score_problem(v_source -> 'distributor_score'),
        bevsession.seed_score_problem(v_source -> 'craft_score'),
        bevsession.seed_score_problem(v_source -> 'mid_sized_score'),
        bevsession.seed_score_problem(v_source -> 'large_score'),
        bevsession.seed_score_problem(v_source -> 'overall_confidence'),
        bevsession.seed_count_problem(v_source -> 'total_interactions')];

    -- (empty lists, the usual case, need no call)
    persona.pain_points_detected := '{}';
    persona.pain_points_confidence := '{}';
    persona.questions_asked := '{}';
    if coalesce(v_source -> 'pain_points_detected', '[]') not in ('[]', 'null') then
        select * into v_part from bevsession.seed_pain_points(v_source -> 'pain_points_detected');
        persona.pain_points_detected := v_part.pain_points;
        reasons := reasons || v_part.reasons;
    end if;
    if coalesce(v_source -> 'pain_points_confidence', '{}') not in ('{}', 'null') then
        select * into v_part from bevsession.seed_confidences(v_source -> 'pain_points_confidence');
        persona.pain_points_confidence := v_part.confidences;
        reasons := reasons || v_part.reasons;
    end if;
    if coalesce(v_source -> 'questions_asked', '[]') not in ('[]', 'null') then
        select * into v_part from bevsession.seed_questions(v_source -> 'questions_asked');
        persona.questions_asked := v_part.questions;
        reasons := reasons || v_part.reasons;
    end if;

    v_vectors := v_source -> 'detection_vectors';
    if v_vectors is null or pg_catalog.jsonb_typeof(v_vectors) = 'null' then
        v_vectors := '{}';
    elsif pg_catalog.jsonb_typeof(v_vectors) <> 'object' then
        reasons := reasons || 'value_dropped'::text;
        v_vectors := '{}';
    end if;
    v_updated := bevsession.seed_timestamp(v_vectors -> 'vectors_updated_at');
    if v_updated > pg_catalog.now() then
        reasons := reasons || 'timestamp_clamped'::text;
        v_updated := pg_catalog.now();
    end if;
    persona.vectors_updated_at := v_updated;

    persona.functional_role := bevsession.seed_name(v_vectors -> 'functional_role');
    persona.org_type        := bevsession.seed_name(v_vectors -> 'org_type');
    persona.org_size        := bevsession.seed_name(v_vectors -> 'org_size');
    persona.product_focus   := bevsession.seed_name(v_vectors -> 'product_focus');
    persona.functional_role_confidence := case when persona.functional_role is null then 0
                                               else bevsession.seed_score(v_vectors -> 'functional_role_confidence') end;
    persona.org_type_confidence        := case when persona.org_type is null then 0
                                               else bevsession.seed_score(v_vectors -> 'org_type_confidence') end;
    persona.org_size_confidence        := case when persona.org_size is null then 0
                                               else bevsession.seed_score(v_vectors -> 'org_size_confidence') end;
    persona.product_focus_confidence   := case when persona.product_focus is null then 0
                                               else bevsession.seed_score(v_vectors -> 'product_focus_confidence') end;
    reasons := reasons || array[
        bevsession.seed_name_problem(v_vectors -> 'functional_role'),
        bevsession.seed_name_problem(v_vectors -> 'org_type'),
        bevsession.seed_name_problem(v_vectors -> 'org_size'),
        bevsession.seed_name_problem(v_vectors -> 'product_focus'),
        case when persona.functional_role is not null then bevsession.seed_score_problem(v_vectors -> 'functional_role_confidence') end,
        case when persona.org_type is not null then bevsession.seed_score_problem(v_vectors -> 'org_type_confidence') end,
        case when persona.org_size is not null then bevsession.seed_score_problem(v_vectors -> 'org_size_confidence') end,
        case when persona.product_focus is not null then bevsession.seed_score_problem(v_vectors -> 'product_focus_confidence') end];

    persona.functional_role_history := '[]';
    persona.org_type_history := '[]';
    persona.org_size_history := '[]';
    persona.product_focus_history := '[]';
    if coalesce(v_vectors -> 'functional_role_history', '[]') not in ('[]', 'null') then
        select * into v_part from bevsession.seed_history(v_vectors -> 'functional_role_history', coalesce(v_updated, pg_catalog.now()));
        persona.functional_role_history := v_part.history;
        reasons := reasons || v_part.reasons;
    end if;
    if coalesce(v_vectors -> 'org_type_history', '[]') not in ('[]', 'null') then
        select * into v_part from bevsession.seed_history(v_vectors -> 'org_type_history', coalesce(v_updated, pg_catalog.now()));
        persona.org_type_history := v_part.history;
        reasons := reasons || v_part.reasons;
    end if;
    if coalesce(v_vectors -> 'org_size_history', '[]') not in ('[]', 'null') then
        select * into v_part from bevsession.seed_history(v_vectors -> 'org_size_history', coalesce(v_updated, pg_catalog.now()));
        persona.org_size_history := v_part.history;
        reasons := reasons || v_part.reasons;
    end if;
    if coalesce(v_vectors -> 'product_focus_history', '[]') not in ('[]', 'null') then
        select * into v_part from bevsession.seed_history(v_vectors -> 'product_focus_history', coalesce(v_updated, pg_catalog.now()));
        persona.product_focus_history := v_part.history;
        reasons := reasons || v_part.reasons;
    end if;
    reasons := pg_catalog.array_remove(reasons, null);
end
$$;
comment on function bevsession.seed_persona(jsonb) is
    'The seed''s PersonaScores (cookie, snapshot) or user_personas row as a persona row value (no id, session or times), and the reasons of what the rules changed.';
revoke all on function bevsession.seed_persona(jsonb) from public, anon, authenticated;
grant execute on function bevsession.seed_persona(jsonb) to session_visitor, service_role;

-- The seed cookie's SessionData as a session row value (and its persona). Times are clamped to
-- now (a cookie cannot claim a future creation, which would stretch the absolute lifetime) and
-- the activity to [creation, now].
create function bevsession.seed_session(
    cookie jsonb,
    session_id uuid,
    out session bevsession.sessions,
    out persona bevsession.user_personas,
    out reasons text[]
)
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_now timestamptz := pg_catalog.now();
    v_raw jsonb;
    v_at timestamptz;
    v_part record;
begin
    reasons := '{}';
    session.id := seed_session.session_id;

    v_raw := cookie -> 'userId';
    session.user_id := case when pg_catalog.jsonb_typeof(v_raw) = 'string' then bevsession.seed_uuid(v_raw #>> '{}') end;
    if session.user_id is null and pg_catalog.jsonb_typeof(v_raw) <> 'null' then
        reasons := reasons || 'value_dropped'::text;
    end if;

    session.created_at := bevsession.seed_timestamp(cookie -> 'createdAt');
    if session.created_at is null then
        reasons := reasons || 'timestamp_defaulted'::text;
        session.created_at := v_now;
    elsif session.created_at > v_now then
        reasons := reasons || 'timestamp_clamped'::text;
        session.created_at := v_now;
    end if;
    v_at := bevsession.seed_timestamp(cookie -> 'lastActivityAt');
    session.last_activity_at := least(greatest(coalesce(v_at, session.created_at), session.created_at), v_now);
    if v_at is distinct from session.last_activity_at and v_at is not null then
        reasons := reasons || 'timestamp_clamped'::text;
    end if;
    -- (least() ignores nulls: an absent time must stay absent, not become now)
    v_at := bevsession.seed_timestamp(cookie -> 'lastMessageAt');
    session.last_message_at := case when v_at is not null then least(v_at, v_now) end;
    v_at := bevsession.seed_timestamp(cookie -> 'lastBrochureGeneratedAt');
    session.last_brochure_generated_at := case when v_at is not null then least(v_at, v_now) end;

    session.last_message := bevsession.seed_text(cookie -> 'lastMessage', 8000);
    session.message_count := bevsession.seed_count(cookie -> 'messageCount');
    reasons := reasons || case bevsession.seed_text_problem(cookie -> 'lastMessage', 8000)
                              when 'text_truncated' then 'message_truncated'
                              else bevsession.seed_text_problem(cookie -> 'lastMessage', 8000) end
                       || bevsession.seed_count_problem(cookie -> 'messageCount');

    v_raw := cookie -> 'currentMode';
    session.current_mode := 'fresh';
    if pg_catalog.jsonb_typeof(v_raw) = 'string'
       and v_raw #>> '{}' = any (pg_catalog.enum_range(null::bevsession.session_mode)::text[]) then
        session.current_mode := (v_raw #>> '{}')::bevsession.session_mode;
    elsif pg_catalog.jsonb_typeof(v_raw) <> 'null' then
        reasons := reasons || 'value_dropped'::text;
    end if;

    session.has_completed_onboarding := bevsession.seed_flag(cookie -> 'hasCompletedOnboarding');
    session.has_brochure := bevsession.seed_flag(cookie -> 'hasBrochure');
    session.is_data_connected := bevsession.seed_flag(cookie -> 'isDataConnected');
    reasons := reasons || bevsession.seed_flag_problem(cookie -> 'hasCompletedOnboarding')
                       || bevsession.seed_flag_problem(cookie -> 'hasBrochure')
                       || bevsession.seed_flag_problem(cookie -> 'isDataConnected');

    v_raw := cookie -> 'lastGeneratedBrochureId';
    if pg_catalog.jsonb_typeof(v_raw) = 'string' and pg_catalog.char_length(v_raw #>> '{}') <= 200 then
        session.last_generated_brochure_id := v_raw #>> '{}';
    elsif pg_catalog.jsonb_typeof(v_raw) <> 'null' then
        reasons := reasons || 'value_dropped'::text;
    end if;

    select * into v_part from bevsession.seed_persona(cookie -> 'persona');
    persona := v_part.persona;
    persona.user_id := session.user_id;
    reasons := pg_catalog.array_remove(reasons || v_part.reasons, null);
end
$$;
comment on function bevsession.seed_session(jsonb, uuid) is
    'A seed cookie''s SessionData as a session and persona row value (nothing written), and the reasons of what the rules changed.';
revoke all on function bevsession.seed_session(jsonb, uuid) from public, anon, authenticated;
grant execute on function bevsession.seed_session(jsonb, uuid) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 3. Where imported sessions are recorded
-- ---------------------------------------------------------------------------------------------
-- Why a table: the database wins over the seed — a session that exists here and did not come
-- from an import (a visitor this server created, one adopted from a cookie) receives nothing from
-- a later import; one that did keeps receiving the seed's new rows while both apps run. And the
-- seed kept some of a visitor only in its cookie (the detection vectors, the mode, the flags):
-- the first cookie that names an imported session completes it once (completed_at).

create table bevsession.seed_imports (
    session_id    uuid primary key references bevsession.sessions (id) on delete cascade,
    imported_at   timestamptz not null default now(),
    completed_at  timestamptz
);
comment on table bevsession.seed_imports is
    'Sessions created by bevsession import-seed; completed_at: when the first seed cookie naming it added what only the cookie had.';

alter table bevsession.seed_imports enable row level security;

create policy "Visitors can read the import record of their own session"
    on bevsession.seed_imports for select to session_visitor
    using (session_id = (select bevsession.current_session_id()));

create policy "Visitors can complete the import record of their own session"
    on bevsession.seed_imports for update to session_visitor
    using (session_id = (select bevsession.current_session_id()))
    with check (session_id = (select bevsession.current_session_id()));

revoke all on bevsession.seed_imports from public, anon, authenticated;
grant all on bevsession.seed_imports to service_role;
grant select on bevsession.seed_imports to session_visitor;
grant update (completed_at) on bevsession.seed_imports to session_visitor;

-- Adoption writes a session row with the cookie's counters, flags and times: a visitor may now
-- start its session with those columns, never in the future (which would stretch its lifetime).
grant insert (user_id, created_at, last_activity_at, last_message_at, last_message, message_count,
              current_mode, has_completed_onboarding, has_brochure, is_data_connected,
              last_generated_brochure_id, last_brochure_generated_at)
    on bevsession.sessions to session_visitor;

alter policy "Visitors can start their own session" on bevsession.sessions
    with check (id = (select bevsession.current_session_id())
                and revoked_at is null
                and created_at <= pg_catalog.now()
                and last_activity_at <= pg_catalog.now());


-- ---------------------------------------------------------------------------------------------
-- 4. API: adopt_session
-- ---------------------------------------------------------------------------------------------
-- getSession() for a visitor who arrives with a cookie, in one call:
--   * no row for the session: it is created from the cookie's SessionData (seed_session), checked
--     against the session policy first (PT410 when the cookie is past it), never from defaults;
--   * a row: the database wins, as for get_session, its clock included — except that with
--     count_cookie_activity (the caller says the cookie was sealed by the other app sharing the
--     visitor, the seed's Node app, which saw requests this database did not) the cookie's
--     lastActivityAt counts as activity; and an imported session's first cookie adds what the
--     seed kept only there: the detection vectors with their histories (when the persona has
--     none), the mode, the flags and the brochure;
--   * revoked stays revoked (PT403); the absolute lifetime runs from the stored creation.
-- Race-safe like get_session: two first requests insert once, the other reads the row.
-- Returns {session, persona, created, adopted, dropped: {reason: count}}.

create function public.adopt_session(cookie jsonb, count_cookie_activity boolean default false) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_session_id uuid := bevsession.require_session_id();
    v_session bevsession.sessions;
    v_persona bevsession.user_personas;
    v_built record;
    v_adopted bevsession.user_personas;
    v_activity timestamptz;
    v_created boolean := false;
    v_adopted_any boolean := false;
    v_reasons text[] := '{}';
begin
    if pg_catalog.jsonb_typeof(cookie) is distinct from 'object' then
        perform bevsession.invalid_argument('cookie', 'must be a JSON object (the cookie''s SessionData)');
    end if;
    if pg_catalog.jsonb_typeof(cookie -> 'sessionId') = 'string'
       and bevsession.seed_uuid(cookie ->> 'sessionId') is distinct from v_session_id then
        perform bevsession.invalid_argument('cookie.sessionId', 'must be the calling session''s id');
    end if;

    select * into v_session from bevsession.sessions as s where s.id = v_session_id for no key update;
    if not found then
        select * into v_built from bevsession.seed_session(cookie, v_session_id);
        perform bevsession.check_live(v_built.session, false);
        insert into bevsession.sessions (
            id, user_id, created_at, last_activity_at, last_message_at, last_message, message_count,
            current_mode, has_completed_onboarding, has_brochure, is_data_connected,
            last_generated_brochure_id, last_brochure_generated_at)
        values (
            v_session_id, (v_built.session).user_id, (v_built.session).created_at, pg_catalog.now(),
            (v_built.session).last_message_at, (v_built.session).last_message, (v_built.session).message_count,
            (v_built.session).current_mode, (v_built.session).has_completed_onboarding,
            (v_built.session).has_brochure, (v_built.session).is_data_connected,
            (v_built.session).last_generated_brochure_id, (v_built.session).last_brochure_generated_at)
        on conflict (id) do nothing
        returning * into v_session;
        if found then
            v_created := true;
            v_adopted_any := true;
            v_reasons := v_built.reasons;
            insert into bevsession.user_personas (session_id, user_id) values (v_session_id, v_session.user_id)
                returning * into v_persona;
            v_adopted := v_built.persona;
            v_adopted.id := v_persona.id;
            v_adopted.session_id := v_persona.session_id;
            v_adopted.user_id := v_persona.user_id;
            v_adopted.created_at := v_persona.created_at;
            v_adopted.last_updated := v_persona.last_updated;  -- created with the session: no change
            v_persona := bevsession.save_persona(v_adopted);
        else  -- a concurrent first request created it: from here on it is an existing session
            select * into v_session from bevsession.sessions as s where s.id = v_session_id for no key update;
        end if;
    end if;

    if not v_created then
        if count_cookie_activity then
            v_activity := bevsession.seed_timestamp(cookie -> 'lastActivityAt');
            v_activity := case when v_activity is not null then least(v_activity, pg_catalog.now()) end;
            v_session.last_activity_at := greatest(v_session.last_activity_at, v_activity);
        end if;
        v_session := bevsession.check_live(v_session, false);
        update bevsession.seed_imports as i set completed_at = pg_catalog.now()
            where i.session_id = v_session_id and i.completed_at is null;
        if found then
            select * into v_built from bevsession.seed_session(cookie, v_session_id);
            v_reasons := v_built.reasons;
            v_adopted_any := true;
            v_persona := bevsession.persona_of(v_session);
            if v_persona.functional_role is null and v_persona.org_type is null and v_persona.org_size is null
               and v_persona.product_focus is null and v_persona.vectors_updated_at is null then
                v_adopted := v_persona;
                v_adopted.functional_role := (v_built.persona).functional_role;
                v_adopted.functional_role_confidence := (v_built.persona).functional_role_confidence;
                v_adopted.functional_role_history := (v_built.persona).functional_role_history;
                v_adopted.org_type := (v_built.persona).org_type;
                v_adopted.org_type_confidence := (v_built.persona).org_type_confidence;
                v_adopted.org_type_history := (v_built.persona).org_type_history;
                v_adopted.org_size := (v_built.persona).org_size;
                v_adopted.org_size_confidence := (v_built.persona).org_size_confidence;
                v_adopted.org_size_history := (v_built.persona).org_size_history;
                v_adopted.product_focus := (v_built.persona).product_focus;
                v_adopted.product_focus_confidence := (v_built.persona).product_focus_confidence;
                v_adopted.product_focus_history := (v_built.persona).product_focus_history;
                v_adopted.vectors_updated_at := (v_built.persona).vectors_updated_at;
                v_adopted.last_updated := pg_catalog.now();
                v_persona := bevsession.save_persona(v_adopted);
            end if;
            update bevsession.sessions as s set
                last_activity_at           = pg_catalog.now(),
                current_mode               = (v_built.session).current_mode,
                has_completed_onboarding   = (v_built.session).has_completed_onboarding,
                has_brochure               = (v_built.session).has_brochure,
                is_data_connected          = (v_built.session).is_data_connected,
                last_generated_brochure_id = coalesce(s.last_generated_brochure_id, (v_built.session).last_generated_brochure_id),
                last_brochure_generated_at = coalesce(s.last_brochure_generated_at, (v_built.session).last_brochure_generated_at)
            where s.id = v_session_id
            returning * into v_session;
        else
            update bevsession.sessions as s set last_activity_at = pg_catalog.now()
                where s.id = v_session_id
                returning * into v_session;
        end if;
    end if;

    return pg_catalog.jsonb_build_object(
        'session', bevsession.session_json(v_session),
        'persona', bevsession.persona_json(coalesce(v_persona, bevsession.persona_of(v_session))),
        'created', v_created,
        'adopted', v_adopted_any,
        'dropped', bevsession.seed_reason_counts(v_reasons));
end
$$;
comment on function public.adopt_session(jsonb, boolean) is
    'get_session for a visitor with a cookie: creates a missing session from the cookie''s SessionData (validated, never defaults), completes an imported one once; otherwise as get_session (count_cookie_activity: the cookie''s lastActivityAt, from the other app, counts). Returns {session, persona, created, adopted, dropped: {reason: count}}.';
revoke execute on function public.adopt_session(jsonb, boolean) from public, anon, authenticated;
grant execute on function public.adopt_session(jsonb, boolean) to session_visitor, service_role;


-- ---------------------------------------------------------------------------------------------
-- 5. API for the import (service_role): one function per seed table, one batch per call
-- ---------------------------------------------------------------------------------------------

-- The arguments every import function takes, checked in one place.
create function bevsession.seed_batch_of(seed_rows jsonb, started_at timestamptz)
    returns bevsession.seed_batch
    language plpgsql stable
    set search_path = ''
as $$
declare
    v_rule text;
    v_rows bevsession.seed_batch;
begin
    begin
        v_rows := seed_rows;
    exception when check_violation then
        get stacked diagnostics v_rule = constraint_name;
        perform bevsession.refuse('seed_rows', v_rule);
    end;
    if v_rows is null or started_at is null then
        perform bevsession.invalid_argument(case when v_rows is null then 'seed_rows' else 'started_at' end, 'is required');
    end if;
    return v_rows;
end
$$;
comment on function bevsession.seed_batch_of(jsonb, timestamptz) is
    'The batch of an import call, checked: 22023 "seed_rows: …" or "started_at: is required".';
revoke all on function bevsession.seed_batch_of(jsonb, timestamptz) from public;
grant execute on function bevsession.seed_batch_of(jsonb, timestamptz) to session_visitor, service_role;
-- service_role only, like purge_sessions: they write across sessions.
-- `bevsession import-seed` reads the seed's tables (any database, any schema) and calls these
-- with each batch as a JSON array of rows (to_jsonb of the seed's row: absent columns are absent
-- keys, so they take their defaults), in this order: sessions, personas, messages, signals. Each
-- call is one set-based statement and one transaction; a second import of the same rows finds
-- them by id and inserts nothing. Every call answers
--   {read, imported, skipped: {reason: rows}, adjusted: {reason: rows}}
-- where read = imported + already imported + skipped, and adjusted counts the rows each rule
-- changed among those this call stored. Why "already imported" is looked up by id (an index
-- probe per row) rather than read back from the insert: a CTE has no statistics, and matching
-- its rows against another CTE plans as a quadratic loop. A row goes to an imported session only (seed_imports): one that exists here for
-- another reason keeps what it has (session_exists), a revoked or forgotten one gets nothing
-- (session_revoked: a visitor who asked to be forgotten stays forgotten).

-- Sessions: rows {session_id, first_at, last_at}, one per distinct seed session_id (the command
-- groups the three tables): created at the earliest row, last active at the latest.
create function public.import_seed_sessions(seed_rows jsonb, started_at timestamptz) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_rows bevsession.seed_batch := bevsession.seed_batch_of(seed_rows, started_at);
    v_result jsonb;
begin

    with src as (
        select e.ord, e.value ->> 'session_id' as raw_id,
               bevsession.seed_uuid(e.value ->> 'session_id') as id,
               bevsession.seed_timestamp(e.value -> 'first_at') as first_at,
               bevsession.seed_timestamp(e.value -> 'last_at') as last_at
        from pg_catalog.jsonb_array_elements(v_rows) with ordinality as e(value, ord)
    ),
    checked as (
        select s.ord, s.id, t.id is not null as known,
               case when s.id is null then 'session_id_not_uuid'
                    when t.revoked_at is not null then 'session_revoked'
                    when t.id is not null and i.session_id is null then 'session_exists'
               end as skip,
               pg_catalog.array_remove(array[
                   case when s.id::text <> s.raw_id then 'session_id_normalised' end,
                   case when s.first_at is null then 'timestamp_defaulted' end,
                   case when greatest(s.first_at, s.last_at) > pg_catalog.now() then 'timestamp_clamped' end], null) as adjust,
               least(coalesce(s.first_at, started_at), pg_catalog.now()) as first_at,
               least(greatest(coalesce(s.last_at, s.first_at, started_at), coalesce(s.first_at, started_at)),
                     pg_catalog.now()) as last_at
        from src as s
        left join bevsession.sessions as t on t.id = s.id
        left join bevsession.seed_imports as i on i.session_id = s.id
    ),
    grouped as (
        select c.id, pg_catalog.min(c.first_at) as first_at, pg_catalog.max(c.last_at) as last_at, pg_catalog.bool_or(c.known) as known
        from checked as c where c.skip is null group by c.id
    ),
    inserted as (
        insert into bevsession.sessions (id, created_at, last_activity_at)
        select g.id, g.first_at, g.last_at from grouped as g where not g.known
        order by g.first_at
        on conflict (id) do nothing
        returning id
    ),
    recorded as (
        insert into bevsession.seed_imports (session_id) select i.id from inserted as i
        returning session_id
    ),
    extended as (
        update bevsession.sessions as t
        set created_at = least(t.created_at, g.first_at), last_activity_at = greatest(t.last_activity_at, g.last_at)
        from grouped as g
        where g.known and t.id = g.id and (g.first_at < t.created_at or g.last_at > t.last_activity_at)
        returning t.id
    )
    select pg_catalog.jsonb_build_object(
        'read',     (select count(*) from src),
        'imported', (select count(*) from recorded),
        'skipped',  (select coalesce(pg_catalog.jsonb_object_agg(k.skip, k.n), '{}')
                     from (select c.skip, count(*) as n from checked as c where c.skip is not null group by c.skip) as k),
        'adjusted', (select coalesce(pg_catalog.jsonb_object_agg(a.reason, a.n), '{}')
                     from (select r.reason, count(*) as n
                           from checked as c cross join pg_catalog.unnest(c.adjust) as r(reason)
                           where c.skip is null and not c.known
                           group by r.reason) as a),
        'extended', (select count(*) from extended))
    into v_result;
    return v_result;
end
$$;
comment on function public.import_seed_sessions(jsonb, timestamptz) is
    'Import: one session per seed session_id ({session_id, first_at, last_at} rows), recorded in seed_imports. Returns {read, imported, skipped, adjusted, extended}.';
revoke execute on function public.import_seed_sessions(jsonb, timestamptz) from public, anon, authenticated, session_visitor;
grant execute on function public.import_seed_sessions(jsonb, timestamptz) to service_role;

-- Personas: the seed's user_personas rows. One per session: a second one for the same session (a
-- session_id spelled twice) or one for a session that already has a persona is persona_exists.
create function public.import_seed_personas(seed_rows jsonb, started_at timestamptz) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_rows bevsession.seed_batch := bevsession.seed_batch_of(seed_rows, started_at);
    v_result jsonb;
begin

    with src as (
        select e.ord, e.value as r, bevsession.seed_uuid(e.value ->> 'session_id') as session_id,
               bevsession.seed_row_id('user_personas', e.value) as id
        from pg_catalog.jsonb_array_elements(v_rows) with ordinality as e(value, ord)
    ),
    checked as (
        select s.*,
               case when s.session_id is null then 'session_id_not_uuid'
                    when t.id is null then 'session_missing'
                    when t.revoked_at is not null then 'session_revoked'
                    when i.session_id is null then 'session_exists'
                    when same.id is not null then null                   -- imported before (already)
                    when other.id is not null then 'persona_exists'
                    when pg_catalog.row_number() over (partition by s.session_id order by s.ord) > 1 then 'persona_exists'
               end as skip,
               same.id is not null as already
        from src as s
        left join bevsession.sessions as t on t.id = s.session_id
        left join bevsession.seed_imports as i on i.session_id = s.session_id
        left join bevsession.user_personas as same on same.id = s.id
        left join bevsession.user_personas as other on other.session_id = s.session_id and other.id <> s.id
    ),
    shaped as (
        select c.ord, c.id, c.session_id, p.persona,
               bevsession.seed_uuid(c.r ->> 'user_id') as user_id,
               least(coalesce(bevsession.seed_timestamp(c.r -> 'created_at'), started_at), pg_catalog.now()) as created_at,
               bevsession.seed_timestamp(c.r -> 'last_updated') as last_updated,
               p.reasons || pg_catalog.array_remove(array[
                   case when c.r ->> 'session_id' <> c.session_id::text then 'session_id_normalised' end,
                   case when c.r ? 'id' and bevsession.seed_uuid(c.r ->> 'id') is null then 'id_derived' end,
                   case when bevsession.seed_uuid(c.r ->> 'user_id') is null and c.r ->> 'user_id' is not null then 'value_dropped' end,
                   case when bevsession.seed_timestamp(c.r -> 'created_at') is null then 'timestamp_defaulted' end,
                   case when bevsession.seed_timestamp(c.r -> 'created_at') > pg_catalog.now()
                          or bevsession.seed_timestamp(c.r -> 'last_updated') > pg_catalog.now() then 'timestamp_clamped' end], null) as adjust
        from checked as c
        cross join lateral bevsession.seed_persona(c.r) as p
        where c.skip is null and not c.already
    ),
    inserted as (
        insert into bevsession.user_personas (
            id, user_id, session_id,
            sales_focus_score, marketing_focus_score, operations_focus_score, compliance_focus_score,
            supplier_score, distributor_score, craft_score, mid_sized_score, large_score,
            pain_points_detected, pain_points_confidence, overall_confidence, total_interactions, questions_asked,
            functional_role, functional_role_confidence, functional_role_history,
            org_type, org_type_confidence, org_type_history,
            org_size, org_size_confidence, org_size_history,
            product_focus, product_focus_confidence, product_focus_history,
            vectors_updated_at, last_updated, created_at)
        select sh.id, sh.user_id, sh.session_id,
               (sh.persona).sales_focus_score, (sh.persona).marketing_focus_score, (sh.persona).operations_focus_score,
               (sh.persona).compliance_focus_score, (sh.persona).supplier_score, (sh.persona).distributor_score,
               (sh.persona).craft_score, (sh.persona).mid_sized_score, (sh.persona).large_score,
               (sh.persona).pain_points_detected, (sh.persona).pain_points_confidence, (sh.persona).overall_confidence,
               (sh.persona).total_interactions, (sh.persona).questions_asked,
               (sh.persona).functional_role, (sh.persona).functional_role_confidence, (sh.persona).functional_role_history,
               (sh.persona).org_type, (sh.persona).org_type_confidence, (sh.persona).org_type_history,
               (sh.persona).org_size, (sh.persona).org_size_confidence, (sh.persona).org_size_history,
               (sh.persona).product_focus, (sh.persona).product_focus_confidence, (sh.persona).product_focus_history,
               (sh.persona).vectors_updated_at,
               greatest(sh.created_at, least(coalesce(sh.last_updated, sh.created_at), pg_catalog.now())),
               sh.created_at
        from shaped as sh
        on conflict do nothing
        returning id
    )
    select pg_catalog.jsonb_build_object(
        'read',     (select count(*) from src),
        'imported', (select count(*) from inserted),
        'skipped',  (select coalesce(pg_catalog.jsonb_object_agg(k.skip, k.n), '{}')
                     from (select c.skip, count(*) as n from checked as c where c.skip is not null group by c.skip) as k),
        'adjusted', (select coalesce(pg_catalog.jsonb_object_agg(a.reason, a.n), '{}')
                     from (select r.reason, count(distinct sh.ord) as n
                           from shaped as sh cross join pg_catalog.unnest(sh.adjust) as r(reason)
                           group by r.reason) as a))
    into v_result;
    return v_result;
end
$$;
comment on function public.import_seed_personas(jsonb, timestamptz) is
    'Import: the seed''s user_personas rows (scores, pain points, confidences, questions, interaction counts kept; rules applied). Returns {read, imported, skipped, adjusted}.';
revoke execute on function public.import_seed_personas(jsonb, timestamptz) from public, anon, authenticated, session_visitor;
grant execute on function public.import_seed_personas(jsonb, timestamptz) to service_role;

-- Messages: the seed's conversation_history rows, stored in created_at order (the history's seq
-- follows it), each counted on its session (message_count counts both roles, as here; the newest
-- becomes last_message). A snapshot is normalised to this project's persona shape.
create function public.import_seed_messages(seed_rows jsonb, started_at timestamptz) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_rows bevsession.seed_batch := bevsession.seed_batch_of(seed_rows, started_at);
    v_result jsonb;
begin

    with src as (
        select e.ord, e.value as r, bevsession.seed_uuid(e.value ->> 'session_id') as session_id,
               pg_catalog.lower(pg_catalog.btrim(e.value ->> 'message_role')) as role,
               bevsession.seed_timestamp(e.value -> 'created_at') as at,
               bevsession.seed_row_id('conversation_history', e.value) as id
        from pg_catalog.jsonb_array_elements(v_rows) with ordinality as e(value, ord)
    ),
    checked as (
        select s.*,
               case when s.session_id is null then 'session_id_not_uuid'
                    when t.id is null then 'session_missing'
                    when t.revoked_at is not null then 'session_revoked'
                    when i.session_id is null then 'session_exists'
                    when s.role is null or s.role <> all (pg_catalog.enum_range(null::bevsession.message_role)::text[]) then 'unknown_role'
                    when pg_catalog.jsonb_typeof(s.r -> 'message_content') is distinct from 'string' then 'content_missing'
               end as skip,
               done.id is not null as already
        from src as s
        left join bevsession.sessions as t on t.id = s.session_id
        left join bevsession.seed_imports as i on i.session_id = s.session_id
        left join bevsession.conversation_history as done on done.id = s.id
    ),
    -- Why once per distinct snapshot: a reply is stored with its turn's snapshot, and a persona
    -- that did not move gives equal snapshots (the command sends a session's messages together).
    -- The first row of each equal group normalises it, the window hands it to the others: no
    -- join (a CTE has no statistics, and a nested loop over jsonb would be quadratic).
    -- (first_value() evaluates its argument once per row, on the frame's head: the normalising
    -- is done a step before, for the first rows only, and the window only copies its result)
    firsts as materialized (
        select c.*, pg_catalog.row_number() over (partition by c.r -> 'persona_snapshot' order by c.ord) = 1 as first
        from checked as c
        where c.skip is null and not c.already
    ),
    own as materialized (
        select f.*,
               case when f.first and pg_catalog.jsonb_typeof(f.r -> 'persona_snapshot') = 'object' then
                   (select pg_catalog.jsonb_build_object('snapshot', bevsession.persona_json(sp.persona),
                                                         'changed', pg_catalog.cardinality(sp.reasons) > 0)
                    from bevsession.seed_persona(f.r -> 'persona_snapshot') as sp)
               end as own_norm
        from firsts as f
    ),
    normalised as materialized (
        select o.*,
               pg_catalog.first_value(o.own_norm) over (partition by o.r -> 'persona_snapshot' order by o.first desc) as norm
        from own as o
    ),
    shaped as (
        select c.ord, c.session_id, c.id,
               bevsession.seed_uuid(c.r ->> 'user_id') as user_id,
               c.role::bevsession.message_role as role,
               pg_catalog.left(c.r ->> 'message_content', 8000) as content,
               c.norm -> 'snapshot' as snapshot,
               pp.pain_points,
               case when pg_catalog.octet_length((c.r -> 'ui_specification')::text) <= 262144
                    then nullif(c.r -> 'ui_specification', 'null'::jsonb) end as ui,
               bevsession.seed_name(c.r -> 'generation_mode') as mode,
               bevsession.seed_text(c.r -> 'estimated_read_time', 20) as read_time,
               least(coalesce(c.at, started_at), pg_catalog.now()) as created_at,
               pp.reasons || pg_catalog.array_remove(array[
                   case when c.r ->> 'session_id' <> c.session_id::text then 'session_id_normalised' end,
                   case when c.r ? 'id' and bevsession.seed_uuid(c.r ->> 'id') is null then 'id_derived' end,
                   case when bevsession.seed_uuid(c.r ->> 'user_id') is null and c.r ->> 'user_id' is not null then 'value_dropped' end,
                   case when c.r ->> 'message_role' <> c.role then 'role_normalised' end,
                   case when pg_catalog.char_length(c.r ->> 'message_content') > 8000 then 'message_truncated' end,
                   case when (c.norm ->> 'changed')::boolean then 'snapshot_normalised'
                        when pg_catalog.jsonb_typeof(c.r -> 'persona_snapshot') not in ('object', 'null') then 'snapshot_dropped' end,
                   case when pg_catalog.octet_length((c.r -> 'ui_specification')::text) > 262144 then 'ui_specification_dropped' end,
                   bevsession.seed_name_problem(c.r -> 'generation_mode'),
                   bevsession.seed_text_problem(c.r -> 'estimated_read_time', 20),
                   case when c.at is null then 'timestamp_defaulted'
                        when c.at > pg_catalog.now() then 'timestamp_clamped' end], null) as adjust
        from normalised as c
        cross join lateral bevsession.seed_pain_points(c.r -> 'pain_points_inferred') as pp
    ),
    inserted as (
        insert into bevsession.conversation_history (
            id, session_id, user_id, message_role, message_content, persona_snapshot, pain_points_inferred,
            ui_specification, generation_mode, estimated_read_time, created_at)
        select sh.id, sh.session_id, sh.user_id, sh.role, sh.content, sh.snapshot, sh.pain_points,
               sh.ui, sh.mode, sh.read_time, sh.created_at
        from shaped as sh
        order by sh.created_at, sh.ord
        on conflict (id) do nothing
        returning id, session_id, created_at, seq, message_content
    ),
    per_session as (
        select i.session_id, count(*) as n, pg_catalog.max(i.created_at) as newest_at,
               (pg_catalog.array_agg(i.message_content order by i.created_at desc, i.seq desc))[1] as newest
        from inserted as i
        group by i.session_id
    ),
    counted as (
        update bevsession.sessions as t set
            message_count    = t.message_count + p.n,
            last_message     = case when t.last_message_at is null or p.newest_at >= t.last_message_at
                                    then p.newest else t.last_message end,
            last_message_at  = greatest(t.last_message_at, p.newest_at),
            last_activity_at = greatest(t.last_activity_at, p.newest_at)
        from per_session as p
        where t.id = p.session_id
        returning t.id
    )
    select pg_catalog.jsonb_build_object(
        'read',     (select count(*) from src),
        'imported', (select count(*) from inserted),
        'skipped',  (select coalesce(pg_catalog.jsonb_object_agg(k.skip, k.n), '{}')
                     from (select c.skip, count(*) as n from checked as c where c.skip is not null group by c.skip) as k),
        'adjusted', (select coalesce(pg_catalog.jsonb_object_agg(a.reason, a.n), '{}')
                     from (select r.reason, count(distinct sh.ord) as n
                           from shaped as sh cross join pg_catalog.unnest(sh.adjust) as r(reason)
                           group by r.reason) as a),
        'sessions_counted', (select count(*) from counted))
    into v_result;
    return v_result;
end
$$;
comment on function public.import_seed_messages(jsonb, timestamptz) is
    'Import: the seed''s conversation_history rows in created_at order (role, content, snapshot, UI specification, generation mode, read time kept; rules applied), counted on their sessions. Returns {read, imported, skipped, adjusted, sessions_counted}.';
revoke execute on function public.import_seed_messages(jsonb, timestamptz) from public, anon, authenticated, session_visitor;
grant execute on function public.import_seed_messages(jsonb, timestamptz) to service_role;

-- Signals: the seed's persona_signals rows, an audit trail (the persona is not replayed: its
-- scores were imported as they stood). The seed document does not define this table's columns;
-- the usual ones are read when present: id, session_id, user_id, signal_type, signal_text,
-- signal_strength, pain_points_inferred, score_updates, vector, vector_value, confidence_before,
-- confidence_after, created_at. Absent or null: signal_type 'unspecified', signal_text '',
-- signal_strength 'medium', confidences 0. A strength that is none of weak / medium / strong is
-- skipped (unknown_signal_strength): an audit row must not claim a weight nobody recorded.
create function public.import_seed_signals(seed_rows jsonb, started_at timestamptz) returns jsonb
    language plpgsql
    security invoker
    set search_path = ''
as $$
declare
    v_rows bevsession.seed_batch := bevsession.seed_batch_of(seed_rows, started_at);
    v_result jsonb;
begin

    with src as (
        select e.ord, e.value as r, bevsession.seed_uuid(e.value ->> 'session_id') as session_id,
               coalesce(pg_catalog.lower(pg_catalog.btrim(e.value ->> 'signal_strength')), 'medium') as strength,
               pg_catalog.lower(pg_catalog.btrim(e.value ->> 'vector')) as vector,
               bevsession.seed_timestamp(e.value -> 'created_at') as at,
               bevsession.seed_row_id('persona_signals', e.value) as id
        from pg_catalog.jsonb_array_elements(v_rows) with ordinality as e(value, ord)
    ),
    checked as (
        select s.*,
               case when s.session_id is null then 'session_id_not_uuid'
                    when t.id is null then 'session_missing'
                    when t.revoked_at is not null then 'session_revoked'
                    when i.session_id is null then 'session_exists'
                    when s.strength <> all (pg_catalog.enum_range(null::bevsession.signal_strength)::text[]) then 'unknown_signal_strength'
               end as skip,
               (s.vector = any (pg_catalog.enum_range(null::bevsession.vector_name)::text[])
                and bevsession.seed_name(s.r -> 'vector_value') is not null) as has_vector,
               done.id is not null as already
        from src as s
        left join bevsession.sessions as t on t.id = s.session_id
        left join bevsession.seed_imports as i on i.session_id = s.session_id
        left join bevsession.persona_signals as done on done.id = s.id
    ),
    shaped as (
        select c.ord, c.session_id, c.id,
               bevsession.seed_uuid(c.r ->> 'user_id') as user_id,
               coalesce(bevsession.seed_name(c.r -> 'signal_type'), 'unspecified') as signal_type,
               coalesce(bevsession.seed_text(c.r -> 'signal_text', 2000), '') as signal_text,
               c.strength::bevsession.signal_strength as strength,
               pp.pain_points,
               case when pg_catalog.jsonb_typeof(c.r -> 'score_updates') = 'object' then c.r -> 'score_updates' else '{}' end as score_updates,
               case when c.has_vector then c.vector::bevsession.vector_name end as vector,
               case when c.has_vector then bevsession.seed_name(c.r -> 'vector_value') end as vector_value,
               bevsession.seed_score(c.r -> 'confidence_before') as confidence_before,
               bevsession.seed_score(c.r -> 'confidence_after') as confidence_after,
               least(coalesce(c.at, started_at), pg_catalog.now()) as created_at,
               pp.reasons || pg_catalog.array_remove(array[
                   case when c.r ->> 'session_id' <> c.session_id::text then 'session_id_normalised' end,
                   case when c.r ? 'id' and bevsession.seed_uuid(c.r ->> 'id') is null then 'id_derived' end,
                   case when bevsession.seed_uuid(c.r ->> 'user_id') is null and c.r ->> 'user_id' is not null then 'value_dropped' end,
                   bevsession.seed_name_problem(c.r -> 'signal_type'),
                   bevsession.seed_text_problem(c.r -> 'signal_text', 2000),
                   case when pg_catalog.jsonb_typeof(c.r -> 'score_updates') not in ('object', 'null') then 'value_dropped' end,
                   case when not c.has_vector and (c.vector is not null or c.r ->> 'vector_value' is not null) then 'value_dropped' end,
                   case when c.has_vector then bevsession.seed_name_problem(c.r -> 'vector_value') end,
                   bevsession.seed_score_problem(c.r -> 'confidence_before'),
                   bevsession.seed_score_problem(c.r -> 'confidence_after'),
                   case when c.at is null then 'timestamp_defaulted'
                        when c.at > pg_catalog.now() then 'timestamp_clamped' end], null) as adjust
        from checked as c
        cross join lateral bevsession.seed_pain_points(c.r -> 'pain_points_inferred') as pp
        where c.skip is null and not c.already
    ),
    inserted as (
        insert into bevsession.persona_signals (
            id, session_id, user_id, signal_type, signal_text, signal_strength, pain_points_inferred,
            score_updates, vector, vector_value, confidence_before, confidence_after, created_at)
        select sh.id, sh.session_id, sh.user_id, sh.signal_type, sh.signal_text, sh.strength, sh.pain_points,
               sh.score_updates, sh.vector, sh.vector_value, sh.confidence_before, sh.confidence_after, sh.created_at
        from shaped as sh
        order by sh.created_at, sh.ord
        on conflict (id) do nothing
        returning id
    )
    select pg_catalog.jsonb_build_object(
        'read',     (select count(*) from src),
        'imported', (select count(*) from inserted),
        'skipped',  (select coalesce(pg_catalog.jsonb_object_agg(k.skip, k.n), '{}')
                     from (select c.skip, count(*) as n from checked as c where c.skip is not null group by c.skip) as k),
        'adjusted', (select coalesce(pg_catalog.jsonb_object_agg(a.reason, a.n), '{}')
                     from (select r.reason, count(distinct sh.ord) as n
                           from shaped as sh cross join pg_catalog.unnest(sh.adjust) as r(reason)
                           group by r.reason) as a))
    into v_result;
    return v_result;
end
$$;
comment on function public.import_seed_signals(jsonb, timestamptz) is
    'Import: the seed''s persona_signals rows as the audit trail (usual columns read when present, defaults otherwise; rules applied). Returns {read, imported, skipped, adjusted}.';
revoke execute on function public.import_seed_signals(jsonb, timestamptz) from public, anon, authenticated, session_visitor;
grant execute on function public.import_seed_signals(jsonb, timestamptz) to service_role;

-- After an import: how many sessions it created, and how many of those the session policy
-- already calls expired (the seed's visitors who stayed away longer than the idle timeout: their
-- rows are kept, for analytics and retention, but their cookies start afresh).
create function public.import_seed_summary(since timestamptz) returns jsonb
    language sql
    stable
    security invoker
    set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'sessions_imported',  count(*),
        'expired_on_arrival', count(*) filter (where bevsession.expired(s, p)))
    from bevsession.seed_imports as i
    join bevsession.sessions as s on s.id = i.session_id
    cross join bevsession.session_policy as p
    where i.imported_at >= since and p.singleton
$$;
comment on function public.import_seed_summary(timestamptz) is
    'Sessions imported since a time, and how many of them are already past the session policy. Returns {sessions_imported, expired_on_arrival}.';
revoke execute on function public.import_seed_summary(timestamptz) from public, anon, authenticated, session_visitor;
grant execute on function public.import_seed_summary(timestamptz) to service_role;


-- PostgREST caches the schema; tell it to reload (a no-op where nobody listens).
notify pgrst, 'reload schema';
