package blob

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// CopyOptions tune Copy.
type CopyOptions struct {
	// Keys limits the copy to these blobs (for example the ones a store's
	// records refer to); nil copies every blob src lists. A key src does
	// not have is an error.
	Keys []string
	// Workers is how many blobs are copied at once (0: 4).
	Workers int
	// Progress, when set, is called after each blob (from several
	// goroutines, one call at a time).
	Progress func(CopyProgress)
}

// CopyProgress is where a Copy stands.
type CopyProgress struct {
	Done, Total int   // blobs handled, of all
	Bytes       int64 // bytes copied so far (skipped blobs not counted)
	Key         string
	Skipped     bool // Key was in dst already
}

// CopyReport says what a Copy did.
type CopyReport struct {
	Blobs   int   // blobs to copy
	Copied  int   // copied now
	Skipped int   // in dst already, with the right size
	Bytes   int64 // bytes copied now
}

// Copy copies blobs from src to dst, for moving an install from one
// backend to another (the local directory to a bucket). Every copied blob
// is hashed on the way by dst's Put and must come out under its own key:
// bytes damaged in src are refused, not stored under a wrong name. A blob
// dst already holds with the same size is skipped, so Copy can be run
// again after a failure or with otad still uploading, and copies only
// what is missing. At the end every blob is checked to be in dst.
//
// It carries on past a blob that fails and returns every failure joined;
// the report counts what succeeded.
func Copy(ctx context.Context, dst, src Store, opts CopyOptions) (CopyReport, error) {
	keys := opts.Keys
	if keys == nil {
		err := src.List(ctx, func(i Info) error {
			keys = append(keys, i.SHA256)
			return nil
		})
		if err != nil {
			return CopyReport{}, fmt.Errorf("copy blobs: list the source: %w", err)
		}
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	workers := opts.Workers
	if workers <= 0 {
		workers = 4
	}

	var (
		rep      = CopyReport{Blobs: len(keys)}
		mu       sync.Mutex // rep, errs, Progress
		errs     []error
		next     atomic.Int64
		wg       sync.WaitGroup
		progress = func(key string, skipped bool, n int64, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case skipped:
				rep.Skipped++
			default:
				rep.Copied++
				rep.Bytes += n
			}
			if opts.Progress != nil {
				opts.Progress(CopyProgress{Done: rep.Copied + rep.Skipped + len(errs), Total: rep.Blobs,
					Bytes: rep.Bytes, Key: key, Skipped: skipped})
			}
		}
	)
	for range min(workers, max(len(keys), 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) || ctx.Err() != nil {
					return
				}
				skipped, n, err := copyOne(ctx, dst, src, keys[i])
				progress(keys[i], skipped, n, err)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("copy blobs: %w (run it again to copy the rest)", err)
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("copy blobs: %d of %d failed: %w", len(errs), len(keys), errors.Join(errs...))
	}
	// Counted, then checked: every blob is in dst now.
	for _, k := range keys {
		if _, err := dst.Stat(ctx, k); err != nil {
			return rep, fmt.Errorf("copy blobs: %s is not in the destination after the copy: %w", k, err)
		}
	}
	return rep, nil
}

// copyOne copies key unless dst has it already.
func copyOne(ctx context.Context, dst, src Store, key string) (skipped bool, n int64, err error) {
	from, err := src.Stat(ctx, key)
	if err != nil {
		return false, 0, fmt.Errorf("blob %s: in the source: %w", key, err)
	}
	if have, err := dst.Stat(ctx, key); err == nil && have.Size == from.Size {
		return true, 0, nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return false, 0, fmt.Errorf("blob %s: in the destination: %w", key, err)
	}
	r, info, err := src.Open(ctx, key)
	if err != nil {
		return false, 0, fmt.Errorf("blob %s: open the source: %w", key, err)
	}
	defer r.Close()
	// At most the size the source reported: a file growing underneath
	// is damaged, not longer.
	got, err := dst.Put(ctx, r, max(info.Size, 1))
	if err != nil {
		return false, 0, fmt.Errorf("blob %s: %w", key, err)
	}
	if got.SHA256 != key {
		if got.New {
			_ = dst.Delete(context.WithoutCancel(ctx), got.SHA256)
		}
		return false, 0, fmt.Errorf("blob %s: the source's bytes hash to %s: the source copy is damaged; restore it from a backup", key, got.SHA256)
	}
	return false, got.Size, nil
}
