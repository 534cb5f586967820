package bundle

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"path"
	"strings"
	"testing"
)

// zent is one entry of a crafted zip.
type zent struct {
	name   string
	body   string
	mode   fs.FileMode // 0: regular 0644 (or a folder when name ends in "/")
	method uint16
}

func file(name string) zent {
	return zent{name: name, body: "<html></html>" + name, method: zip.Deflate}
}

// craft builds a zip with archive/zip, which writes whatever names it is
// given: that is how hostile zips are made.
func craft(t testing.TB, entries ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		fh := &zip.FileHeader{Name: e.name, Method: e.method}
		switch {
		case e.mode != 0:
			fh.SetMode(e.mode)
		case strings.HasSuffix(e.name, "/"):
			fh.SetMode(fs.ModeDir | 0o755)
		default:
			fh.SetMode(0o644)
		}
		var w io.Writer
		var err error
		if e.method != zip.Store && e.method != zip.Deflate {
			// archive/zip cannot compress with other methods: write the
			// body raw under the foreign method number.
			fh.UncompressedSize64, fh.CompressedSize64 = uint64(len(e.body)), uint64(len(e.body))
			fh.CRC32 = crc32.ChecksumIEEE([]byte(e.body))
			w, err = zw.CreateRaw(fh)
		} else {
			w, err = zw.CreateHeader(fh)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func validate(data []byte, lim Limits) (Report, error) {
	return Validate(bytes.NewReader(data), int64(len(data)), lim)
}

func TestValidate(t *testing.T) {
	bomb := zent{name: "bomb.js", body: strings.Repeat("\x00", 4<<20), method: zip.Deflate}
	good := craft(t, file("index.html"), file("assets/app.js"))

	tests := []struct {
		name        string
		data        []byte
		lim         Limits
		wantProblem string // "" means valid
		wantWrapper string
		wantWarning string
	}{
		{name: "files at the root", data: good},
		{name: "with folder entries", data: craft(t, zent{name: "assets/"}, file("assets/app.js"), file("index.html"))},
		{name: "dot slash names", data: craft(t, file("./index.html"), file("./a.js"))},
		{name: "wrapper folder", data: craft(t, zent{name: "dist/"}, file("dist/index.html"), file("dist/js/app.js")), wantWrapper: "dist"},
		{name: "wrapper without folder entry", data: craft(t, file("www/index.html")), wantWrapper: "www"},
		{name: "macOS litter warns", data: craft(t, file("index.html"), file("__MACOSX/._index.html"), file("a/.DS_Store")),
			wantWarning: "__MACOSX"},
		{name: "stored with data descriptor warns", data: craft(t, file("index.html"), zent{name: "x.png", body: "png", method: zip.Store}),
			wantWarning: "data descriptor"},

		{name: "absolute path", data: craft(t, file("index.html"), file("/etc/passwd")), wantProblem: "absolute path"},
		{name: "dot dot", data: craft(t, file("index.html"), file("../x")), wantProblem: "leaves the bundle"},
		{name: "dot dot inside", data: craft(t, file("index.html"), file("a/../../x")), wantProblem: "leaves the bundle"},
		{name: "backslash", data: craft(t, file("index.html"), file(`a\b.js`)), wantProblem: "backslash"},
		{name: "backslash traversal", data: craft(t, file("index.html"), file(`..\..\x`)), wantProblem: "backslash"},
		{name: "NUL", data: craft(t, file("index.html"), file("a\x00.js")), wantProblem: "NUL"},
		{name: "empty name", data: craft(t, file("index.html"), file("")), wantProblem: "empty name"},
		{name: "symlink", data: craft(t, file("index.html"), zent{name: "l", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777}),
			wantProblem: "symlink"},
		{name: "device file", data: craft(t, file("index.html"), zent{name: "d", mode: fs.ModeDevice | 0o644}), wantProblem: "not a regular file"},
		{name: "duplicate", data: craft(t, file("index.html"), file("a.js"), file("a.js")), wantProblem: "twice"},
		{name: "duplicate after cleaning", data: craft(t, file("index.html"), file("a.js"), file("./a.js")), wantProblem: "twice"},
		{name: "file and folder clash", data: craft(t, file("index.html"), file("a"), file("a/b.js")), wantProblem: "needs it to be a folder"},
		{name: "no index", data: craft(t, file("main.js")), wantProblem: "no index.html"},
		{name: "index is a folder", data: craft(t, zent{name: "index.html/"}, file("index.html/x")), wantProblem: "is a folder"},
		{name: "index too deep", data: craft(t, file("a/b/index.html")), wantProblem: "no index.html"},
		{name: "two top folders", data: craft(t, file("dist/index.html"), file("other/app.js")), wantProblem: "also has \"other\""},
		{name: "two wrappers", data: craft(t, file("a/index.html"), file("b/index.html")), wantProblem: "several top-level folders"},
		{name: "wrapper plus top-level file", data: craft(t, file("dist/index.html"), file("readme.txt")), wantProblem: "iOS only unwraps"},
		{name: "wrapper plus __MACOSX", data: craft(t, file("dist/index.html"), file("__MACOSX/dist/._index.html")), wantProblem: "iOS only unwraps"},
		{name: "bomb by ratio", data: craft(t, file("index.html"), bomb), wantProblem: "ratio"},
		{name: "bomb allowed by a looser ratio", data: craft(t, file("index.html"), bomb), lim: Limits{MaxRatio: 1e6}},
		{name: "too many entries", data: craft(t, file("index.html"), file("a"), file("b"), file("c")), lim: Limits{MaxEntries: 3},
			wantProblem: "more than the limit of 3"},
		{name: "too big", data: good, lim: Limits{MaxUncompressed: 20}, wantProblem: "unpack to"},
		{name: "unsupported method", data: craft(t, file("index.html"), zent{name: "a.js", body: "x", method: 12}), wantProblem: "method 12"},
		{name: "encrypted", data: withFlag(t, good, 0x1), wantProblem: "encrypted"},
		{name: "truncated", data: good[:len(good)-10], wantProblem: "not a zip"},
		{name: "cut in the middle", data: cutMiddle(good), wantProblem: "entry"},
		{name: "local name differs", data: renameLocal(craft(t, file("index.html"), file("ab/c.js")), "ab/c.js", "../c.js"),
			wantProblem: "in its local header"},
		{name: "data before the first entry", data: append([]byte("#!/bin/sh\nexit 0\n"), good...), wantProblem: "does not start with an entry"},
		{name: "not a zip", data: []byte("PK\x03\x04 this is not really a zip"), wantProblem: "not a zip"},
		{name: "empty file", data: nil, wantProblem: "not a zip"},
		{name: "empty zip", data: craft(t), wantProblem: "no index.html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := validate(tt.data, tt.lim)
			if tt.wantProblem == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want valid", err)
				}
				if rep.Wrapper != tt.wantWrapper {
					t.Errorf("Wrapper = %q; want %q", rep.Wrapper, tt.wantWrapper)
				}
				warnings := strings.Join(rep.Warnings, "\n")
				if tt.wantWarning == "" && warnings != "" || !strings.Contains(warnings, tt.wantWarning) {
					t.Errorf("Warnings = %q; want %q", rep.Warnings, tt.wantWarning)
				}
				return
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, ErrInvalidZip) {
				t.Fatalf("Validate() = %v; want ErrInvalidZip", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Validate() error %T has no problems", err)
			}
			if !strings.Contains(err.Error(), tt.wantProblem) {
				t.Errorf("Validate() = %v; want a problem containing %q", err, tt.wantProblem)
			}
		})
	}
}

