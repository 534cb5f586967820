package ota

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// CITokenPrefix starts every CI token. otad tells CI tokens from login
// tokens (JWTs, which start with "eyJ") by it, and secret scanners can
// match it.
const CITokenPrefix = "otad_ci_"

// TokenCreateRequest is the body of POST /api/v1/tokens.
type TokenCreateRequest struct {
	Name string `json:"name"`
	// TTLSeconds is the token's lifetime from now; required.
	TTLSeconds int64 `json:"ttl_seconds"`
	// AppID and Channel, when set, limit the token to that app and channel.
	AppID   string `json:"app_id,omitempty"`
	Channel string `json:"channel,omitempty"`
	// Protected lets the token deploy, promote and roll out on protected
	// channels (within its app and channel).
	Protected bool `json:"protected,omitempty"`
}

// TokenInfo describes a CI token; the secret is never part of it.
type TokenInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	AppID     string     `json:"app_id,omitempty"`
	Channel   string     `json:"channel,omitempty"`
	Protected bool       `json:"protected,omitempty"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// TokenCreateResponse is the answer to POST /api/v1/tokens. Token is the
// whole secret token, shown this once: otad keeps only its hash.
type TokenCreateResponse struct {
	Token string `json:"token"`
	TokenInfo
}

// CreateToken creates a CI token. It needs a user login, not a CI token.
func (c *Client) CreateToken(ctx context.Context, req TokenCreateRequest) (TokenCreateResponse, error) {
	var out TokenCreateResponse
	err := c.doJSON(ctx, http.MethodPost, "/api/v1/tokens", nil, req, &out)
	return out, err
}

// Tokens lists CI tokens, revoked ones included.
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	var out []TokenInfo
	err := c.doJSON(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &out)
	return out, err
}

// RevokeToken revokes the CI token with the given id.
func (c *Client) RevokeToken(ctx context.Context, id string) (TokenInfo, error) {
	var out TokenInfo
	err := c.doJSON(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}
