package auth_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/auth"
)

func TestHashPassword(t *testing.T) {
	tests := []struct {
		name    string
		pw      string
		cost    int
		wantErr string
	}{
		{"ordinary", "correct horse battery staple", bcrypt.MinCost, ""},
		{"one byte", "x", bcrypt.MinCost, ""},
		{"72 bytes", strings.Repeat("p", 72), bcrypt.MinCost, ""},
		{"multi-byte runes", "pässwörd-密码", bcrypt.MinCost, ""},
		{"empty", "", bcrypt.MinCost, "empty"},
		{"73 bytes", strings.Repeat("p", 73), bcrypt.MinCost, "73 bytes"},
		{"cost too high", "pw", bcrypt.MaxCost + 1, "cost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := auth.HashPassword(tt.pw, tt.cost)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("HashPassword error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("HashPassword: %v", err)
			}
			if !auth.CheckPassword(h, tt.pw) {
				t.Error("CheckPassword(hash, same password) = false")
			}
			if auth.CheckPassword(h, tt.pw+"x") {
				t.Error("CheckPassword(hash, other password) = true")
			}
			if auth.CheckPassword(h, "") {
				t.Error("CheckPassword(hash, empty) = true")
			}
		})
	}
}

func TestHashPasswordDefaultCost(t *testing.T) {
	h, err := auth.HashPassword("pw", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bcrypt.Cost(h); err != nil || c != bcrypt.DefaultCost {
		t.Errorf("cost = %d, %v; want %d", c, err, bcrypt.DefaultCost)
	}
}

func TestCheckPasswordRefusesTooLong(t *testing.T) {
	pw := strings.Repeat("p", 72)
	h, err := auth.HashPassword(pw, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// bcrypt itself ignores bytes past 72, so this would match.
	if auth.CheckPassword(h, pw+"extra") {
		t.Error("CheckPassword accepted a password longer than 72 bytes")
	}
}

func TestCheckPasswordBadHash(t *testing.T) {
	if auth.CheckPassword([]byte("not a hash"), "pw") {
		t.Error("CheckPassword with a malformed hash = true")
	}
}

func TestCheckUnknownUserCostsLikeARealCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bcrypt at the default cost")
	}
	h, err := auth.HashPassword("real", bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	measure := func(f func()) time.Duration {
		best := time.Duration(1 << 62)
		for range 2 {
			start := time.Now()
			f()
			best = min(best, time.Since(start))
		}
		return best
	}
	u := auth.NewUnknownUser(0)
	u.Check("warm up") // makes its hash
	real := measure(func() { auth.CheckPassword(h, "guess") })
	unknown := measure(func() { u.Check("guess") })
	if unknown < real/3 || unknown > real*3 {
		t.Errorf("unknown user check took %v, a real check %v; they should cost the same", unknown, real)
	}
}

func TestRandomPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p := auth.RandomPassword()
		if len(p) < 20 {
			t.Fatalf("RandomPassword() = %q, want at least 20 characters", p)
		}
		if url.QueryEscape(p) != p {
			t.Fatalf("RandomPassword() = %q is not URL-safe", p)
		}
		if seen[p] {
			t.Fatalf("RandomPassword() repeated %q", p)
		}
		seen[p] = true
	}
	if _, err := auth.HashPassword(auth.RandomPassword(), bcrypt.MinCost); err != nil {
		t.Fatalf("HashPassword(RandomPassword()): %v", err)
	}
}

// TestUnknownUserUsesTheConfiguredCost: the dummy hash has the cost real
// hashes are made with, whatever it is tuned to.
func TestUnknownUserUsesTheConfiguredCost(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, bcrypt.MinCost + 2} {
		u := auth.NewUnknownUser(cost)
		u.Check("guess")
		if got := auth.UnknownUserCost(u); got != cost {
			t.Errorf("NewUnknownUser(%d) compares against a hash of cost %d", cost, got)
		}
	}
}
