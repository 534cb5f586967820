package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/blob"
	downloads "github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Content types of the two bundle kinds.
const (
	contentTypeZip = "application/zip"
	contentTypeAPK = "application/vnd.android.package-archive"
)

// maxLegacySplits bounds the lookups one legacy key may cost: each '-' in
// "<channel>-<version>.zip" is a possible split.
const maxLegacySplits = 8

var errNoBundle = newError(http.StatusNotFound, ota.ErrCodeBundleNotFound, "no such bundle")

// handleBundleDownload serves GET and HEAD /api/ota/bundle/:key. The key is
// a content address (<sha256>.zip|.apk), immutable and cacheable forever,
// or the old worker's <channel>-<version>.zip of the default app, which can
// change meaning and is cached briefly. The key never becomes a path.
func (s *Server) handleBundleDownload(c echo.Context) error {
	key := c.Param("key")
	ctx := c.Request().Context()
	var (
		sha       string
		kind      string
		immutable bool
	)
	if sum, ext, ok := contentKey(key); ok {
		sha, immutable = sum, true
		kind = ota.KindWeb
		if ext == ".apk" {
			kind = ota.KindAPK
		}
	} else {
		b, err := s.resolveLegacyKey(ctx, key)
		if err != nil {
			return err
		}
		sha, kind = b.SHA256, b.Kind
	}

	if s.links.Redirects() {
		return s.redirectDownload(c, sha, bundleObject(&ota.Bundle{SHA256: sha, Kind: kind}), errNoBundle)
	}
	ct := contentTypeZip
	if kind == ota.KindAPK {
		ct = contentTypeAPK
	}
	return s.serveBlob(c, sha, ct, immutable, errNoBundle)
}

// serveBlob sends the blob sha with range support, its SHA-256 as ETag,
// and a cache lifetime of a year when its URL is a content address
// (immutable) or a minute otherwise; notFound is the answer when there is
// no such blob.
func (s *Server) serveBlob(c echo.Context, sha, contentType string, immutable bool, notFound error) error {
	content, info, err := s.blobs.Open(c.Request().Context(), sha)
	if errors.Is(err, blob.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	defer content.Close()

	h := c.Response().Header()
	h.Set("ETag", `"`+sha+`"`)
	h.Set("X-Checksum-Sha256", sha)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", contentType)
	if immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=60")
	}
	// ServeContent handles Range, HEAD and If-None-Match. It writes
	// through sendfileWriter so that an *os.File reaches the connection's
	// ReadFrom (sendfile) instead of being copied through echo's writer.
	w := sendfileWriter{Response: c.Response(), idle: s.downloadIdle(), chunk: downloadChunk}
	if s.testDownloadChunk > 0 {
		w.chunk = s.testDownloadChunk
	}
	w.rc = http.NewResponseController(c.Response())
	w.onStall = func() {
		s.reqLog(c).Warn("download stalled: the client reads too slowly; dropping it",
			"idle", w.idle.String(), "address", s.clientIP(c))
	}
	// net/http clears the write deadline after each response, so the
	// next request on a kept-alive connection does not inherit it.
	http.ServeContent(w, c.Request(), "", info.ModTime, content)
	return nil
}

// redirectDownload sends the client to where the bytes are when they are
// not in otad's directory: the CDN, or a presigned URL made now. A
// presigned redirect must not be cached past its lifetime; a CDN one may
// be, briefly (the CDN base could be reconfigured).
//
// An unknown blob is notFound (a 404). When the bucket cannot say (it is
// down), the client is sent on anyway: a CDN may still have the bytes cached.
func (s *Server) redirectDownload(c echo.Context, sha string, obj downloads.Object, notFound error) error {
	if _, err := s.blobs.Stat(c.Request().Context(), sha); errors.Is(err, blob.ErrNotFound) {
		return notFound
	} else if err != nil {
		s.reqLog(c).Warn("redirecting a download without knowing the blob is in the bucket", "sha256", sha, "err", err)
	}
	to, err := s.links.Redirect(obj)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("X-Checksum-Sha256", sha)
	if s.links.Mode() == downloads.ModePresigned {
		h.Set("Cache-Control", "no-store")
	} else {
		h.Set("Cache-Control", "public, max-age=3600")
	}
	return c.Redirect(http.StatusFound, to)
}

// defaultDownloadIdle and downloadChunk bound how slowly a download may
// be read: each downloadChunk bytes must be written within the idle
// limit, about 4 KB/s with the defaults, far below a phone on a poor
// link. The HTTP server has no whole-response write timeout (a big APK on
// a slow link may take many minutes), so without this a client that stops
// reading would hold its connection, goroutine and open file forever.
const (
	defaultDownloadIdle = 60 * time.Second
	downloadChunk       = 256 << 10
)

