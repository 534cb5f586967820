package capawesome

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// Manifest bundles (docs/protocol-capawesome.md §4). The device fetches
// <url>?href=capawesome-live-update-manifest.json, copies the files its
// current bundle already has (by checksum) and fetches the others as
// <url>?href=<path>, verifying each from its x-checksum and x-signature
// headers. The files come from a Manifests (otad's: the delta releases of
// issue 12); without one RouteFiles is not registered and every check gets
// the zip.
//
// The headers are the only thing a device verifies a file against, and it
// reads them from the response it finally gets: a redirect to a CDN or a
// presigned URL would lose them. So otad serves these bytes itself.

var (
	// ErrNoFile is returned by Manifests.Open for a file the store lacks.
	ErrNoFile = errors.New("no such file in the bundle")
	// ErrNotManifest is returned by Manifests.Files for a bundle that is
	// not served as a manifest bundle.
	ErrNotManifest = errors.New("not a manifest bundle")
)

// File is one file of a bundle in per-file form.
type File struct {
	// Path is the file's path inside the bundle ("assets/app.js"): a
	// relative slash path, never with "..", since the device writes it
	// under its bundle directory without checking it.
	Path   string
	SHA256 string // lowercase hex of the file's bytes
	Size   int64
	// Signature is the base64 SHA256withRSA signature of the file's
	// bytes, for bundles signed for devices with a publicKey (which
	// verify every file).
	Signature string
	// Brotli says the file also has a Brotli-compressed form, sent with
	// Content-Encoding: br to devices whose HTTP stack asks for it and
	// decodes it before the plugin hashes the bytes.
	Brotli bool
	// Raw and Br name the forms for the source's Open (otad: blob keys).
	Raw, Br string
}

// Listing is a bundle's files, in manifest order, and the signature of
// its manifest file's bytes (ManifestJSON of Files), empty when unsigned.
type Listing struct {
	Files     []File
	Signature string
}

// Manifests gives the per-file form of bundles.
type Manifests interface {
	// Has reports whether b, a bundle of app, is offered as a manifest
	// bundle. It runs on every check, so it must neither block nor
	// allocate. It must be false for a signed bundle whose files and
	// manifest are not all signed: a device with a publicKey would refuse
	// them, and gets the signed zip instead.
	Has(app *update.AppView, b *ota.Bundle) bool
	// Files lists b's files: those of a bundle Has offers, or of one it
	// offered and that still has them (a device may be halfway through
	// its download when the channel moves on). ErrNotManifest otherwise.
	Files(ctx context.Context, app *update.AppView, b *ota.Bundle) (Listing, error)
	// Open returns the bytes of f, a file of b: its raw form, or with
	// brotli (only asked when f.Brotli) its Brotli-compressed form.
	// ErrNoFile when the store lacks them.
	Open(ctx context.Context, b *ota.Bundle, f File, brotli bool) (io.ReadSeekCloser, error)
}

// ManifestJSON is the manifest file of a listing, byte for byte what a
// device downloads and keeps beside the bundle: a JSON array of
// {href, checksum, sizeInBytes} (ota.MarshalCapawesomeManifest, which
// otactl signs). A signed manifest signs these bytes.
func ManifestJSON(files []File) []byte {
	items := make([]ota.ManifestItem, len(files))
	for i, f := range files {
		items[i] = ota.ManifestItem{Href: f.Path, Checksum: f.SHA256, SizeInBytes: f.Size}
	}
	return ota.MarshalCapawesomeManifest(items)
}

// minManifestPlugin is the first plugin version that installs manifest
// bundles: "feat: support delta updates", #305, released as 6.5.0
// (packages/live-update/CHANGELOG.md). Older ones would download the
// files URL as a zip and fail.
var minManifestPlugin = update.Version{Major: 6, Minor: 5}

// SupportsManifest reports whether a plugin of this version (the check's
// pluginVersion) installs manifest bundles; an unreadable one gets zips.
func SupportsManifest(pluginVersion string) bool {
	if pluginVersion == "" {
		return false
	}
	v, err := update.CoerceNative(pluginVersion)
	return err == nil && v.Compare(minManifestPlugin) >= 0
}

