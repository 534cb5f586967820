package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordLen is bcrypt's input limit; longer passwords would be
// silently truncated by the algorithm, so they are refused instead.
const MaxPasswordLen = 72

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

// UnknownUser spends on a login for a user that does not exist the time
// a wrong password costs, so response times do not tell which user names
// do. Its hash has the cost new users' hashes get: a fixed default-cost
// hash would answer faster or slower than real users once the cost is
// tuned (OTAD_BCRYPT_COST).
type UnknownUser struct {
	cost int
	once sync.Once
	hash []byte
}

// NewUnknownUser returns an UnknownUser for passwords hashed at cost (0
// means bcrypt.DefaultCost). The hash is made on first use, so it does not
// delay start-up.
func NewUnknownUser(cost int) *UnknownUser {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	return &UnknownUser{cost: cost}
}

// Check spends the time CheckPassword would against a hash of the
// configured cost, and always fails.
func (u *UnknownUser) Check(pw string) {
	u.once.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte(RandomPassword()), u.cost)
		if err != nil {
			// Only an out-of-range cost fails; fall back to the default.
			h, _ = bcrypt.GenerateFromPassword([]byte(RandomPassword()), bcrypt.DefaultCost)
		}
		u.hash = h
	})
	CheckPassword(u.hash, pw)
}

// RandomPassword returns a new random password: 26 characters from the
// base32 alphabet (128 bits), safe in URLs, shells and config files.
func RandomPassword() string {
	return rand.Text()
}
