-- =============================================================================================
-- 20261201001000_sliding_expiry.sql — sessions live as long as the seed's: 24 h past activity
-- =============================================================================================
--
-- The seed saves its iron-session cookie on every getSession() with a 24 h ttl, so its lifetime
-- slides with activity: a visitor who comes back every day keeps the persona. The policy of
-- 20261201000100_sessions.sql (24 h from creation whatever the activity, 2 h idle) ended those
-- sessions a day after they began and after two quiet hours — visitors moving over from the seed
-- lost their persona for no reason of theirs.
--
-- Now, by default:
--   * idle timeout     24 hours past the last activity (the seed's ttl, sliding);
--   * absolute lifetime 30 days past creation: activity alone cannot keep a session (or a stolen
--     cookie) alive for ever, which the seed allowed.
-- The rule itself (bevsession.expired) does not change; only the numbers do. The edge worker's
-- SESSION_TTL (2592000) and SESSION_IDLE_TIMEOUT (86400) defaults match, and its cookie's
-- Max-Age follows whichever expiry ends first.
--
-- An installation whose operator already chose other lifetimes keeps them: the row changes only
-- while it still holds the old defaults.
--
-- Sections: 1 the defaults · 2 the policy row.
-- =============================================================================================


-- ---------------------------------------------------------------------------------------------
-- 1. The defaults (for a policy row recreated by hand)
-- ---------------------------------------------------------------------------------------------

alter table bevsession.session_policy
    alter column absolute_lifetime set default interval '30 days',
    alter column idle_timeout set default interval '24 hours';

comment on table bevsession.session_policy is
    'One row: absolute_lifetime (from created_at, default 30 days) and idle_timeout (from last_activity_at, default 24 hours as the seed''s sliding cookie; null = none).';


-- ---------------------------------------------------------------------------------------------
-- 2. The policy row
-- ---------------------------------------------------------------------------------------------

update bevsession.session_policy
set absolute_lifetime = interval '30 days',
    idle_timeout      = interval '24 hours'
where singleton
  and absolute_lifetime = interval '24 hours'
  and idle_timeout = interval '2 hours';