func (s *Server) downloadIdle() time.Duration {
	if s.cfg.DownloadIdleTimeout > 0 {
		return s.cfg.DownloadIdleTimeout
	}
	return defaultDownloadIdle
}

// contentKey parses "<64 lowercase hex>.zip" or ".apk".
func contentKey(key string) (sha, ext string, ok bool) {
	if len(key) != 64+4 {
		return "", "", false
	}
	sha, ext = key[:64], key[64:]
	if ext != ".zip" && ext != ".apk" {
		return "", "", false
	}
	for i := 0; i < len(sha); i++ {
		c := sha[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", "", false
		}
	}
	return sha, ext, true
}

// resolveLegacyKey finds the bundle the old worker stored as
// "<channel>-<version>.zip": a release of that channel of the default app,
// when devices may see that channel (public or self-settable). Channel and
// version may both contain '-', so every split is tried.
func (s *Server) resolveLegacyKey(ctx context.Context, key string) (ota.Bundle, error) {
	app := s.cfg.DefaultApp
	name, ok := strings.CutSuffix(key, ".zip")
	if !ok || app == "" || len(name) > ota.MaxChannelLen+1+ota.MaxVersionLen {
		return ota.Bundle{}, errNoBundle
	}
	splits := 0
	for i := 1; i < len(name)-1 && splits < maxLegacySplits; i++ {
		if name[i] != '-' {
			continue
		}
		channel, version := name[:i], name[i+1:]
		if checkChannel(channel) != nil || checkVersion(version, "") != nil {
			continue
		}
		splits++
		ch, err := s.store.GetChannel(ctx, app, channel)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return ota.Bundle{}, err
		}
		// Only channels a device may choose (the public default and
		// self-settable ones): the name is guessable, unlike a content
		// address, so a private channel's bundles stay unlisted.
		if !ch.Public && !ch.Policy.AllowSelfSet {
			continue
		}
		if !hasRelease(ch, version) {
			continue
		}
		b, err := s.store.GetBundle(ctx, app, ch.Kind, version)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return ota.Bundle{}, err
		}
		if b.Deleted {
			continue
		}
		return b, nil
	}
	return ota.Bundle{}, errNoBundle
}

func hasRelease(ch ota.Channel, version string) bool {
	for _, r := range ch.Releases {
		if r.Version == version {
			return true
		}
	}
	return false
}

// sendfileWriter is echo's response with io.ReaderFrom: it commits the
// header through echo (so status and size are recorded) and then hands the
// body to the underlying writer's ReadFrom, which net/http turns into
// sendfile for files. It writes in pieces of downloadChunk, pushing the
// write deadline forward before each, so a reader that stalls is dropped
// while one that keeps reading is never cut.
type sendfileWriter struct {
	*echo.Response
	rc      *http.ResponseController
	idle    time.Duration
	chunk   int64
	onStall func()
}

func (w sendfileWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.Committed {
		w.WriteHeader(http.StatusOK)
	}
	rf, ok := w.Writer.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{w.Response}, r)
	}
	if w.rc == nil || w.rc.SetWriteDeadline(time.Now().Add(w.idle)) != nil {
		// No deadlines here (a ResponseRecorder): one piece.
		n, err := rf.ReadFrom(r)
		w.Size += n
		return n, err
	}
	// sendfile sees a file only through one *io.LimitedReader, so the
	// range ServeContent asks for is unwrapped and re-limited per piece.
	src, left := r, int64(-1)
	if lr, ok := r.(*io.LimitedReader); ok {
		src, left = lr.R, lr.N
	}
	var total int64
	for left != 0 {
		piece := w.chunk
		if left > 0 {
			piece = min(piece, left)
		}
		if err := w.rc.SetWriteDeadline(time.Now().Add(w.idle)); err != nil {
			return total, err
		}
		n, err := rf.ReadFrom(&io.LimitedReader{R: src, N: piece})
		total += n
		w.Size += n
		if left > 0 {
			left -= n
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			w.onStall()
		}
		if err != nil {
			return total, err
		}
		if n < piece {
			break // the source ended
		}
	}
	if lr, ok := r.(*io.LimitedReader); ok {
		lr.N = left
	}
	return total, nil
}

// writerOnly hides ReadFrom so io.Copy does not call it again.
type writerOnly struct{ io.Writer }

var _ io.ReaderFrom = sendfileWriter{}
