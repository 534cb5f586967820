package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// smallBufListener gives accepted connections a small send buffer, so a
// download reaches the client's reading pace after some KiB instead of
// after the megabytes loopback buffers hold. (Far smaller buffers, below
// loopback's 64 KiB segment, stall the connection on TCP's 200 ms
// zero-window probes, whatever the reader does.)
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(64 << 10)
	}
	return c, err
}

// newDownloadServer serves env over a real listener with small socket
// buffers and returns its address and the path of a 4 MiB bundle.
func newDownloadServer(t *testing.T, idle time.Duration) (env *testEnv, addr, path string, size int) {
	t.Helper()
	env = newTestEnv(t, func(c *Config) { c.DownloadIdleTimeout = idle })
	env.srv.testDownloadChunk = 16 << 10
	content := make([]byte, 4<<20)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	info, err := env.blobs.Put(context.Background(), bytes.NewReader(content), 0)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(env.srv.Handler())
	ts.Listener = smallBufListener{ts.Listener}
	ts.Start()
	t.Cleanup(ts.Close)
	return env, ts.Listener.Addr().String(), "/api/ota/bundle/" + info.SHA256 + ".zip", len(content)
}

// getSlowly sends GET path on a connection with a small receive buffer and
// reads the answer's body step bytes at a time, pausing between reads;
// after stopAfter bytes (when > 0) it pauses for stall once. It returns
// the body bytes read before the end or an error.
func getSlowly(t *testing.T, addr, path string, step int, pause time.Duration, stopAfter int, stall time.Duration) (int, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(128 << 10)
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: otad.test\r\n\r\n", path)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(conn, step)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response head: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	buf := make([]byte, step)
	got, stalled := 0, false
	for {
		n, err := io.ReadFull(resp.Body, buf)
		got += n
		if err == io.EOF || err == io.ErrUnexpectedEOF && got == int(resp.ContentLength) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if stopAfter > 0 && got >= stopAfter && !stalled {
			stalled = true
			time.Sleep(stall)
		}
		time.Sleep(pause)
	}
}

// TestDownloadStalledReader: a client that stops reading is dropped after
// the idle limit, with a warning; it does not hold the connection forever.
func TestDownloadStalledReader(t *testing.T) {
	env, addr, path, size := newDownloadServer(t, 300*time.Millisecond)
	got, err := getSlowly(t, addr, path, 64<<10, 0, 128<<10, 2*time.Second)
	if err == nil || got >= size {
		t.Fatalf("a reader that stalled for 2 s read %d of %d bytes (err %v); want the server to drop it", got, size, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(env.logs.String(), "download stalled") {
		if time.Now().After(deadline) {
			t.Fatalf("no stall warning in the log:\n%s", env.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDownloadSlowReaderNotCut: a client that keeps reading, however long
// the whole download takes, gets every byte.
func TestDownloadSlowReaderNotCut(t *testing.T) {
	// The reader needs 2.6 s at 64 KiB every 40 ms, over two idle limits;
	// the server needs 16 KiB read per second, a wide margin for a busy
	// machine.
	const idle = time.Second
	env, addr, path, size := newDownloadServer(t, idle)
	start := time.Now()
	got, err := getSlowly(t, addr, path, 64<<10, 40*time.Millisecond, 0, 0)
	if err != nil || got != size {
		t.Fatalf("a steady reader got %d of %d bytes: %v; log:\n%s", got, size, err, env.logs.String())
	}
	if took := time.Since(start); took < 2*idle {
		t.Logf("the download took %v, less than two idle limits: the test proves less than it should", took)
	}
	if strings.Contains(env.logs.String(), "download stalled") {
		t.Errorf("a steady reader was reported stalled:\n%s", env.logs.String())
	}
}

// TestDownloadKeepAlive: after a download, the same connection serves
// another request later than the idle limit (the write deadline did not
// outlive the response).
func TestDownloadKeepAlive(t *testing.T) {
	const idle = 300 * time.Millisecond
	_, addr, path, size := newDownloadServer(t, idle)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 2 {
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: otad.test\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on a kept-alive connection: %v", i+1, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(size) {
			t.Fatalf("request %d: %d bytes, %v", i+1, n, err)
		}
		time.Sleep(2 * idle)
	}
}
