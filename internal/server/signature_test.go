package server

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/pkg/ota"
)

// TestUploadSignature: the signature form field is validated, stored with
// the bundle, kept by an unsigned retry, and a conflict when it differs.
func TestUploadSignature(t *testing.T) {
	env := newTestEnv(t)
	const v1 = "/api/v1/apps/" + testApp + "/bundles"
	content := zipOf(map[string]string{"index.html": "<html>signed</html>"})
	sig, err := bundle.Sign(bytes.NewReader(content), encKey())
	if err != nil {
		t.Fatal(err)
	}
	rec := env.upload(v1, content, "version", "1.0.0", "signature", sig)
	wantStatus(t, rec, http.StatusCreated, "")
	if res := decode[ota.UploadResult](t, rec); res.Bundle.Signature != sig {
		t.Errorf("upload answer signature = %q, want the uploaded one", res.Bundle.Signature)
	}
	got, err := env.store.GetBundle(t.Context(), testApp, ota.KindWeb, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if got.Signature != sig {
		t.Errorf("stored signature = %q, want the uploaded one", got.Signature)
	}
	// The device-facing state has it too.
	if cv := env.srv.Snapshot().App(testApp).Channels[ota.DefaultChannel]; cv == nil || cv.Active.Signature != sig {
		t.Errorf("snapshot's active bundle lacks the signature: %+v", cv)
	}
	// An unsigned retry keeps it; another signature is a conflict.
	rec = env.upload(v1, content, "version", "1.0.0")
	wantStatus(t, rec, http.StatusOK, "")
	if res := decode[ota.UploadResult](t, rec); res.Bundle.Signature != sig {
		t.Errorf("unsigned retry answer signature = %q, want the stored one", res.Bundle.Signature)
	}
	other, err := bundle.Sign(bytes.NewReader(append(bytes.Clone(content), 'x')), encKey())
	if err != nil {
		t.Fatal(err)
	}
	rec = env.upload(v1, content, "version", "1.0.0", "signature", other)
	wantStatus(t, rec, http.StatusConflict, ota.ErrCodeConflict)

	for _, tt := range []struct{ name, sig string }{
		{"not base64", "not base64!"},
		{"hex", "ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01"},
		{"too short", "c2hvcnQ="},
	} {
		rec := env.upload(v1, content, "version", "2.0.0", "signature", tt.sig)
		wantStatus(t, rec, http.StatusBadRequest, ota.ErrCodeBadRequest)
	}
	apk := zipOf(map[string]string{"AndroidManifest.xml": "<manifest/>", "classes.dex": "dex"})
	rec = env.upload(v1, apk, "version", "1.0.0", "kind", ota.KindAPK, "signature", sig)
	wantStatus(t, rec, http.StatusBadRequest, ota.ErrCodeBadRequest)
}

// TestExplainCapawesome: ?plugin=capawesome explains with that plugin's
// limits (no reset to builtin), other values are refused.
func TestExplainCapawesome(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "production", "1.0.1", nil)
	if _, err := env.store.Rollback(t.Context(), testApp, "production", ota.VersionBuiltin, testUser, env.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.refreshApp(t.Context(), testApp); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"platform": "ios", "device_id": "dev-1", "version_build": "1.0.0", "version_name": "1.0.1"}
	for plugin, want := range map[string]string{"": "", "capgo": "", "capawesome": ota.UpdBuiltinUnsupported} {
		path := "/api/v1/apps/" + testApp + "/explain"
		if plugin != "" {
			path += "?plugin=" + plugin
		}
		rec := env.do(http.MethodPost, path, body)
		wantStatus(t, rec, http.StatusOK, "")
		res := decode[ota.ExplainResponse](t, rec)
		if res.Response.Error != want || (want == "" && res.Response.Version != ota.VersionBuiltin) {
			t.Errorf("plugin %q: %+v, want error %q", plugin, res.Response, want)
		}
	}
	rec := env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/explain?plugin=other", body)
	wantStatus(t, rec, http.StatusBadRequest, ota.ErrCodeBadRequest)
}
