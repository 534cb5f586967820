// Package store defines the metadata store otad keeps its release state in:
// apps, channels, bundles, the append-only history, users, device overrides
// and device stats. Bundle bytes are not here; they live in a blob.Store.
//
// Store is an interface so that handlers do not change when a second
// implementation (PostgreSQL, for several replicas) arrives. The embedded
// implementation is in store/bolt. Every method that changes release state
// does so in one transaction together with its history event, so a crash
// leaves either both or neither.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// Errors returned by every Store implementation. Callers compare with
// errors.Is; implementations wrap them with context.
var (
	// ErrNotFound: the named app, channel, bundle, user or override does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the version exists with other bytes, or the user exists.
	ErrConflict = errors.New("conflict")
	// ErrNoPrevious: a rollback found no earlier release to go back to.
	ErrNoPrevious = errors.New("no previous release")
	// ErrInvalid: the request contradicts the stored state (for example an
	// APK into a web channel).
	ErrInvalid = errors.New("invalid request")
	// ErrStorageFull: AppendStats refused device events because the
	// storage is nearly full; the room left is for release writes
	// (uploads, rollbacks), which anonymous devices must never block.
	ErrStorageFull = errors.New("storage nearly full: device stats refused")
)

// User is an account that may use the admin API. PasswordHash is a bcrypt
// hash; TokenGeneration grows whenever the password changes, which
// invalidates every token issued before. ID is random and never reused:
// login tokens carry it, so a user removed and created again under the
// same name (whose generation starts again at 0) does not accept the
// removed user's tokens.
type User struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	PasswordHash    []byte    `json:"password_hash"`
	TokenGeneration uint64    `json:"token_generation"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// NewUserID returns a random user id for CreateUser: 16 random bytes in
// hex, so ids never repeat.
func NewUserID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand never fails
	return hex.EncodeToString(b)
}

// PublishInput describes a bundle whose bytes are already in the blob store,
// to be recorded and made active on a channel.
type PublishInput struct {
	Bundle  ota.Bundle // AppID, Version, Kind, SHA256, Size, UploadedBy, Notes, Min/MaxNative
	Channel string
	Actor   string
	Time    time.Time
	// Rollout, between 1 and 99, stages the release: only that percent of
	// devices is offered it at first (see ota.Rollout). 0 and 100 release
	// it to every device.
	Rollout int
	// Note is kept with the upload event, e.g. why a native compatibility
	// check was overridden.
	Note string
	// Manifest, when not empty, makes the bundle a delta release: the
	// files devices may fetch one by one instead of the zip. Their blobs
	// are stored and verified already (the server checks).
	Manifest []ota.ManifestFile
}

// DeltaFile is one file content an app's delta releases may name, as
// stored: for a plain file SHA256 is that of its original bytes, which is
// also the blob key of its raw form, and Br/BrSize its Brotli form when it
// has one. For an encrypted form (Encrypted) SHA256 and Size are those of
// the stored bytes, which nobody but a device can look into.
type DeltaFile struct {
	AppID     string    `json:"app_id"`
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	Br        string    `json:"br,omitempty"`
	BrSize    int64     `json:"br_size,omitempty"`
	Encrypted bool      `json:"encrypted,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Manifest is the file list of one delta release.
type Manifest struct {
	AppID   string
	Version string
	Files   []ota.ManifestFile
}

// VersionHealth is what otad remembers of one bundle version of an app
// from device stats: the devices that run it and the devices that reported
// it failing, with the failure actions. otad keeps it in memory and saves
// it in batches; it bounds the number of devices itself.
type VersionHealth struct {
	AppID   string `json:"app_id"`
	Version string `json:"version"`
	// Installed lists devices that reported the version running (set,
	// app_launch_ready).
	Installed []string `json:"installed,omitempty"`
	// Failed maps a device id to the failure actions it reported.
	Failed    map[string][]string `json:"failed,omitempty"`
	UpdatedAt time.Time           `json:"updated_at"`
}

