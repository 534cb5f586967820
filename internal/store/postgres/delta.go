package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Delta releases (schema 2): a bundle's manifest is one jsonb row, delta
// file records a row each. What follows mirrors the embedded store's
// internal/store/bolt/delta.go; the conformance suite holds both to
// store.Store's contract.

// putManifest stores files as the manifest of version, each file's Known
// set when an earlier version's manifest named its SHA-256, and records
// the SHA-256 not seen before. It returns the number of files. The caller
// holds the app's lock.
func (a *appTx) putManifest(ctx context.Context, version string, files []ota.ManifestFile) (int, error) {
	sums := make([]string, len(files))
	for i, f := range files {
		sums[i] = strings.ToLower(f.SHA256)
		if err := checkName("file sha256", sums[i]); err != nil {
			return 0, err
		}
	}
	first := map[string]string{}
	rows, err := a.t.Query(ctx, "SELECT sha256, version FROM manifest_seen WHERE app_id = $1 AND sha256 = ANY($2)", a.id(), sums)
	if err != nil {
		return 0, fmt.Errorf("read the files app %q published: %w", a.id(), err)
	}
	for rows.Next() {
		var sum, v string
		if err := rows.Scan(&sum, &v); err != nil {
			rows.Close()
			return 0, err
		}
		first[sum] = v
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	out := make([]ota.ManifestFile, len(files))
	var unseen []string
	for i, f := range files {
		v, ok := first[sums[i]]
		f.Known = ok && v != version
		if !ok {
			unseen = append(unseen, sums[i])
			first[sums[i]] = version
		}
		out[i] = f
	}
	raw, err := encode(fmt.Sprintf("manifest of %q", version), out)
	if err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO manifests (app_id, version, files) VALUES ($1, $2, $3)
		ON CONFLICT (app_id, version) DO UPDATE SET files = excluded.files`, a.id(), version, raw)
	if len(unseen) > 0 {
		b.Queue(`INSERT INTO manifest_seen (app_id, sha256, version) SELECT $1, unnest($2::text[]), $3
			ON CONFLICT (app_id, sha256) DO NOTHING`, a.id(), unseen, version)
	}
	if err := a.t.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("write the manifest of %q of app %q: %w", version, a.id(), err)
	}
	return len(files), nil
}

// dropManifest removes the manifest of version, if any.
func (a *appTx) dropManifest(ctx context.Context, version string) error {
	if _, err := a.t.Exec(ctx, "DELETE FROM manifests WHERE app_id = $1 AND version = $2", a.id(), version); err != nil {
		return fmt.Errorf("drop the manifest of %q of app %q: %w", version, a.id(), err)
	}
	return nil
}

// addStateManifests appends the manifests of the versions chans serve (the
// active version, and the previous version of a rollout) to st.
func addStateManifests(ctx context.Context, db querier, appID string, chans []ota.Channel, st *store.State) error {
	var versions []string
	for _, c := range chans {
		if c.Kind != ota.KindWeb {
			continue
		}
		for _, v := range []string{c.Active, rolloutPrevious(c)} {
			if v != "" && v != ota.VersionBuiltin && !slices.Contains(versions, v) {
				versions = append(versions, v)
			}
		}
	}
	if len(versions) == 0 {
		return nil
	}
	rows, err := db.Query(ctx, `SELECT m.version, m.files FROM manifests m
		JOIN bundles b ON b.app_id = m.app_id AND b.kind = 'web' AND b.version = m.version AND NOT b.deleted
		WHERE m.app_id = $1 AND m.version = ANY($2) ORDER BY m.version`, appID, versions)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			v   string
			raw []byte
		)
		if err := rows.Scan(&v, &raw); err != nil {
			return err
		}
		var files []ota.ManifestFile
		if err := decode(fmt.Sprintf("manifest of %q of app %q", v, appID), raw, &files); err != nil {
			return err
		}
		st.Manifests = append(st.Manifests, store.Manifest{AppID: appID, Version: v, Files: files})
	}
	return rows.Err()
}

func rolloutPrevious(c ota.Channel) string {
	if c.Rollout == nil {
		return ""
	}
	return c.Rollout.Previous
}

// Manifest returns the manifest of a web bundle.
func (s *Store) Manifest(ctx context.Context, appID, version string) ([]ota.ManifestFile, error) {
	var files []ota.ManifestFile
	err := s.read(ctx, func(db querier) error {
		b, err := loadBundle(ctx, db, appID, ota.KindWeb, version)
		if err != nil {
			if isNotFound(err) {
				if _, aerr := getApp(ctx, db, appID); aerr != nil {
					return aerr
				}
			}
			return err
		}
		if b.Deleted {
			return fmt.Errorf("web bundle %q of app %q was deleted: %w", version, appID, store.ErrNotFound)
		}
		var raw []byte
		err = db.QueryRow(ctx, "SELECT files FROM manifests WHERE app_id = $1 AND version = $2", appID, version).Scan(&raw)
		if noRows(err) {
			return fmt.Errorf("web bundle %q of app %q is not a delta release: %w", version, appID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		return decode(fmt.Sprintf("manifest of %q of app %q", version, appID), raw, &files)
	})
	if err != nil {
		return nil, fmt.Errorf("manifest of %s %s: %w", appID, version, dbErr(ctx, err))
	}
	return files, nil
}

// PutDeltaFile records a verified delta file.
func (s *Store) PutDeltaFile(ctx context.Context, f store.DeltaFile) (bool, error) {
	for _, n := range []struct{ what, v string }{{"app id", f.AppID}, {"sha256", f.SHA256}} {
		if err := checkName(n.what, n.v); err != nil {
			return false, fmt.Errorf("record delta file: %w", err)
		}
	}
	sum := strings.ToLower(f.SHA256)
	created := false
	err := s.write(ctx, func(t *txn) error {
		created = false
		var br string
		err := t.QueryRow(ctx, "SELECT br FROM delta_files WHERE app_id = $1 AND sha256 = $2 FOR UPDATE", f.AppID, sum).Scan(&br)
		switch {
		case noRows(err):
			tag, err := t.Exec(ctx, `INSERT INTO delta_files (app_id, sha256, size, br, br_size, encrypted, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (app_id, sha256) DO NOTHING`,
				f.AppID, sum, f.Size, f.Br, f.BrSize, f.Encrypted, norm(f.CreatedAt))
			if err != nil {
				return err
			}
			created = tag.RowsAffected() == 1
			if !created && f.Br != "" {
				// A concurrent upload of the same file got there first.
				_, err = t.Exec(ctx, "UPDATE delta_files SET br = $3, br_size = $4 WHERE app_id = $1 AND sha256 = $2 AND br = ''",
					f.AppID, sum, f.Br, f.BrSize)
			}
			return err
		case err != nil:
			return err
		case br == "" && f.Br != "":
			_, err = t.Exec(ctx, "UPDATE delta_files SET br = $3, br_size = $4 WHERE app_id = $1 AND sha256 = $2", f.AppID, sum, f.Br, f.BrSize)
			return err
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("record delta file %s of %s: %w", f.SHA256, f.AppID, dbErr(ctx, err))
	}
	return created, nil
}

// DeltaFiles returns the app's delta file records among sha256s.
func (s *Store) DeltaFiles(ctx context.Context, appID string, sha256s []string) (map[string]store.DeltaFile, error) {
	if err := checkName("app id", appID); err != nil {
		return nil, fmt.Errorf("delta files: %w", err)
	}
	out := make(map[string]store.DeltaFile)
	if len(sha256s) == 0 {
		return out, nil
	}
	err := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := s.db().Query(ctx, `SELECT sha256, size, br, br_size, encrypted, created_at FROM delta_files
			WHERE app_id = $1 AND sha256 = ANY($2)`, appID, sha256s)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d := store.DeltaFile{AppID: appID}
			if err := rows.Scan(&d.SHA256, &d.Size, &d.Br, &d.BrSize, &d.Encrypted, &d.CreatedAt); err != nil {
				return err
			}
			d.CreatedAt = d.CreatedAt.UTC()
			out[d.SHA256] = d
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("delta files of %s: %w", appID, dbErr(ctx, err))
	}
	return out, nil
}

// namedKeys is the blob keys every manifest of a live bundle names, with
// its app: each file's raw form (a plain file's SHA-256) and Brotli form.
const namedKeys = `SELECT m.app_id, k.key FROM manifests m
	JOIN bundles b ON b.app_id = m.app_id AND b.kind = 'web' AND b.version = m.version AND NOT b.deleted
	CROSS JOIN LATERAL jsonb_array_elements(m.files) f
	CROSS JOIN LATERAL (VALUES (coalesce(nullif(f->>'raw', ''), f->>'sha256')), (nullif(f->>'br', ''))) k(key)
	WHERE k.key IS NOT NULL`

// PruneDeltaFiles removes delta file records older than before that no
// live bundle's manifest names.
func (s *Store) PruneDeltaFiles(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(t *txn) error {
		tag, err := t.Exec(ctx, `WITH named AS (`+namedKeys+`)
			DELETE FROM delta_files d WHERE d.created_at < $1
			AND NOT EXISTS (SELECT 1 FROM named n WHERE n.app_id = d.app_id AND (n.key = d.sha256 OR (d.br <> '' AND n.key = d.br)))`,
			norm(before))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune delta files: %w", dbErr(ctx, err))
	}
	return int(n), nil
}

// addDeltaReferences adds the blobs live manifests name and those of every
// delta file record to out.
func addDeltaReferences(ctx context.Context, db querier, out map[string]bool) error {
	rows, err := db.Query(ctx, `SELECT key FROM (`+namedKeys+`) n
		UNION SELECT sha256 FROM delta_files UNION SELECT br FROM delta_files WHERE br <> ''`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		out[k] = true
	}
	return rows.Err()
}
