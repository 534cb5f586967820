package bundle

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ErrInvalidZip is matched (errors.Is) by every *ValidationError.
var ErrInvalidZip = errors.New("invalid bundle zip")

// ValidationError lists every reason a zip would be refused, so one upload
// attempt reports them all.
type ValidationError struct {
	Problems []string
}

// Error joins the problems into one line.
func (e *ValidationError) Error() string {
	return "invalid bundle zip: " + strings.Join(e.Problems, "; ")
}

// Is makes errors.Is(err, ErrInvalidZip) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidZip }

// Default limits, used for zero fields of Limits.
const (
	DefaultMaxEntries      = 20000
	DefaultMaxUncompressed = 1 << 30
	DefaultMaxRatio        = 200
)

// ratioFloor is the smallest entry whose compression ratio is judged: a
// small file cannot be a bomb, however well it compresses.
const ratioFloor = 1 << 20

// maxProblems caps the list so a hostile zip cannot make a huge error.
const maxProblems = 20

// Entry name bounds. Android's and iOS's file systems take 255 bytes per
// path segment; 1024 for a whole name leaves room for the app's own
// directory before Android's PATH_MAX of 4096.
const (
	MaxNameLen    = 1024
	MaxSegmentLen = 255
)

// Limits bound what Validate accepts. Zero fields take the defaults.
type Limits struct {
	MaxEntries      int     // entries in the central directory (default 20000)
	MaxUncompressed int64   // declared total uncompressed size (default 1 GiB)
	MaxRatio        float64 // uncompressed/compressed for one entry (default 200)
}

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxUncompressed <= 0 {
		l.MaxUncompressed = DefaultMaxUncompressed
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

// Report describes a zip that Validate looked at.
type Report struct {
	// Entries is the number of entries, folders included.
	Entries int
	// Uncompressed is the declared total uncompressed size.
	Uncompressed int64
	// Wrapper is "" when index.html is at the zip root, else the single
	// top-level folder that holds it (devices unwrap it).
	Wrapper string
	// Warnings are accepted oddities worth telling the uploader.
	Warnings []string
}

// Validate decides whether the updater plugin would accept the zip
// (protocol §5): safe paths, regular files, and an index.html at the root
// or in exactly one wrapper folder. The local headers must tell the same
// story as the central directory (names, methods, flags, CRCs and sizes),
// since Android reads the zip as a stream and iOS by its directory. Only
// when the declared sizes are within the limits (so it cannot be bombed)
// does it decompress every entry, to check the CRC and the real sizes
// against the declared ones; it never reads more than an entry declares.
// Problems come back together in a *ValidationError.
func Validate(r io.ReaderAt, size int64, lim Limits) (Report, error) {
	lim = lim.withDefaults()
	zr, err := zip.NewReader(r, size)
	// ErrInsecurePath (GODEBUG zipinsecurepath=0) still returns a usable
	// reader; the paths are judged below anyway.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return Report{}, &ValidationError{Problems: []string{fmt.Sprintf("not a zip file (%v)", err)}}
	}
	v := validator{lim: lim, size: size, seen: map[string]bool{}}
	v.rep.Entries = len(zr.File)
	if len(zr.File) > lim.MaxEntries {
		v.problem("%d entries, more than the limit of %d", len(zr.File), lim.MaxEntries)
		return v.rep, v.err()
	}
	for _, f := range zr.File {
		v.entry(f)
	}
	if v.rep.Uncompressed > lim.MaxUncompressed {
		v.problem("files unpack to %d bytes, more than the limit of %d", v.rep.Uncompressed, lim.MaxUncompressed)
	}
	v.conflicts()
	v.layout()
	if len(v.problems) == 0 {
		v.stream(r, zr.File)
	}
	if len(v.problems) == 0 {
		v.contents(r, zr.File)
	}
	return v.rep, v.err()
}

type validator struct {
	lim       Limits
	size      int64
	rep       Report
	problems  []string
	more      int
	seen      map[string]bool // clean paths, folders without the slash
	files     map[string]bool // clean paths of regular files
	top       []string        // top-level names in order of appearance
	topSeen   map[string]bool
	macLitter bool
	// folded maps each path and parent folder, case-folded and in Unicode
	// NFC, to its first spelling: iOS's file system does not tell "A.js"
	// from "a.js", nor composed from decomposed accents.
	folded map[string]string
}

