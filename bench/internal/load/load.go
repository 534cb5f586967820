// Package load is the benchmarks' HTTP load generator: a fixed number of
// keep-alive connections, each sending one pre-built request after another
// for a fixed time, recording every latency.
//
// It speaks HTTP/1.1 over raw TCP instead of using net/http's client: on a
// 2-core machine the client shares the CPU with the server it measures, and
// a client that costs less leaves the comparison to the servers (the same
// reason wrk is written in C). Only what the benchmarks need is parsed:
// the status line, Content-Length and chunked bodies.
package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Request is one request sent over and over.
type Request struct {
	Method      string
	Path        string
	ContentType string
	Body        []byte
	Header      map[string]string // extra headers, e.g. Authorization
}

// Options configure a Run.
type Options struct {
	Addr        string        // host:port, loopback
	Conns       int           // concurrent connections
	Duration    time.Duration // measured time
	Warmup      time.Duration // requests before the measurement, not counted
	RatePerSec  float64       // overall request rate limit; 0 means as fast as possible
	DialTimeout time.Duration // default 2s
}

// Result summarises a Run.
type Result struct {
	Requests int           // completed in the measured window
	Non2xx   int           // responses whose status was not 2xx
	Errors   int           // connection or protocol failures (each restarts the connection)
	Elapsed  time.Duration // length of the measured window
	P50, P99 time.Duration
	FirstErr error
	Status   int // status of a non-2xx response, for the report
}

// RPS is the completed requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// String is a one-line summary for logs.
func (r Result) String() string {
	s := fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, %d requests", r.RPS(), r.P50, r.P99, r.Requests)
	if r.Non2xx > 0 {
		s += fmt.Sprintf(", %d non-2xx (e.g. %d)", r.Non2xx, r.Status)
	}
	if r.Errors > 0 {
		s += fmt.Sprintf(", %d errors (first: %v)", r.Errors, r.FirstErr)
	}
	return s
}

// Encode renders the request as HTTP/1.1 bytes.
func (q Request) Encode(host string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: CapacitorUpdater/8.51.14 (bench) ios/17.5\r\n", q.Method, q.Path, host)
	for _, k := range slices.Sorted(maps.Keys(q.Header)) {
		fmt.Fprintf(&b, "%s: %s\r\n", k, q.Header[k])
	}
	if q.Body != nil || q.Method == "POST" || q.Method == "PUT" {
		if q.ContentType != "" {
			fmt.Fprintf(&b, "Content-Type: %s\r\n", q.ContentType)
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(q.Body))
	}
	b.WriteString("\r\n")
	b.Write(q.Body)
	return b.Bytes()
}

// Run sends req over opts.Conns connections for opts.Warmup+opts.Duration.
// Latencies and counts cover only the measured window. A dead connection is
// redialled and counted as an error, so a server that drops connections
// cannot look fast.
func Run(ctx context.Context, opts Options, req Request) (Result, error) {
	if opts.Conns < 1 || opts.Duration <= 0 {
		return Result{}, fmt.Errorf("load: need at least one connection and a positive duration")
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 2 * time.Second
	}
	wire := req.Encode(opts.Addr)
	// One connection first: a server that is not there fails the run at once.
	probe, err := net.DialTimeout("tcp", opts.Addr, opts.DialTimeout)
	if err != nil {
		return Result{}, fmt.Errorf("load: connect to %s: %w", opts.Addr, err)
	}
	probe.Close()

	var lim *rate.Limiter
	if opts.RatePerSec > 0 {
		lim = rate.NewLimiter(rate.Limit(opts.RatePerSec), 1)
	}
	start := time.Now()
	measureFrom := start.Add(opts.Warmup)
	end := measureFrom.Add(opts.Duration)
	rctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()

	workers := make([]worker, opts.Conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.lat = make([]time.Duration, 0, 4096)
		wg.Go(func() { w.loop(rctx, opts, wire, lim, measureFrom, end) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	var res Result
	var all []time.Duration
	for i := range workers {
		w := &workers[i]
		res.Requests += len(w.lat)
		res.Non2xx += w.non2xx
		res.Errors += w.errs
		if res.FirstErr == nil {
			res.FirstErr = w.firstErr
		}
		if res.Status == 0 {
			res.Status = w.status
		}
		all = append(all, w.lat...)
	}
	res.Elapsed = end.Sub(measureFrom)
	res.P50, res.P99 = percentile(all, 0.50), percentile(all, 0.99)
	return res, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d)-1) * p)
	return d[i]
}

type worker struct {
	lat      []time.Duration
	non2xx   int
	errs     int
	status   int
	firstErr error
}

func (w *worker) fail(err error) {
	w.errs++
	if w.firstErr == nil {
		w.firstErr = err
	}
}

