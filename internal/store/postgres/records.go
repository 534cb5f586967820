package postgres

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Stored records are otad's own Go types as JSON (ota.App, ota.Channel,
// ota.Bundle, ota.Event, store.User, …), with the fields derived on read
// left empty: a channel's AppID, Public and ActiveBundle, a bundle's URL.

// encode is v as JSON for a jsonb column. jsonb cannot hold the character
// NUL, so text holding one is refused rather than failing in the database.
func encode(what string, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	if bytes.Contains(raw, []byte(`\u0000`)) {
		return nil, fmt.Errorf("%s holds a NUL character, which the database cannot store: %w", what, store.ErrInvalid)
	}
	return raw, nil
}

func decode(what string, raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s: %w (the row is damaged)", what, err)
	}
	return nil
}

// decodeChannel reads a channel record. The policy starts from the
// defaults, so a policy field added after the channel was stored reads as
// its default, not as its zero value.
func decodeChannel(appID string, raw []byte) (ota.Channel, error) {
	c := ota.Channel{Policy: ota.DefaultChannelPolicy()}
	if err := decode("channel of app "+appID, raw, &c); err != nil {
		return c, err
	}
	c.AppID = appID
	c.Public, c.ActiveBundle = false, nil
	if c.Releases == nil {
		c.Releases = []ota.Release{}
	}
	return c, nil
}

func encodeChannel(c ota.Channel) ([]byte, error) {
	c.Public, c.ActiveBundle = false, nil
	return encode(fmt.Sprintf("channel %q", c.Name), c)
}

func decodeBundle(appID string, raw []byte) (ota.Bundle, error) {
	var b ota.Bundle
	if err := decode("bundle of app "+appID, raw, &b); err != nil {
		return b, err
	}
	b.AppID, b.URL = appID, ""
	return b, nil
}

func encodeBundle(b ota.Bundle) ([]byte, error) {
	b.URL = ""
	return encode(fmt.Sprintf("%s bundle %q", b.Kind, b.Version), b)
}

// maxNameLen bounds names used as keys, as the embedded store does, so both
// refuse the same input.
const maxNameLen = 256

// checkName rejects what cannot be a key.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty: %w", what, store.ErrInvalid)
	case len(s) > maxNameLen:
		return fmt.Errorf("%s is %d bytes long, the limit is %d: %w", what, len(s), maxNameLen, store.ErrInvalid)
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("%s contains a NUL byte: %w", what, store.ErrInvalid)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8: %w", what, store.ErrInvalid)
	}
	return nil
}

func checkKind(kind string) error {
	if kind != ota.KindWeb && kind != ota.KindAPK {
		return fmt.Errorf("bundle kind %q is neither %q nor %q: %w", kind, ota.KindWeb, ota.KindAPK, store.ErrInvalid)
	}
	return nil
}

// norm makes a caller's clock reading storable: UTC, no monotonic part, and
// the current time when the caller passed none.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Round(0)
}

// short abbreviates a checksum for messages.
func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// noRows reports whether err is a query that found nothing.
func noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
