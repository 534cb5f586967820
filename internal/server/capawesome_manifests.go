package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/capawesome"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// capawesomeManifests serves delta releases (docs/delta.md) to
// @capawesome/capacitor-live-update as manifest bundles
// (docs/protocol-capawesome.md §4): the same stored files as the other
// plugin's manifests, verified by the device from the headers of each
// download.
//
//   - A plain delta release is a manifest bundle. Its Brotli forms are
//     sent with Content-Encoding: br to HTTP stacks that ask for it (they
//     decode before the plugin hashes), the raw form to the others.
//   - An encrypted one never reaches here: the plugin cannot decrypt, and
//     the decision refuses the release to it (encryption_unsupported).
//   - A signed release (a signed zip) is a manifest bundle only when every
//     file and the manifest file are signed too (otactl deploy web --delta
//     --sign-key); otherwise its signed zip is offered.
//   - The bytes come from the blob store through otad, whatever the
//     download mode: the plugin reads the checksum and signature from the
//     headers of the response it ends up with, which a redirect to a CDN
//     or a presigned URL would lose.
type capawesomeManifests struct{ s *Server }

// Has runs on every check: it looks at the first and last files only.
// Uploads sign a release's files all or none (delta.CheckManifest), and
// Files checks every one before serving them.
func (m *capawesomeManifests) Has(app *update.AppView, b *ota.Bundle) bool {
	files := app.Manifests[b.Version]
	if len(files) == 0 || b.Encryption != nil || files[0].FileHash != "" {
		return false
	}
	return b.Signature == "" || files[0].Signature != "" && files[len(files)-1].Signature != ""
}

// allSigned reports whether every file is signed.
func allSigned(files []ota.ManifestFile) bool {
	for i := range files {
		if files[i].Signature == "" {
			return false
		}
	}
	return true
}

func (m *capawesomeManifests) Files(ctx context.Context, app *update.AppView, b *ota.Bundle) (capawesome.Listing, error) {
	var l capawesome.Listing
	if b.Encryption != nil || b.Files == 0 {
		return l, capawesome.ErrNotManifest
	}
	appID := app.App.ID
	files, ok := app.Manifests[b.Version]
	if !ok {
		// A release no channel serves any more, which a device may still
		// be downloading.
		var err error
		files, err = m.s.store.Manifest(ctx, appID, b.Version)
		if errors.Is(err, store.ErrNotFound) {
			return l, capawesome.ErrNotManifest
		}
		if err != nil {
			return l, err
		}
	}
	if len(files) == 0 || files[0].FileHash != "" {
		return l, capawesome.ErrNotManifest
	}
	if b.Signature != "" {
		if !allSigned(files) {
			return l, capawesome.ErrNotManifest
		}
		// The snapshot's bundles carry what checks need; the manifest
		// file's signature is read once per release (the listing is kept).
		rec, err := m.s.store.GetBundle(ctx, appID, ota.KindWeb, b.Version)
		if err != nil {
			return l, fmt.Errorf("read the manifest signature of %s %s: %w", appID, b.Version, err)
		}
		if rec.ManifestSignature == "" {
			return l, capawesome.ErrNotManifest
		}
		l.Signature = rec.ManifestSignature
	}
	l.Files = make([]capawesome.File, 0, len(files))
	for i := range files {
		f := &files[i]
		if f.Path == ota.CapawesomeManifestFile {
			continue // replaced by the manifest file itself (ota.CapawesomeItems)
		}
		raw := f.Raw
		if raw == "" {
			raw = f.SHA256 // a plain file's raw form is its content address
		}
		// A file named *.br always has a Brotli form (the other plugin
		// needs it), which need not be the smaller one.
		l.Files = append(l.Files, capawesome.File{
			Path: f.Path, SHA256: f.SHA256, Size: f.Size, Signature: f.Signature,
			Brotli: f.Br != "" && f.BrSize < f.Size, Raw: raw, Br: f.Br,
		})
	}
	return l, nil
}

func (m *capawesomeManifests) Open(ctx context.Context, _ *ota.Bundle, f capawesome.File, brotli bool) (io.ReadSeekCloser, error) {
	key := f.Raw
	if brotli {
		key = f.Br
	}
	content, _, err := m.s.blobs.Open(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, capawesome.ErrNoFile
	}
	return content, err
}