// DeviceOffer is what otad last offered one device of an app (see
// internal/offers): the version and its channel, the version offered
// before, when the current offer was first and last made, and how often.
// Device is the device's key, a hash of the app and device ids
// (offers.DeviceKey), unique across apps; a record with neither Version
// nor Running stands for the removal of that key (a device only checked,
// never offered anything, has Running only).
//
// The other fields are what its latest update check said (issue #10's
// silent-failure detection, adoption and device stories): when it was
// (Seen), the version it ran (Running: a bundle version, ota.VersionBuiltin
// or ota.VersionUnknown) on channel RunningChannel, what it reported about
// Version (Flags), and the request fields an explanation needs.
type DeviceOffer struct {
	Device          uint64    `json:"device"`
	AppID           string    `json:"app_id,omitempty"`
	Channel         string    `json:"channel,omitempty"`
	Version         string    `json:"version,omitempty"`
	Previous        string    `json:"previous,omitempty"`
	PreviousChannel string    `json:"previous_channel,omitempty"`
	First           time.Time `json:"first"`
	Last            time.Time `json:"last"`
	Count           int       `json:"count,omitempty"`

	Seen           time.Time `json:"seen,omitzero"`
	Running        string    `json:"running,omitempty"`
	RunningChannel string    `json:"running_channel,omitempty"`
	// Flags are internal/offers' bits (downloaded, installed, stalled,
	// platform, build type, channel source); the store keeps them as
	// they are.
	Flags  uint16 `json:"flags,omitempty"`
	Build  string `json:"build,omitempty"`  // version_build
	Plugin string `json:"plugin,omitempty"` // plugin_version
}

// AdoptionDay is one app's adoption on one UTC day (internal/adoption):
// per channel and version, the distinct devices whose latest update check
// of the day ran it.
type AdoptionDay struct {
	AppID  string          `json:"app_id"`
	Day    time.Time       `json:"day"` // midnight UTC
	Counts []AdoptionCount `json:"counts"`
}

// AdoptionCount is one channel and version of an AdoptionDay. Estimated
// marks a HyperLogLog estimate (more devices that day than otad's offer
// memory holds).
type AdoptionCount struct {
	Channel   string `json:"channel"`
	Version   string `json:"version"`
	Devices   int    `json:"devices"`
	Estimated bool   `json:"estimated,omitempty"`
}

// Lease is leadership taken with Store.Lead. Lost is closed when it is
// lost (the database connection that holds it broke); Release gives it up.
type Lease interface {
	Lost() <-chan struct{}
	Release()
}

// DeviceOverride pins one device of an app to a channel (admin-assigned, or
// stored by a legacy plugin's setChannel). ByDevice says which: a device
// may replace or remove only a pin it set itself, while an admin's pin
// stands until an admin changes it.
type DeviceOverride struct {
	AppID    string `json:"app_id"`
	DeviceID string `json:"device_id"`
	Channel  string `json:"channel"`
	ByDevice bool   `json:"by_device,omitempty"`
}

// HistoryQuery selects a page of history, newest first. Empty AppID means
// every app; empty Channel every channel. Before is an exclusive upper bound
// on Seq (0: from the newest). Limit is capped by the implementation.
type HistoryQuery struct {
	AppID   string
	Channel string
	Before  uint64
	Limit   int
}

// StatsLimits bound the device stats a store keeps per app; the oldest
// events go first. Zero fields take the implementation's defaults.
type StatsLimits struct {
	MaxEventsPerApp int
	MaxBytesPerApp  int64
}

// StoredStat is one device stats event as stored.
type StoredStat struct {
	Received time.Time      `json:"received"`
	Event    ota.StatsEvent `json:"event"`
	// Unverified marks a report about a version otad had not offered to
	// that device (see internal/offers): it is kept, but counts toward
	// no version's health.
	Unverified bool `json:"unverified,omitempty"`
	// Raw, when not nil, is Event as JSON: the bytes the device sent,
	// checked to hold only Event's fields and to decode to Event. A store
	// may keep them instead of encoding Event again (the largest cost of
	// storing a batch). Stats never fills it.
	Raw []byte `json:"-"`
}

// State is everything the device endpoints need, loaded app by app after
// start and kept current in memory by the server: apps with their channels (each with
// its active bundle record) and device overrides.
type State struct {
	Apps     []ota.App
	Channels []ota.Channel // ActiveBundle filled in
	// Bundles holds every non-deleted web bundle, with the fields the device
	// endpoints use (AppID, Version, Kind, SHA256, Size, MinNative,
	// MaxNative, Encryption, Signature); a store may leave the others zero so that loading a
	// million of them stays cheap.
	Bundles   []ota.Bundle
	Overrides []DeviceOverride
	// Manifests holds the manifests of the delta releases channels serve:
	// each web channel's active version and its rollout's previous one.
	// Other delta releases are offered as zips only when a device falls
	// back to them.
	Manifests []Manifest
}