func TestValidateReport(t *testing.T) {
	data := craft(t, zent{name: "dist/"}, file("dist/index.html"), file("dist/a.js"))
	rep, err := validate(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(len("<html></html>dist/index.html") + len("<html></html>dist/a.js"))
	if rep.Entries != 3 || rep.Uncompressed != want || rep.Wrapper != "dist" {
		t.Errorf("Report = %+v; want 3 entries, %d bytes, wrapper dist", rep, want)
	}
}

func TestValidateListsAllProblems(t *testing.T) {
	var entries []zent
	for i := range 50 {
		entries = append(entries, file("../"+strings.Repeat("x", i+1)))
	}
	_, err := validate(craft(t, entries...), Limits{})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate() = %v; want a ValidationError", err)
	}
	if len(ve.Problems) != maxProblems+1 || !strings.Contains(ve.Problems[maxProblems], "more problems") {
		t.Errorf("got %d problems, last %q; want %d and a summary", len(ve.Problems), ve.Problems[len(ve.Problems)-1], maxProblems+1)
	}
}

// withFlag sets a general purpose flag on every header, local and central.
func withFlag(t *testing.T, data []byte, flag uint16) []byte {
	t.Helper()
	out := bytes.Clone(data)
	for _, sig := range []struct {
		magic string
		off   int
	}{{"PK\x03\x04", 6}, {"PK\x01\x02", 8}} {
		for i := 0; ; {
			j := bytes.Index(out[i:], []byte(sig.magic))
			if j < 0 {
				break
			}
			out[i+j+sig.off] |= byte(flag)
			out[i+j+sig.off+1] |= byte(flag >> 8)
			i += j + 4
		}
	}
	return out
}