func (v *validator) problem(format string, args ...any) {
	if len(v.problems) >= maxProblems {
		v.more++
		return
	}
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	p := v.problems
	if v.more > 0 {
		p = append(p, fmt.Sprintf("and %d more problems", v.more))
	}
	return &ValidationError{Problems: p}
}

// entry checks one central directory record.
func (v *validator) entry(f *zip.File) {
	name := f.Name
	v.rep.Uncompressed = satAdd(v.rep.Uncompressed, f.UncompressedSize64)
	if bad := badName(name); bad != "" {
		v.problem("entry %q: %s", name, bad)
		return
	}
	isDir := strings.HasSuffix(name, "/")
	clean := path.Clean(name)
	if clean == "." {
		return // "./": the root itself
	}

	switch kind := unixType(f.ExternalAttrs); {
	case kind == uint32(0o120000):
		v.problem("entry %q is a symlink: bundles may only hold files and folders", name)
		return
	case kind != 0 && kind != uint32(0o100000) && kind != uint32(0o040000):
		v.problem("entry %q is not a regular file or folder (mode %o)", name, kind)
		return
	case kind == uint32(0o040000) || f.Mode().IsDir():
		isDir = true
	}

	if v.seen[clean] {
		v.problem("entry %q appears twice", name)
		return
	}
	v.seen[clean] = true
	if other, clash := v.foldClash(clean); clash {
		v.problem("entries %q and %q differ only in case or Unicode normalisation: iOS would unpack them as one", other, name)
		return
	}
	if !isDir {
		if v.files == nil {
			v.files = map[string]bool{}
		}
		v.files[clean] = true
	}

	top, _, _ := strings.Cut(clean, "/")
	if v.topSeen == nil {
		v.topSeen = map[string]bool{}
	}
	if !v.topSeen[top] {
		v.topSeen[top] = true
		v.top = append(v.top, top)
	}
	for seg := range strings.SplitSeq(clean, "/") {
		if skipName(seg) {
			v.macLitter = true
		}
	}

	if f.Flags&0x1 != 0 {
		v.problem("entry %q is encrypted: devices cannot open password-protected zips", name)
	}
	if f.Method != zip.Store && f.Method != zip.Deflate {
		v.problem("entry %q uses compression method %d: devices only read stored or deflated entries", name, f.Method)
	}
	if f.Method == zip.Store && f.Flags&0x8 != 0 && !isDir {
		v.warn("entry %q is stored with a data descriptor, which Java's ZipInputStream cannot read", name)
	}
	if f.UncompressedSize64 > ratioFloor {
		if f.CompressedSize64 == 0 || float64(f.UncompressedSize64)/float64(f.CompressedSize64) > v.lim.MaxRatio {
			v.problem("entry %q expands from %d to %d bytes, beyond the %g:1 ratio limit (a zip bomb?)",
				name, f.CompressedSize64, f.UncompressedSize64, v.lim.MaxRatio)
		}
	}
	// The local header must be where the central directory says; this
	// catches truncated and spliced files without reading any data.
	off, err := f.DataOffset()
	if err != nil {
		v.problem("entry %q: local header is damaged (%v)", name, err)
	} else if uint64(off)+f.CompressedSize64 > uint64(v.size) {
		v.problem("entry %q: data runs past the end of the file (truncated upload?)", name)
	}
}

func (v *validator) warn(format string, args ...any) {
	if len(v.rep.Warnings) < maxProblems {
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf(format, args...))
	}
}

// Local header layout (APPNOTE 4.3.7).
const (
	localSig      = 0x04034b50
	descriptorSig = 0x08074b50
	localLen      = 30
	zip64ExtraID  = 0x0001
)

// Flags a streaming reader acts on: encryption (bit 0) and a data
// descriptor after the data (bit 3).
const streamFlags = 0x1 | 0x8

