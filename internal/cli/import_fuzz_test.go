package cli

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzImportHistory feeds history exports (outside input) to the parser:
// it must never panic, and every row it returns must be usable.
func FuzzImportHistory(f *testing.F) {
	f.Add([]byte("channel,version,filename,uploaded_at,checksum\nstable,1.0.0,stable-1.0.0.zip,2024-01-01 10:00:00,abc\n"))
	f.Add([]byte(`[{"channel":"beta","version":"1.0.0","uploaded_at":"2024-01-01T00:00:00Z"}]`))
	f.Add([]byte(`[{"results":[{"channel":"beta","version":2,"uploaded_at":"1700000000"}]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := parseHistory(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Channel == "" || r.Version == "" || r.Filename == "" || r.UploadedAt.IsZero() {
				t.Fatalf("unusable row %+v", r)
			}
			if strings.ContainsAny(r.Filename, `/\`) {
				t.Fatalf("row names a path: %q", r.Filename)
			}
		}
	})
}
