// Package blob stores bundle bytes by their SHA-256. Identical bytes are
// stored once. Writes are crash-safe: a blob is either absent or complete
// and verified.
//
// Store is an interface so that the S3-compatible backend (package
// blob/s3) can replace the local directory (FS) without handlers changing.
package blob

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned when no blob has the given key.
var ErrNotFound = errors.New("blob not found")

// ErrTooLarge is returned by Put when the stream exceeds the limit.
var ErrTooLarge = errors.New("blob too large")

// Info describes a stored blob.
type Info struct {
	SHA256  string // lowercase hex; also the key
	Size    int64
	ModTime time.Time
	// New is set by Put when the bytes were not stored before, so a caller
	// that rejects the upload afterwards knows it may delete them.
	New bool
}

// Content is an open blob for reading. ReadSeeker lets HTTP serve ranges
// without reading skipped bytes.
type Content interface {
	io.ReadSeeker
	io.Closer
}

// Store holds blobs by SHA-256.
type Store interface {
	// Put streams r into the store while hashing it, and returns the hash and
	// size. At most limit bytes are read (limit <= 0: no limit); past it Put
	// fails with ErrTooLarge and keeps nothing. Nothing partial is ever
	// visible under a key. Storing bytes that are there already renews
	// their ModTime, which garbage collection's grace period counts from.
	Put(ctx context.Context, r io.Reader, limit int64) (Info, error)
	// Open returns the blob's bytes. The key must be 64 lowercase hex digits;
	// anything else is ErrNotFound.
	Open(ctx context.Context, sha256 string) (Content, Info, error)
	// Stat reports whether the blob exists.
	Stat(ctx context.Context, sha256 string) (Info, error)
	// Delete removes a blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, sha256 string) error
	// List calls fn for every stored blob.
	List(ctx context.Context, fn func(Info) error) error
}

// Sweeper is a Store that a killed process can leave debris in which the
// next start may not simply remove, because other processes share the
// store (S3: temporary objects and incomplete multipart uploads of
// uploads running on other replicas). Sweep removes what is older than
// olderThan and reports how many items went.
type Sweeper interface {
	Sweep(ctx context.Context, olderThan time.Duration) (int, error)
}
