package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/delta/ingest"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

const (
	// multipartSlack is what a form may carry besides the file: headers,
	// boundaries and the text fields.
	multipartSlack = 1 << 20
	// maxFieldBytes bounds one text field of the upload form.
	maxFieldBytes = 4 << 10
	// maxParts bounds the parts of the upload form.
	maxParts = 32
	// defaultMaxUpload applies when Config.MaxUploadBytes is not set.
	defaultMaxUpload = 256 << 20
)

// zipMagic starts every zip file, and so every APK.
var zipMagic = []byte("PK\x03\x04")

// uploadForm is what an upload request carries, whatever the route.
type uploadForm struct {
	kind      string // fixed by the legacy routes, a field on v1
	fixedKind bool
	appID     string // fixed by the v1 path, a field on the legacy routes
	fixedApp  bool

	fields map[string]string
	file   *blob.Info // set once the file part is stored
	// manifest is the manifest part of a delta release, nil without one.
	manifest []ota.ManifestFile
}

// uploadFields are the form fields an upload may carry besides file.
var uploadFields = map[string]bool{
	"version": true, "channel": true, "checksum": true, "app_id": true,
	"kind": true, "notes": true, "min_native": true, "max_native": true,
	// rollout stages the release (percent); native is the bundle's native
	// fingerprint (JSON); forced says why a native check was overridden.
	"rollout": true, "native": true, "forced": true,
	// uploaded_at (RFC 3339) keeps the upload time of an imported bundle;
	// only user logins may set it.
	"uploaded_at": true,
	// An encrypted bundle's keys (see checkEncryption).
	"session_key": true, "encrypted_checksum": true, "key_id": true,
	// The base64 SHA256withRSA signature of the file, for
	// @capawesome/capacitor-live-update (bundle.CheckSignature).
	"signature": true,
	// A signed delta release's signature of its Capawesome manifest file
	// (ota.CapawesomeManifest of the manifest), see checkSignedManifest.
	"manifest_signature": true,
}

func (s *Server) maxUpload() int64 {
	if s.cfg.MaxUploadBytes > 0 {
		return s.cfg.MaxUploadBytes
	}
	return defaultMaxUpload
}

// handleLegacyWebUpload is the old worker's web upload path.
func (s *Server) handleLegacyWebUpload(c echo.Context) error {
	return s.upload(c, &uploadForm{kind: ota.KindWeb, fixedKind: true})
}

// handleLegacyAPKUpload is the old worker's APK upload path.
func (s *Server) handleLegacyAPKUpload(c echo.Context) error {
	return s.upload(c, &uploadForm{kind: ota.KindAPK, fixedKind: true})
}

// handleUpload is POST /api/v1/apps/:app/bundles.
func (s *Server) handleUpload(c echo.Context) error {
	app := c.Param("app")
	if err := checkApp(app); err != nil {
		return err
	}
	return s.upload(c, &uploadForm{appID: app, fixedApp: true})
}

