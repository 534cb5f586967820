package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/internal/delta/ingest"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// FuzzContentKey checks that only "<64 lowercase hex>.zip|.apk" is taken
// as a content address.
func FuzzContentKey(f *testing.F) {
	f.Add(strings.Repeat("a", 64) + ".zip")
	f.Add(strings.Repeat("0", 64) + ".apk")
	f.Add("../" + strings.Repeat("a", 61) + ".zip")
	f.Add("stable-1.0.0.zip")
	f.Fuzz(func(t *testing.T, key string) {
		sum, ext, ok := contentKey(key)
		if !ok {
			return
		}
		if sum+ext != key || len(sum) != 64 || (ext != ".zip" && ext != ".apk") {
			t.Fatalf("contentKey(%q) = %q, %q", key, sum, ext)
		}
		if strings.Trim(sum, "0123456789abcdef") != "" {
			t.Fatalf("contentKey(%q) accepted non-hex %q", key, sum)
		}
	})
}

// FuzzNames checks that no accepted name could act as a path or carry
// bytes a log line or header would misread.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"1.2.0", "stable", "com.example.app", "../x", "a/b", "builtin", "1.0.0+build.1", "x\x00y", "UPPER", ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		safe := func(what string) {
			if strings.ContainsAny(s, "/\\\x00 \r\n%") || s == "" || s == "." || s == ".." {
				t.Fatalf("%s accepted %q", what, s)
			}
		}
		if checkVersion(s, "") == nil {
			safe("checkVersion")
			if len(s) > ota.MaxVersionLen || s == "builtin" {
				t.Fatalf("checkVersion accepted %q", s)
			}
		}
		if checkVersion(s, "web") == nil && (s[0] < '0' || s[0] > '9') {
			t.Fatalf("checkVersion(web) accepted %q", s)
		}
		if checkChannel(s) == nil {
			safe("checkChannel")
			if strings.ToLower(s) != s || len(s) > ota.MaxChannelLen || s[0] == '.' || s[0] == '-' {
				t.Fatalf("checkChannel accepted %q", s)
			}
		}
		if checkApp(s) == nil {
			safe("checkApp")
		}
		if d, err := checkDevice(s); err == nil {
			safe("checkDevice")
			if d != strings.ToLower(s) {
				t.Fatalf("checkDevice(%q) = %q, want it lowercased", s, d)
			}
		}
	})
}

// fuzzBoundary is the multipart boundary of FuzzUploadForm's bodies.
const fuzzBoundary = "XfuzzX"

