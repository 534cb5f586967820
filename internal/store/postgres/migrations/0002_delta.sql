-- Schema 2: delta releases (a web bundle stored with the list of its files,
-- each file stored on its own; docs/delta.md).

-- A delta release's manifest: the whole file list of one web bundle, as
-- []ota.ManifestFile. Dropped when its bundle is marked deleted.
CREATE TABLE manifests (
    app_id  text COLLATE "C" NOT NULL REFERENCES apps (id),
    version text COLLATE "C" NOT NULL,
    files   jsonb NOT NULL,
    PRIMARY KEY (app_id, version)
);

-- Every SHA-256 a manifest of the app ever named, with the first version
-- that did: a later release marks such files Known.
CREATE TABLE manifest_seen (
    app_id  text COLLATE "C" NOT NULL REFERENCES apps (id),
    sha256  text COLLATE "C" NOT NULL,
    version text NOT NULL,
    PRIMARY KEY (app_id, sha256)
);

-- Delta file records: a verified file content (or encrypted form) of an
-- app. No reference to apps: files are uploaded before an app's first
-- release creates it.
CREATE TABLE delta_files (
    app_id     text COLLATE "C" NOT NULL,
    sha256     text COLLATE "C" NOT NULL,
    size       bigint NOT NULL,
    br         text NOT NULL DEFAULT '',
    br_size    bigint NOT NULL DEFAULT 0,
    encrypted  boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, sha256)
);