// upload streams the form's file into the blob store, validates the rest,
// and publishes. Whatever is rejected after the bytes were stored is
// removed again, unless another bundle uses the same bytes.
func (s *Server) upload(c echo.Context, f *uploadForm) (err error) {
	ctx := c.Request().Context()
	req := c.Request()
	limit := s.maxUpload()
	if req.ContentLength > limit+multipartSlack+maxManifestBytes {
		return newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge,
			"upload is %d bytes; the server accepts bundles up to %d bytes (OTAD_MAX_UPLOAD_SIZE)", req.ContentLength, limit)
	}
	req.Body = http.MaxBytesReader(c.Response(), s.idleBody(c, req.Body), limit+multipartSlack+maxManifestBytes)
	if ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); ct != "multipart/form-data" {
		return badRequest("upload must be multipart/form-data with a file part, as curl -F file=@bundle.zip sends")
	}
	mr, err := req.MultipartReader()
	if err != nil {
		return badRequest("read multipart form: %v", err)
	}

	s.admin.blobMu.Lock()
	s.admin.uploads++
	s.admin.blobMu.Unlock()
	defer func() {
		if err != nil && f.file != nil && f.file.New {
			s.discardBlob(context.WithoutCancel(ctx), f.file.SHA256)
		}
		s.admin.blobMu.Lock()
		s.admin.uploads--
		s.admin.blobMu.Unlock()
	}()
	if err := s.readForm(ctx, mr, f, limit); err != nil {
		return err
	}
	in, err := s.checkForm(ctx, f)
	if err != nil {
		return err
	}
	if err := checkCIScope(ciToken(c), in.Bundle.AppID, in.Channel); err != nil {
		return err
	}
	if err := s.requireProtectedByName(ctx, c, in.Bundle.AppID, in.Channel, "a deploy"); err != nil {
		return err
	}
	in.Actor = actor(c)
	in.Bundle.UploadedBy = in.Actor
	if in.Time, err = s.uploadTime(c, f.fields["uploaded_at"]); err != nil {
		return err
	}

	res, err := s.publish(ctx, in)
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return newError(http.StatusConflict, ota.ErrCodeConflict,
				"version %s of %s already exists with other content; version names are immutable (devices cache by name), so upload under a new version",
				in.Bundle.Version, in.Bundle.AppID)
		}
		return err
	}
	res.Bundle.URL = s.bundleURL(&res.Bundle)
	if res.Created {
		res.Warnings = s.sameBytesWarnings(ctx, in)
	}
	s.reqLog(c).Info("bundle uploaded", "app", in.Bundle.AppID, "channel", res.Channel, "release", in.Bundle.Version,
		"kind", in.Bundle.Kind, "sha256", in.Bundle.SHA256, "size", in.Bundle.Size, "created", res.Created, "user", in.Actor)
	status := http.StatusCreated
	if !res.Created {
		status = http.StatusOK
	}
	return c.JSON(status, res)
}

// readForm reads every part. Fields may come in any order: the old script
// sends the file first, otactl sends it last.
func (s *Server) readForm(ctx context.Context, mr *multipart.Reader, f *uploadForm, limit int64) error {
	f.fields = map[string]string{}
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return formError(err)
		}
		if n >= maxParts {
			part.Close()
			return badRequest("upload form has more than %d parts", maxParts)
		}
		name := part.FormName()
		switch {
		case name == "file":
			if f.file != nil {
				part.Close()
				return badRequest("upload form has more than one file part")
			}
			// Fields already seen can reject the upload before its bytes
			// are stored (otactl sends them first).
			if err := checkFieldSyntax(f.fields); err != nil {
				part.Close()
				return err
			}
			info, err := s.blobs.Put(ctx, part, limit)
			part.Close()
			if err != nil {
				if errors.Is(err, blob.ErrTooLarge) {
					return newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge,
						"bundle is larger than the server's limit of %d bytes (OTAD_MAX_UPLOAD_SIZE)", limit)
				}
				return putError(err)
			}
			f.file = &info
		case name == "manifest":
			if f.manifest != nil {
				part.Close()
				return badRequest("upload form has more than one manifest part")
			}
			files, err := readManifest(part)
			part.Close()
			if err != nil {
				return err
			}
			f.manifest = files
		case uploadFields[name]:
			if _, dup := f.fields[name]; dup {
				part.Close()
				return badRequest("form field %q is given twice", name)
			}
			b, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
			part.Close()
			if err != nil {
				return formError(err)
			}
			if len(b) > maxFieldBytes {
				return badRequest("form field %q is longer than %d bytes", name, maxFieldBytes)
			}
			f.fields[name] = strings.TrimSpace(string(b))
		default:
			part.Close()
			return badRequest("unknown form field %q; an upload takes file, manifest, version, channel, checksum, app_id, kind, notes, min_native, max_native, uploaded_at, rollout, native, forced, session_key, encrypted_checksum, key_id, signature, manifest_signature", clip(name))
		}
	}
}

