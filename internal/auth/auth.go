// Package auth issues and verifies the admin API's bearer tokens (JWT,
// HS256, pinned issuer and audience) and hashes passwords with bcrypt.
package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken covers every reason a token is refused: malformed, forged,
// wrong algorithm, issuer or audience, expired. The reason is for logs only.
var ErrInvalidToken = errors.New("invalid token")

// Claims is what a verified token says. UserID is the user's random id
// (store.User.ID): a user removed and created again under the same name
// has another, so the old user's tokens stay dead. It is empty in tokens
// from before user ids existed.
type Claims struct {
	Subject    string
	UserID     string
	Generation uint64
	ExpiresAt  time.Time
}

// MinKeyLen is the shortest HMAC key NewIssuer accepts: HS256 needs at
// least as many key bytes as the hash has.
const MinKeyLen = 32

// leeway absorbs clock skew between otad instances behind one key.
const leeway = 30 * time.Second

// maxTokenLen bounds what Verify will parse; real tokens are ~300 bytes.
const maxTokenLen = 4096

// Options configures an Issuer. Zero fields take the defaults.
type Options struct {
	Issuer   string           // "iss"; default "otad"
	Audience string           // "aud"; default "otad-admin"
	TTL      time.Duration    // token lifetime; default 12h
	Now      func() time.Time // clock; default time.Now
}

// Issuer signs and verifies tokens with one HMAC key. It is safe for
// concurrent use.
type Issuer struct {
	key    []byte
	opts   Options
	parser *jwt.Parser
}

// tokenClaims is the JWT payload. Gen is the user's token generation at
// issue time; bumping the stored generation (password change, logout
// everywhere) makes older tokens stale. UID is the user's random id.
type tokenClaims struct {
	jwt.RegisteredClaims
	Gen uint64 `json:"gen"`
	UID string `json:"uid,omitempty"`
}

// NewIssuer returns an Issuer for key, which must be at least MinKeyLen
// bytes (see LoadOrCreateKey).
func NewIssuer(key []byte, opts Options) (*Issuer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("token signing key is %d bytes; it must be at least %d", len(key), MinKeyLen)
	}
	if opts.Issuer == "" {
		opts.Issuer = "otad"
	}
	if opts.Audience == "" {
		opts.Audience = "otad-admin"
	}
	if opts.TTL <= 0 {
		opts.TTL = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Issuer{
		key:  append([]byte(nil), key...),
		opts: opts,
		parser: jwt.NewParser(
			// Pinning the method is what stops "alg: none" and
			// RS256-with-the-HMAC-key-as-public-key forgeries.
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(opts.Issuer),
			jwt.WithAudience(opts.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(opts.Now),
		),
	}, nil
}

// TTL returns the lifetime of issued tokens.
func (i *Issuer) TTL() time.Duration { return i.opts.TTL }

// Issue signs a token for subject (a user name) carrying the user's id
// and token generation. expiresAt is the token's "exp", to the second.
func (i *Issuer) Issue(subject, userID string, generation uint64) (token string, expiresAt time.Time, err error) {
	if subject == "" {
		return "", time.Time{}, errors.New("issue token: empty subject")
	}
	if userID == "" {
		return "", time.Time{}, fmt.Errorf("issue token for %s: no user id", subject)
	}
	now := i.opts.Now()
	exp := jwt.NewNumericDate(now.Add(i.opts.TTL))
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.opts.Issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{i.opts.Audience},
			ExpiresAt: exp,
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        rand.Text(),
		},
		Gen: generation,
		UID: userID,
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(i.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue token for %s: %w", subject, err)
	}
	return token, exp.Time, nil
}

// Verify checks token's signature, algorithm, issuer, audience and times
// and returns its claims. Every failure wraps ErrInvalidToken; the rest of
// the message says why, for the server log (not for the client).
func (i *Issuer) Verify(token string) (Claims, error) {
	if len(token) > maxTokenLen {
		return Claims{}, fmt.Errorf("%w: %d bytes long", ErrInvalidToken, len(token))
	}
	var c tokenClaims
	_, err := i.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		// WithValidMethods already refused other algorithms; this keeps
		// the key from ever being handed to a non-HMAC verifier.
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return i.key, nil
	})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return Claims{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	return Claims{Subject: c.Subject, UserID: c.UID, Generation: c.Gen, ExpiresAt: c.ExpiresAt.Time}, nil
}
