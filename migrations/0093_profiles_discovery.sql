-- Profiles and discovery: the fields the frontend's profile and pricing pages edit, the languages the explore page
-- filters on, a fan's favourite creators, and an indexed creator search.

-- Message prices are per message, in whole tokens, 0 = free; the lists stay small enough to show in a card.
ALTER TABLE users
    ADD COLUMN interests           text[] NOT NULL DEFAULT '{}',
    ADD COLUMN languages           text[] NOT NULL DEFAULT '{}',
    ADD COLUMN state               text,
    ADD COLUMN country             text,
    ADD COLUMN text_message_price  integer,
    ADD COLUMN image_message_price integer,
    ADD COLUMN video_message_price integer,
    ADD COLUMN voice_memo_price    integer,
    ADD CONSTRAINT users_message_prices_range CHECK (
        coalesce(text_message_price, 0) BETWEEN 0 AND 10000
        AND coalesce(image_message_price, 0) BETWEEN 0 AND 10000
        AND coalesce(video_message_price, 0) BETWEEN 0 AND 10000
        AND coalesce(voice_memo_price, 0) BETWEEN 0 AND 10000
    ),
    ADD CONSTRAINT users_profile_lists_size CHECK (cardinality(interests) <= 20 AND cardinality(languages) <= 20);

-- A fan's favourite creators (FanEngagement); separate from follows, which count publicly.
CREATE TABLE favorites (
    fan_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    creator_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT favorites_pkey PRIMARY KEY (fan_id, creator_id),
    CONSTRAINT favorites_not_self CHECK (fan_id <> creator_id)
);
ALTER TABLE favorites ENABLE ROW LEVEL SECURITY;
CREATE INDEX favorites_fan_created_idx ON favorites (fan_id, created_at DESC);

-- Trending counts the follows of the last days.
CREATE INDEX follows_created_idx ON follows (created_at, creator_id);

-- Creator search: trigram word similarity over "username display_name creator_type". pg_trgm lives in schema
-- `extensions` (Supabase's linter flags extensions in public); the API references it schema-qualified. A server
-- without the contrib module (the embedded local PostgreSQL) gets no index, and lib/creators/search.py falls back
-- to an unindexed ILIKE, which is fine at local-development sizes.
DO $$
DECLARE
    current_schema_name text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        RAISE NOTICE 'pg_trgm is not available: creator search runs unindexed';
        RETURN;
    END IF;
    CREATE SCHEMA IF NOT EXISTS extensions;
    SELECT n.nspname INTO current_schema_name
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    IF current_schema_name IS NULL THEN
        CREATE EXTENSION pg_trgm WITH SCHEMA extensions;
    ELSIF current_schema_name <> 'extensions' THEN
        ALTER EXTENSION pg_trgm SET SCHEMA extensions;
    END IF;
    -- GiST, not GIN: it answers "the nearest N by word-similarity distance" (ORDER BY <<-> LIMIT) without
    -- scoring every match, which keeps a common name or a category word fast at 100k creators.
    CREATE INDEX users_creator_search_trgm ON public.users USING gist (
        (lower(username || ' ' || coalesce(display_name, '') || ' ' || coalesce(creator_type, '')))
        extensions.gist_trgm_ops
    ) WHERE is_creator;
END
$$;
