package capawesome

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/pkg/ota"
)

// Manifest bundles (docs/protocol-capawesome.md §4). The device fetches
// <url>?href=capawesome-live-update-manifest.json, copies the files its
// current bundle already has (by checksum) and fetches the others as
// <url>?href=<path>, verifying each from its X-Checksum and X-Signature
// headers. otad serves zip bundles as they are; per-file bundles come
// from web files stored content-addressed (issue 12), through a
// Manifests. Until one is configured RouteFiles is not registered and
// every check gets the zip.

// ErrNoFile is returned by Manifests.Open for a path the bundle lacks.
var ErrNoFile = errors.New("no such file in the bundle")

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
}

// Listing is a bundle's files and the signature of its manifest file's
// bytes (ManifestJSON of Files), empty when unsigned.
type Listing struct {
	Files     []File
	Signature string
}

// Manifests gives the per-file form of bundles.
type Manifests interface {
	// Has reports whether b is served as a manifest bundle. It runs on
	// every check, so it must not block. It must be false for a signed
	// bundle whose files and manifest are not all signed: a device with
	// a publicKey would refuse them, and gets the signed zip instead.
	Has(b *ota.Bundle) bool
	// Files lists b's files.
	Files(ctx context.Context, b *ota.Bundle) (Listing, error)
	// Open returns the bytes of f, a file of b (ErrNoFile when absent).
	Open(ctx context.Context, b *ota.Bundle, f File) (io.ReadSeekCloser, error)
}

// ManifestJSON is the manifest file of a listing, byte for byte what a
// device downloads and keeps beside the bundle: a JSON array of
// {href, checksum, sizeInBytes}. A signed manifest signs these bytes.
func ManifestJSON(files []File) []byte {
	items := make([]ota.ManifestItem, len(files))
	for i, f := range files {
		items[i] = ota.ManifestItem{Href: f.Path, Checksum: f.SHA256, SizeInBytes: f.Size}
	}
	b, err := json.Marshal(items)
	if err != nil {
		panic(err) // strings and numbers always encode
	}
	return b
}

// filesURL is the base URL of a bundle's files. It has no query: iOS
// replaces the query with ?href=, Android appends to it.
func filesURL(public, appID, version string) string {
	return strings.TrimRight(public, "/") + "/v1/apps/" + url.PathEscape(appID) + "/bundles/" + url.PathEscape(version) + "/files"
}

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
	if b == nil || !h.o.Manifests.Has(b) {
		return c.JSON(http.StatusNotFound, ota.ErrorResponse{Code: ota.ErrCodeBundleNotFound, Message: "no manifest bundle " + clip(version) + " of app " + clip(appID)})
	}
	list, err := h.o.Manifests.Files(ctx, b)
	if err != nil {
		return fmt.Errorf("list the files of %s %s: %w", appID, version, err)
	}
	hd := c.Response().Header()
	if href == ota.CapawesomeManifestFile {
		body := ManifestJSON(list.Files)
		sum := sha256.Sum256(body)
		hd.Set("X-Checksum", hex.EncodeToString(sum[:]))
		if list.Signature != "" {
			hd.Set("X-Signature", list.Signature)
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
	}
	for _, f := range list.Files {
		if f.Path != href {
			continue
		}
		r, err := h.o.Manifests.Open(ctx, b, f)
		if errors.Is(err, ErrNoFile) {
			break
		}
		if err != nil {
			return fmt.Errorf("open %s of %s %s: %w", f.Path, appID, version, err)
		}
		defer r.Close()
		hd.Set("X-Checksum", f.SHA256)
		if f.Signature != "" {
			hd.Set("X-Signature", f.Signature)
		}
		// Content-addressed bytes of an immutable version: cacheable.
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
		hd.Set(echo.HeaderContentType, "application/octet-stream")
		http.ServeContent(c.Response(), c.Request(), "", time.Time{}, r)
		return nil
	}
	return c.JSON(http.StatusNotFound, ota.ErrorResponse{Code: ota.ErrCodeNotFound, Message: "bundle " + clip(version) + " has no file " + clip(href)})
}
