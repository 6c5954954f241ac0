-- Virtual gifts are tips with a gift type and quantity (amount = catalog cost x quantity, priced by the API).
-- request_digest identifies what a tip asked for (recipient, amount, gift, stream context, message): a request
-- without an Idempotency-Key that repeats one from the same sender within seconds is answered with the first tip
-- instead of sending a second (lib/tips/service.py); tips_from_user_idx serves that look-up.

ALTER TABLE tips
    ADD COLUMN gift_type      text,
    ADD COLUMN gift_quantity  integer,
    ADD COLUMN request_digest text,
    ADD CONSTRAINT tips_gift_shape CHECK ((gift_type IS NULL) = (gift_quantity IS NULL)),
    ADD CONSTRAINT tips_gift_quantity_range CHECK (gift_quantity BETWEEN 1 AND 100),
    ADD CONSTRAINT tips_gift_type_length CHECK (char_length(gift_type) BETWEEN 1 AND 64);
