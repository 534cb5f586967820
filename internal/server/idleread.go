package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

// defaultUploadIdle is how long an upload may go without a single byte
// arriving before it is failed. The HTTP server has no whole-request read
// timeout (a large APK on a slow link may take many minutes), so without
// this a client that stops sending would hold its connection, goroutine
// and temporary file forever.
const defaultUploadIdle = 60 * time.Second

// uploadIdle is the configured idle limit of upload bodies.
func (s *Server) uploadIdle() time.Duration {
	if s.cfg.UploadIdleTimeout > 0 {
		return s.cfg.UploadIdleTimeout
	}
	return defaultUploadIdle
}

// idleBody wraps an upload body so that each read must make progress
// within the idle limit: every Read pushes the connection's read deadline
// forward, so a body that keeps flowing is never cut, however long it
// takes. Where the connection has no deadlines (a ResponseRecorder in
// tests, some proxies' writers) the body is returned as it is.
func (s *Server) idleBody(c echo.Context, body io.ReadCloser) io.ReadCloser {
	rc := http.NewResponseController(c.Response())
	idle := s.uploadIdle()
	if err := rc.SetReadDeadline(time.Now().Add(idle)); err != nil {
		return body
	}
	return &idleReader{body: body, rc: rc, idle: idle, onStall: func() {
		s.reqLog(c).Warn("upload stalled: no data from the client; dropping it", "idle", idle.String(), "address", s.clientIP(c))
	}}
}

// errStalled wraps io.ErrUnexpectedEOF so the upload path treats a stalled
// body like one cut short: the client's fault, the bytes so far discarded.
var errStalled = fmt.Errorf("client sent no data for too long: %w", io.ErrUnexpectedEOF)

type idleReader struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	idle    time.Duration
	onStall func()
	done    bool
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.done {
		return r.body.Read(p)
	}
	_ = r.rc.SetReadDeadline(time.Now().Add(r.idle))
	n, err := r.body.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		// Clearing the deadline matters: net/http keeps reading the
		// connection in the background once the body hits EOF, and a
		// deadline expiring there would cancel the request's context
		// while the handler still validates and stores the bundle.
		r.done = true
		_ = r.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline stays expired: before answering, net/http tries to
		// drain what is left of the body, which must fail at once rather
		// than wait for a client that sends nothing.
		r.done = true
		r.onStall()
		return n, errStalled
	}
	return n, err
}

func (r *idleReader) Close() error { return r.body.Close() }
