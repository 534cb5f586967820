package load

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		status    int
		keepAlive bool
		body      string
		wantErr   string
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, true, "hello", ""},
		{"chunked", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: 1\r\n\r\n", 201, true, "abcde", ""},
		{"connection close", "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 404, false, "", ""},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, false, "ok", ""},
		{"until eof", "HTTP/1.1 200 OK\r\n\r\nrest of it", 200, false, "rest of it", ""},
		{"bad status", "SMTP 220 hi\r\n\r\n", 0, false, "", "bad status line"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, false, "", "bad Content-Length"},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, false, "", "read body"},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, false, "", "bad chunk size"},
		{"no header end", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", 0, false, "", "read header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body bytes.Buffer
			status, keep, err := ReadResponse(bufio.NewReader(strings.NewReader(tt.raw)), &body)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || keep != tt.keepAlive || body.String() != tt.body {
				t.Errorf("got %d keep=%v %q, want %d keep=%v %q", status, keep, body.String(), tt.status, tt.keepAlive, tt.body)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	got := string(Request{Method: "POST", Path: "/updates", ContentType: "application/json", Body: []byte("{}"),
		Header: map[string]string{"X-B": "2", "Authorization": "Bearer t"}}.Encode("127.0.0.1:1"))
	for _, want := range []string{"POST /updates HTTP/1.1\r\n", "Host: 127.0.0.1:1\r\n", "Authorization: Bearer t\r\nX-B: 2\r\n",
		"Content-Type: application/json\r\n", "Content-Length: 2\r\n\r\n{}"} {
		if !strings.Contains(got, want) {
			t.Errorf("encoded request lacks %q:\n%s", want, got)
		}
	}
	if get := string(Request{Method: "GET", Path: "/x"}.Encode("h")); strings.Contains(get, "Content-Length") {
		t.Errorf("GET without body has a Content-Length:\n%s", get)
	}
}

// TestRun drives a real server: every request must arrive with its body,
// answers must be counted, and non-2xx and dropped connections must show.
func TestRun(t *testing.T) {
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != `{"a":1}` {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		seen.Add(1)
		switch r.URL.Path {
		case "/fail":
			http.Error(w, "no", http.StatusServiceUnavailable)
		case "/drop":
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		default:
			w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	opts := Options{Addr: addr, Conns: 4, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond}
	body := []byte(`{"a":1}`)

	res, err := Run(context.Background(), opts, Request{Method: "POST", Path: "/ok", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Non2xx != 0 || res.Errors != 0 || res.P99 < res.P50 || res.RPS() <= 0 {
		t.Errorf("ok run: %s", res)
	}
	if int64(res.Requests) > seen.Load() {
		t.Errorf("counted %d requests, the server saw %d", res.Requests, seen.Load())
	}

	res, err = Run(context.Background(), opts, Request{Method: "POST", Path: "/fail", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if res.Non2xx == 0 || res.Non2xx != res.Requests || res.Status != http.StatusServiceUnavailable {
		t.Errorf("failing run: %s", res)
	}

	res, err = Run(context.Background(), opts, Request{Method: "POST", Path: "/drop", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.FirstErr == nil {
		t.Errorf("dropping run counted no errors: %s", res)
	}

	// Paced: 4 connections at 100 req/s for 0.3 s send about 30.
	opts.RatePerSec = 100
	res, err = Run(context.Background(), opts, Request{Method: "POST", Path: "/ok", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 15 || res.Requests > 45 {
		t.Errorf("paced at 100 req/s for 0.3 s: %d requests", res.Requests)
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, opts := range []Options{
		{Addr: addr, Conns: 0, Duration: time.Second},
		{Addr: addr, Conns: 1, Duration: 0},
		{Addr: addr, Conns: 1, Duration: time.Second},
	} {
		if _, err := Run(context.Background(), opts, Request{Method: "GET", Path: "/"}); err == nil {
			t.Errorf("Run(%+v) succeeded", opts)
		}
	}
}

func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var body bytes.Buffer
		status, _, err := ReadResponse(bufio.NewReader(bytes.NewReader(raw)), &body)
		if err == nil && (status < 0 || status > 999 || body.Len() > len(raw)) {
			t.Fatalf("status %d, body %d bytes from %d bytes of input", status, body.Len(), len(raw))
		}
	})
}

func TestRoundRobin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(2 * time.Millisecond)
		case "/fail":
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	p50, err := RoundRobin(context.Background(), 200*time.Millisecond, []string{addr, addr},
		[]Request{{Method: "GET", Path: "/fast"}, {Method: "GET", Path: "/slow"}})
	if err != nil {
		t.Fatal(err)
	}
	if p50[1] < 2*time.Millisecond || p50[0] >= p50[1] {
		t.Errorf("p50 fast %s, slow %s", p50[0], p50[1])
	}
	if _, err := RoundRobin(context.Background(), 100*time.Millisecond, []string{addr}, []Request{{Method: "GET", Path: "/fail"}}); err == nil {
		t.Error("a 500 answer did not fail the run")
	}
	if _, err := RoundRobin(context.Background(), time.Second, []string{addr}, nil); err == nil {
		t.Error("mismatched arguments accepted")
	}
}
