package server

import (
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