// filesURL is the base URL of a bundle's files. It has no query: iOS
// replaces the query with ?href=, Android appends to it.
func filesURL(public, appID, version string) string {
	return strings.TrimRight(public, "/") + "/v1/apps/" + url.PathEscape(appID) + "/bundles/" + url.PathEscape(version) + "/files"
}

// Header names as the plugin reads them. They go on the wire in lower
// case: iOS plugins before 7.3.0 look them up as exactly "x-checksum" and
// "x-signature" (LiveUpdateHttpClient.swift, fixed by #683), and HTTP/2
// lower-cases every name anyway. Set them with setRaw, never Header.Set,
// which would write X-Checksum.
const (
	headerChecksum  = "x-checksum"
	headerSignature = "x-signature"
)

func setRaw(h http.Header, name, value string) { h[name] = []string{value} }

// files answers GET /v1/apps/{appId}/bundles/{bundleId}/files?href=PATH:
// the manifest file or one file of a manifest bundle, with the headers
// the device verifies it from.
func (h *handlers) files(c echo.Context) error {
	appID, version := c.Param("app"), c.Param("bundle")
	if !checkApp(appID) {
		return badRequest(c, "app id is invalid")
	}
	var href string
	seen := false
	err := walkQuery(c.Request().URL.RawQuery, func(key, value string) error {
		if key != "href" {
			return nil
		}
		if seen {
			return queryErrorf("href is given twice")
		}
		href, seen = value, true
		return nil
	})
	if err != nil {
		return badRequest(c, err.Error())
	}
	if href == "" {
		return badRequest(c, "href is missing; ask for ?href="+ota.CapawesomeManifestFile+" first")
	}
	ctx := c.Request().Context()
	snap, err := h.o.Backend.Snapshot(ctx, appID)
	if err != nil {
		return err
	}
	app := snap.App(appID)
	var b *ota.Bundle
	if app != nil {
		b = app.Bundles[version]
	}
	notFound := func() error {
		return c.JSON(http.StatusNotFound, ota.ErrorResponse{Code: ota.ErrCodeBundleNotFound, Message: "no manifest bundle " + clip(version) + " of app " + clip(appID)})
	}
	if b == nil {
		return notFound()
	}
	p, err := h.listings.get(ctx, h.o.Manifests, app, b)
	if errors.Is(err, ErrNotManifest) {
		return notFound()
	}
	if err != nil {
		return fmt.Errorf("list the files of %s %s: %w", appID, version, err)
	}
	hd := c.Response().Header()
	accept := c.Request().Header.Get(echo.HeaderAcceptEncoding)
	hd.Set(echo.HeaderVary, echo.HeaderAcceptEncoding)
	if href == ota.CapawesomeManifestFile {
		setRaw(hd, headerChecksum, p.sum)
		if p.sig != "" {
			setRaw(hd, headerSignature, p.sig)
		}
		// A version's manifest may gain signatures when a deleted
		// version is published again; cache it briefly.
		hd.Set("Cache-Control", "public, max-age=60")
		body := p.body
		if p.gz != nil && accepts(accept, "gzip") {
			hd.Set(echo.HeaderContentEncoding, "gzip")
			body = p.gz
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
	}
	i, ok := p.index[href]
	if !ok {
		return c.JSON(http.StatusNotFound, ota.ErrorResponse{Code: ota.ErrCodeNotFound, Message: "bundle " + clip(version) + " has no file " + clip(href)})
	}
	f := p.files[i]
	br := f.Brotli && accepts(accept, "br")
	r, err := h.o.Manifests.Open(ctx, b, f, br)
	if errors.Is(err, ErrNoFile) {
		return c.JSON(http.StatusNotFound, ota.ErrorResponse{Code: ota.ErrCodeNotFound, Message: "file " + clip(href) + " of bundle " + clip(version) + " is not stored"})
	}
	if err != nil {
		return fmt.Errorf("open %s of %s %s: %w", f.Path, appID, version, err)
	}
	defer r.Close()
	// The checksum and signature are of the file's bytes, which the
	// device's HTTP stack gives the plugin after undoing a "br".
	setRaw(hd, headerChecksum, f.SHA256)
	if f.Signature != "" {
		setRaw(hd, headerSignature, f.Signature)
	}
	etag := `"` + f.SHA256 + `"`
	if br {
		hd.Set(echo.HeaderContentEncoding, "br")
		etag = `"` + f.SHA256 + `.br"`
	}
	hd.Set("ETag", etag)
	// Content-addressed bytes of an immutable version: cacheable.
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set(echo.HeaderContentType, "application/octet-stream")
	hd.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, r)
	return nil
}

