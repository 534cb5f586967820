package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// defaultBodyTimeout is how long a request other than an upload may take
// to send its body. The server has no whole-request read timeout (for
// uploads, see idleread.go), so without this a client that sends headers
// and then trickles or withholds a JSON body would hold its connection and
// goroutine for as long as it likes. Bodies are at most 1 MiB; a minute
// carries that over a poor mobile link.
const defaultBodyTimeout = 60 * time.Second

// limitBodyTime gives the request body a deadline from the moment the
// route is found; the returned wrapper, when not nil, must be released once
// the handler has returned. Uploads replace the deadline with an idle one
// (idleBody). A request refused before its body is read (a rate limit, a
// 401) keeps the deadline too, which bounds the draining net/http does
// before answering. observe calls it: echo builds its middleware chain
// anew on every request, so each middleware costs an allocation on the
// device hot path.
func (s *Server) limitBodyTime(c echo.Context) *deadlineBody {
	req := c.Request()
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	timeout := s.cfg.BodyReadTimeout
	if timeout <= 0 {
		timeout = defaultBodyTimeout
	}
	conn := readDeadlineOf(c.Response())
	if conn == nil || conn.SetReadDeadline(time.Now().Add(timeout)) != nil {
		return nil // no deadlines on this connection (tests, some wrappers)
	}
	b := deadlineBodies.Get().(*deadlineBody)
	*b = deadlineBody{body: req.Body, conn: conn}
	req.Body = b
	return b
}

// deadlineBodies recycles deadlineBody wrappers: nothing reads a request's
// body once its handler has returned.
var deadlineBodies = sync.Pool{New: func() any { return new(deadlineBody) }}

// release returns b to the pool; nil is fine.
func (b *deadlineBody) release() {
	if b == nil {
		return
	}
	*b = deadlineBody{}
	deadlineBodies.Put(b)
}

// deadlineBody clears the read deadline once the body is read: net/http
// then keeps reading the connection in the background, and a deadline
// expiring there would cancel the context of a request still being
// handled.
type deadlineBody struct {
	body io.ReadCloser
	conn readDeadliner
	done bool
}

// readDeadliner is what http.ResponseController uses to set a read
// deadline. Finding it directly costs no allocation on the device hot
// path, where the controller cost four.
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// readDeadlineOf finds the writer, under any wrappers, that can set the
// connection's read deadline; nil when none can.
func readDeadlineOf(w http.ResponseWriter) readDeadliner {
	for {
		if d, ok := w.(readDeadliner); ok {
			return d
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}

// errBodyTimeout replaces the connection's own timeout error, which names
// the server's address. It still matches os.ErrDeadlineExceeded.
var errBodyTimeout = fmt.Errorf("the request body did not arrive in time: %w", os.ErrDeadlineExceeded)

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch {
	case err == nil:
	case !b.done && errors.Is(err, io.EOF):
		b.done = true
		_ = b.conn.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, errBodyTimeout
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }
