package auth

import (
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordLen is bcrypt's input limit; longer passwords would be
// silently truncated by the algorithm, so they are refused instead.
const MaxPasswordLen = 72

// dummyHash is a bcrypt hash (default cost) of a random password nobody
// knows. CheckUnknownUser compares against it so a login for a missing
// user costs as much as one for a real user.
const dummyHash = "$2a$10$UgWtru1AbSWFhkbhl07nSu/90n0oXAqm96yWHsO/F7hXap/4oz3oO"

// HashPassword returns the bcrypt hash of pw. cost 0 means
// bcrypt.DefaultCost.
func HashPassword(pw string, cost int) ([]byte, error) {
	if pw == "" {
		return nil, errors.New("password is empty")
	}
	if len(pw) > MaxPasswordLen {
		return nil, fmt.Errorf("password is %d bytes long; the limit is %d", len(pw), MaxPasswordLen)
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// CheckPassword reports whether pw matches hash. Passwords HashPassword
// would refuse never match.
func CheckPassword(hash []byte, pw string) bool {
	if pw == "" || len(pw) > MaxPasswordLen {
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil
}

// CheckUnknownUser spends the time CheckPassword would, and always fails.
// Call it when the user does not exist so response times do not tell
// which user names do.
func CheckUnknownUser(pw string) {
	CheckPassword([]byte(dummyHash), pw)
}

// RandomPassword returns a new random password: 26 characters from the
// base32 alphabet (128 bits), safe in URLs, shells and config files.
func RandomPassword() string {
	return rand.Text()
}