// stream reads the local headers front to back, as a streaming reader such
// as Java's ZipInputStream does, and checks they tell the same story as
// the central directory: the same entries, in a row from the first byte,
// under the same names, with the same method, flags, CRC and sizes (in the
// data descriptor when there is one). A zip that says one thing to each
// kind of reader could otherwise pass this check and unpack differently
// on a device.
func (v *validator) stream(r io.ReaderAt, files []*zip.File) {
	byData := make(map[int64]*zip.File, len(files))
	for _, f := range files {
		if off, err := f.DataOffset(); err == nil {
			byData[off] = f
		}
	}
	var (
		off  int64
		hdr  [localLen]byte
		seen int
	)
	for seen <= len(files) {
		if _, err := r.ReadAt(hdr[:], off); err != nil || binary.LittleEndian.Uint32(hdr[:4]) != localSig {
			break
		}
		nameLen := int64(binary.LittleEndian.Uint16(hdr[26:]))
		extraLen := int64(binary.LittleEndian.Uint16(hdr[28:]))
		name := make([]byte, nameLen)
		extra := make([]byte, extraLen)
		if _, err := r.ReadAt(name, off+localLen); err != nil {
			v.problem("local header at offset %d is cut short", off)
			return
		}
		if _, err := r.ReadAt(extra, off+localLen+nameLen); err != nil {
			v.problem("local header at offset %d is cut short", off)
			return
		}
		data := off + localLen + nameLen + extraLen
		f, ok := byData[data]
		switch {
		case !ok:
			v.problem("entry %q at offset %d is missing from the central directory: streaming readers would unpack a hidden file", name, off)
			return
		case string(name) != f.Name:
			v.problem("entry %q is called %q in its local header: streaming readers (Android) would see the other name", f.Name, name)
			return
		}
		if why := localDiffers(hdr[:], extra, f); why != "" {
			v.problem("entry %q: its local header says %s: streaming readers (Android) would unpack other bytes", f.Name, why)
			return
		}
		seen++
		off = data + int64(f.CompressedSize64)
		if f.Flags&0x8 != 0 {
			n, why := v.descriptor(r, off, f)
			if why != "" {
				v.problem("entry %q: its data descriptor %s", f.Name, why)
				return
			}
			off += n
		}
	}
	switch {
	case len(files) > 0 && seen == 0:
		v.problem("the zip does not start with an entry (data before it?): streaming readers such as Android's would find nothing")
	case seen != len(files):
		v.problem("only %d of %d entries follow each other from the start of the file: streaming readers would miss the rest", seen, len(files))
	}
}

// localDiffers compares a local header (hdr, its extra field) with the
// central directory's record of the entry, returning what differs or "".
// With a data descriptor the local CRC and sizes may be zero; the
// descriptor is compared instead (see descriptor).
func localDiffers(hdr, extra []byte, f *zip.File) string {
	flags := binary.LittleEndian.Uint16(hdr[6:])
	method := binary.LittleEndian.Uint16(hdr[8:])
	crc := binary.LittleEndian.Uint32(hdr[14:])
	csize := uint64(binary.LittleEndian.Uint32(hdr[18:]))
	usize := uint64(binary.LittleEndian.Uint32(hdr[22:]))
	switch {
	case method != f.Method:
		return fmt.Sprintf("compression method %d, the central directory %d", method, f.Method)
	case flags&streamFlags != f.Flags&streamFlags:
		return fmt.Sprintf("flags %#04x, the central directory %#04x (encryption or data descriptor)", flags&streamFlags, f.Flags&streamFlags)
	}
	if flags&0x8 != 0 && crc == 0 && csize == 0 && usize == 0 {
		return "" // the values follow the data
	}
	if csize == math.MaxUint32 || usize == math.MaxUint32 {
		usize, csize = zip64Sizes(extra, usize, csize)
	}
	switch {
	case crc != f.CRC32:
		return fmt.Sprintf("CRC %08x, the central directory %08x", crc, f.CRC32)
	case csize != f.CompressedSize64:
		return fmt.Sprintf("%d compressed bytes, the central directory %d", csize, f.CompressedSize64)
	case usize != f.UncompressedSize64:
		return fmt.Sprintf("%d uncompressed bytes, the central directory %d", usize, f.UncompressedSize64)
	}
	return ""
}

