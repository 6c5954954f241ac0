-- Identity: follows, creator applications, and the audit trail of admin role changes.

CREATE TABLE follows (
    follower_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    creator_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT follows_pkey PRIMARY KEY (follower_id, creator_id),
    CONSTRAINT follows_not_self CHECK (follower_id <> creator_id)
);
-- Follower counts and the "popular" directory order read by creator.
CREATE INDEX follows_creator_idx ON follows (creator_id);

CREATE TABLE creator_applications (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status       text NOT NULL DEFAULT 'pending',
    bio          text,
    category     text,
    experience   text,
    social_links jsonb NOT NULL DEFAULT '{}'::jsonb,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    reviewed_at  timestamptz,
    reviewed_by  uuid REFERENCES users (id),
    CONSTRAINT creator_applications_status_check CHECK (status IN ('pending', 'approved', 'rejected'))
);
-- At most one application waiting per user; approved and rejected ones stay as history.
CREATE UNIQUE INDEX creator_applications_one_pending ON creator_applications (user_id) WHERE status = 'pending';
CREATE INDEX creator_applications_user_idx ON creator_applications (user_id, submitted_at DESC);

CREATE TABLE admin_actions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    admin_id       uuid NOT NULL REFERENCES users (id),
    action         text NOT NULL,
    target_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    details        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_actions_target_idx ON admin_actions (target_user_id, created_at DESC);

-- The directory filters on category case-insensitively.
CREATE INDEX users_creator_type_idx ON users (lower(creator_type), created_at DESC, id) WHERE is_creator;
