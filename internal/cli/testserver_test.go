package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/webhook"
)

// The user every test server starts with.
const (
	testUser     = "admin"
	testUserID   = "0123456789abcdef0123456789abcdef"
	testPassword = "correct horse battery"
)

// testKey signs the test servers' tokens; fixed so a test can mint an
// expired token the server will recognise as its own.
var testKey = []byte("otactl-test-key-otactl-test-key-0123456789")

// testServer is a real otad handler (bbolt file, blob directory, token
// issuer) behind an httptest listener on 127.0.0.1.
type testServer struct {
	URL string
	// Token is a valid token of testUser; Expired one that expired an hour ago.
	Token   string
	Expired string
	close   func()
}

// startTestServer builds a server over dir. It takes no *testing.T so the
// testscript setup can use it too.
func startTestServer(dir string) (*testServer, error) {
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st, err := bolt.Open(filepath.Join(dir, "ota.db"), bolt.Options{})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	closeAll := func() { _ = st.Close() }
	bl, err := blob.NewFS(filepath.Join(dir, "blobs"))
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("open blobs: %w", err)
	}
	iss, err := auth.NewIssuer(testKey, auth.Options{TTL: time.Hour})
	if err != nil {
		closeAll()
		return nil, err
	}
	hash, err := auth.HashPassword(testPassword, bcrypt.MinCost)
	if err != nil {
		closeAll()
		return nil, err
	}
	now := time.Now()
	if err := st.CreateUser(ctx, store.User{ID: testUserID, Name: testUser, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}); err != nil {
		closeAll()
		return nil, fmt.Errorf("create user: %w", err)
	}
	// The server needs its public URL up front: listen first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		closeAll()
		return nil, err
	}
	srv, err := server.New(ctx, server.Config{
		PublicURL: "http://" + l.Addr().String(), TokenTTL: time.Hour, MaxUploadBytes: 64 << 20,
		Webhooks: webhook.Options{AllowPrivate: true}, // receivers of the tests are on loopback
	}, st, bl, iss, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		l.Close()
		closeAll()
		return nil, fmt.Errorf("new server: %w", err)
	}
	hs := &httptest.Server{Listener: l, Config: &http.Server{Handler: srv.Handler()}}
	hs.Start()

	tok, _, err := iss.Issue(testUser, testUserID, 0)
	if err != nil {
		hs.Close()
		closeAll()
		return nil, err
	}
	old, err := auth.NewIssuer(testKey, auth.Options{TTL: time.Hour, Now: func() time.Time { return now.Add(-3 * time.Hour) }})
	if err != nil {
		hs.Close()
		closeAll()
		return nil, err
	}
	expired, _, err := old.Issue(testUser, testUserID, 0)
	if err != nil {
		hs.Close()
		closeAll()
		return nil, err
	}
	return &testServer{URL: hs.URL, Token: tok, Expired: expired, close: func() { hs.Close(); closeAll() }}, nil
}
