-- Schema 3 (issue #17): users get random ids, device pins get owners,
-- stats an unverified flag and a byte count per app, and what otad
-- offered each device a table.

-- Each user's random id, which its login tokens carry (store.User.ID):
-- a user created again under a removed one's name is another user.
UPDATE users SET record = jsonb_set(record, '{id}', to_jsonb(replace(gen_random_uuid()::text, '-', '')))
WHERE coalesce(record->>'id', '') = '';

-- A pin a legacy plugin set itself (its setChannel) is the device's to
-- move or remove; an admin's stands. The newest event that set a pin
-- says who did.
ALTER TABLE overrides ADD COLUMN by_device boolean NOT NULL DEFAULT false;
UPDATE overrides o SET by_device = true WHERE (
    SELECT e.record->>'actor' FROM events e
    WHERE e.app_id = o.app_id AND e.record->>'type' = 'device_override' AND e.record->>'note' = 'device ' || o.device_id
    ORDER BY e.seq DESC LIMIT 1
) LIKE 'device:%';

-- A report about a version otad had not offered that device.
ALTER TABLE stats ADD COLUMN unverified boolean NOT NULL DEFAULT false;
-- The bytes of each app's stats events, so trimming to the byte cap
-- needs no sum of the rows.
ALTER TABLE stats_counts ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
UPDATE stats_counts c SET bytes = (SELECT coalesce(sum(octet_length(s.event::text)), 0) FROM stats s WHERE s.app_id = c.app_id);

-- What otad last offered each device (internal/offers). device is the
-- device key (a hash of app and device ids) as a signed 64-bit number.
CREATE TABLE offers (
    device           bigint PRIMARY KEY,
    app_id           text COLLATE "C" NOT NULL,
    channel          text NOT NULL,
    version          text NOT NULL,
    previous         text NOT NULL,
    previous_channel text NOT NULL,
    first_at         timestamptz NOT NULL,
    last_at          timestamptz NOT NULL,
    count            bigint NOT NULL
);
