package ota_test

import (
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

// TestCapawesomeManifest pins the manifest file's bytes: otactl signs
// them and otad serves them, so both must make the very same ones.
func TestCapawesomeManifest(t *testing.T) {
	files := []ota.ManifestFile{
		{Path: "index.html", SHA256: "aa", Size: 3, Raw: "aa", Br: "bb", Signature: "c2ln", Known: true},
		{Path: ota.CapawesomeManifestFile, SHA256: "cc", Size: 9},
		{Path: "assets/a b+c.js", SHA256: "dd", Size: 0},
	}
	want := `[{"href":"index.html","checksum":"aa","sizeInBytes":3},{"href":"assets/a b+c.js","checksum":"dd","sizeInBytes":0}]`
	if got := string(ota.CapawesomeManifest(files)); got != want {
		t.Errorf("CapawesomeManifest = %s\nwant %s", got, want)
	}
	if got := string(ota.CapawesomeManifest(nil)); got != "[]" {
		t.Errorf("no files = %s, want []", got)
	}
}
