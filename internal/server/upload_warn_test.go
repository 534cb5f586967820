package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

// TestUploadSameBytesWarning: a new version whose bytes are another
// version's on the same channel is accepted with a warning naming it; other
// channels, other bytes and an idempotent retry get none.
func TestUploadSameBytesWarning(t *testing.T) {
	v1 := "/api/v1/apps/" + testApp + "/bundles"
	build := zipOf(map[string]string{"index.html": "<html>same build</html>"})
	other := zipOf(map[string]string{"index.html": "<html>another build</html>"})
	apk := zipOf(map[string]string{"classes.dex": "dex"})
	tests := []struct {
		name  string
		setup func(env *testEnv)
		file  []byte
		form  []string
		// want is what the warning must contain; "" means no warning.
		want []string
	}{
		{name: "same bytes, new version, same channel",
			setup: func(env *testEnv) { env.publish(testApp, "stable", "1.2.0", build) },
			file:  build, form: []string{"version", "1.3.0", "channel", "stable"},
			want: []string{"web 1.3.0 has the same bytes (sha256 " + sha(build)[:12] + ") as 1.2.0 on channel stable", "did not change"}},
		{name: "names every earlier version with the bytes, newest first",
			setup: func(env *testEnv) {
				env.publish(testApp, "stable", "1.1.0", build)
				env.publish(testApp, "stable", "1.1.5", other)
				env.publish(testApp, "stable", "1.2.0", build)
			},
			file: build, form: []string{"version", "1.3.0"},
			want: []string{"as 1.2.0, 1.1.0 on channel stable"}},
		{name: "a version rolled back from still counts",
			setup: func(env *testEnv) {
				env.publish(testApp, "stable", "1.2.0", build)
				env.publish(testApp, "stable", "1.2.1", other)
				wantStatus(env.t, env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/stable/rollback", ota.RollbackRequest{}), 200, "")
			},
			file: other, form: []string{"version", "1.3.0"},
			want: []string{"as 1.2.1 on channel stable"}},
		{name: "same bytes on another channel only",
			setup: func(env *testEnv) { env.publish(testApp, "beta", "1.2.0", build) },
			file:  build, form: []string{"version", "1.3.0", "channel", "stable"}},
		{name: "other bytes",
			setup: func(env *testEnv) { env.publish(testApp, "stable", "1.2.0", other) },
			file:  build, form: []string{"version", "1.3.0"}},
		{name: "idempotent retry of the same version",
			setup: func(env *testEnv) { env.publish(testApp, "stable", "1.2.0", build) },
			file:  build, form: []string{"version", "1.2.0"}},
		{name: "apk under a new version",
			setup: func(env *testEnv) {
				wantStatus(env.t, env.upload(v1, apk, "version", "7", "kind", "apk"), 201, "")
			},
			file: apk, form: []string{"version", "8", "kind", "apk"},
			want: []string{"apk 8 has the same bytes", "as 7 on channel apk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			tt.setup(env)
			rec := env.upload(v1, tt.file, tt.form...)
			if rec.Code != http.StatusCreated && rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			res := decode[ota.UploadResult](t, rec)
			if len(tt.want) == 0 {
				if len(res.Warnings) != 0 {
					t.Errorf("warnings = %q, want none", res.Warnings)
				}
				return
			}
			if len(res.Warnings) != 1 {
				t.Fatalf("warnings = %q, want one", res.Warnings)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.Warnings[0], w) {
					t.Errorf("warning %q does not say %q", res.Warnings[0], w)
				}
			}
			if !res.Created {
				t.Error("the upload was not stored: a warning must not stop it")
			}
		})
	}
}

// TestUploadSameBytesWarningBounded: a channel that served the bytes under
// many names gets one warning naming a few of them.
func TestUploadSameBytesWarningBounded(t *testing.T) {
	env := newTestEnv(t)
	build := zipOf(map[string]string{"index.html": "<html>same build</html>"})
	for _, v := range []string{"1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5", "1.0.6", "1.0.7"} {
		env.publish(testApp, "stable", v, build)
	}
	rec := env.upload("/api/v1/apps/"+testApp+"/bundles", build, "version", "1.1.0")
	wantStatus(t, rec, http.StatusCreated, "")
	res := decode[ota.UploadResult](t, rec)
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "as 1.0.7, 1.0.6, 1.0.5, 1.0.4, 1.0.3 and 2 more on channel stable") {
		t.Errorf("warnings = %q", res.Warnings)
	}
}