// Store is the metadata store. Implementations are safe for concurrent use.
type Store interface {
	WebhookStore
	TokenStore

	// Users.
	// CreateUser adds an account; ErrConflict if the name exists. An
	// empty u.ID is replaced by a new random one (see NewUserID).
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// SetPassword stores a new hash and bumps TokenGeneration.
	SetPassword(ctx context.Context, name string, hash []byte, now time.Time) (User, error)
	DeleteUser(ctx context.Context, name string) error

	// Publish records a bundle and makes it the channel's active release, with
	// an upload event, in one transaction. The app and channel are created
	// when missing; the first channel of an app that receives a web bundle
	// becomes its default. The same version with the same SHA-256 is an
	// idempotent retry (created=false); with another SHA-256 it is
	// ErrConflict. A deleted bundle keeps its name reserved the same way.
	// A retry may add a Signature to a bundle stored without one (the
	// bytes are the same; devices that verify need it); a retry without
	// one keeps the stored one, and one with another signature is
	// ErrConflict.
	//
	// With in.Manifest the bundle is a delta release: the manifest is
	// stored with it (Bundle.Files is its length), with Known set on each
	// file whose SHA-256 a manifest published earlier for the app named
	// (the store remembers every SHA-256 it published, even once its
	// release is deleted). A retry keeps the stored manifest, or stores
	// in.Manifest when the bundle had none; a deleted bundle brought back
	// takes in.Manifest (its old manifest was dropped with it).
	Publish(ctx context.Context, in PublishInput) (res ota.UploadResult, err error)
	// Rollback points the channel at the release before the active one, or at
	// version to when it is non-empty (any stored bundle of the app of the
	// channel's kind, or ota.VersionBuiltin for web channels). Nothing is
	// deleted.
	Rollback(ctx context.Context, appID, channel, to, actor string, now time.Time) (ota.ChannelChange, error)
	// Promote makes version (or, when empty, what channel from serves) active
	// on channel to, creating it when missing.
	Promote(ctx context.Context, appID, version, from, to, actor string, now time.Time) (ota.ChannelChange, error)
	// DeleteRelease removes version from the channel's releases. When it was
	// active, the release deployed before it becomes active, or the channel
	// is left empty. A bundle in no channel any more is marked deleted, and
	// its manifest is dropped.
	DeleteRelease(ctx context.Context, appID, channel, version, actor string, now time.Time) (ota.ChannelChange, error)
	// SetRollout changes the staged rollout of the channel's active version
	// (percent, pause, resume, complete) with a rollout event. A channel
	// without a staged rollout of its active version is ErrInvalid, as is a
	// lower percent while the rollout is not paused.
	SetRollout(ctx context.Context, appID, channel string, req ota.RolloutRequest, actor string, now time.Time) (ota.Channel, error)
	// Halt stops the rollout of version on the channel: in one transaction
	// the channel is re-pointed to the release before it (the rollout's
	// Previous), the rollout is marked halted with reason, and a halt
	// event is recorded with actor. When version is no longer active
	// nothing changes (From == To in the result).
	Halt(ctx context.Context, appID, channel, version, reason, actor string, now time.Time) (ota.ChannelChange, error)
	// SaveHealth stores version health records, replacing earlier ones of
	// the same app and version; a record with neither Installed nor Failed
	// removes the stored one (the version's health was pruned). Records of
	// unknown apps are dropped.
	SaveHealth(ctx context.Context, hs []VersionHealth) error
	// LoadHealth reads every stored version health record.
	LoadHealth(ctx context.Context) ([]VersionHealth, error)
	// SaveOffers stores offer records, replacing earlier ones of the same
	// Device key; a record with neither Version nor Running removes the
	// key's record.
	// Records of unknown apps are dropped. otad saves in batches of what
	// changed and bounds the number of records itself (its memory).
	SaveOffers(ctx context.Context, os []DeviceOffer) error
	// LoadOffers calls fn with every stored offer record, in no order,
	// stopping at fn's first error (there may be millions: they are not
	// gathered in a slice).
	LoadOffers(ctx context.Context, fn func(DeviceOffer) error) error
	// SaveAdoption stores adoption days, each replacing the stored one of
	// its app and day, and removes the days before keepFrom. Days of
	// unknown apps are dropped.
	SaveAdoption(ctx context.Context, days []AdoptionDay, keepFrom time.Time) error
	// LoadAdoption reads the stored days from since on, oldest first.
	LoadAdoption(ctx context.Context, since time.Time) ([]AdoptionDay, error)
	// Lead makes this process the one that runs the periodic work named
	// name (the ramp schedule) among every process sharing the store: ok
	// is false, with no error, while another holds it. A store only one
	// process opens (bbolt) hands it to one caller of the process at a
	// time; a shared one (PostgreSQL) holds a lock on a connection of its
	// own until Release or until the connection breaks (Lost).
	Lead(ctx context.Context, name string) (lease Lease, ok bool, err error)
	// UpdateChannel applies a policy patch to an existing channel.
	UpdateChannel(ctx context.Context, appID, channel string, patch ota.ChannelPolicyPatch, actor string, now time.Time) (ota.Channel, error)

	ListApps(ctx context.Context) ([]ota.App, error)
	GetApp(ctx context.Context, appID string) (ota.App, error)
	ListChannels(ctx context.Context, appID string) ([]ota.Channel, error)
	GetChannel(ctx context.Context, appID, channel string) (ota.Channel, error)
	ListBundles(ctx context.Context, appID string) ([]ota.Bundle, error)
	GetBundle(ctx context.Context, appID, kind, version string) (ota.Bundle, error)
	// History returns a page of events, newest first, and the Before value of
	// the next page (0 when there is none). A Channel filter needs an AppID
	// (ErrInvalid otherwise); an unknown app or channel is ErrNotFound.
	History(ctx context.Context, q HistoryQuery) ([]ota.Event, uint64, error)

	// SetOverride pins a device (matched case-insensitively) to an existing
	// channel of the app, with a device_override event; ErrNotFound when the
	// app or channel does not exist. With o.ByDevice (the device asks
	// itself) an admin's pin is ErrConflict and stays; an admin's
	// SetOverride replaces any pin and makes it the admin's.
	SetOverride(ctx context.Context, o DeviceOverride, actor string, now time.Time) error
	// DeleteOverride unpins a device with a device_override event (From
	// the old channel, To empty); ErrNotFound when it was not pinned. With
	// byDevice an admin's pin is ErrConflict and stays.
	DeleteOverride(ctx context.Context, appID, deviceID string, byDevice bool, actor string, now time.Time) error

	// AppendStats stores device events. Implementations keep per app at
	// most the newest events within a count and a byte bound (the bytes of
	// the stored events; see StatsLimits), drop events of apps they do not
	// know (devices choose the app id), and refuse the batch with
	// ErrStorageFull rather than take the room release writes need.
	AppendStats(ctx context.Context, events []StoredStat) error
	// Stats lists stored events of an app, oldest first, received at or after since.
	Stats(ctx context.Context, appID string, since time.Time, limit int) ([]StoredStat, error)

	// LoadState reads the device-facing state of every app at once (for
	// checks of a whole store; otad itself loads app by app).
	LoadState(ctx context.Context) (State, error)
	// LoadAppState reads the device-facing state of one app: otad loads
	// each app with it after start and refreshes it after every write,
	// without reading every app. An unknown app is ErrNotFound.
	LoadAppState(ctx context.Context, appID string) (State, error)
	// ReferencedBlobs lists the blobs still needed: the SHA-256 of every
	// bundle not marked deleted, the forms (Raw, Br) of every file their
	// manifests name, and the blobs of every delta file record. Blobs
	// outside it may be collected.
	ReferencedBlobs(ctx context.Context) (map[string]bool, error)

	// PutDeltaFile records a delta file whose blobs are stored and
	// verified. The app need not exist yet (files come before the first
	// release). Recording a SHA-256 again keeps the record, adding a Brotli
	// form it lacked; created says whether the record is new.
	PutDeltaFile(ctx context.Context, f DeltaFile) (created bool, err error)
	// DeltaFiles returns the app's records among sha256s, by SHA-256;
	// those it does not hold are absent.
	DeltaFiles(ctx context.Context, appID string, sha256s []string) (map[string]DeltaFile, error)
	// Manifest returns the manifest of a web bundle; ErrNotFound when the
	// bundle does not exist or has none (a zip-only release).
	Manifest(ctx context.Context, appID, version string) ([]ota.ManifestFile, error)
	// PruneDeltaFiles removes the delta file records created before
	// before that no manifest of a bundle not marked deleted names, so
	// that their blobs can be collected, and returns how many it removed.
	PruneDeltaFiles(ctx context.Context, before time.Time) (int, error)

	// Backup writes a consistent copy of the whole metadata store to w
	// while other requests go on.
	Backup(ctx context.Context, w io.Writer) (int64, error)

	Close() error
}
