package dashboard

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/otaship/ota/pkg/ota"
)

// apiBase is the base URL of in-process API requests. Its host is never
// dialled and never ends up in an answer: otad builds absolute URLs from
// its configured public URL only.
const apiBase = "http://otad.internal"

// maxAPIAnswer bounds an in-process API answer the dashboard buffers.
const maxAPIAnswer = 64 << 20

// forwarded are the headers of the browser's request an in-process API
// request carries, so the API keys its login limits on the same client
// (it reads the proxy headers only with --trust-proxy, as for any request)
// and logs the same request id.
var forwarded = []string{"X-Forwarded-For", "X-Real-Ip", "X-Forwarded-Proto"}

// inProcess is an http.RoundTripper that hands requests to the admin
// API's handler inside otad, as if the browser had sent them with its
// token: every read and every action takes the API's own path (its
// validation, authorisation, store call, event and log line), so the
// dashboard can never drift from otactl.
type inProcess struct {
	api   http.Handler
	outer *http.Request
	reqID string
}

func (t *inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.RemoteAddr = t.outer.RemoteAddr
	r.RequestURI = r.URL.RequestURI()
	for _, h := range forwarded {
		if v := t.outer.Header.Values(h); len(v) > 0 {
			r.Header[h] = v
		}
	}
	if t.reqID != "" {
		r.Header.Set("X-Request-Id", t.reqID)
	}
	rec := &recorder{header: http.Header{}}
	t.api.ServeHTTP(rec, r)
	if req.Body != nil {
		_ = req.Body.Close()
	}
	if rec.tooLarge {
		return nil, errors.New("in-process API answer is larger than 64 MiB")
	}
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(rec.code) + " " + http.StatusText(rec.code),
		StatusCode:    rec.code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}

// recorder is the http.ResponseWriter of an in-process API request.
type recorder struct {
	header   http.Header
	code     int
	body     bytes.Buffer
	tooLarge bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if r.body.Len()+len(b) > maxAPIAnswer {
		r.tooLarge = true
		return 0, errors.New("answer too large")
	}
	return r.body.Write(b)
}

// apiClient returns an API client that speaks to otad in-process on
// behalf of the browser request r, with token (empty: none).
func (d *Dashboard) apiClient(r *http.Request, w http.ResponseWriter, token string) *ota.Client {
	t := &inProcess{api: d.cfg.API, outer: r, reqID: w.Header().Get("X-Request-Id")}
	c, _ := ota.NewClient(apiBase, ota.WithToken(token), ota.WithHTTPClient(&http.Client{Transport: t}),
		ota.WithUserAgent("otad-dashboard"))
	return c
}

// apiStatus is the HTTP status of an API error, 0 for other errors.
func apiStatus(err error) int {
	var ae *ota.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}
