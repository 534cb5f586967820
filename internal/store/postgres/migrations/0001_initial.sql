-- Schema 1: the records of store.Store.
--
-- Every record is a jsonb column holding the whole value as otad's Go
-- types encode it, next to the columns that key, order or filter it. A new
-- field of a record therefore needs no migration; a new key or index does.
-- Keys use the "C" collation: byte order, the order the embedded store
-- lists them in, whatever the database's locale.

CREATE TABLE apps (
    id              text COLLATE "C" PRIMARY KEY,
    record          jsonb NOT NULL,
    -- The last channel id handed out in this app (ids are per app).
    next_channel_id bigint NOT NULL DEFAULT 0
);

CREATE TABLE channels (
    app_id text COLLATE "C" NOT NULL REFERENCES apps (id),
    name   text COLLATE "C" NOT NULL,
    kind   text NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (app_id, name)
);

CREATE TABLE bundles (
    app_id      text COLLATE "C" NOT NULL REFERENCES apps (id),
    kind        text COLLATE "C" NOT NULL,
    version     text COLLATE "C" NOT NULL,
    sha256      text NOT NULL,
    deleted     boolean NOT NULL,
    uploaded_at timestamptz NOT NULL,
    record      jsonb NOT NULL,
    PRIMARY KEY (app_id, kind, version)
);

CREATE TABLE overrides (
    app_id    text COLLATE "C" NOT NULL REFERENCES apps (id),
    device_id text COLLATE "C" NOT NULL,
    channel   text NOT NULL,
    PRIMARY KEY (app_id, device_id)
);

-- The history. seq is handed out by history_counter inside the writing
-- transaction, so it grows in commit order (see postgres.go).
CREATE TABLE events (
    seq     bigint PRIMARY KEY,
    app_id  text COLLATE "C" NOT NULL,
    channel text COLLATE "C" NOT NULL,
    record  jsonb NOT NULL
);
-- Pages of one app's or channel's history scan these forward, ordered by
-- -seq (newest first). Ordering by -seq, not seq DESC, is on purpose:
-- the primary key cannot give that order, so the planner never walks it
-- backwards filtering on app_id, which for an app with few events (or
-- none before a deep page) reads the whole history.
CREATE INDEX events_app ON events (app_id, (-seq));
CREATE INDEX events_app_channel ON events (app_id, channel, (-seq));

CREATE TABLE history_counter (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq      bigint NOT NULL
);
INSERT INTO history_counter (seq) VALUES (0);

CREATE TABLE users (
    name   text COLLATE "C" PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE ci_tokens (
    id     text COLLATE "C" PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE webhooks (
    id     text COLLATE "C" PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE webhook_deliveries (
    webhook_id text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    record     jsonb NOT NULL,
    PRIMARY KEY (webhook_id, seq)
);

-- Device stats: json, not jsonb, since devices write them (jsonb refuses
-- \u0000) and nothing queries inside them; kept as sent.
CREATE TABLE stats (
    app_id   text COLLATE "C" NOT NULL,
    received timestamptz NOT NULL,
    id       bigint GENERATED ALWAYS AS IDENTITY,
    event    json NOT NULL,
    PRIMARY KEY (app_id, received, id)
);
-- How many stats rows each app holds, so trimming to the cap needs no count.
CREATE TABLE stats_counts (
    app_id text COLLATE "C" PRIMARY KEY,
    n      bigint NOT NULL
);

-- Device health: one row per app, version, device and outcome, so the
-- reports of several replicas add up (distinct devices) instead of one
-- replica's record replacing another's.
CREATE TABLE health_versions (
    app_id     text COLLATE "C" NOT NULL,
    version    text COLLATE "C" NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, version)
);
CREATE TABLE health_devices (
    app_id    text COLLATE "C" NOT NULL,
    version   text COLLATE "C" NOT NULL,
    failed    boolean NOT NULL,
    device_id text COLLATE "C" NOT NULL,
    -- The failure actions of a failed device, in the order reported.
    actions   text[] NOT NULL DEFAULT '{}',
    -- Order of installed devices as saved.
    pos       integer NOT NULL,
    PRIMARY KEY (app_id, version, failed, device_id),
    FOREIGN KEY (app_id, version) REFERENCES health_versions (app_id, version) ON DELETE CASCADE
);
