-- The earnings buckets of the ledger kinds the messaging, subscription, show and content areas write (lib/spend):
-- one mapping for all of them, so every area's credits land in the breakdown the frontend reads.
CREATE OR REPLACE FUNCTION earnings_kind(kind text, meta jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, public
AS
$$
SELECT CASE
           WHEN kind = 'tip' AND meta ->> 'gift_type' IS NOT NULL THEN 'gifts'
           WHEN kind = 'tip' THEN 'tips'
           WHEN kind = 'call' AND meta ->> 'callType' = 'voice' THEN 'voiceCalls'
           WHEN kind = 'call' THEN 'videoCalls'
           WHEN kind = 'class' THEN 'classes'
           WHEN kind = 'message' THEN 'messages'
           WHEN kind = 'subscription' THEN 'subscriptions'
           WHEN kind IN ('content', 'shop', 'offer', 'digital') THEN 'content'
           WHEN kind = 'recording' THEN 'recordings'
           WHEN kind = 'vod' THEN 'vod'
           ELSE 'other'
       END
$$;
