-- Group classes: a creator schedules one (time, capacity, price in tokens), fans enrol (a seat each, capacity
-- enforced under the class row's lock), the fan pays once when attending the live class (ledger transfer keyed
-- class:{id}:fan:{user}), and reviews after attending. enrolled_count is kept in the same statement as the seat it
-- counts (lib/classes), so a full class refuses the next seat without counting rows.

CREATE TABLE classes (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    creator_id        uuid NOT NULL REFERENCES users (id),
    title             text NOT NULL,
    description       text,
    category          text,
    tags              text[] NOT NULL DEFAULT '{}',
    requirements      text,
    what_to_expect    text,
    cover_image_url   text,
    starts_at         timestamptz NOT NULL,
    duration_minutes  integer NOT NULL,
    max_participants  integer NOT NULL,
    token_price       integer NOT NULL,
    enrolled_count    integer NOT NULL DEFAULT 0,
    status            text NOT NULL DEFAULT 'scheduled',
    stream_id         uuid REFERENCES streams (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT classes_status_check CHECK (status IN ('scheduled', 'live', 'cancelled')),
    CONSTRAINT classes_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT classes_duration_range CHECK (duration_minutes BETWEEN 5 AND 600),
    CONSTRAINT classes_capacity_range CHECK (max_participants BETWEEN 1 AND 10000),
    CONSTRAINT classes_price_range CHECK (token_price BETWEEN 0 AND 1000000),
    CONSTRAINT classes_seats CHECK (enrolled_count BETWEEN 0 AND max_participants),
    CONSTRAINT classes_cover_https CHECK (cover_image_url IS NULL OR cover_image_url LIKE 'https://%')
);
ALTER TABLE classes ENABLE ROW LEVEL SECURITY;
CREATE INDEX classes_starts_idx ON classes (starts_at) WHERE status <> 'cancelled';
CREATE INDEX classes_creator_idx ON classes (creator_id, starts_at);
CREATE UNIQUE INDEX classes_stream_key ON classes (stream_id) WHERE stream_id IS NOT NULL;

CREATE TABLE class_enrollments (
    class_id         uuid NOT NULL REFERENCES classes (id),
    user_id          uuid NOT NULL REFERENCES users (id),
    enrolled_at      timestamptz NOT NULL DEFAULT now(),
    paid_tokens      integer,
    paid_at          timestamptz,
    ledger_entry_id  uuid,
    attended_at      timestamptz,
    CONSTRAINT class_enrollments_pkey PRIMARY KEY (class_id, user_id),
    CONSTRAINT class_enrollments_paid_shape CHECK ((paid_tokens IS NULL) = (paid_at IS NULL))
);
ALTER TABLE class_enrollments ENABLE ROW LEVEL SECURITY;
CREATE INDEX class_enrollments_user_idx ON class_enrollments (user_id);

CREATE TABLE class_reviews (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    class_id    uuid NOT NULL REFERENCES classes (id),
    user_id     uuid NOT NULL REFERENCES users (id),
    rating      integer NOT NULL,
    review      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT class_reviews_rating_range CHECK (rating BETWEEN 1 AND 5),
    CONSTRAINT class_reviews_review_length CHECK (char_length(review) BETWEEN 1 AND 2000),
    CONSTRAINT class_reviews_one_per_fan UNIQUE (class_id, user_id)
);
ALTER TABLE class_reviews ENABLE ROW LEVEL SECURITY;
