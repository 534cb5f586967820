package update

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

const (
	encKeyID   = "MIIBCgKCAQEAqJikYizo"
	otherKeyID = "MIIBCgKCAQEAxog7suMG"
	sessionKey = "MDEyMzQ1Njc4OWFiY2RlZg==:QUJD"
)

var encChecksum = strings.Repeat("0f", 256)

// encryptedState is fixtureState with production's 1.0.1 encrypted and
// beta's 1.1.0 plain.
func encryptedState() store.State {
	st := fixtureState()
	for i := range st.Bundles {
		if st.Bundles[i].Version == "1.0.1" {
			st.Bundles[i].Encryption = &ota.BundleEncryption{SessionKey: sessionKey, EncryptedChecksum: encChecksum, KeyID: encKeyID}
		}
	}
	channelOf(&st, "production").ActiveBundle = nil // found through the bundle list
	return st
}

func TestDecideEncryption(t *testing.T) {
	snap := Build(encryptedState(), testURL)
	encSuccess := ota.UpdateResponse{Version: "1.0.1", URL: testURL(&ota.Bundle{SHA256: sha('1')}).URL, Checksum: encChecksum, SessionKey: ptr(sessionKey)}
	plainSuccess := ota.UpdateResponse{Version: "1.1.0", URL: testURL(&ota.Bundle{SHA256: sha('2')}).URL, Checksum: sha('2'), SessionKey: ptr("")}
	blocked := func(code, version string) ota.UpdateResponse {
		return ota.UpdateResponse{Error: code, Kind: ota.KindBlocked, Version: version, Old: "1.0.0"}
	}
	tests := []struct {
		name string
		mod  func(*ota.UpdateRequest)
		want ota.UpdateResponse
	}{
		{"matching key", func(r *ota.UpdateRequest) { r.KeyID = encKeyID }, encSuccess},
		{"legacy 4-character key id", func(r *ota.UpdateRequest) { r.KeyID = "MIIB"; r.PluginVersion = "8.40.0" }, encSuccess},
		{"other key", func(r *ota.UpdateRequest) { r.KeyID = otherKeyID },
			ota.UpdateResponse{Error: ota.UpdKeyIDMismatch, Kind: ota.KindBlocked, DeviceKeyID: otherKeyID, BundleKeyID: encKeyID}},
		{"key, plain bundle", func(r *ota.UpdateRequest) { r.KeyID = encKeyID; r.DefaultChannel = "beta" }, blocked(ota.UpdBundleNotEncrypted, "1.1.0")},
		{"no key, plain bundle", func(r *ota.UpdateRequest) { r.DefaultChannel = "beta" }, plainSuccess},
		{"no key, v8 plugin", nil, blocked(ota.UpdEncryptionKeyRequired, "1.0.1")},
		{"no key, 7.50 back-port", func(r *ota.UpdateRequest) { r.PluginVersion = "7.50.1" }, blocked(ota.UpdEncryptionKeyRequired, "1.0.1")},
		{"no key, plugin before key_id", func(r *ota.UpdateRequest) { r.PluginVersion = "8.1.9" }, encSuccess},
		{"no key, 6.x plugin", func(r *ota.UpdateRequest) { r.PluginVersion = "6.30.0" }, encSuccess},
		{"no key, unreadable plugin version", func(r *ota.UpdateRequest) { r.PluginVersion = "" }, encSuccess},
		{"other key, already on the version", func(r *ota.UpdateRequest) { r.KeyID = otherKeyID; r.VersionName = "1.0.1" },
			ota.UpdateResponse{Error: ota.UpdNoNewVersion, Kind: ota.KindUpToDate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := baseRequest()
			if tt.mod != nil {
				tt.mod(&req)
			}
			d := Explain(snap, &req, "")
			got := d.Response
			if got.Error != "" && got.Message == "" {
				t.Errorf("refusal without a message: %+v", got)
			}
			got.Message = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("response = %s\nwant       %s\nsteps: %q", mustJSON(got), mustJSON(tt.want), d.Steps)
			}
			// Decide gives the same answer, and an offer's prepared body is
			// exactly its encoding.
			d = Decide(snap, &req, "")
			if d.Response.Error == "" {
				want, _ := json.Marshal(&d.Response)
				if !bytes.Equal(d.Body, append(want, '\n')) {
					t.Errorf("body = %s, want %s", d.Body, want)
				}
			} else if d.Body != nil {
				t.Errorf("refusal with a prepared body")
			}
		})
	}
	req := baseRequest()
	req.KeyID = otherKeyID
	d := Decide(snap, &req, "")
	if !strings.HasPrefix(d.Response.Message, "Device encryption key does not match bundle encryption key.") {
		t.Errorf("key_id_mismatch message %q is not Capgo's", d.Response.Message)
	}
	if KindOf(ota.UpdBundleNotEncrypted) != ota.KindBlocked || KindOf(ota.UpdEncryptionKeyRequired) != ota.KindBlocked {
		t.Error("encryption refusals are not blocked")
	}
}