// formError maps a failure to read the form to an answer: a body over the
// MaxBytesReader limit is 413, anything else a broken request. The answer
// names what happened, never the error's text: a failure while the file
// part streams to disk carries the server's temporary path.
func formError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge,
			"upload is larger than the server accepts (%d bytes including the form)", mbe.Limit)
	case errors.Is(err, errStalled):
		return badRequest("the client sent no data for too long; the upload was dropped")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("the upload ended before the form was complete (connection closed, or a Content-Length larger than the body); send it again")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return badRequest("the upload was cancelled before the form was complete; send it again")
	}
	return badRequest("the upload is not a readable multipart form; send it as curl -F file=@bundle.zip does")
}

// putError maps a failure to store the file part: the client's broken or
// oversized body is the client's problem, anything else (the disk) is ours.
func putError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.Canceled) {
		return formError(err)
	}
	return fmt.Errorf("store uploaded bundle: %w", err)
}

// checkFieldSyntax validates the fields whose rules do not depend on
// others, as soon as they are read.
func checkFieldSyntax(fields map[string]string) error {
	if v, ok := fields["channel"]; ok && v != "" {
		if err := checkChannel(v); err != nil {
			return err
		}
	}
	if v, ok := fields["app_id"]; ok && v != "" {
		if err := checkApp(v); err != nil {
			return err
		}
	}
	if v, ok := fields["kind"]; ok && v != "" && v != ota.KindWeb && v != ota.KindAPK {
		return badRequest("kind %q is unknown; use web or apk", clip(v))
	}
	if v, ok := fields["version"]; ok {
		if err := checkVersion(v, ""); err != nil {
			return err
		}
	}
	return nil
}

// checkForm validates a completely read form and the stored file and
// returns what to publish.
func (s *Server) checkForm(ctx context.Context, f *uploadForm) (store.PublishInput, error) {
	var in store.PublishInput
	if err := checkFieldSyntax(f.fields); err != nil {
		return in, err
	}
	kind := f.kind
	if v := f.fields["kind"]; v != "" {
		if f.fixedKind && v != f.kind {
			return in, badRequest("this route takes %s bundles, but the form says kind=%s", f.kind, v)
		}
		kind = v
	}
	if kind == "" {
		kind = ota.KindWeb
	}
	app := f.appID
	if v := f.fields["app_id"]; v != "" {
		if f.fixedApp && v != f.appID {
			return in, badRequest("app_id %q in the form differs from %q in the path", v, f.appID)
		}
		app = v
	}
	if app == "" {
		app = s.cfg.DefaultApp
	}
	if app == "" {
		return in, badRequest("no app named: pass the app_id form field, or set OTAD_DEFAULT_APP on the server")
	}
	if err := checkApp(app); err != nil {
		return in, err
	}
	version := f.fields["version"]
	if err := checkVersion(version, kind); err != nil {
		return in, err
	}
	channel := f.fields["channel"]
	if channel == "" {
		channel = ota.DefaultChannel
		if kind == ota.KindAPK {
			channel = ota.APKChannel
		}
	}
	if err := checkChannel(channel); err != nil {
		return in, err
	}
	for _, k := range []string{"min_native", "max_native"} {
		if v := f.fields[k]; v != "" {
			if err := checkVersion(v, ""); err != nil {
				return in, badRequest("%s %q is not a valid version", k, clip(v))
			}
		}
	}
	if err := checkNativeRange(f.fields["min_native"], f.fields["max_native"]); err != nil {
		return in, err
	}
	if err := checkNotes(f.fields["notes"]); err != nil {
		return in, err
	}
	if f.file == nil {
		return in, newError(http.StatusBadRequest, ota.ErrCodeMissingFile,
			"the form has no file part; send the bundle as file=@path (curl -F) or use otactl deploy")
	}
	if f.file.Size == 0 {
		return in, newError(http.StatusUnprocessableEntity, ota.ErrCodeInvalidBundle, "the uploaded file is empty")
	}
	enc, err := checkEncryption(f.fields, kind)
	if err != nil {
		return in, err
	}
	sig := f.fields["signature"]
	if sig != "" {
		if kind != ota.KindWeb {
			return in, badRequest("only web bundles are signed; devices never download %s files", kind)
		}
		if err := bundle.CheckSignature(sig); err != nil {
			return in, badRequest("%v", err)
		}
	}
	if sum := f.fields["checksum"]; sum != "" {
		if err := checkChecksum(sum, f.file.SHA256); err != nil {
			var ae *apiError
			if enc != nil && errors.As(err, &ae) && ae.Code == ota.ErrCodeChecksum {
				ae.Message += " (for an encrypted upload, checksum is the SHA-256 of the encrypted file, not of the zip)"
			}
			return in, err
		}
	}
	if f.manifest != nil {
		if kind != ota.KindWeb {
			return in, badRequest("a manifest makes a web bundle a delta release; an APK has none")
		}
		if err := s.checkManifest(ctx, app, f.manifest, enc != nil); err != nil {
			return in, err
		}
	}
	msig := f.fields["manifest_signature"]
	if err := checkSignedManifest(f.manifest, sig, msig); err != nil {
		return in, err
	}
	if enc != nil {
		// Ciphertext cannot be looked into; devices check the zip after
		// decrypting it, against the encrypted checksum.
		err = s.checkEncryptedContent(ctx, f.file)
	} else {
		err = s.checkContent(ctx, kind, f.file, f.manifest)
	}
	if err != nil {
		return in, err
	}
	in.Bundle = ota.Bundle{
		AppID: app, Version: version, Kind: kind, SHA256: f.file.SHA256, Size: f.file.Size,
		Notes: f.fields["notes"], MinNative: f.fields["min_native"], MaxNative: f.fields["max_native"],
		Encryption: enc, Signature: sig, ManifestSignature: msig,
	}
	in.Channel = channel
	in.Manifest = f.manifest
	if err := checkSafetyFields(f.fields, kind, &in); err != nil {
		return in, err
	}
	return in, nil
}

