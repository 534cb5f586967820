package update

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/pkg/ota"
)

// FuzzManifestEntries builds the manifests of every file list the upload
// check accepts and holds them to what the plugin needs: one entry per
// file, names the plugin accepts that land on the file's path, ".br"
// exactly when the Brotli form is sent (always for a file whose own name
// ends in .br), the right hash, and JSON that decodes back to the same.
func FuzzManifestEntries(f *testing.F) {
	seed := func(files []ota.ManifestFile) {
		b, _ := json.Marshal(files)
		f.Add(b, false)
		f.Add(b, true)
	}
	seed(deltaState().Manifests[0].Files)
	seed([]ota.ManifestFile{
		{Path: "index.html", SHA256: sha('a'), Size: 1},
		{Path: "a.br", SHA256: sha('b'), Size: 9000, Br: sha('c'), BrSize: 10, Known: true},
		{Path: "dir/ünï code.js", SHA256: sha('d'), Size: 9000, Br: sha('e'), BrSize: 10},
		{Path: "<script>&\"'.html", SHA256: sha('f'), Size: 3},
	})
	seed([]ota.ManifestFile{{Path: "index.html", SHA256: sha('a')}, {Path: "x.br", SHA256: sha('b')}})
	f.Fuzz(func(t *testing.T, raw []byte, encrypted bool) {
		var files, sent []ota.ManifestFile
		if json.Unmarshal(raw, &files) != nil || json.Unmarshal(raw, &sent) != nil {
			return
		}
		// What the upload check sees: for a plain release only paths,
		// hashes and sizes (otad fills in the forms).
		for i := range sent {
			if !encrypted {
				sent[i].Raw, sent[i].Br, sent[i].FileHash = "", "", ""
			} else if sent[i].FileHash == "" {
				sent[i].FileHash = strings.Repeat("0f", 256)
			}
		}
		if delta.CheckManifest(sent, encrypted) != nil {
			return
		}
		// What otad stores: a plain file's raw form is its content
		// address; a Brotli form when one was uploaded.
		for i := range files {
			files[i].FileHash = sent[i].FileHash
			if !encrypted {
				files[i].Raw, files[i].RawSize = files[i].SHA256, files[i].Size
				if !delta.IsHexSHA256(files[i].Br) {
					files[i].Br, files[i].BrSize = "", 0
				}
			}
		}
		mustBrMissing := false
		for _, mf := range files {
			if strings.HasSuffix(mf.Path, ".br") && mf.Br == "" {
				mustBrMissing = true
			}
		}
		for _, p := range []Platform{PlatformAndroid, PlatformIOS} {
			entries, sizes, _, ok := ManifestEntries(appID, files, p, testFileURL)
			if !ok {
				if !mustBrMissing {
					t.Fatalf("%s manifest refused though every .br file has its Brotli form", platformName(p))
				}
				continue
			}
			if mustBrMissing {
				t.Fatalf("%s manifest lists a .br file without its Brotli form", platformName(p))
			}
			if len(entries) != len(files) || len(sizes) != len(files) {
				t.Fatalf("%d entries, %d sizes for %d files", len(entries), len(sizes), len(files))
			}
			targets := map[string]bool{}
			for i, e := range entries {
				mf := files[i]
				if bad := delta.PluginPathProblem(e.FileName); bad != "" {
					t.Fatalf("entry %q: the plugin refuses it: %s", e.FileName, bad)
				}
				target := strings.TrimSuffix(e.FileName, ".br")
				if target != mf.Path || targets[target] {
					t.Fatalf("entry %q lands on %q (file %q, seen %v)", e.FileName, target, mf.Path, targets[target])
				}
				targets[target] = true
				isBr := strings.HasSuffix(e.FileName, ".br") && e.FileName != mf.Path
				wantBr := mf.Br != "" && (p == PlatformAndroid || !mf.Known || strings.HasSuffix(mf.Path, ".br"))
				if isBr != wantBr {
					t.Fatalf("%s entry %q: Brotli %v, want %v (known %v)", platformName(p), e.FileName, isBr, wantBr, mf.Known)
				}
				wantURL, wantSize := fileURLOf(mf.Raw), mf.RawSize
				if isBr {
					wantURL, wantSize = fileURLOf(mf.Br), mf.BrSize
				}
				if e.DownloadURL != wantURL || sizes[i] != wantSize {
					t.Fatalf("entry %q: url %s size %d; want %s %d", e.FileName, e.DownloadURL, sizes[i], wantURL, wantSize)
				}
				wantHash := mf.SHA256
				if encrypted {
					wantHash = mf.FileHash
				}
				if e.FileHash != wantHash {
					t.Fatalf("entry %q: hash %q; want %q", e.FileName, e.FileHash, wantHash)
				}
			}
			b, err := json.Marshal(entries)
			if err != nil {
				t.Fatal(err)
			}
			var back []ota.ManifestEntry
			if err := json.Unmarshal(b, &back); err != nil || len(back) != len(entries) {
				t.Fatalf("entries do not decode back: %v", err)
			}
			for i := range back {
				if back[i] != entries[i] {
					t.Fatalf("entry %d decodes to %+v; was %+v", i, back[i], entries[i])
				}
			}
		}
	})
}