// renameLocal changes a name in the first (local) header that holds it and
// leaves the central directory alone.
func renameLocal(data []byte, from, to string) []byte {
	out := bytes.Clone(data)
	i := bytes.Index(out, []byte(from))
	copy(out[i:], to)
	return out
}

// cutMiddle removes bytes from the file data but keeps the central
// directory, so offsets point at the wrong place.
func cutMiddle(data []byte) []byte {
	cd := bytes.Index(data, []byte("PK\x01\x02"))
	return append(bytes.Clone(data[:cd/2]), data[cd/2+5:]...)
}

func FuzzValidate(f *testing.F) {
	f.Add(craft(f, file("index.html"), file("assets/app.js")))
	f.Add(craft(f, file("dist/index.html")))
	f.Add(craft(f, file("../x"), zent{name: "l", body: "x", mode: fs.ModeSymlink | 0o777}))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := validate(data, Limits{})
		if err != nil {
			if !errors.Is(err, ErrInvalidZip) {
				t.Fatalf("Validate error %v is not ErrInvalidZip", err)
			}
			return
		}
		// Anything accepted must really be readable and hold index.html.
		zr, zerr := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if zerr != nil && !errors.Is(zerr, zip.ErrInsecurePath) {
			t.Fatalf("Validate accepted a zip archive/zip cannot open: %v", zerr)
		}
		want := "index.html"
		if rep.Wrapper != "" {
			want = rep.Wrapper + "/index.html"
		}
		found := false
		for _, f := range zr.File {
			if path.Clean(f.Name) == want && !strings.HasSuffix(f.Name, "/") {
				found = true
			}
		}
		if !found {
			t.Fatalf("Validate accepted a zip without %s (report %+v)", want, rep)
		}
	})
}

