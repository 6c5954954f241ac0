-- Supabase's Data API serves the `public` schema to every holder of the anon key, and Supabase's default privileges
-- grant `anon` and `authenticated` ALL on new tables there. The API connects as the tables' owner (RLS does not
-- apply to it); browsers get nothing unless a policy below says so. The migrator (lib/migrate.py) also turns RLS on
-- and revokes the API roles after every migration, so a later table is private even if its migration forgets.

-- New objects this role creates in `public` are not granted to the browser roles (Supabase's defaults grant them).
DO $$
BEGIN
    IF (SELECT count(*) FROM pg_roles WHERE rolname IN ('anon', 'authenticated')) = 2 THEN
        ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM anon, authenticated;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM anon, authenticated;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM anon, authenticated;
    END IF;
END
$$;
-- Functions are executable by PUBLIC unless revoked globally (a per-schema revoke cannot undo a global grant).
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- A function's search_path is fixed, so a caller's search_path cannot redirect what it resolves.
ALTER FUNCTION ledger_reject_change() SET search_path = pg_catalog, public;

-- The one deliberate exposure: the frontend's avatar upload (AvatarUpload.js) writes its own row directly,
-- `supabase.from('users').update({profile_pic_url, updated_at}).eq('supabase_id', uid)`. Signed-in users may read
-- only `supabase_id` of their own row and write only those two columns of it; never a balance, role or price.
ALTER TABLE users ADD COLUMN supabase_id uuid GENERATED ALWAYS AS (id) STORED;
ALTER TABLE users ADD CONSTRAINT users_profile_pic_url_format CHECK (
    profile_pic_url IS NULL OR (length(profile_pic_url) <= 2048 AND profile_pic_url ~ '^https?://[^\s"''<>]+$')
) NOT VALID;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated')
       AND to_regprocedure('auth.uid()') IS NOT NULL THEN
        CREATE POLICY users_select_own ON users FOR SELECT TO authenticated
            USING (id = (SELECT auth.uid()));
        CREATE POLICY users_update_own_avatar ON users FOR UPDATE TO authenticated
            USING (id = (SELECT auth.uid())) WITH CHECK (id = (SELECT auth.uid()));
        REVOKE ALL ON users FROM authenticated;
        GRANT SELECT (supabase_id), UPDATE (profile_pic_url, updated_at) ON users TO authenticated;
    END IF;
END
$$;
