package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"

	"github.com/minio/minio-go/v7"

	"github.com/otaship/ota/internal/blob"
)

// Put implements blob.Store: it streams r to a temporary object while
// hashing it, then copies that server-side to the content address and
// removes it. Every part is sent with its own SHA-256, which the server
// checks, so the object holds exactly the bytes that were hashed.
//
// At most limit bytes are read (limit <= 0: no limit); past it Put fails
// with blob.ErrTooLarge. When the bytes were stored already, the copy
// still runs: it renews the object's time, which garbage collection's
// grace period counts from, so a collection on another replica cannot
// remove the blob this upload is about to reference.
func (s *Store) Put(ctx context.Context, r io.Reader, limit int64) (blob.Info, error) {
	if err := ctx.Err(); err != nil {
		return blob.Info{}, fmt.Errorf("store blob: %w", err)
	}
	tmp := s.tmpKey()
	src := &hashReader{ctx: ctx, r: r, h: sha256.New(), limit: limit}
	size, err := s.upload(ctx, tmp, src)
	if err != nil {
		s.removeTemp(ctx, tmp)
		return blob.Info{}, fmt.Errorf("store blob: %w", err)
	}
	key := hex.EncodeToString(src.h.Sum(nil))
	info, err := s.commit(ctx, tmp, key, size)
	s.removeTemp(ctx, tmp)
	if err != nil {
		return blob.Info{}, fmt.Errorf("store blob %s: %w", key, err)
	}
	return info, nil
}

// removeTemp deletes a temporary object, also after ctx has ended (a
// client that went away must not leave its upload behind).
func (s *Store) removeTemp(ctx context.Context, tmp string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = s.client.RemoveObject(cctx, s.cfg.Bucket, tmp, minio.RemoveObjectOptions{})
}

// putOptions are the headers of every stored object. The copy to the
// content address keeps them.
func putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType:  "application/octet-stream",
		CacheControl: objectCacheControl,
		// Each request carries the SHA-256 of its body in the signed
		// headers instead of a streaming signature: the server refuses a
		// body that does not match, over HTTP as over HTTPS.
		DisableContentSha256: true,
	}
}

// upload stores src under key and returns its size. A stream that fits
// one part is one PUT; a longer one is a multipart upload with
// Concurrency parts in flight, aborted on any failure.
func (s *Store) upload(ctx context.Context, key string, src *hashReader) (int64, error) {
	buf, err := s.bufs.get(ctx)
	if err != nil {
		return 0, err
	}
	n, eof, err := fill(src, buf)
	if err == nil && eof {
		defer s.bufs.put(buf)
		sum := sha256.Sum256(buf[:n])
		if _, err := s.core.PutObject(ctx, s.cfg.Bucket, key, bytes.NewReader(buf[:n]), int64(n),
			"", hex.EncodeToString(sum[:]), putOptions()); err != nil {
			return 0, err
		}
		return int64(n), nil
	}
	if err != nil {
		s.bufs.put(buf)
		return 0, err
	}
	id, err := s.core.NewMultipartUpload(ctx, s.cfg.Bucket, key, putOptions())
	if err != nil {
		s.bufs.put(buf)
		return 0, err
	}
	size, err := s.uploadParts(ctx, key, id, src, buf)
	if err != nil {
		// The request's context may be why it failed: abort with one of
		// its own, or the upload's parts would stay until a Sweep.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_ = s.core.AbortMultipartUpload(actx, s.cfg.Bucket, key, id)
		return 0, err
	}
	return size, nil
}

// uploadParts sends the parts of multipart upload id, the first of which
// is already in buf, and completes it.
func (s *Store) uploadParts(ctx context.Context, key, id string, src *hashReader, buf []byte) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		parts    []minio.CompletePart
		inflight = make(chan struct{}, s.cfg.Concurrency)
	)
	send := func(num int, data []byte, full []byte) {
		defer wg.Done()
		defer func() { <-inflight }()
		defer s.bufs.put(full)
		sum := sha256.Sum256(data)
		p, err := s.core.PutObjectPart(ctx, s.cfg.Bucket, key, id, num, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectPartOptions{Sha256Hex: hex.EncodeToString(sum[:]), DisableContentSha256: true})
		if err != nil {
			cancel(fmt.Errorf("upload part %d: %w", num, err))
			return
		}
		mu.Lock()
		parts = append(parts, minio.CompletePart{PartNumber: num, ETag: p.ETag})
		mu.Unlock()
	}

	size := int64(0)
	n := len(buf)
	var readErr error
