package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// credentialsFile holds tokens; it is written with mode 0600 in a 0700
// directory because a token is as good as the password for its lifetime.
const credentialsFile = "credentials.json"

// Credentials are the stored login tokens, one per server URL.
type Credentials struct {
	// Current is the server of the most recent login.
	Current string           `json:"current,omitempty"`
	Tokens  map[string]Token `json:"tokens"`
}

// Token is one stored login.
type Token struct {
	Token     string    `json:"token"`
	Username  string    `json:"username,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitempty"`
}

// LoadCredentials reads the stored tokens from dir; none stored is not an
// error.
func LoadCredentials(dir string) (*Credentials, error) {
	c := &Credentials{Tokens: map[string]Token{}}
	path := filepath.Join(dir, credentialsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stored tokens: %w", err)
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("stored tokens in %s are damaged (delete the file and run otactl login): %w", path, err)
	}
	if c.Tokens == nil {
		c.Tokens = map[string]Token{}
	}
	return c, nil
}

// SaveCredentials writes the tokens to dir atomically, creating dir with
// mode 0700 and the file with 0600.
func SaveCredentials(dir string, c *Credentials) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	// MkdirAll keeps an existing directory's mode; tighten ours.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict config directory: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode tokens: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("store token: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("store token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, credentialsFile)); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}