// FuzzUploadForm sends arbitrary multipart bodies through the full router:
// whatever arrives, the answer is a client error or a success, never a
// server error or a panic.
func FuzzUploadForm(f *testing.F) {
	z := zipOf(map[string]string{"index.html": "x"})
	var good bytes.Buffer
	good.WriteString("--" + fuzzBoundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.zip\"\r\n\r\n")
	good.Write(z)
	good.WriteString("\r\n--" + fuzzBoundary + "\r\nContent-Disposition: form-data; name=\"version\"\r\n\r\n1.0.0\r\n--" + fuzzBoundary + "--\r\n")
	f.Add(good.Bytes())
	f.Add([]byte("--" + fuzzBoundary + "--\r\n"))
	f.Add([]byte("--" + fuzzBoundary + "\r\nContent-Disposition: form-data; name=\"version\"\r\n\r\n../../x\r\n--" + fuzzBoundary + "--\r\n"))

	// One environment for every input: a store per input would make the
	// fuzzer crawl. Inside the target only t may be used, so the request is
	// built here rather than with env.do.
	env := newTestEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/ota/admin/ota/upload", bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+fuzzBoundary)
		req.Header.Set("Authorization", "Bearer "+env.token)
		rec := env.serve(req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}

// TestSeekReaderAt covers the ReaderAt adapter used when a blob backend
// returns no *os.File.
func TestSeekReaderAt(t *testing.T) {
	data := []byte("0123456789")
	r := &seekReaderAt{rs: struct{ io.ReadSeeker }{bytes.NewReader(data)}}
	tests := []struct {
		off     int64
		n       int
		want    string
		wantEOF bool
	}{
		{0, 4, "0123", false},
		{6, 4, "6789", false},
		{8, 4, "89", true},
		{12, 1, "", true},
	}
	for _, tt := range tests {
		p := make([]byte, tt.n)
		n, err := r.ReadAt(p, tt.off)
		if string(p[:n]) != tt.want {
			t.Errorf("ReadAt(%d, %d) = %q, want %q", tt.off, tt.n, p[:n], tt.want)
		}
		if gotEOF := err != nil; gotEOF != tt.wantEOF {
			t.Errorf("ReadAt(%d, %d) err = %v, want error %v", tt.off, tt.n, err, tt.wantEOF)
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ReadAt(%d, %d) err = %v, want EOF", tt.off, tt.n, err)
		}
	}
}

// FuzzManifestPart runs an upload's manifest part through what otad does
// with it before the release (decode, the plugin's rules, resolving the
// files against what the app holds) and checks what it lets through: one
// file per target, every name the plugin accepts raw and with ".br", an
// index.html, and every file resolved to a stored form of its size.
func FuzzManifestPart(f *testing.F) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, s := range []string{
		`[{"path":"index.html","sha256":"` + a + `","size":3}]`,
		`[{"path":"index.html","sha256":"` + a + `","size":3},{"path":"x/y.js","sha256":"` + b + `","size":9000}]`,
		`[{"path":"index.html","sha256":"` + a + `","size":3},{"path":"../x","sha256":"` + b + `","size":1}]`,
		`[{"path":"INDEX.html","sha256":"` + a + `","size":3},{"path":"index.html","sha256":"` + a + `","size":3}]`,
		`[{"path":"index.html","sha256":"` + a + `","size":3,"known":true}]`,
		`[{"path":"d.br","sha256":"` + b + `","size":9000},{"path":"index.html","sha256":"` + a + `","size":3}]`,
		`null`, `{}`, `[]`, `[{"path":"index.html"}] x`,
	} {
		f.Add([]byte(s))
	}
	recs := map[string]store.DeltaFile{
		a: {SHA256: a, Size: 3},
		b: {SHA256: b, Size: 9000, Br: strings.Repeat("c", 64), BrSize: 100},
	}
	f.Fuzz(func(t *testing.T, part []byte) {
		files, err := decodeManifest(part)
		if err != nil {
			return
		}
		if delta.CheckManifest(files, false) != nil {
			return
		}
		for i := range files {
			files[i].Known = false
		}
		missing, err := ingest.Resolve(files, recs, false)
		if err != nil || len(missing) > 0 {
			return
		}
		targets := map[string]bool{}
		index := false
		for _, mf := range files {
			if delta.PluginPathProblem(mf.Path) != "" || delta.PluginPathProblem(mf.Path+".br") != "" {
				t.Fatalf("%q let through, the plugin refuses it", mf.Path)
			}
			low := strings.ToLower(mf.Path)
			if targets[low] {
				t.Fatalf("%q let through twice (or in another case)", mf.Path)
			}
			targets[low] = true
			index = index || mf.Path == "index.html"
			r := recs[mf.SHA256]
			if mf.Raw != mf.SHA256 || mf.RawSize != r.Size || mf.Size != r.Size || mf.Br != r.Br {
				t.Fatalf("%q resolved to %+v; the record is %+v", mf.Path, mf, r)
			}
			if strings.HasSuffix(mf.Path, ".br") && mf.Br == "" {
				t.Fatalf("%q let through without its Brotli form", mf.Path)
			}
		}
		if !index {
			t.Fatal("a manifest without index.html let through")
		}
	})
}
