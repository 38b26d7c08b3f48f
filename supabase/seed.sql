-- supabase/seed.sql — loaded by `supabase db reset` after the migrations ([db.seed] in config.toml).
--
-- Deliberately empty of visitor data: sessions are created by visitors through get_session /
-- begin_chat_turn, and a seeded session id would be a well-known identity. The file must stay safe
-- to run on any migrated database, any number of times; it only checks that the migrations it
-- relies on are there.
do $$
begin
    if to_regclass('bevsession.sessions') is null then
        raise exception 'seed.sql: run the migrations first (bevsession.sessions is missing)';
    end if;
end
$$;
