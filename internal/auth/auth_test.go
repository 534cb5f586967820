package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/otaship/ota/internal/auth"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
	t0       = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

func newIssuer(t testing.TB, key []byte, opts auth.Options) *auth.Issuer {
	t.Helper()
	iss, err := auth.NewIssuer(key, opts)
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

func at(tm time.Time) func() time.Time { return func() time.Time { return tm } }

// sign builds a token by hand, for claims or algorithms Issue never makes.
func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// goodClaims are what Issue would put in a token at t0.
func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "otad", "aud": "otad-admin", "sub": "alice", "gen": 3,
		"iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "x",
	}
}

func without(c jwt.MapClaims, k string) jwt.MapClaims { delete(c, k); return c }

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims { c[k] = v; return c }

func TestIssueVerifyRoundTrip(t *testing.T) {
	iss := newIssuer(t, testKey, auth.Options{Now: at(t0.Add(123 * time.Millisecond))})
	const gen = 1<<63 + 5 // beyond float64 precision: must survive exactly
	tok, exp, err := iss.Issue("alice", "u-alice", gen)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if want := t0.Add(12 * time.Hour); !exp.Equal(want) {
		t.Errorf("expiresAt = %v, want %v (default TTL, whole seconds)", exp, want)
	}
	c, err := iss.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := auth.Claims{Subject: "alice", UserID: "u-alice", Generation: gen, ExpiresAt: exp}
	if c.Subject != want.Subject || c.UserID != want.UserID || c.Generation != want.Generation || !c.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("Verify = %+v, want %+v", c, want)
	}

	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	claims := p.Claims.(jwt.MapClaims)
	for _, k := range []string{"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "gen", "uid"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("token lacks claim %q: %v", k, claims)
		}
	}
	if p.Header["alg"] != "HS256" {
		t.Errorf("alg = %v, want HS256", p.Header["alg"])
	}
	tok2, _, err := iss.Issue("alice", "u-alice", gen)
	if err != nil {
		t.Fatal(err)
	}
	if tok2 == tok {
		t.Error("two tokens issued at the same instant are identical; jti must be random")
	}
}

func TestIssueRejectsEmptySubject(t *testing.T) {
	iss := newIssuer(t, testKey, auth.Options{})
	if _, _, err := iss.Issue("alice", "", 1); err == nil {
		t.Error("Issue without a user id: want an error")
	}
	if _, _, err := iss.Issue("", "u-x", 1); err == nil {
		t.Error("Issue with an empty subject: want an error")
	}
}

func TestNewIssuerKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31} {
		if _, err := auth.NewIssuer(make([]byte, n), auth.Options{}); err == nil {
			t.Errorf("NewIssuer with a %d-byte key: want an error", n)
		}
	}
	if _, err := auth.NewIssuer(make([]byte, 64), auth.Options{}); err != nil {
		t.Errorf("NewIssuer with a 64-byte key: %v", err)
	}
}

func TestVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	issueWith := func(key []byte, opts auth.Options) string {
		t.Helper()
		tok, _, err := newIssuer(t, key, opts).Issue("alice", "u-alice", 7)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := issueWith(testKey, auth.Options{Now: at(t0)})
	b64 := base64.RawURLEncoding.EncodeToString
	noneToken := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		strings.Split(valid, ".")[1] + "."
	parts := strings.Split(valid, ".")
	sig := []byte(parts[2])
	sig[3] ^= 1
	tampered := parts[0] + "." + parts[1] + "." + string(sig)

	tests := []struct {
		name  string
		token string
		now   time.Time
		ok    bool
	}{
		{"valid", valid, t0, true},
		{"valid near the end of its life", valid, t0.Add(12*time.Hour - time.Second), true},
		{"expired within leeway", valid, t0.Add(12*time.Hour + 20*time.Second), true},
		{"expired", valid, t0.Add(12*time.Hour + 31*time.Second), false},
		{"not yet valid", valid, t0.Add(-time.Hour), false},
		{"empty", "", t0, false},
		{"malformed", "not.a.token", t0, false},
		{"two parts", parts[0] + "." + parts[1], t0, false},
		{"garbage base64", "!!!.@@@.###", t0, false},
		{"tampered signature", tampered, t0, false},
		{"alg none", noneToken, t0, false},
		{"alg none via library", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims()), t0, false},
		{"HS512 with the right key", sign(t, jwt.SigningMethodHS512, testKey, goodClaims()), t0, false},
		{"HS384 with the right key", sign(t, jwt.SigningMethodHS384, testKey, goodClaims()), t0, false},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, goodClaims()), t0, false},
		{"wrong key", issueWith(otherKey, auth.Options{Now: at(t0)}), t0, false},
		{"wrong issuer", issueWith(testKey, auth.Options{Issuer: "evil", Now: at(t0)}), t0, false},
		{"wrong audience", issueWith(testKey, auth.Options{Audience: "device", Now: at(t0)}), t0, false},
		{"hand-made good token", sign(t, jwt.SigningMethodHS256, testKey, goodClaims()), t0, true},
		{"missing exp", sign(t, jwt.SigningMethodHS256, testKey, without(goodClaims(), "exp")), t0, false},
		{"missing aud", sign(t, jwt.SigningMethodHS256, testKey, without(goodClaims(), "aud")), t0, false},
		{"missing iss", sign(t, jwt.SigningMethodHS256, testKey, without(goodClaims(), "iss")), t0, false},
		{"missing sub", sign(t, jwt.SigningMethodHS256, testKey, without(goodClaims(), "sub")), t0, false},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, testKey, with(goodClaims(), "iat", t0.Add(time.Hour).Unix())), t0, false},
		{"nbf in the future", sign(t, jwt.SigningMethodHS256, testKey, with(goodClaims(), "nbf", t0.Add(time.Hour).Unix())), t0, false},
		{"exp as a string", sign(t, jwt.SigningMethodHS256, testKey, with(goodClaims(), "exp", "never")), t0, false},
		{"audience list containing ours", sign(t, jwt.SigningMethodHS256, testKey, with(goodClaims(), "aud", []string{"x", "otad-admin"})), t0, true},
		{"oversized", valid + strings.Repeat("A", 5000), t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := newIssuer(t, testKey, auth.Options{Now: at(tt.now)})
			c, err := iss.Verify(tt.token)
			if tt.ok {
				if err != nil {
					t.Fatalf("Verify: %v, want success", err)
				}
				if c.Subject != "alice" {
					t.Errorf("Subject = %q, want alice", c.Subject)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", c)
			}
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("error %v does not wrap ErrInvalidToken", err)
			}
			if err.Error() == auth.ErrInvalidToken.Error() {
				t.Errorf("error %q gives no reason for the log", err)
			}
		})
	}
}

func TestTTLOption(t *testing.T) {
	clk := t0
	iss := newIssuer(t, testKey, auth.Options{TTL: time.Minute, Now: func() time.Time { return clk }})
	tok, exp, err := iss.Issue("bob", "u-bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Minute); !exp.Equal(want) {
		t.Errorf("expiresAt = %v, want %v", exp, want)
	}
	clk = t0.Add(2 * time.Minute)
	if _, err := iss.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("Verify after TTL + leeway = %v, want ErrInvalidToken", err)
	}
}

// FuzzVerify feeds arbitrary Authorization header values to Verify: it must
// never panic, and every refusal must wrap ErrInvalidToken.
func FuzzVerify(f *testing.F) {
	iss := newIssuer(f, testKey, auth.Options{Now: at(t0)})
	tok, _, err := iss.Issue("alice", "u-alice", 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := iss.Verify(s)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify(%q) error %v does not wrap ErrInvalidToken", s, err)
			}
			return
		}
		if c.Subject == "" || c.ExpiresAt.IsZero() {
			t.Fatalf("Verify(%q) accepted claims without subject or expiry: %+v", s, c)
		}
	})
}