// checkNativeRange refuses a native range no device is in: min above max
// would publish a bundle offered to nobody. Bounds that are not semver
// are compared by the decision as it can (and flagged there).
func checkNativeRange(lo, hi string) error {
	if lo == "" || hi == "" {
		return nil
	}
	min, errMin := update.CoerceNative(lo)
	max, errMax := update.CoerceNative(hi)
	if errMin == nil && errMax == nil && min.Compare(max) > 0 {
		return badRequest("min_native %s is above max_native %s: no device would be offered the bundle", clip(lo), clip(hi))
	}
	return nil
}

// uploadTime is when the upload is recorded: now, or the uploaded_at
// field of an import. A CI token may not rewrite history, and no upload
// may claim to come from the future.
func (s *Server) uploadTime(c echo.Context, field string) (time.Time, error) {
	now := s.cfg.Now()
	if field == "" {
		return now, nil
	}
	if t := ciToken(c); t != nil {
		return time.Time{}, forbidden("CI token %q cannot set uploaded_at; import history with a user login", t.Name)
	}
	at, err := time.Parse(time.RFC3339Nano, field)
	if err != nil {
		return time.Time{}, badRequest("uploaded_at %q is not an RFC 3339 time such as 2024-05-01T12:00:00Z", clip(field))
	}
	if at.After(now.Add(time.Minute)) {
		return time.Time{}, badRequest("uploaded_at %s is in the future", at.UTC().Format(time.RFC3339))
	}
	return at, nil
}

// checkChecksum compares a client's checksum with what the server hashed.
func checkChecksum(given, actual string) error {
	sum := strings.ToLower(given)
	for i := 0; i < len(sum); i++ {
		c := sum[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return badRequest("checksum %q is not hexadecimal; send the SHA-256 of the file", clip(given))
		}
	}
	if sum == actual {
		return nil
	}
	hint := ""
	if len(sum) == 8 {
		hint = " (8 digits is a CRC32, which current plugins reject; update @capgo/cli and the plugin so bundle zip prints a SHA-256)"
	}
	return newError(http.StatusUnprocessableEntity, ota.ErrCodeChecksum,
		"checksum %s sent with the upload does not match sha256 %s of the received file%s; the file was changed or truncated on the way", clip(sum), actual, hint)
}