// zip64Sizes reads the sizes a local header left at 0xFFFFFFFF from its
// zip64 extra field (APPNOTE 4.5.3: uncompressed, then compressed, each
// only when its header field is 0xFFFFFFFF).
func zip64Sizes(extra []byte, usize, csize uint64) (uint64, uint64) {
	for len(extra) >= 4 {
		id := binary.LittleEndian.Uint16(extra)
		n := int(binary.LittleEndian.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			break
		}
		field := extra[:n]
		extra = extra[n:]
		if id != zip64ExtraID {
			continue
		}
		if usize == math.MaxUint32 && len(field) >= 8 {
			usize, field = binary.LittleEndian.Uint64(field), field[8:]
		}
		if csize == math.MaxUint32 && len(field) >= 8 {
			csize = binary.LittleEndian.Uint64(field)
		}
	}
	return usize, csize
}

// descriptor reads the data descriptor at off (an optional signature, the
// CRC and two sizes of 4 bytes, or 8 for zip64) and returns its length and
// what in it differs from the central directory, or "".
func (v *validator) descriptor(r io.ReaderAt, off int64, f *zip.File) (int64, string) {
	wide := f.CompressedSize64 >= math.MaxUint32 || f.UncompressedSize64 >= math.MaxUint32
	var buf [24]byte
	n, _ := r.ReadAt(buf[:], off)
	b := buf[:n]
	length := int64(0)
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) == descriptorSig {
		b, length = b[4:], 4
	}
	var crc uint32
	var csize, usize uint64
	switch {
	case wide && len(b) >= 20:
		crc, csize, usize = binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint64(b[4:]), binary.LittleEndian.Uint64(b[12:])
		length += 20
	case !wide && len(b) >= 12:
		crc = binary.LittleEndian.Uint32(b)
		csize, usize = uint64(binary.LittleEndian.Uint32(b[4:])), uint64(binary.LittleEndian.Uint32(b[8:]))
		length += 12
	default:
		return 0, "is cut short"
	}
	switch {
	case crc != f.CRC32:
		return 0, fmt.Sprintf("says CRC %08x, the central directory %08x", crc, f.CRC32)
	case csize != f.CompressedSize64 || usize != f.UncompressedSize64:
		return 0, fmt.Sprintf("says %d/%d bytes, the central directory %d/%d", csize, usize, f.CompressedSize64, f.UncompressedSize64)
	}
	return length, ""
}

// contents decompresses every entry and checks its CRC and real sizes
// against the declared ones. It reads at most one byte past an entry's
// declared uncompressed size, and Validate calls it only when the declared
// sizes are within the limits, so a bomb costs no more than a zip that
// declares its size honestly.
func (v *validator) contents(r io.ReaderAt, files []*zip.File) {
	var (
		fr  io.ReadCloser
		buf = make([]byte, 32<<10)
		src = &countingReader{}
	)
	for _, f := range files {
		off, err := f.DataOffset()
		if err != nil {
			v.problem("entry %q: local header is damaged (%v)", f.Name, err)
			continue
		}
		src.reset(io.NewSectionReader(r, off, int64(f.CompressedSize64)))
		var data io.Reader = src
		if f.Method == zip.Deflate {
			if fr == nil {
				fr = flate.NewReader(src)
			} else if err := fr.(flate.Resetter).Reset(src, nil); err != nil {
				v.problem("entry %q: %v", f.Name, err)
				continue
			}
			data = fr
		}
		h := crc32.NewIEEE()
		n, err := io.CopyBuffer(h, io.LimitReader(data, int64(f.UncompressedSize64)+1), buf)
		switch {
		case err != nil:
			v.problem("entry %q: its data cannot be read (%v)", f.Name, err)
		case uint64(n) != f.UncompressedSize64:
			v.problem("entry %q unpacks to %d bytes, but declares %d", f.Name, n, f.UncompressedSize64)
		case uint64(src.n) != f.CompressedSize64:
			v.problem("entry %q has %d bytes of compressed data, but declares %d", f.Name, src.n, f.CompressedSize64)
		case h.Sum32() != f.CRC32:
			v.problem("entry %q has CRC %08x, but declares %08x (damaged or altered)", f.Name, h.Sum32(), f.CRC32)
		}
	}
}

// countingReader counts the bytes read through it. It is an io.ByteReader,
// so flate takes bytes from it one by one and never reads ahead: n is what
// the compressed stream really used.
type countingReader struct {
	br *bufio.Reader
	n  int64
}