func TestDecideEncryptedAllocs(t *testing.T) {
	snap := Build(encryptedState(), testURL)
	req := baseRequest()
	req.KeyID = encKeyID
	allocs := testing.AllocsPerRun(100, func() { _ = Decide(snap, &req, "") })
	if allocs > 0 {
		t.Errorf("Decide of an encrypted offer allocates %.0f times, want 0", allocs)
	}
}

func TestSameKeyIDAndSendsKeyID(t *testing.T) {
	for _, tt := range []struct {
		device, bundle string
		want           bool
	}{
		{encKeyID, encKeyID, true},
		{encKeyID, otherKeyID, false},
		{"MIIB", encKeyID, true},
		{"MIIX", encKeyID, false},
		{encKeyID, "", true},
		{encKeyID + "more", encKeyID, true},
	} {
		if got := sameKeyID(tt.device, tt.bundle); got != tt.want {
			t.Errorf("sameKeyID(%q, %q) = %v, want %v", tt.device, tt.bundle, got, tt.want)
		}
	}
	for v, want := range map[string]bool{
		"8.51.14": true, "8.2.0": true, "8.1.99": false, "9.0.0": true, "7.50.0": true, "7.49.3": false,
		"6.50.2": true, "5.50.0": true, "5.10.0": false, "4.99.0": false, "": false, "x": false,
	} {
		if got := sendsKeyID(v); got != want {
			t.Errorf("sendsKeyID(%q) = %v, want %v", v, got, want)
		}
	}
}

// FuzzDecideEncryption feeds arbitrary key ids and plugin versions: an
// offer of the encrypted bundle always carries its keys, a plain offer
// never goes to a device that sent a key id, and every refusal is well
// formed.
func FuzzDecideEncryption(f *testing.F) {
	f.Add(encKeyID, "8.51.14", "")
	f.Add("", "8.1.0", "")
	f.Add("MIIB", "7.50.0", "beta")
	f.Add(otherKeyID, "x", "beta")
	snap := Build(encryptedState(), testURL)
	f.Fuzz(func(t *testing.T, keyID, plugin, channel string) {
		req := baseRequest()
		req.KeyID, req.PluginVersion, req.DefaultChannel = keyID, plugin, channel
		r := Decide(snap, &req, "").Response
		switch {
		case r.Error != "":
			if r.Message == "" || r.Kind != KindOf(r.Error) || r.SessionKey != nil {
				t.Fatalf("malformed refusal %+v", r)
			}
		case r.Version == "1.0.1":
			if r.SessionKey == nil || *r.SessionKey != sessionKey || r.Checksum != encChecksum {
				t.Fatalf("encrypted offer without its keys: %+v", r)
			}
		default:
			if keyID != "" || r.SessionKey == nil || *r.SessionKey != "" {
				t.Fatalf("plain offer %+v to a device with key id %q", r, keyID)
			}
		}
	})
}
