package store

import (
	"context"
	"time"
)

// CIToken is a long-lived API token for deploy jobs. Only the SHA-256 of
// its secret is stored: the secret has 256 random bits, so a fast hash is
// enough and lookups stay cheap on every request. AppID and Channel, when
// set, limit what the token may change.
type CIToken struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	SecretHash []byte `json:"secret_hash"`
	AppID      string `json:"app_id,omitempty"`
	Channel    string `json:"channel,omitempty"`
	// Protected is the scope that reaches protected channels.
	Protected bool      `json:"protected,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// RevokedAt is zero while the token is valid.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// TokenStore keeps CI tokens. Revoked tokens stay listed, so an operator
// can see what a leaked token could have done and when it stopped.
type TokenStore interface {
	// CreateToken stores a new token; ErrConflict if the id exists.
	CreateToken(ctx context.Context, t CIToken) error
	// GetToken returns one token; ErrNotFound when unknown.
	GetToken(ctx context.Context, id string) (CIToken, error)
	// ListTokens lists every token, oldest first.
	ListTokens(ctx context.Context) ([]CIToken, error)
	// RevokeToken marks the token revoked at now (a second revoke keeps
	// the first time); ErrNotFound when unknown.
	RevokeToken(ctx context.Context, id string, now time.Time) (CIToken, error)
}