// accepts reports whether an Accept-Encoding header accepts coding (a
// lowercase token): named with a q other than 0, or else a "*" that is.
func accepts(header, coding string) bool {
	star := false
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ",")
		name, params, _ := strings.Cut(part, ";")
		name = strings.TrimSpace(name)
		refused := false
		for params != "" {
			var p string
			p, params, _ = strings.Cut(params, ";")
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				refused = strings.Trim(strings.TrimSpace(v), "0.") == "" // q=0, q=0.0, …
			}
		}
		switch {
		case strings.EqualFold(name, coding):
			return !refused
		case name == "*":
			star = !refused
		}
	}
	return star
}

// prepared is a listing as the files route serves it: the manifest file
// encoded (and gzipped) once, its checksum, and the files by path.
type prepared struct {
	body, gz []byte
	sum, sig string
	files    []File
	index    map[string]int
}

func prepare(l Listing) *prepared {
	p := &prepared{body: ManifestJSON(l.Files), sig: l.Signature, files: l.Files, index: make(map[string]int, len(l.Files))}
	sum := sha256.Sum256(p.body)
	p.sum = hex.EncodeToString(sum[:])
	for i, f := range l.Files {
		p.index[f.Path] = i
	}
	var buf bytes.Buffer
	if w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression); err == nil {
		if _, err := w.Write(p.body); err == nil && w.Close() == nil && buf.Len() < len(p.body) {
			p.gz = buf.Bytes()
		}
	}
	return p
}

// maxListings bounds the prepared listings kept: about what a few
// channels serve at once. A thousand-file listing takes a few hundred KB.
const maxListings = 16

// listings keeps prepared listings, so the many file requests of one
// download (Android sends up to 30 at once) list and encode a release
// once.
type listings struct {
	mu sync.Mutex
	m  map[listingKey]*listingEntry
}

// listingKey names a release's files: its version, bytes and signature
// (a deleted version brought back with the same bytes has the same files,
// perhaps signed this time).
type listingKey struct{ app, version, sha, sig string }

type listingEntry struct {
	once sync.Once
	p    *prepared
	err  error
}

func (l *listings) get(ctx context.Context, src Manifests, app *update.AppView, b *ota.Bundle) (*prepared, error) {
	k := listingKey{b.AppID, b.Version, b.SHA256, b.Signature}
	if k.app == "" {
		k.app = app.App.ID
	}
	l.mu.Lock()
	if l.m == nil {
		l.m = map[listingKey]*listingEntry{}
	}
	e := l.m[k]
	if e == nil {
		if len(l.m) >= maxListings {
			for old := range l.m { // any one: a map's order is random enough
				delete(l.m, old)
				break
			}
		}
		e = &listingEntry{}
		l.m[k] = e
	}
	l.mu.Unlock()
	e.once.Do(func() {
		// Others may be waiting for it: one going away must not fail them.
		list, err := src.Files(context.WithoutCancel(ctx), app, b)
		if err != nil {
			e.err = err
			return
		}
		e.p = prepare(list)
	})
	if e.err != nil {
		// Not kept: the next request asks again (a store that was down,
		// a bundle that becomes a manifest bundle).
		l.mu.Lock()
		if l.m[k] == e {
			delete(l.m, k)
		}
		l.mu.Unlock()
	}
	return e.p, e.err
}
