package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/internal/delta/ingest"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// Delta releases (protocol §2.6): their files are uploaded one by one
// before the release (internal/delta/ingest verifies each), named by the
// release's manifest (checked in checkForm), served to devices by content
// address, and sized for the plugin's getBundleDownloadSize.

const (
	// maxManifestBytes bounds the manifest part of an upload: an
	// encrypted release of ota.MaxManifestFiles files takes about 18 MB.
	maxManifestBytes = 24 << 20
	// maxMissingBytes bounds the body of a files/missing question.
	maxMissingBytes = 4 << 20
	// contentTypeFile is what file forms are served as: devices hash the
	// bytes; nothing should interpret them. Never a Content-Encoding: an
	// HTTP client would undo a "br" itself, and the plugin would then fail
	// to decompress the file again.
	contentTypeFile = "application/octet-stream"
)

var errNoFile = newError(http.StatusNotFound, ota.ErrCodeNotFound, "no such file")

// handleFileDownload serves GET and HEAD /api/ota/file/:key, a stored file
// form of a delta release, by its content address.
func (s *Server) handleFileDownload(c echo.Context) error {
	key := c.Param("key")
	if !delta.IsHexSHA256(key) {
		return errNoFile
	}
	if s.links.Redirects() {
		return s.redirectDownload(c, key, fileObject(key), errNoFile)
	}
	return s.serveBlob(c, key, contentTypeFile, true, errNoFile)
}

// handleFilesMissing answers which of the files a client is about to name
// the app does not hold (POST /api/v1/apps/:app/files/missing). The app
// need not exist yet.
func (s *Server) handleFilesMissing(c echo.Context) error {
	app := c.Param("app")
	if err := checkApp(app); err != nil {
		return err
	}
	var req ota.FilesMissingRequest
	if err := s.decodeJSON(c, &req, maxMissingBytes, false); err != nil {
		return err
	}
	if len(req.SHA256) > ota.MaxManifestFiles {
		return badRequest("%d files in one question; a release has at most %d", len(req.SHA256), ota.MaxManifestFiles)
	}
	if len(req.NeedBrotli) > len(req.SHA256) {
		return badRequest("need_brotli lists more files than sha256")
	}
	needBr := make(map[string]bool, len(req.NeedBrotli))
	for _, list := range [][]string{req.SHA256, req.NeedBrotli} {
		for _, sum := range list {
			if !delta.IsHexSHA256(sum) {
				return badRequest("%q is not a SHA-256 (64 lowercase hex digits)", clip(sum))
			}
		}
	}
	for _, sum := range req.NeedBrotli {
		needBr[sum] = true
	}
	recs, err := s.store.DeltaFiles(c.Request().Context(), app, req.SHA256)
	if err != nil {
		return err
	}
	out := ota.FilesMissingResponse{Missing: []string{}}
	seen := make(map[string]bool, len(req.SHA256))
	for _, sum := range req.SHA256 {
		if r, ok := recs[sum]; (!ok || r.Encrypted || (needBr[sum] && r.Br == "")) && !seen[sum] {
			out.Missing = append(out.Missing, sum)
		}
		seen[sum] = true
	}
	return c.JSON(http.StatusOK, out)
}