func (c *countingReader) reset(r io.Reader) {
	if c.br == nil {
		c.br = bufio.NewReaderSize(r, 32<<10)
	} else {
		c.br.Reset(r)
	}
	c.n = 0
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.br.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// conflicts finds a file that another entry uses as a folder ("a" and
// "a/b"): it cannot be extracted.
func (v *validator) conflicts() {
	names := make([]string, 0, len(v.files))
	for f := range v.files {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		for dir := path.Dir(f); dir != "."; dir = path.Dir(dir) {
			if v.files[dir] {
				v.problem("%q is a file, but %q needs it to be a folder", dir, f)
				break
			}
		}
	}
}

// layout checks where index.html is, as the devices' unwrap rules see it
// (protocol §5.1): at the root, or inside the zip's only top-level entry
// when that entry is a folder. iOS counts every top-level entry, macOS
// litter included, so a wrapper next to __MACOSX is refused.
func (v *validator) layout() {
	if v.macLitter {
		v.warn("the zip contains __MACOSX or .DS_Store entries; devices install them as files")
	}
	if v.files["index.html"] {
		return
	}
	if v.seen["index.html"] {
		v.problem("index.html at the zip root is a folder, not a file")
		return
	}
	var wrappers []string
	for _, t := range v.top {
		if v.files[t+"/index.html"] {
			wrappers = append(wrappers, t)
		}
	}
	switch {
	case len(wrappers) == 1 && len(v.top) == 1:
		v.rep.Wrapper = wrappers[0]
	case len(wrappers) == 1:
		others := make([]string, 0, len(v.top)-1)
		for _, t := range v.top {
			if t != wrappers[0] {
				others = append(others, t)
			}
		}
		sort.Strings(others)
		v.problem("index.html is in folder %q, but the zip also has %s at the top level: iOS only unwraps a single top-level folder; zip the folder's contents instead",
			wrappers[0], quoteList(others))
	case len(wrappers) > 1:
		sort.Strings(wrappers)
		v.problem("index.html is in several top-level folders (%s): put the app's files at the zip root", quoteList(wrappers))
	default:
		v.problem("no index.html at the zip root or in a single top-level folder: zip the contents of the web build folder")
	}
}

// badName returns why a device would refuse an entry name (protocol §5.2),
// or why it may fail to write it, or "".
func badName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("name is %d bytes long, more than the limit of %d", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return "name is not valid UTF-8"
	case strings.ContainsRune(name, 0):
		return "name contains a NUL byte"
	case strings.ContainsRune(name, '\\'):
		return "name contains a backslash (devices refuse Windows paths: windows_path_fail)"
	case strings.HasPrefix(name, "/"):
		return "absolute path"
	case len(name) >= 2 && name[1] == ':' && (name[0]|0x20 >= 'a' && name[0]|0x20 <= 'z'):
		return "name starts with a drive letter (a Windows absolute path)"
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == ".." {
			return "path leaves the bundle folder (..)"
		}
		if len(seg) > MaxSegmentLen {
			return fmt.Sprintf("a path segment is %d bytes long, more than the limit of %d", len(seg), MaxSegmentLen)
		}
	}
	return ""
}

// foldClash records clean and its parent folders under their folded form
// and reports the first spelling of one that another entry spelt
// differently. A folder may repeat under the same spelling ("a/x", "a/y").
func (v *validator) foldClash(clean string) (other string, clash bool) {
	if v.folded == nil {
		v.folded = map[string]string{}
	}
	for p := clean; p != "."; p = path.Dir(p) {
		key := strings.ToLower(norm.NFC.String(p))
		seen, ok := v.folded[key]
		switch {
		case !ok:
			v.folded[key] = p
		case seen != p:
			return seen, true
		}
	}
	return "", false
}

// unixType returns the file type bits of a Unix mode in the external
// attributes, or 0 when there are none. Creator versions are ignored on
// purpose: extractors look at the bits whatever the zip claims made it.
func unixType(attrs uint32) uint32 {
	return (attrs >> 16) & uint32(0o170000)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// satAdd adds without overflowing, so a hostile size cannot wrap the total
// below the limit.
func satAdd(total int64, n uint64) int64 {
	const maxInt64 = int64(^uint64(0) >> 1)
	if n > uint64(maxInt64-total) {
		return maxInt64
	}
	return total + int64(n)
}
