package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

// updateRequestCases are bodies as the plugin sends them and as anyone
// else may.
var updateRequestCases = []string{
	`{"platform":"ios","device_id":"ABC","app_id":"com.example.app","custom_id":"","version_build":"1.0.0","version_code":"1","version_os":"17.5","version_name":"1.0.0","plugin_version":"8.51.14","is_emulator":false,"is_prod":true,"defaultChannel":"","channel":"beta","key_id":"k","install_source":"x"}`,
	`{}`,
	`{"is_prod":null,"is_emulator":true,"extra":{"a":[1,-2.5e+3,true,null,{"b":"c"}],"d":[]},"n":0}`,
	`{"device_id":null}`,
	`{"Device_ID":"x"}`,
	`{"device_id":"a","device_id":"b"}`,
	`{"device_id":"caf\u00e9"}`,
	`{"device_id":"café"}`,
	`{"device_id":"a\"b"}`,
	`{ "device_id" : "a" }`,
	`{"device_id":1}`,
	`{"is_prod":"yes"}`,
	`{"x":01}`,
	`{"x":-}`,
	`{"x":1.}`,
	`{"x":[1,]}`,
	`{"x":{"a"}}`,
	`{"x":tru}`,
	`{"device_id":"a",}`,
	`{"device_id":"a"}x`,
	`{"device_id":"a"`,
	`[]`,
	`null`,
	"{\"device_id\":\"a\tb\"}",
}

// checkUpdateRequest fails when decodeUpdateRequest and encoding/json
// disagree on the result or on whether the body is acceptable.
func checkUpdateRequest(t *testing.T, body string) {
	t.Helper()
	var want ota.UpdateRequest
	wantErr := json.Unmarshal([]byte(body), &want)
	var got ota.UpdateRequest
	err := decodeUpdateRequest([]byte(body), &got)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decodeUpdateRequest(%q) error %v; encoding/json: %v", body, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeUpdateRequest(%q) = %+v; encoding/json gives %+v", body, got, want)
	}
}

func TestDecodeUpdateRequest(t *testing.T) {
	for _, body := range updateRequestCases {
		checkUpdateRequest(t, body)
	}
	// The plugin's own body must take the fast path.
	var req ota.UpdateRequest
	if !fastUpdateRequest([]byte(updateRequestCases[0]), &req) || req.DeviceID != "ABC" || !req.Prod() || req.Emulator() {
		t.Errorf("plugin body: fast path %+v", req)
	}
}

func FuzzDecodeUpdateRequest(f *testing.F) {
	for _, body := range updateRequestCases {
		f.Add(body)
	}
	f.Fuzz(checkUpdateRequest)
}

// statsEventsCases are /stats bodies: the plugin's batches and what else
// may come.
var statsEventsCases = []string{
	`[{"platform":"android","device_id":"6aa0b2a5-2c3e-4d5b-9a65-000000000001","app_id":"com.example.app","custom_id":"","version_build":"1.0.0","version_code":"42","version_os":"14","version_name":"1.0.99","old_version_name":"1.0.98","plugin_version":"8.51.14","is_emulator":false,"is_prod":true,"install_source":"google_play","defaultChannel":"","action":"set","timestamp":1795000000000},{"action":"download_10","metadata":{"percent":"10","a":"b"},"timestamp":-5}]`,
	`[]`,
	`[{}]`,
	`[{"action":"set"},{"action":"set_fail","metadata":null}]`,
	`[{"metadata":{"a":"1"},"metadata":{"b":"2"}}]`,
	`[{"metadata":{"a":"1"},"metadata":null}]`,
	`[{"metadata":{"a":"1"},"metadata":"x"}]`,
	`[{"metadata":{"a":null}}]`,
	`[{"metadata":{"a":1}}]`,
	`[{"metadata":{}}]`,
	`[{"Action":"set"}]`,
	`[{"TIMESTAMP":1}]`,
	`[{"timestamp":1.5}]`,
	`[{"timestamp":1e3}]`,
	`[{"timestamp":01}]`,
	`[{"timestamp":-}]`,
	`[{"timestamp":-0}]`,
	`[{"timestamp":9223372036854775807}]`,
	`[{"timestamp":9223372036854775808}]`,
	`[{"timestamp":"1"}]`,
	`[{"timestamp":null,"action":null}]`,
	`[{"action":"set","unknown":{"x":[1,2,{"y":null}]}}]`,
	`[null]`,
	`[{"action":"set"},]`,
	`[{"action":"set"}`,
	`[{"action":"set"}]x`,
	`[ {"action":"set"} ]`,
	`[{"action":"caf\u00e9"}]`,
	`[{"action":"café"}]`,
	`["set"]`,
	`[1]`,
	`{"action":"set","timestamp":3}`,
	`{"action":"set"}x`,
	`{}`,
}

// checkStatsEvents fails when the stats decoders and encoding/json
// disagree on the result or on whether the body is acceptable.
func checkStatsEvents(t *testing.T, body string) {
	t.Helper()
	if len(body) > 0 && body[0] == '{' {
		var want ota.StatsEvent
		wantErr := json.Unmarshal([]byte(body), &want)
		var got ota.StatsEvent
		raw, err := decodeStatsEvent([]byte(body), &got)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("decodeStatsEvent(%q) error %v; encoding/json: %v", body, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeStatsEvent(%q) = %+v; encoding/json gives %+v", body, got, want)
		}
		checkRawEvent(t, raw, &got)
		return
	}
	var want []ota.StatsEvent
	wantErr := json.Unmarshal([]byte(body), &want)
	got, raws, err := decodeStatsEvents([]byte(body))
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decodeStatsEvents(%q) error %v; encoding/json: %v", body, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeStatsEvents(%q) = %+v; encoding/json gives %+v", body, got, want)
	}
	if raws != nil && len(raws) != len(got) {
		t.Fatalf("decodeStatsEvents(%q): %d raw events for %d events", body, len(raws), len(got))
	}
	for i, raw := range raws {
		checkRawEvent(t, raw, &got[i])
	}
}

// checkRawEvent fails unless raw is nil or JSON of only ev's fields that
// decodes to ev: what the store may keep in its place.
func checkRawEvent(t *testing.T, raw []byte, ev *ota.StatsEvent) {
	t.Helper()
	if raw == nil {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var back ota.StatsEvent
	if err := dec.Decode(&back); err != nil || dec.More() {
		t.Fatalf("raw event %q does not decode with known fields only: %v", raw, err)
	}
	if !reflect.DeepEqual(back, *ev) {
		t.Fatalf("raw event %q decodes to %+v, not %+v", raw, back, *ev)
	}
}

func TestDecodeStatsEvents(t *testing.T) {
	for _, body := range statsEventsCases {
		checkStatsEvents(t, body)
	}
	// The plugin's own batch must take the fast path.
	evs, raws, ok := fastStatsEvents([]byte(statsEventsCases[0]))
	if !ok || len(evs) != 2 || raws[0] == nil || raws[1] == nil || evs[0].Timestamp != 1795000000000 || evs[1].Metadata["percent"] != "10" || evs[1].Timestamp != -5 {
		t.Errorf("plugin batch: fast path ok=%v %+v", ok, evs)
	}
}

func FuzzDecodeStatsEvents(f *testing.F) {
	for _, body := range statsEventsCases {
		f.Add(body)
	}
	f.Fuzz(checkStatsEvents)
}