// rawZip builds a zip whose entries carry their CRC and sizes in the local
// header (no data descriptor), as most zip tools write them, so a test can
// change one header and not the other.
func rawZip(t testing.TB, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range names {
		body := []byte("<html></html>" + strings.Repeat(name, 20))
		var comp bytes.Buffer
		fw, err := flate.NewWriter(&comp, flate.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(body)
		fw.Close()
		fh := &zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(body),
			CompressedSize64: uint64(comp.Len()), UncompressedSize64: uint64(len(body))}
		fh.SetMode(0o644)
		w, err := zw.CreateRaw(fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// headerOf returns the offset of the local ("PK\x03\x04", name at 30) or
// central ("PK\x01\x02", name at 46) header of the entry called name.
func headerOf(data []byte, magic string, name string) int {
	nameAt := 30
	if magic == "PK\x01\x02" {
		nameAt = 46
	}
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(magic))
		if j < 0 {
			panic("no header of " + name)
		}
		at := i + j
		if bytes.HasPrefix(data[at+nameAt:], []byte(name)) {
			return at
		}
		i = at + 4
	}
}

// patch writes v (little-endian, 2 or 4 bytes) at off in the header of
// name and returns the changed copy.
func patch(data []byte, magic, name string, off int, v uint32, size int) []byte {
	out := bytes.Clone(data)
	at := headerOf(out, magic, name) + off
	for k := range size {
		out[at+k] = byte(v >> (8 * k))
	}
	return out
}

// Local header offsets: flags 6, method 8, CRC 14, compressed size 18,
// uncompressed size 22. Central: flags 8, method 10, CRC 16, sizes 20, 24.
const (
	local, central = "PK\x03\x04", "PK\x01\x02"
)

// TestValidateHeadersAgree covers zips whose local headers disagree with
// the central directory, or whose data disagrees with both: Android's
// streaming reader and a directory reader would unpack different bytes.
func TestValidateHeadersAgree(t *testing.T) {
	good := rawZip(t, "index.html", "app.js")
	crcOf := func(data []byte, magic string) uint32 {
		at := headerOf(data, magic, "app.js") + map[string]int{local: 14, central: 16}[magic]
		return uint32(data[at]) | uint32(data[at+1])<<8 | uint32(data[at+2])<<16 | uint32(data[at+3])<<24
	}
	// Same wrong CRC in both headers: only reading the data finds it.
	badCRC := crcOf(good, local) ^ 0xdeadbeef
	bothCRC := patch(patch(good, local, "app.js", 14, badCRC, 4), central, "app.js", 16, badCRC, 4)
	// Both headers claim one byte more than the data unpacks to.
	usize := func(data []byte) uint32 {
		at := headerOf(data, central, "app.js") + 24
		return uint32(data[at]) | uint32(data[at+1])<<8 | uint32(data[at+2])<<16 | uint32(data[at+3])<<24
	}(good)
	bothSize := patch(patch(good, local, "app.js", 22, usize+1, 4), central, "app.js", 24, usize+1, 4)
	// A data descriptor (archive/zip's streaming writer) with another CRC.
	withDesc := craft(t, file("index.html"), file("app.js"))
	desc := bytes.LastIndex(withDesc[:headerOf(withDesc, central, "index.html")], []byte("PK\x07\x08"))
	badDesc := bytes.Clone(withDesc)
	badDesc[desc+4] ^= 0xff

	tests := []struct {
		name, want string
		data       []byte
	}{
		{"method", "compression method 0", patch(good, local, "app.js", 8, uint32(zip.Store), 2)},
		{"encryption flag", "flags", patch(good, local, "app.js", 6, 0x1, 2)},
		{"CRC", "CRC", patch(good, local, "app.js", 14, crcOf(good, local)^1, 4)},
		{"compressed size", "compressed bytes", patch(good, local, "app.js", 18, 3, 4)},
		{"uncompressed size", "uncompressed bytes", patch(good, local, "app.js", 22, 3, 4)},
		{"data descriptor", "data descriptor says CRC", badDesc},
		{"CRC of the data", "has CRC", bothCRC},
		{"real size", "unpacks to", bothSize},
	}
	if _, err := validate(good, Limits{}); err != nil {
		t.Fatalf("the unchanged zip is refused: %v", err)
	}
	if _, err := validate(withDesc, Limits{}); err != nil {
		t.Fatalf("the unchanged zip with data descriptors is refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := validate(tt.data, Limits{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v; want a problem containing %q", err, tt.want)
			}
		})
	}
}

// TestValidateNames covers names devices may fail to write although they
// are not zip-slip: case and normalisation clashes, invalid UTF-8, drive
// letters and overlong names.
func TestValidateNames(t *testing.T) {
	tests := []struct {
		name, want string
		entries    []zent
	}{
		{"case", "differ only in case", []zent{file("index.html"), file("App.js"), file("app.js")}},
		{"case of a folder", "differ only in case", []zent{file("index.html"), file("Assets/a.js"), file("assets/b.js")}},
		{"normalisation", "Unicode normalisation", []zent{file("index.html"), file("caf\u00e9.js"), file("cafe\u0301.js")}},
		{"invalid UTF-8", "not valid UTF-8", []zent{file("index.html"), file("a\xff.js")}},
		{"drive letter", "drive letter", []zent{file("index.html"), file("C:/Windows/x.js")}},
		{"drive letter without slash", "drive letter", []zent{file("index.html"), file("c:x.js")}},
		{"thousands of bytes", "more than the limit of 1024", []zent{file("index.html"), file(strings.Repeat("a/", 1500) + "x.js")}},
		{"long segment", "segment is 300 bytes", []zent{file("index.html"), file(strings.Repeat("a", 297) + ".js")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := validate(craft(t, tt.entries...), Limits{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v; want a problem containing %q", err, tt.want)
			}
		})
	}
	// The same folder under one spelling, and names that only look alike.
	ok := craft(t, file("index.html"), file("a/x.js"), file("a/y.js"), file("ab.js"), file("caf\u00e9.js"), file(strings.Repeat("b", 255)))
	if _, err := validate(ok, Limits{}); err != nil {
		t.Errorf("Validate() = %v; want valid", err)
	}
}