func (w *worker) loop(ctx context.Context, opts Options, wire []byte, lim *rate.Limiter, measureFrom, end time.Time) {
	var (
		conn net.Conn
		br   *bufio.Reader
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	// The deadline unblocks a read that would outlast the run.
	for ctx.Err() == nil {
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				return
			}
		}
		if conn == nil {
			c, err := net.DialTimeout("tcp", opts.Addr, opts.DialTimeout)
			if err != nil {
				if ctx.Err() == nil {
					w.fail(err)
					time.Sleep(10 * time.Millisecond)
				}
				continue
			}
			_ = c.SetDeadline(end)
			conn, br = c, bufio.NewReaderSize(c, 16<<10)
		}
		t0 := time.Now()
		status, keep, err := roundTrip(conn, br, wire)
		t1 := time.Now()
		if err != nil {
			conn.Close()
			conn = nil
			if ctx.Err() == nil && t1.Before(end) {
				w.fail(err)
			}
			continue
		}
		if !t0.Before(measureFrom) && !t1.After(end) {
			w.lat = append(w.lat, t1.Sub(t0))
			if status < 200 || status > 299 {
				w.non2xx++
				w.status = status
			}
		}
		if !keep {
			conn.Close()
			conn = nil
		}
	}
}

// roundTrip writes one request and reads its response, discarding the body.
func roundTrip(conn net.Conn, br *bufio.Reader, wire []byte) (status int, keepAlive bool, err error) {
	if _, err := conn.Write(wire); err != nil {
		return 0, false, fmt.Errorf("write request: %w", err)
	}
	return ReadResponse(br, io.Discard)
}

// ReadResponse reads one HTTP/1.1 response from br, writing its body to
// body. It returns the status and whether the connection may be reused.
func ReadResponse(br *bufio.Reader, body io.Writer) (status int, keepAlive bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, fmt.Errorf("read status line: %w", err)
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	keepAlive = line[7] == '1'
	length := int64(-1)
	chunked := false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, fmt.Errorf("read header: %w", err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("bad header line %q", h)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(v), 10, 64); err != nil || length < 0 {
				return 0, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				keepAlive = false
			}
		}
	}
	switch {
	case chunked:
		if err := readChunked(br, body); err != nil {
			return 0, false, err
		}
	case length >= 0:
		if _, err := io.CopyN(body, br, length); err != nil {
			return 0, false, fmt.Errorf("read body: %w", err)
		}
	default:
		// No length: the body runs to the end of the connection.
		if _, err := io.Copy(body, br); err != nil {
			return 0, false, fmt.Errorf("read body: %w", err)
		}
		keepAlive = false
	}
	return status, keepAlive, nil
}

func readChunked(br *bufio.Reader, body io.Writer) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("read chunk size: %w", err)
		}
		sz, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(sz)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			// Trailers end with an empty line.
			for {
				t, err := br.ReadSlice('\n')
				if err != nil {
					return fmt.Errorf("read trailer: %w", err)
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := io.CopyN(body, br, n); err != nil {
			return fmt.Errorf("read chunk: %w", err)
		}
		crlf := make([]byte, 2)
		if _, err := io.ReadFull(br, crlf); err != nil || string(crlf) != "\r\n" {
			return errors.New("chunk not followed by CRLF")
		}
	}
}

// Do sends one request on a new connection and returns the status and
// body: for probes and single measurements.
func Do(addr string, req Request) (int, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(req.Encode(addr)); err != nil {
		return 0, nil, fmt.Errorf("write request: %w", err)
	}
	var body bytes.Buffer
	status, _, err := ReadResponse(bufio.NewReader(conn), &body)
	if err != nil {
		return 0, nil, err
	}
	return status, body.Bytes(), nil
}

// RoundRobin sends reqs in turn, one after another, over one keep-alive
// connection per address, for d, and returns each request's median
// latency. Interleaving request by request makes the requests share every
// moment of background noise, so their latencies compare even on a busy
// machine. Any failure or non-2xx answer ends the run with an error.
func RoundRobin(ctx context.Context, d time.Duration, addrs []string, reqs []Request) ([]time.Duration, error) {
	if len(addrs) != len(reqs) || len(reqs) == 0 {
		return nil, errors.New("load: RoundRobin needs one address per request")
	}
	conns := map[string]*bufio.ReadWriter{}
	wires := make([][]byte, len(reqs))
	for i, addr := range addrs {
		wires[i] = reqs[i].Encode(addr)
		if conns[addr] != nil {
			continue
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return nil, fmt.Errorf("load: connect to %s: %w", addr, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(d + 30*time.Second))
		conns[addr] = bufio.NewReadWriter(bufio.NewReaderSize(c, 64<<10), bufio.NewWriter(c))
	}
	lat := make([][]time.Duration, len(reqs))
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		for i, addr := range addrs {
			rw := conns[addr]
			t0 := time.Now()
			if _, err := rw.Write(wires[i]); err != nil {
				return nil, fmt.Errorf("load: write %s: %w", reqs[i].Path, err)
			}
			if err := rw.Flush(); err != nil {
				return nil, fmt.Errorf("load: write %s: %w", reqs[i].Path, err)
			}
			status, keep, err := ReadResponse(rw.Reader, io.Discard)
			if err != nil {
				return nil, fmt.Errorf("load: %s: %w", reqs[i].Path, err)
			}
			if status < 200 || status > 299 || !keep {
				return nil, fmt.Errorf("load: %s %s answered %d (keep-alive %v)", reqs[i].Method, reqs[i].Path, status, keep)
			}
			lat[i] = append(lat[i], time.Since(t0))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]time.Duration, len(reqs))
	for i := range lat {
		out[i] = percentile(lat[i], 0.5)
	}
	return out, nil
}
