package bolt

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Stored records. Their JSON tags are the file format; the wire types in
// pkg/ota may change their tags without touching stored data.

type appRecord struct {
	ID             string    `json:"id"`
	DefaultChannel string    `json:"default_channel,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// policyRecord has exactly ota.ChannelPolicy's fields, so the two convert
// with a plain conversion; a field added there stops this from compiling
// until it is stored too.
type policyRecord struct {
	AllowSelfSet                 bool    `json:"allow_self_set"`
	IOS                          bool    `json:"ios"`
	Android                      bool    `json:"android"`
	Electron                     bool    `json:"electron"`
	DisableAutoUpdate            string  `json:"disable_auto_update"`
	DisableAutoUpdateUnderNative bool    `json:"disable_auto_update_under_native"`
	AllowProd                    bool    `json:"allow_prod"`
	AllowDev                     bool    `json:"allow_dev"`
	AllowDevice                  bool    `json:"allow_device"`
	AllowEmulator                bool    `json:"allow_emulator"`
	AutoHalt                     bool    `json:"auto_halt"`
	HaltOnFailureRate            float64 `json:"halt_on_failure_rate"`
	MinDevices                   int     `json:"min_devices"`
	Protected                    bool    `json:"protected,omitempty"`
	StalledWindowSeconds         int64   `json:"stalled_window_seconds,omitempty"`
	StalledPolls                 int     `json:"stalled_polls,omitempty"`
	IgnoreStalled                bool    `json:"ignore_stalled,omitempty"`
}

// UnmarshalJSON gives channels stored before the auto-halt policy existed
// its defaults: auto-halt is off only when an operator turned it off.
func (p *policyRecord) UnmarshalJSON(b []byte) error {
	type plain policyRecord
	v := plain{AutoHalt: true, HaltOnFailureRate: ota.DefaultHaltOnFailureRate, MinDevices: ota.DefaultMinDevices}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = policyRecord(v)
	return nil
}

// rolloutRecord has ota.Rollout's fields (see wire and rolloutOf).
type rolloutRecord struct {
	Target    string      `json:"target"`
	Previous  string      `json:"previous,omitempty"`
	Percent   int         `json:"percent"`
	Paused    bool        `json:"paused,omitempty"`
	Halted    bool        `json:"halted,omitempty"`
	Reason    string      `json:"reason,omitempty"`
	StartedAt time.Time   `json:"started_at"`
	UpdatedAt time.Time   `json:"updated_at"`
	Ramp      *rampRecord `json:"ramp,omitempty"`
}

// rampRecord has exactly ota.Ramp's fields.
type rampRecord struct {
	Steps        []int     `json:"steps"`
	EverySeconds int64     `json:"every_seconds"`
	MinDevices   int       `json:"min_devices,omitempty"`
	Step         int       `json:"step"`
	StepAt       time.Time `json:"step_at"`
	Held         string    `json:"held,omitempty"`
	HeldAt       time.Time `json:"held_at,omitzero"`
	ApprovedBy   string    `json:"approved_by,omitempty"`
}

func (r *rolloutRecord) wire() ota.Rollout {
	out := ota.Rollout{Target: r.Target, Previous: r.Previous, Percent: r.Percent, Paused: r.Paused, Halted: r.Halted,
		Reason: r.Reason, StartedAt: r.StartedAt, UpdatedAt: r.UpdatedAt}
	if r.Ramp != nil {
		rp := ota.Ramp(*r.Ramp)
		out.Ramp = &rp
	}
	return out
}

func rolloutOf(r *ota.Rollout) *rolloutRecord {
	out := &rolloutRecord{Target: r.Target, Previous: r.Previous, Percent: r.Percent, Paused: r.Paused, Halted: r.Halted,
		Reason: r.Reason, StartedAt: r.StartedAt, UpdatedAt: r.UpdatedAt}
	if r.Ramp != nil {
		rp := rampRecord(*r.Ramp)
		out.Ramp = &rp
	}
	return out
}

type releaseRecord struct {
	Version    string    `json:"version"`
	DeployedAt time.Time `json:"deployed_at"`
}

type channelRecord struct {
	Name      string          `json:"name"`
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	Active    string          `json:"active,omitempty"`
	Policy    policyRecord    `json:"policy"`
	Releases  []releaseRecord `json:"releases,omitempty"`
	Rollout   *rolloutRecord  `json:"rollout,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

type bundleRecord struct {
	Version    string                 `json:"version"`
	Kind       string                 `json:"kind"`
	SHA256     string                 `json:"sha256"`
	Size       int64                  `json:"size"`
	UploadedAt time.Time              `json:"uploaded_at"`
	UploadedBy string                 `json:"uploaded_by,omitempty"`
	Notes      string                 `json:"notes,omitempty"`
	MinNative  string                 `json:"min_native,omitempty"`
	MaxNative  string                 `json:"max_native,omitempty"`
	Native     *ota.NativeFingerprint `json:"native,omitempty"`
	Encryption *encryptionRecord      `json:"encryption,omitempty"`
	Signature  string                 `json:"signature,omitempty"`
	// ManifestSignature signs the Capawesome manifest file of a signed
	// delta release (ota.Bundle.ManifestSignature).
	ManifestSignature string `json:"manifest_signature,omitempty"`
	// Files is the length of the bundle's manifest (bucket manifests);
	// 0 for a zip-only bundle.
	Files   int  `json:"files,omitempty"`
	Deleted bool `json:"deleted,omitempty"`
}

// encryptionRecord has exactly ota.BundleEncryption's fields.
type encryptionRecord struct {
	SessionKey        string `json:"session_key"`
	EncryptedChecksum string `json:"encrypted_checksum"`
	KeyID             string `json:"key_id"`
}

func newEncryptionRecord(e *ota.BundleEncryption) *encryptionRecord {
	if e == nil {
		return nil
	}
	r := encryptionRecord(*e)
	return &r
}

func (e *encryptionRecord) wire() *ota.BundleEncryption {
	if e == nil {
		return nil
	}
	w := ota.BundleEncryption(*e)
	return &w
}

type eventRecord struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor,omitempty"`
	Type    string    `json:"type"`
	AppID   string    `json:"app_id"`
	Channel string    `json:"channel,omitempty"`
	Version string    `json:"version,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	SHA256  string    `json:"sha256,omitempty"`
	Note    string    `json:"note,omitempty"`
}

type userRecord struct {
	ID              string    `json:"id,omitempty"`
	Name            string    `json:"name"`
	PasswordHash    []byte    `json:"password_hash"`
	TokenGeneration uint64    `json:"token_generation"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func (a appRecord) wire() ota.App {
	return ota.App{ID: a.ID, DefaultChannel: a.DefaultChannel, CreatedAt: a.CreatedAt}
}

func (b bundleRecord) wire(appID string) ota.Bundle {
	return ota.Bundle{
		AppID: appID, Version: b.Version, Kind: b.Kind, SHA256: b.SHA256, Size: b.Size,
		UploadedAt: b.UploadedAt, UploadedBy: b.UploadedBy, Notes: b.Notes,
		MinNative: b.MinNative, MaxNative: b.MaxNative, Deleted: b.Deleted,
		Native: b.Native, Encryption: b.Encryption.wire(), Signature: b.Signature, ManifestSignature: b.ManifestSignature, Files: b.Files,
	}
}

func (e eventRecord) wire(seq uint64) ota.Event {
	return ota.Event{
		Seq: seq, Time: e.Time, Actor: e.Actor, Type: e.Type, AppID: e.AppID, Channel: e.Channel,
		Version: e.Version, From: e.From, To: e.To, SHA256: e.SHA256, Note: e.Note,
	}
}

func (u userRecord) wire() store.User {
	return store.User{
		ID: u.ID, Name: u.Name, PasswordHash: u.PasswordHash, TokenGeneration: u.TokenGeneration,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

// releaseIndex returns the index of the last release of version, or -1.
func (c *channelRecord) releaseIndex(version string) int {
	for i := len(c.Releases) - 1; i >= 0; i-- {
		if c.Releases[i].Version == version {
			return i
		}
	}
	return -1
}

// get decodes the value at key into v. It reports false when the key is
// absent. Decoding happens here, inside the transaction.
func get(b *bbolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

func put(b *bbolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	if err := b.Put(key, raw); err != nil {
		return fmt.Errorf("write %q: %w", key, err)
	}
	return nil
}

// maxNameLen bounds names used as keys. The server validates names much
// more strictly; this only keeps odd input from reaching bbolt, whose keys
// must be non-empty and at most 32 KiB.
const maxNameLen = 256

// checkName rejects what cannot be a key. what names the field for the
// message.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty: %w", what, store.ErrInvalid)
	case len(s) > maxNameLen:
		return fmt.Errorf("%s is %d bytes long, the limit is %d: %w", what, len(s), maxNameLen, store.ErrInvalid)
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("%s contains a NUL byte: %w", what, store.ErrInvalid)
	case !utf8.ValidString(s):
		// JSON would store it altered, so the record would not match its key.
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