parts:
	for num := 1; ; num++ {
		// buf holds part num's n bytes here, and is this loop's to return.
		if num > maxParts {
			s.bufs.put(buf)
			readErr = fmt.Errorf("%w: more than %d parts of %d bytes", blob.ErrTooLarge, maxParts, s.cfg.PartSize)
			break
		}
		select {
		case inflight <- struct{}{}:
		case <-ctx.Done():
			s.bufs.put(buf)
			break parts // an upload failed or ctx ended: the cause says which
		}
		size += int64(n)
		wg.Add(1)
		go send(num, buf[:n], buf)
		if n < len(buf) {
			break // that was the last part
		}
		var err error
		if buf, err = s.bufs.get(ctx); err != nil {
			break
		}
		var eof bool
		n, eof, err = fill(src, buf)
		switch {
		case err != nil:
			s.bufs.put(buf)
			readErr = err
			break parts
		case eof && n == 0:
			s.bufs.put(buf)
			break parts // the previous part was the last
		}
	}
	wg.Wait()
	if readErr != nil {
		return 0, readErr
	}
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	slices.SortFunc(parts, func(a, b minio.CompletePart) int { return a.PartNumber - b.PartNumber })
	if _, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, key, id, parts, putOptions()); err != nil {
		return 0, fmt.Errorf("complete upload: %w", err)
	}
	return size, nil
}

// commit copies the complete temporary object to key's content address.
func (s *Store) commit(ctx context.Context, tmp, key string, size int64) (blob.Info, error) {
	unlock := s.locks.lock(key)
	defer unlock()
	final := s.ObjectKey(key)
	existed := false
	st, err := s.client.StatObject(ctx, s.cfg.Bucket, final, minio.StatObjectOptions{})
	switch {
	case err == nil:
		// A damaged object (another size) is replaced by the copy.
		existed = st.Size == size
	case !isNotFound(err):
		return blob.Info{}, err
	}
	dst := minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: final}
	src := minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: tmp}
	var up minio.UploadInfo
	if size <= maxCopy {
		up, err = s.client.CopyObject(ctx, dst, src)
	} else {
		up, err = s.client.ComposeObject(ctx, dst, src)
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("copy to its content address: %w", err)
	}
	mod := up.LastModified
	if mod.IsZero() {
		if st, err := s.client.StatObject(ctx, s.cfg.Bucket, final, minio.StatObjectOptions{}); err == nil {
			mod = st.LastModified
		} else {
			mod = s.now()
		}
	}
	return blob.Info{SHA256: key, Size: size, ModTime: mod, New: !existed}, nil
}

// fill reads into buf until it is full or r ends. Only io.EOF ends the
// stream: any other error, io.ErrUnexpectedEOF from a truncated request
// body included, fails the upload (io.ReadFull would report a truncated
// body the same way as a short last part).
func fill(r io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF { // the io.Reader contract: EOF itself, unwrapped
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}

// hashReader hashes and counts what is read through it, fails with
// blob.ErrTooLarge as soon as more than limit bytes came (limit > 0), and
// stops when ctx ends.
type hashReader struct {
	ctx   context.Context
	r     io.Reader
	h     hash.Hash
	n     int64
	limit int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	if err := h.ctx.Err(); err != nil {
		return 0, err
	}
	if h.limit > 0 {
		// One byte past the limit tells "exactly limit" from "too large".
		if room := h.limit + 1 - h.n; int64(len(p)) > room {
			p = p[:room]
		}
	}
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	if h.limit > 0 && h.n > h.limit {
		return n, fmt.Errorf("%w: more than %d bytes", blob.ErrTooLarge, h.limit)
	}
	return n, err
}

// bufferPool hands out part buffers: at most max exist, made on first use
// and reused, so a Put of any size costs a fixed amount of memory and
// concurrent Puts together no more than max buffers.
type bufferPool struct {
	size   int
	free   chan []byte
	tokens chan struct{} // one per buffer that may still be made
}

func newBufferPool(size, max int) *bufferPool {
	p := &bufferPool{size: size, free: make(chan []byte, max), tokens: make(chan struct{}, max)}
	for range max {
		p.tokens <- struct{}{}
	}
	return p
}

// get returns a buffer, waiting for one to come back when max are in use.
func (p *bufferPool) get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.free:
		return b, nil
	default:
	}
	select {
	case b := <-p.free:
		return b, nil
	case <-p.tokens:
		return make([]byte, p.size), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (p *bufferPool) put(b []byte) {
	if b == nil {
		return
	}
	p.free <- b[:cap(b)]
}