// handlePutFile stores one form of a delta file (PUT
// /api/v1/apps/:app/files/:sha256?encoding=raw|br|encrypted). The body is
// the file's bytes as the encoding says; nothing is recorded unless they
// are what :sha256 names.
func (s *Server) handlePutFile(c echo.Context) (err error) {
	ctx := c.Request().Context()
	app, sum := c.Param("app"), c.Param("sha256")
	if err := checkApp(app); err != nil {
		return err
	}
	if !delta.IsHexSHA256(sum) {
		return badRequest("%q is not a SHA-256 (64 lowercase hex digits)", clip(sum))
	}
	encoding := c.QueryParam("encoding")
	switch encoding {
	case "":
		encoding = ota.EncodingRaw
	case ota.EncodingRaw, ota.EncodingBrotli, ota.EncodingEncrypted:
	default:
		return badRequest("encoding %q is not one of raw, br, encrypted", clip(encoding))
	}
	limit := s.maxUpload()
	req := c.Request()
	if req.ContentLength > limit {
		return newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge,
			"file is %d bytes; the server accepts files up to %d bytes (OTAD_MAX_UPLOAD_SIZE)", req.ContentLength, limit)
	}
	body := http.MaxBytesReader(c.Response(), s.idleBody(c, req.Body), limit)

	s.admin.blobMu.Lock()
	s.admin.uploads++
	s.admin.blobMu.Unlock()
	var stored ingest.Stored
	defer func() {
		if err != nil {
			for _, k := range stored.NewBlobs {
				s.discardBlob(context.WithoutCancel(ctx), k)
			}
		}
		s.admin.blobMu.Lock()
		s.admin.uploads--
		s.admin.blobMu.Unlock()
	}()
	stored, err = ingest.Put(ctx, s.blobs, app, sum, encoding, body, limit)
	if err != nil {
		return fileError(err, sum, encoding, limit)
	}
	stored.File.CreatedAt = s.cfg.Now()
	created, err := s.store.PutDeltaFile(ctx, stored.File)
	if err != nil {
		return err
	}
	f := stored.File
	if !created {
		// What the app holds, which may already have had a Brotli form.
		recs, err := s.store.DeltaFiles(ctx, app, []string{sum})
		if err != nil {
			return err
		}
		f = recs[sum]
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	return c.JSON(status, ota.StoredFile{SHA256: f.SHA256, Size: f.Size, Br: f.Br, BrSize: f.BrSize, Encrypted: f.Encrypted, Created: created})
}

// fileError maps a failed file upload to its answer.
func fileError(err error, sum, encoding string, limit int64) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, ingest.ErrMismatch):
		return newError(http.StatusUnprocessableEntity, ota.ErrCodeChecksum, "file %s: %v; nothing was stored", sum, err)
	case errors.Is(err, ingest.ErrBadBrotli), errors.Is(err, ingest.ErrBadEncrypted):
		return newError(http.StatusUnprocessableEntity, ota.ErrCodeInvalidFile, "file %s (encoding %s): %v; nothing was stored", sum, encoding, err)
	case errors.As(err, &mbe), errors.Is(err, blob.ErrTooLarge):
		return newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge, "file %s is larger than the server's limit of %d bytes (OTAD_MAX_UPLOAD_SIZE)", sum, limit)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.Canceled):
		return badRequest("file %s: the body ended early: %v", sum, err)
	}
	return fmt.Errorf("store delta file %s: %w", sum, err)
}

// readManifest reads the manifest part of an upload form.
func readManifest(r io.Reader) ([]ota.ManifestFile, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
	if err != nil {
		return nil, formError(err)
	}
	if len(b) > maxManifestBytes {
		return nil, newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge, "the manifest part is larger than %d bytes", maxManifestBytes)
	}
	files, err := decodeManifest(b)
	if err != nil {
		return nil, newError(http.StatusBadRequest, ota.ErrCodeInvalidManifest, "the manifest part is not a JSON array of files ({\"path\",\"sha256\",\"size\"}): %v", err)
	}
	return files, nil
}

// decodeManifest decodes a manifest: one JSON array of files, no unknown
// fields (a misspelt field would silently drop what it meant), nothing
// after it.
func decodeManifest(b []byte) ([]ota.ManifestFile, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var files []ota.ManifestFile
	if err := dec.Decode(&files); err != nil {
		return nil, err
	}
	if files == nil {
		return nil, errors.New("null is not a list of files")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the array")
	}
	return files, nil
}

