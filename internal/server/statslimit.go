package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/pkg/ota"
)

// errTooManyEvents stops the read of a stats body with too many events.
var errTooManyEvents = errors.New("too many stats events in one request")

// limitStatsEvents refuses a /stats array of more than maxStatsEvents
// events while the body streams in, before it is decoded. Counting after
// decoding is too late: a 1 MiB body of "{}," is 350,000 events, and
// decoding them allocated about 500 MB and took seconds.
func (s *Server) limitStatsEvents(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ec := &eventCounter{body: req.Body, max: maxStatsEvents}
		req.Body = ec
		err := next(c)
		if ec.tripped {
			return newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge,
				"more than %d stats events in one request; send at most %d", maxStatsEvents, maxStatsEvents)
		}
		return err
	}
}

// eventCounter passes a body through, counting the elements of a
// top-level JSON array as they go by: commas at depth one, outside
// strings. It does not validate JSON; the decoder after it does.
type eventCounter struct {
	body    io.ReadCloser
	max     int
	tripped bool

	started bool // the first non-space byte was seen
	array   bool // and it was '['
	depth   int
	inStr   bool
	escaped bool
	commas  int
}

func (e *eventCounter) Read(p []byte) (int, error) {
	if e.tripped {
		return 0, errTooManyEvents
	}
	n, err := e.body.Read(p)
	if !e.scan(p[:n]) {
		e.tripped = true
		return 0, errTooManyEvents
	}
	return n, err
}

// scan advances the count over b and reports whether the body is still
// within the limit.
func (e *eventCounter) scan(b []byte) bool {
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if !e.started {
			switch ch {
			case ' ', '\t', '\r', '\n':
				continue
			}
			e.started = true
			e.array = ch == '['
			if !e.array {
				return true // an object (one event) or garbage: nothing to count
			}
		}
		if !e.array {
			return true
		}
		if e.inStr {
			if e.escaped {
				e.escaped = false
				continue
			}
			// Strings are most of a body: jump to where this one may end.
			rest := b[i:]
			q := bytes.IndexByte(rest, '"')
			if q < 0 {
				q = len(rest)
			}
			if k := bytes.IndexByte(rest[:q], '\\'); k >= 0 {
				i += k
				e.escaped = true
				continue
			}
			if q == len(rest) {
				return true // the string goes on in the next read
			}
			i += q
			e.inStr = false
			continue
		}
		switch ch {
		case '"':
			e.inStr = true
		case '[', '{':
			e.depth++
		case ']', '}':
			e.depth--
		case ',':
			if e.depth == 1 {
				e.commas++
				if e.commas >= e.max { // commas+1 elements
					return false
				}
			}
		}
	}
	return true
}

func (e *eventCounter) Close() error { return e.body.Close() }
