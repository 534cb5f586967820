// Package auth issues and verifies the admin API's bearer tokens (JWT,
// HS256, pinned issuer and audience) and hashes passwords with bcrypt.
package auth

import (
	"errors"
	"time"
)

// ErrInvalidToken covers every reason a token is refused: malformed, forged,
// wrong algorithm, issuer or audience, expired. The reason is for logs only.
var ErrInvalidToken = errors.New("invalid token")

// Claims is what a verified token says.
type Claims struct {
	Subject    string
	Generation uint64
	ExpiresAt  time.Time
}

// Issuer signs and verifies tokens. TODO(auth): implemented by the auth owner.
type Issuer struct{}
