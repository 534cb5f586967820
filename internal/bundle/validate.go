package bundle

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"sort"
	"strings"
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
// or in exactly one wrapper folder. It reads only the central directory and
// the local headers, never decompresses, and so cannot be bombed; sizes are
// the declared ones. The local headers must match the central directory,
// since Android reads the zip as a stream and iOS by its directory.
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
)

// stream reads the local headers front to back, as a streaming reader such
// as Java's ZipInputStream does, and checks they tell the same story as
// the central directory: the same entries, in a row from the first byte,
// under the same names. A zip that says one thing to each kind of reader
// could otherwise pass this check and unpack differently on a device.
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
		flags := binary.LittleEndian.Uint16(hdr[6:])
		nameLen := int64(binary.LittleEndian.Uint16(hdr[26:]))
		extraLen := int64(binary.LittleEndian.Uint16(hdr[28:]))
		name := make([]byte, nameLen)
		if _, err := r.ReadAt(name, off+localLen); err != nil {
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
		seen++
		off = data + int64(f.CompressedSize64)
		if flags&0x8 != 0 {
			off += v.descriptorLen(r, off, f)
		}
	}
	switch {
	case len(files) > 0 && seen == 0:
		v.problem("the zip does not start with an entry (data before it?): streaming readers such as Android's would find nothing")
	case seen != len(files):
		v.problem("only %d of %d entries follow each other from the start of the file: streaming readers would miss the rest", seen, len(files))
	}
}

// descriptorLen is the size of the data descriptor at off: an optional
// signature, the CRC and two sizes of 4 bytes (8 for zip64).
func (v *validator) descriptorLen(r io.ReaderAt, off int64, f *zip.File) int64 {
	n := int64(12)
	if f.CompressedSize64 >= math.MaxUint32 || f.UncompressedSize64 >= math.MaxUint32 {
		n = 20
	}
	var sig [4]byte
	if _, err := r.ReadAt(sig[:], off); err == nil && binary.LittleEndian.Uint32(sig[:]) == descriptorSig {
		n += 4
	}
	return n
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
// or "".
func badName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case strings.ContainsRune(name, 0):
		return "name contains a NUL byte"
	case strings.ContainsRune(name, '\\'):
		return "name contains a backslash (devices refuse Windows paths: windows_path_fail)"
	case strings.HasPrefix(name, "/"):
		return "absolute path"
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == ".." {
			return "path leaves the bundle folder (..)"
		}
	}
	return ""
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
