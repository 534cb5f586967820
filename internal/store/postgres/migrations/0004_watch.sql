-- Schema 4 (issue #10): what each device's latest update check said,
-- for silent-failure detection, adoption and device stories, and
-- adoption per app, day, channel and version.

ALTER TABLE offers
    ADD COLUMN seen_at         timestamptz,
    ADD COLUMN running         text NOT NULL DEFAULT '',
    ADD COLUMN running_channel text NOT NULL DEFAULT '',
    ADD COLUMN flags           integer NOT NULL DEFAULT 0,
    ADD COLUMN build           text NOT NULL DEFAULT '',
    ADD COLUMN plugin          text NOT NULL DEFAULT '';

-- One row per app and UTC day: the day's counts as otad's Go types
-- encode them (store.AdoptionCount).
CREATE TABLE adoption (
    app_id text COLLATE "C" NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    day    date NOT NULL,
    counts jsonb NOT NULL,
    PRIMARY KEY (app_id, day)
);