// checkContent looks into the stored bytes: a web bundle must be a zip
// the plugin can unpack, an APK must at least be a zip. The zip of a delta
// release must hold exactly its manifest's files.
func (s *Server) checkContent(ctx context.Context, kind string, info *blob.Info, manifest []ota.ManifestFile) error {
	content, _, err := s.blobs.Open(ctx, info.SHA256)
	if err != nil {
		return fmt.Errorf("open stored upload %s: %w", info.SHA256, err)
	}
	defer content.Close()
	if kind == ota.KindAPK {
		head := make([]byte, len(zipMagic))
		if _, err := io.ReadFull(content, head); err != nil || !bytes.Equal(head, zipMagic) {
			return newError(http.StatusUnprocessableEntity, ota.ErrCodeInvalidBundle, "the file is not an APK (an APK is a zip file and starts with PK)")
		}
		return nil
	}
	ra, ok := content.(io.ReaderAt)
	if !ok {
		ra = &seekReaderAt{rs: content}
	}
	rep, err := bundle.Validate(ra, info.Size, bundle.Limits{})
	if err != nil {
		var ve *bundle.ValidationError
		if errors.As(err, &ve) {
			return newError(http.StatusUnprocessableEntity, ota.ErrCodeInvalidBundle,
				"the zip cannot be installed by the updater plugin: %s", strings.Join(ve.Problems, "; "))
		}
		if errors.Is(err, bundle.ErrInvalidZip) {
			return newError(http.StatusUnprocessableEntity, ota.ErrCodeInvalidBundle, "the file is not a valid zip: %v", err)
		}
		return fmt.Errorf("validate bundle %s: %w", info.SHA256, err)
	}
	if manifest != nil {
		if err := ingest.CheckZip(ctx, ra, info.Size, rep.Wrapper, manifest); err != nil {
			return manifestError(err)
		}
	}
	for _, w := range rep.Warnings {
		s.log.Warn("bundle accepted with a warning", "sha256", info.SHA256, "warning", w)
	}
	return nil
}

// seekReaderAt gives io.ReaderAt over a blob backend whose content is only
// an io.ReadSeeker.
type seekReaderAt struct {
	mu sync.Mutex
	rs io.ReadSeeker
}

func (r *seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.rs.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(r.rs, p)
}

// publish records the bundle and refreshes the device snapshot, holding
// blobMu for reading so a concurrent rejected upload of the same bytes
// cannot remove them in between.
func (s *Server) publish(ctx context.Context, in store.PublishInput) (ota.UploadResult, error) {
	s.admin.blobMu.RLock()
	defer s.admin.blobMu.RUnlock()
	if _, err := s.blobs.Stat(ctx, in.Bundle.SHA256); err != nil {
		return ota.UploadResult{}, fmt.Errorf("bundle bytes vanished before publishing (a concurrent upload of the same bytes was rejected); retry: %w", err)
	}
	res, err := s.store.Publish(ctx, in)
	if err != nil {
		return res, err
	}
	s.metrics.Upload(in.Bundle.AppID, in.Bundle.Kind, res.Created, in.Bundle.Size)
	// APK uploads refresh too: they may create the app and its channel.
	if err := s.refreshApp(ctx, in.Bundle.AppID); err != nil {
		return res, err
	}
	return res, nil
}

// maxSameBytesNamed bounds the versions one warning names.
const maxSameBytesNamed = 5

