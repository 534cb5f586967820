package bolt

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// stateBundleCases are records as otad writes them and as a damaged or
// hand-edited file may hold them.
var stateBundleCases = []string{
	mustJSON(bundleRecord{Version: "1.0.0", Kind: ota.KindWeb, SHA256: strings.Repeat("a", 64), Size: 42, UploadedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}),
	mustJSON(bundleRecord{Version: "2.0.0-beta.1", Kind: ota.KindWeb, SHA256: "b", Size: 1, UploadedBy: "ci", Notes: `say "hi" {]`,
		MinNative: "1.0", MaxNative: "2", Native: &ota.NativeFingerprint{}, Deleted: true}),
	mustJSON(bundleRecord{Version: "ünï", Kind: ota.KindWeb}),
	`{}`,
	`{"version":"1\u0030"}`,
	`{"Version":"x","version":"y"}`,
	`{"VERSION":"x"}`,
	`{"version":null,"size":1e3}`,
	`{"size":-0}`,
	`{"size":007}`,
	`{"deleted":true,"deleted":false}`,
	`{"version":"1", "kind":"web"}`,
	`{"notes":[1,{"a":"}"}],"version":"3"}`,
	`{"version":"1"`,
	`not json`,
	`{"version":1}`,
	mustJSON(bundleRecord{Version: "3.0.0", Kind: ota.KindWeb, SHA256: "c", Size: 7,
		Encryption: &encryptionRecord{SessionKey: "aXY=:a2V5", EncryptedChecksum: strings.Repeat("0f", 256), KeyID: "MIIBCgKCAQEAqJikYizo"}}),
	`{"encryption":{}}`,
	`{"encryption":null}`,
	`{"encryption":{"key_id":"a"},"encryption":{"session_key":"b"}}`,
	`{"encryption":{"key_id":"a","key_id":"b"}}`,
	`{"encryption":{"Key_ID":"a"}}`,
	`{"encryption":{"key_id":null}}`,
	`{"encryption":{"key_id":"a","other":1}}`,
	`{"encryption":{"key_id":"a"},"ENCRYPTION":{"session_key":"b"}}`,
	`{"encryption":[]}`,
	mustJSON(bundleRecord{Version: "4.0.0", Kind: ota.KindWeb, SHA256: "d", Size: 8, Signature: "c2lnbmF0dXJl+/=="}),
	`{"signature":null}`,
	`{"signature":"a","signature":"b"}`,
	`{"Signature":"a"}`,
	`{"signature":"a\u002bb"}`,
	`{"signature":7}`,
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// checkStateBundle fails when the fast decoder disagrees with
// encoding/json on a record encoding/json accepts.
func checkStateBundle(t *testing.T, raw string) {
	t.Helper()
	var want stateBundle
	wantErr := json.Unmarshal([]byte(raw), &want)
	var got stateBundle
	err := decodeStateBundle([]byte(raw), &got)
	if wantErr != nil {
		return // the fast path need not validate fields it skips
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decodeStateBundle(%s) = %+v, %v; encoding/json gives %+v", raw, got, err, want)
	}
}

func TestDecodeStateBundle(t *testing.T) {
	for _, raw := range stateBundleCases {
		checkStateBundle(t, raw)
	}
	// The common record must take the fast path, or start-up is slow again.
	var r stateBundle
	if err := fastStateBundle([]byte(stateBundleCases[0]), &r); err != nil || r.Version != "1.0.0" || r.Size != 42 {
		t.Errorf("fast path on a plain record = %+v, %v", r, err)
	}
	// So must an encrypted one.
	var e stateBundle
	if err := fastStateBundle([]byte(stateBundleCases[16]), &e); err != nil || e.Encryption == nil || e.Encryption.KeyID != "MIIBCgKCAQEAqJikYizo" {
		t.Errorf("fast path on an encrypted record = %+v, %v", e, err)
	}
	// And a signed one.
	var sg stateBundle
	if err := fastStateBundle([]byte(stateBundleCases[26]), &sg); err != nil || sg.Signature != "c2lnbmF0dXJl+/==" {
		t.Errorf("fast path on a signed record = %+v, %v", sg, err)
	}
	if err := decodeStateBundle([]byte(`{"version":1}`), &r); err == nil {
		t.Error("a number for the version decoded without error")
	}
}

func FuzzDecodeStateBundle(f *testing.F) {
	for _, raw := range stateBundleCases {
		f.Add(raw)
	}
	f.Fuzz(checkStateBundle)
}

func BenchmarkDecodeStateBundle(b *testing.B) {
	raw := []byte(stateBundleCases[0])
	for b.Loop() {
		var r stateBundle
		if err := decodeStateBundle(raw, &r); err != nil {
			b.Fatal(err)
		}
	}
}
