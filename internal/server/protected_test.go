package server

import (
	"net/http"
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

// TestProtectedChannel: on a protected channel a CI token without the
// protected scope may not deploy, promote, step the rollout or change the
// policy; it may roll back and pause. A protected token and a user may do
// all of it, and the history names who did.
func TestProtectedChannel(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "production", "1.0.0", nil)
	env.publish(testApp, "beta", "1.1.0", nil)
	plain := env.createToken(ota.TokenCreateRequest{Name: "ci"}).Token
	prot := env.createToken(ota.TokenCreateRequest{Name: "release", Protected: true})
	if !prot.Protected {
		t.Fatalf("protected token info %+v", prot.TokenInfo)
	}
	base := "/api/v1/apps/" + testApp + "/channels/production"
	as := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	// Only a user or a protected token may protect it.
	wantStatus(t, env.do(http.MethodPatch, base, ota.ChannelPolicyPatch{Protected: ptrTo(true)}, as(plain)...), http.StatusForbidden, ota.ErrCodeForbidden)
	wantStatus(t, env.do(http.MethodPatch, base, ota.ChannelPolicyPatch{Protected: ptrTo(true)}), http.StatusOK, "")

	zip := zipOf(map[string]string{"index.html": "<html>1.2.0</html>"})
	for _, tt := range []struct {
		name string
		rec  func(tok string) int
		open bool // a plain token may
	}{
		{"deploy", func(tok string) int {
			return env.uploadAs(tok, "/api/v1/apps/"+testApp+"/bundles", zip, "version", "1.2.0", "channel", "production").Code
		}, false},
		{"promote", func(tok string) int {
			return env.do(http.MethodPost, base+"/promote", ota.PromoteRequest{From: "beta"}, as(tok)...).Code
		}, false},
		{"policy", func(tok string) int {
			return env.do(http.MethodPatch, base, ota.ChannelPolicyPatch{IOS: ptrTo(false)}, as(tok)...).Code
		}, false},
		{"unprotect", func(tok string) int {
			return env.do(http.MethodPatch, base, ota.ChannelPolicyPatch{Protected: ptrTo(false)}, as(tok)...).Code
		}, false},
		{"rollback", func(tok string) int {
			return env.do(http.MethodPost, base+"/rollback", ota.RollbackRequest{To: "1.0.0"}, as(tok)...).Code
		}, true},
	} {
		if got := tt.rec(plain); (got == http.StatusForbidden) == tt.open {
			t.Errorf("%s with a plain CI token: %d; open to it: %v", tt.name, got, tt.open)
		}
		if got := tt.rec(prot.Token); got >= 300 && tt.name != "unprotect" {
			t.Errorf("%s with a protected CI token: %d", tt.name, got)
		}
	}
	page := decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history?channel=production", nil))
	found := false
	for _, ev := range page.Events {
		if ev.Type == ota.EventUpload && ev.Version == "1.2.0" {
			found = ev.Actor == "ci:release"
		}
	}
	if !found {
		t.Errorf("the protected token's deploy is not recorded as ci:release: %+v", page.Events)
	}
}