// sameBytesWarnings warns when a new version's bytes are those of another
// version of the channel: the build did not change (say, the version never
// reached it), and devices would download the same bundle again under a new
// name. It is a warning, not an error, since re-deploying a build under a
// new name can be deliberate. The upload is committed already, so a failed
// read only costs the warning.
func (s *Server) sameBytesWarnings(ctx context.Context, in store.PublishInput) []string {
	b := in.Bundle
	ch, err := s.store.GetChannel(ctx, b.AppID, in.Channel)
	if err != nil {
		s.log.Warn("check the upload for a duplicate of another version", "app", b.AppID, "channel", in.Channel, "err", err)
		return nil
	}
	// Web bundles are in the device snapshot, which the publish has just
	// refreshed: no store read per release.
	var view *update.AppView
	if b.Kind == ota.KindWeb {
		view = s.snap.Load().App(b.AppID)
	}
	sha := func(version string) (string, error) {
		if view != nil {
			if vb, ok := view.Bundles[version]; ok {
				return vb.SHA256, nil
			}
		}
		vb, err := s.store.GetBundle(ctx, b.AppID, b.Kind, version)
		return vb.SHA256, err
	}
	seen := map[string]bool{b.Version: true, ota.VersionBuiltin: true}
	var same []string
	for i := len(ch.Releases) - 1; i >= 0; i-- { // newest first
		v := ch.Releases[i].Version
		if seen[v] {
			continue
		}
		seen[v] = true
		got, err := sha(v)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("check the upload for a duplicate of another version", "app", b.AppID, "version", v, "err", err)
			}
			continue
		}
		if got == b.SHA256 {
			same = append(same, v)
		}
	}
	if len(same) == 0 {
		return nil
	}
	names := strings.Join(same[:min(len(same), maxSameBytesNamed)], ", ")
	if len(same) > maxSameBytesNamed {
		names += fmt.Sprintf(" and %d more", len(same)-maxSameBytesNamed)
	}
	return []string{fmt.Sprintf("%s %s has the same bytes (sha256 %s) as %s on channel %s: the build did not change, and devices will download the same bundle again under the new name",
		b.Kind, b.Version, b.SHA256[:min(12, len(b.SHA256))], names, in.Channel)}
}

// discardBlob removes the bytes of a rejected upload unless a stored
// bundle refers to them or another upload, which may carry the same bytes,
// is in flight.
func (s *Server) discardBlob(ctx context.Context, sha string) {
	if _, shared := s.blobs.(blob.Sweeper); shared {
		// Other replicas write the store too, and blobMu does not see
		// their uploads of the same bytes: the bytes stay for garbage
		// collection, whose grace period covers uploads anywhere.
		return
	}
	s.admin.blobMu.Lock()
	defer s.admin.blobMu.Unlock()
	if s.admin.uploads > 1 {
		return
	}
	refs, err := s.store.ReferencedBlobs(ctx)
	if err != nil {
		s.log.Warn("keep bytes of rejected upload", "sha256", sha, "err", err)
		return
	}
	if refs[sha] {
		return
	}
	if err := s.blobs.Delete(ctx, sha); err != nil {
		s.log.Warn("delete bytes of rejected upload", "sha256", sha, "err", err)
	}
}

// checkSignedManifest checks the signatures of a delta release for
// @capawesome/capacitor-live-update devices with a publicKey, which verify
// the manifest file and every file of a manifest bundle, and the zip when
// they get that: a release whose files are signed (all of them,
// delta.CheckManifest saw to that) needs the manifest file's signature and
// the zip's, and a manifest signature needs signed files.
func checkSignedManifest(manifest []ota.ManifestFile, sig, msig string) error {
	signedFiles := len(manifest) > 0 && manifest[0].Signature != ""
	switch {
	case msig == "" && !signedFiles:
		return nil
	case len(manifest) == 0:
		return badRequest("manifest_signature signs the Capawesome manifest file of a delta release, but this upload has no manifest")
	case !signedFiles:
		return badRequest("manifest_signature is set but the manifest's files are not signed; a device with a publicKey verifies every file (otactl deploy web --delta --sign-key signs them)")
	case msig == "":
		return badRequest("the manifest's files are signed but manifest_signature, the signature of the Capawesome manifest file, is missing; devices with a publicKey verify that file too")
	case sig == "":
		return badRequest("the manifest's files are signed but the zip is not (signature); devices that get the zip would refuse it")
	}
	if err := bundle.CheckSignature(msig); err != nil {
		return badRequest("manifest_signature: %v", err)
	}
	return nil
}