// checkManifest checks an upload's manifest and fills in its files'
// stored forms from what the app holds. It runs before the zip is looked
// at, so a release with a missing file fails fast.
func (s *Server) checkManifest(ctx context.Context, app string, files []ota.ManifestFile, encrypted bool) error {
	if err := delta.CheckManifest(files, encrypted); err != nil {
		return manifestError(err)
	}
	for i := range files {
		// Known is otad's to decide, at publish.
		files[i].Known = false
	}
	recs, err := s.store.DeltaFiles(ctx, app, ingest.Keys(files, encrypted))
	if err != nil {
		return err
	}
	missing, err := ingest.Resolve(files, recs, encrypted)
	if err != nil {
		return manifestError(err)
	}
	if len(missing) > 0 {
		shown := missing[:min(len(missing), 5)]
		return newError(http.StatusUnprocessableEntity, ota.ErrCodeMissingFiles,
			"%d files of the manifest are not stored for %s (%s…); upload them first (PUT /api/v1/apps/%s/files/{sha256}), as otactl deploy web --delta does",
			len(missing), app, strings.Join(shown, ", "), app)
	}
	return nil
}

func manifestError(err error) error {
	var me *delta.ManifestError
	if errors.As(err, &me) {
		return newError(http.StatusUnprocessableEntity, ota.ErrCodeInvalidManifest,
			"the delta manifest cannot be installed by the updater plugin: %s", strings.Join(me.Problems, "; "))
	}
	return err
}

// handleManifestSize answers the plugin's getBundleDownloadSize (POST
// {updateUrl}/manifest_size, protocol §1.6): how many bytes each listed
// file of the release would take to download. Entries are matched to the
// release's manifests by download URL, then by file name and hash; what
// matches nothing is "size_unknown". Like /updates it reads no disk when
// channels serve the release.
func (s *Server) handleManifestSize(c echo.Context) error {
	var req ota.ManifestSizeRequest
	if err := s.decodeDeviceJSON(c, &req); err != nil {
		return err
	}
	appID := req.AppID
	if appID == "" {
		appID = s.cfg.DefaultApp
	}
	ctx := c.Request().Context()
	out := ota.ManifestSizeResponse{Files: make([]ota.ManifestSizeFile, 0, len(req.Manifest))}
	sizes := map[string]int64{} // download URL → bytes, then "name\x00hash" → bytes
	if appID != "" && req.Version != "" && len(req.Manifest) > 0 {
		snap, err := s.snapFor(ctx, appID)
		if err != nil {
			return err
		}
		av := snap.App(appID)
		for _, p := range []update.Platform{update.PlatformAndroid, update.PlatformIOS} {
			entries, sz, ok := av.ManifestAnswer(req.Version, p)
			if !ok && av != nil {
				// A release no channel serves: its manifest from the store.
				entries, sz, ok = s.storedManifestAnswer(ctx, av, appID, req.Version, p)
			}
			for i := range entries {
				if ok {
					sizes[entries[i].DownloadURL] = sz[i]
					sizes[entries[i].FileName+"\x00"+entries[i].FileHash] = sz[i]
				}
			}
		}
	}
	for _, e := range req.Manifest {
		f := ota.ManifestSizeFile{FileName: e.FileName, FileHash: e.FileHash, DownloadURL: e.DownloadURL}
		n, ok := sizes[e.DownloadURL]
		if !ok || e.DownloadURL == "" {
			n, ok = sizes[e.FileName+"\x00"+e.FileHash]
		}
		if ok {
			f.Size = &n
			out.TotalSize += n
			out.KnownFiles++
		} else {
			f.Error = "size_unknown"
			out.UnknownFiles++
		}
		out.Files = append(out.Files, f)
	}
	return c.JSON(http.StatusOK, out)
}

// storedManifestAnswer builds a platform's manifest of a release the
// snapshot does not hold, from the store.
func (s *Server) storedManifestAnswer(ctx context.Context, av *update.AppView, appID, version string, p update.Platform) ([]ota.ManifestEntry, []int64, bool) {
	if b := av.Bundles[version]; b == nil || b.Files == 0 {
		return nil, nil, false
	}
	files, err := s.store.Manifest(ctx, appID, version)
	if err != nil {
		return nil, nil, false
	}
	entries, sizes, _, ok := update.ManifestEntries(appID, files, p, s.fileLink)
	return entries, sizes, ok
}
