package update

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

const (
	appID    = "com.example.app"
	deviceID = "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11"
)

func sha(c byte) string { return strings.Repeat(string(c), 64) }

func testURL(b *ota.Bundle) download.Link {
	return download.Link{URL: "https://ota.example.com/api/ota/bundle/" + b.SHA256 + ".zip"}
}

// fixtureState is protocol §9's fixture: production (public) → 1.0.1,
// beta (self-set) → 1.1.0, internal (private) → 2.0.0, plus an APK channel
// and a spare bundle 0.9.0.
func fixtureState() store.State {
	b := func(v string, c byte) ota.Bundle {
		return ota.Bundle{AppID: appID, Version: v, Kind: ota.KindWeb, SHA256: sha(c), Size: 10}
	}
	ch := func(id int64, name string, public, selfSet bool, active string) ota.Channel {
		p := ota.DefaultChannelPolicy()
		p.AllowSelfSet = selfSet
		return ota.Channel{AppID: appID, ID: id, Name: name, Kind: ota.KindWeb, Public: public, Active: active, Policy: p}
	}
	bundles := []ota.Bundle{b("1.0.1", '1'), b("1.1.0", '2'), b("2.0.0", '3'), b("0.9.0", '4'), b("3.0.0", '5')}
	chans := []ota.Channel{
		ch(1, "production", true, false, "1.0.1"),
		ch(2, "beta", false, true, "1.1.0"),
		ch(3, "internal", false, false, "2.0.0"),
		{AppID: appID, ID: 4, Name: "apk", Kind: ota.KindAPK, Active: "1.0.0", Policy: ota.DefaultChannelPolicy()},
	}
	// ActiveBundle filled in for some channels only: Build must find the
	// others through the bundle list.
	chans[0].ActiveBundle = &bundles[0]
	return store.State{
		Apps:     []ota.App{{ID: appID, DefaultChannel: "production"}},
		Channels: chans,
		Bundles:  append(bundles, ota.Bundle{AppID: appID, Version: "1.0.0", Kind: ota.KindAPK, SHA256: sha('a')}),
	}
}

// baseRequest is protocol §9's request R.
func baseRequest() ota.UpdateRequest {
	f, tr := false, true
	return ota.UpdateRequest{
		Platform: "ios", DeviceID: deviceID, AppID: appID, VersionBuild: "1.0.0", VersionCode: "1",
		VersionOS: "17.5", VersionName: "1.0.0", PluginVersion: "8.51.14", IsEmulator: &f, IsProd: &tr,
	}
}

func channelOf(st *store.State, name string) *ota.Channel {
	for i := range st.Channels {
		if st.Channels[i].Name == name {
			return &st.Channels[i]
		}
	}
	panic("no channel " + name)
}

func ptr[T any](v T) *T { return &v }

func TestDecide(t *testing.T) {
	success := func(v string, c byte) ota.UpdateResponse {
		return ota.UpdateResponse{Version: v, URL: "https://ota.example.com/api/ota/bundle/" + sha(c) + ".zip", Checksum: sha(c), SessionKey: ptr("")}
	}
	upToDate := ota.UpdateResponse{Error: ota.UpdNoNewVersion, Message: "No new version available", Kind: ota.KindUpToDate}
	noChannel := func(why string) ota.UpdateResponse {
		return ota.UpdateResponse{Error: ota.UpdNoChannel, Message: "no default channel or override: " + why, Kind: ota.KindFailed}
	}
	setActive := func(name, v string) func(*store.State) {
		return func(st *store.State) { c := channelOf(st, name); c.Active, c.ActiveBundle = v, nil }
	}
	policy := func(name string, f func(*ota.ChannelPolicy)) func(*store.State) {
		return func(st *store.State) { f(&channelOf(st, name).Policy) }
	}
	both := func(fs ...func(*store.State)) func(*store.State) {
		return func(st *store.State) {
			for _, f := range fs {
				f(st)
			}
		}
	}
	blocked := func(code, msg, version, old string, major bool) ota.UpdateResponse {
		return ota.UpdateResponse{Error: code, Message: msg, Kind: ota.KindBlocked, Version: version, Old: old, Major: major}
	}

	tests := []struct {
		name       string
		state      func(*store.State)
		req        func(*ota.UpdateRequest)
		defaultApp string
		want       ota.UpdateResponse
		wantCode   string // checked instead of want when the message is long
		wantKind   string
		wantCh     string
		wantSource string
	}{
		{name: "T1 success from the public channel", want: success("1.0.1", '1'), wantCh: "production", wantSource: SourceDefault},
		{name: "T2 same version", req: func(r *ota.UpdateRequest) { r.VersionName = "1.0.1" }, want: upToDate, wantCh: "production"},
		{name: "T3 builtin normalises to version_build",
			req:  func(r *ota.UpdateRequest) { r.VersionName, r.VersionBuild = "builtin", "1.0.1" },
			want: upToDate},
		{name: "empty version_name normalises to version_build",
			req:  func(r *ota.UpdateRequest) { r.VersionName, r.VersionBuild = "", "1.0.1" },
			want: upToDate},
		{name: "T4 self-settable defaultChannel", req: func(r *ota.UpdateRequest) { r.DefaultChannel = "beta" },
			want: success("1.1.0", '2'), wantCh: "beta", wantSource: SourceDevice},
		{name: "T5 private defaultChannel has no fallback", req: func(r *ota.UpdateRequest) { r.DefaultChannel = "internal" },
			want: noChannel(`channel "internal" is neither public nor self-settable`)},
		{name: "unknown defaultChannel", req: func(r *ota.UpdateRequest) { r.DefaultChannel = "nope" },
			want: noChannel(`channel "nope" does not exist`)},
		{name: "apk channel is not a channel", req: func(r *ota.UpdateRequest) { r.DefaultChannel = "apk" },
			want: noChannel(`channel "apk" does not exist`)},
		{name: "public channel named explicitly", req: func(r *ota.UpdateRequest) { r.DefaultChannel = "production" },
			want: success("1.0.1", '1'), wantSource: SourceDevice},
		{name: "T6 override beats defaultChannel",
			state: func(st *store.State) {
				st.Overrides = []store.DeviceOverride{{AppID: appID, DeviceID: strings.ToUpper(deviceID), Channel: "internal"}}
			},
			req:  func(r *ota.UpdateRequest) { r.DefaultChannel = "beta" },
			want: success("2.0.0", '3'), wantCh: "internal", wantSource: SourceOverride},
		{name: "override matched case-insensitively",
			state: func(st *store.State) {
				st.Overrides = []store.DeviceOverride{{AppID: appID, DeviceID: deviceID, Channel: "internal"}}
			},
			req:  func(r *ota.UpdateRequest) { r.DeviceID = strings.ToUpper(deviceID) },
			want: success("2.0.0", '3'), wantSource: SourceOverride},
		{name: "dangling override is ignored",
			state: func(st *store.State) {
				st.Overrides = []store.DeviceOverride{{AppID: appID, DeviceID: deviceID, Channel: "gone"}}
			},
			want: success("1.0.1", '1'), wantSource: SourceDefault},
		{name: "T7 platform disabled",
			state: policy("production", func(p *ota.ChannelPolicy) { p.IOS = false }),
			want:  blocked(ota.UpdDisabledPlatformIOS, "Cannot update, ios it's disabled", "1.0.1", "1.0.0", false)},
		{name: "android disabled",
			state: policy("production", func(p *ota.ChannelPolicy) { p.Android = false }),
			req:   func(r *ota.UpdateRequest) { r.Platform = "android" },
			want:  blocked(ota.UpdDisabledPlatformAndroid, "Cannot update, android is disabled", "1.0.1", "1.0.0", false)},
		{name: "electron disabled",
			state: policy("production", func(p *ota.ChannelPolicy) { p.Electron = false }),
			req:   func(r *ota.UpdateRequest) { r.Platform = "electron" },
			want:  blocked(ota.UpdDisabledPlatformElectron, "Cannot update, electron is disabled", "1.0.1", "1.0.0", false)},
		{name: "ios disabled on the default but another public channel serves ios",
			state: both(policy("production", func(p *ota.ChannelPolicy) { p.IOS = false }),
				func(st *store.State) {
					c := *channelOf(st, "production")
					c.Name, c.ID, c.Policy = "ios-prod", 9, ota.DefaultChannelPolicy()
					c.Active, c.ActiveBundle = "1.1.0", nil
					st.Channels = append(st.Channels, c)
				}),
			want: success("1.1.0", '2'), wantCh: "ios-prod", wantSource: SourceDefault},
		{name: "T8 major blocked",
			state: both(setActive("production", "2.0.0"), policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdate = ota.DisableMajor })),
			want:  blocked(ota.UpdDisableMajor, "Cannot upgrade major version", "2.0.0", "1.0.0", true)},
		{name: "major policy lets a minor through",
			state: both(setActive("production", "1.1.0"), policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdate = ota.DisableMajor })),
			want:  success("1.1.0", '2')},
		{name: "minor blocked",
			state: both(setActive("production", "1.1.0"), policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdate = ota.DisableMinor })),
			want:  blocked(ota.UpdDisableMinor, "Cannot upgrade minor version", "1.1.0", "1.0.0", true)},
		{name: "minor policy lets a patch through",
			state: policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdate = ota.DisableMinor }),
			want:  success("1.0.1", '1')},
		{name: "patch blocked",
			state: policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdate = ota.DisablePatch }),
			want:  blocked(ota.UpdDisablePatch, "Cannot upgrade patch version", "1.0.1", "1.0.0", true)},
		{name: "patch policy compares with the native version, not the bundle",
			state: policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdate = ota.DisablePatch }),
			req:   func(r *ota.UpdateRequest) { r.VersionBuild = "1.0.1"; r.VersionName = "1.0.0-hotfix" },
			want:  success("1.0.1", '1')},
		{name: "version_number without a minimum is misconfigured",
			state:    policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdate = ota.DisableVersionNumber }),
			want:     ota.UpdateResponse{Error: ota.UpdMisconfiguredChannel, Message: "Channel production is misconfigured", Kind: ota.KindFailed},
			wantKind: ota.KindFailed},
		{name: "version_number minimum above native",
			state: both(policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdate = ota.DisableVersionNumber }),
				func(st *store.State) { st.Bundles[0].MinNative = "1.0.1"; st.Channels[0].ActiveBundle = nil }),
			want: blocked(ota.UpdDisableMetadata, "Cannot upgrade version, min update version > current version", "1.0.1", "1.0.0", true)},
		{name: "version_number minimum met",
			state: both(policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdate = ota.DisableVersionNumber }),
				func(st *store.State) { st.Bundles[0].MinNative = "1"; st.Channels[0].ActiveBundle = nil }),
			want: success("1.0.1", '1')},
		{name: "T9 under native",
			state: both(setActive("production", "0.9.0"), policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdateUnderNative = true })),
			want:  blocked(ota.UpdDisableUnderNative, "Cannot revert under native version", "0.9.0", "1.0.0", false)},
		{name: "rollback below the running bundle is served without the under-native rule",
			state: setActive("production", "0.9.0"),
			req:   func(r *ota.UpdateRequest) { r.VersionName = "1.0.1" },
			want:  success("0.9.0", '4')},
		{name: "T10 emulator disabled",
			state: policy("production", func(p *ota.ChannelPolicy) { p.AllowEmulator = false }),
			req:   func(r *ota.UpdateRequest) { r.IsEmulator = ptr(true) },
			want:  blocked(ota.UpdDisableEmulator, "Cannot update, emulator is disabled", "1.0.1", "", false)},
		{name: "T10 dev build disabled",
			state: policy("production", func(p *ota.ChannelPolicy) { p.AllowDev = false }),
			req:   func(r *ota.UpdateRequest) { r.IsProd = ptr(false) },
			want:  blocked(ota.UpdDisableDevBuild, "Cannot update, dev build is disabled", "1.0.1", "", false)},
		{name: "prod build disabled",
			state: policy("production", func(p *ota.ChannelPolicy) { p.AllowProd = false }),
			want:  blocked(ota.UpdDisableProdBuild, "Cannot update, prod build is disabled", "1.0.1", "", false)},
		{name: "prod assumed when is_prod is absent",
			state: policy("production", func(p *ota.ChannelPolicy) { p.AllowProd = false }),
			req:   func(r *ota.UpdateRequest) { r.IsProd = nil },
			want:  blocked(ota.UpdDisableProdBuild, "Cannot update, prod build is disabled", "1.0.1", "", false)},
		{name: "physical device disabled",
			state: policy("production", func(p *ota.ChannelPolicy) { p.AllowDevice = false }),
			want:  blocked(ota.UpdDisableDevice, "Cannot update, device is disabled", "1.0.1", "", false)},
		{name: "T11 builtin target reverts a device on a live bundle",
			state: setActive("production", ota.VersionBuiltin),
			req:   func(r *ota.UpdateRequest) { r.VersionName = "1.0.1" },
			want:  ota.UpdateResponse{Version: ota.VersionBuiltin}, wantCh: "production"},
		{name: "builtin target, plugin too old to revert",
			state: setActive("production", ota.VersionBuiltin),
			req:   func(r *ota.UpdateRequest) { r.VersionName, r.PluginVersion = "1.0.1", "5.9.0" },
			want: ota.UpdateResponse{Error: ota.UpdBuiltinTooOld, Message: "Cannot revert to builtin: plugin 5.9.0 is older than 6.2.0",
				Kind: ota.KindFailed}},
		{name: "builtin target, plugin 6.2.0 reverts",
			state: setActive("production", ota.VersionBuiltin),
			req:   func(r *ota.UpdateRequest) { r.VersionName, r.PluginVersion = "1.0.1", "6.2.0" },
			want:  ota.UpdateResponse{Version: ota.VersionBuiltin}},
		{name: "T11 builtin target, device already on builtin",
			state: setActive("production", ota.VersionBuiltin),
			want:  upToDate},
		{name: "empty channel", state: setActive("production", ""),
			want: ota.UpdateResponse{Error: ota.UpdNoBundle, Message: "Cannot get bundle", Kind: ota.KindFailed}},
		{name: "private channel through an override with policies still applied",
			state: both(policy("internal", func(p *ota.ChannelPolicy) { p.IOS = false }),
				func(st *store.State) {
					st.Overrides = []store.DeviceOverride{{AppID: appID, DeviceID: deviceID, Channel: "internal"}}
				}),
			want: blocked(ota.UpdDisabledPlatformIOS, "Cannot update, ios it's disabled", "2.0.0", "1.0.0", false)},
		{name: "native bounds: device too old",
			state: func(st *store.State) { st.Bundles[0].MinNative = "2.0"; st.Channels[0].ActiveBundle = nil },
			want:  blocked(ota.UpdIncompatibleNative, "Bundle 1.0.1 is built for native versions 2.0 to any; this device runs 1.0.0", "1.0.1", "1.0.0", false)},
		{name: "native bounds: device too new",
			state:    func(st *store.State) { st.Bundles[0].MaxNative = "0.9.9"; st.Channels[0].ActiveBundle = nil },
			wantCode: ota.UpdIncompatibleNative, wantKind: ota.KindBlocked},
		{name: "native bounds: inside",
			state: func(st *store.State) {
				st.Bundles[0].MinNative, st.Bundles[0].MaxNative = "1.0.0", "1.9"
				st.Channels[0].ActiveBundle = nil
			},
			want: success("1.0.1", '1')},
		{name: "unknown app is a 200 failure, never a 429",
			req:      func(r *ota.UpdateRequest) { r.AppID = "com.other" },
			wantCode: ota.UpdUnknownApp, wantKind: ota.KindFailed},
		{name: "missing app_id uses the default app",
			req: func(r *ota.UpdateRequest) { r.AppID = "" }, defaultApp: appID,
			want: success("1.0.1", '1')},
		{name: "missing app_id without a default app",
			req:  func(r *ota.UpdateRequest) { r.AppID = "" },
			want: ota.UpdateResponse{Error: ota.UpdMissingInfo, Message: "Cannot find device_id or app_id", Kind: ota.KindFailed}},
		{name: "missing device_id",
			req:      func(r *ota.UpdateRequest) { r.DeviceID = "" },
			wantCode: ota.UpdMissingInfo, wantKind: ota.KindFailed},
		{name: "missing platform",
			req:      func(r *ota.UpdateRequest) { r.Platform = "" },
			wantCode: ota.UpdMissingInfo, wantKind: ota.KindFailed},
		{name: "missing version_build",
			req:      func(r *ota.UpdateRequest) { r.VersionBuild = "" },
			wantCode: ota.UpdMissingInfo, wantKind: ota.KindFailed},
		{name: "version_build unknown",
			req:      func(r *ota.UpdateRequest) { r.VersionBuild = "unknown" },
			wantCode: ota.UpdUnknownVersionBuild, wantKind: ota.KindFailed},
		{name: "version_build not semver",
			req:      func(r *ota.UpdateRequest) { r.VersionBuild = "one.two" },
			wantCode: ota.UpdSemverError, wantKind: ota.KindFailed},
		{name: "short version_build is coerced",
			state: policy("production", func(p *ota.ChannelPolicy) { p.DisableAutoUpdate = ota.DisableMinor }),
			req:   func(r *ota.UpdateRequest) { r.VersionBuild = "1" },
			want:  success("1.0.1", '1')},
		{name: "old worker minimal body, new version",
			req: func(r *ota.UpdateRequest) {
				*r = ota.UpdateRequest{VersionBuild: "1.0.0", Channel: "beta"}
			},
			defaultApp: appID, want: success("1.1.0", '2'), wantCh: "beta", wantSource: SourceDevice},
		{name: "old worker minimal body, up to date",
			req: func(r *ota.UpdateRequest) {
				*r = ota.UpdateRequest{VersionBuild: "1.1.0", Channel: "beta"}
			},
			defaultApp: appID, want: upToDate},
		{name: "old worker minimal body without a channel",
			req: func(r *ota.UpdateRequest) {
				*r = ota.UpdateRequest{VersionBuild: "1.0.0"}
			},
			defaultApp: appID, want: success("1.0.1", '1')},
		{name: "defaultChannel wins over channel",
			req:  func(r *ota.UpdateRequest) { r.DefaultChannel, r.Channel = "production", "beta" },
			want: success("1.0.1", '1')},
		{name: "app without a public channel",
			state: func(st *store.State) { channelOf(st, "production").Public = false },
			want:  noChannel("app " + appID + " has no public channel")},
		{name: "non-semver bundle skips the semver rules",
			state: func(st *store.State) {
				st.Bundles = append(st.Bundles, ota.Bundle{AppID: appID, Version: "build-77", Kind: ota.KindWeb, SHA256: sha('7')})
				setActive("production", "build-77")(st)
				channelOf(st, "production").Policy.DisableAutoUpdate = ota.DisableMajor
			},
			want: success("build-77", '7')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := fixtureState()
			if tt.state != nil {
				tt.state(&st)
			}
			snap := Build(st, testURL)
			req := baseRequest()
			if tt.req != nil {
				tt.req(&req)
			}
			d := Decide(snap, &req, tt.defaultApp)
			if tt.wantCode != "" {
				if d.Response.Error != tt.wantCode || d.Response.Kind != tt.wantKind || d.Response.Message == "" {
					t.Fatalf("got %s, want error %q kind %q with a message", mustJSON(d.Response), tt.wantCode, tt.wantKind)
				}
			} else if got, want := mustJSON(d.Response), mustJSON(tt.want); got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			if tt.wantCh != "" && d.Channel != tt.wantCh {
				t.Errorf("channel = %q, want %q", d.Channel, tt.wantCh)
			}
			if tt.wantSource != "" && d.Source != tt.wantSource {
				t.Errorf("source = %q, want %q", d.Source, tt.wantSource)
			}
			if d.Steps != nil {
				t.Errorf("Decide recorded steps: %q", d.Steps)
			}
			// Explain decides the same and says why.
			e := Explain(snap, &req, tt.defaultApp)
			if mustJSON(e.Response) != mustJSON(d.Response) || e.Channel != d.Channel || e.AppID != d.AppID {
				t.Errorf("Explain = %s, Decide = %s", mustJSON(e.Response), mustJSON(d.Response))
			}
			if len(e.Steps) < 2 {
				t.Errorf("Explain steps = %q, want a trace", e.Steps)
			}
			if kind := d.Response.Kind; d.Response.Error != "" && kind != KindOf(d.Response.Error) {
				t.Errorf("kind %q does not match KindOf(%q)", kind, d.Response.Error)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestSuccessShape(t *testing.T) {
	snap := Build(fixtureState(), testURL)
	req := baseRequest()
	got := mustJSON(Decide(snap, &req, "").Response)
	want := `{"version":"1.0.1","url":"https://ota.example.com/api/ota/bundle/` + sha('1') + `.zip","checksum":"` + sha('1') + `","session_key":""}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestKindOf(t *testing.T) {
	tests := map[string]string{
		ota.UpdNoNewVersion: ota.KindUpToDate, ota.UpdAlreadyOnBuiltin: ota.KindUpToDate,
		ota.UpdPrivateChannel: ota.KindBlocked, ota.UpdDisableEmulator: ota.KindBlocked, ota.UpdKeyIDMismatch: ota.KindBlocked,
		ota.UpdVersionFailedOnDevice: ota.KindBlocked,
		ota.UpdNoChannel:             ota.KindFailed, ota.UpdNoBundle: ota.KindFailed, ota.UpdMisconfiguredChannel: ota.KindFailed,
		ota.UpdUnknownApp: ota.KindFailed, "something_new": ota.KindFailed,
	}
	for code, want := range tests {
		if got := KindOf(code); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestBuildAndWithApp(t *testing.T) {
	st := fixtureState()
	st.Overrides = []store.DeviceOverride{{AppID: appID, DeviceID: "ABC", Channel: "beta"}}
	other := store.State{
		Apps:     []ota.App{{ID: "com.other", DefaultChannel: "stable"}},
		Channels: []ota.Channel{{AppID: "com.other", ID: 1, Name: "stable", Kind: ota.KindWeb, Public: true, Policy: ota.DefaultChannelPolicy()}},
	}
	st.Apps = append(st.Apps, other.Apps...)
	st.Channels = append(st.Channels, other.Channels...)
	s := Build(st, testURL)

	av := s.App(appID)
	if av == nil || s.App("com.other") == nil {
		t.Fatalf("apps = %v", s.Apps)
	}
	if _, ok := av.Channels["apk"]; ok {
		t.Error("apk channel is visible to devices")
	}
	var names []string
	for _, cv := range av.List {
		names = append(names, cv.Channel.Name)
	}
	if got := strings.Join(names, ","); got != "production,beta,internal" {
		t.Errorf("list order = %s", got)
	}
	if av.Overrides["abc"] != "beta" {
		t.Errorf("overrides = %v, want lowercase keys", av.Overrides)
	}
	if b := av.Bundles["1.1.0"]; b == nil || b.SHA256 == "" {
		t.Errorf("bundle 1.1.0 = %+v", b)
	}
	if _, ok := av.Bundles["1.0.0"]; ok {
		t.Error("apk bundle listed with web bundles")
	}

	// Replace com.example.app with a state where production serves 2.0.0.
	st2 := fixtureState()
	c := channelOf(&st2, "production")
	c.Active, c.ActiveBundle = "2.0.0", nil
	s2 := s.WithApp(appID, st2, testURL)
	req := baseRequest()
	if got := Decide(s2, &req, "").Response.Version; got != "2.0.0" {
		t.Errorf("after WithApp: offered %q, want 2.0.0", got)
	}
	if got := Decide(s, &req, "").Response.Version; got != "1.0.1" {
		t.Errorf("old snapshot changed: offered %q, want 1.0.1", got)
	}
	if s2.App("com.other") != s.App("com.other") {
		t.Error("untouched app was copied, want shared")
	}

	// An app missing from the state disappears.
	s3 := s2.WithApp(appID, store.State{}, testURL)
	if s3.App(appID) != nil || s3.App("com.other") == nil {
		t.Errorf("after removal: apps = %v", s3.Apps)
	}
	var nilSnap *Snapshot
	if got := nilSnap.WithApp(appID, st2, testURL); got.App(appID) == nil {
		t.Error("WithApp on a nil snapshot lost the app")
	}
}

func TestResolveAndDefaultFor(t *testing.T) {
	st := fixtureState()
	st.Overrides = []store.DeviceOverride{{AppID: appID, DeviceID: deviceID, Channel: "internal"}}
	av := Build(st, testURL).App(appID)
	tests := []struct {
		device, platform, requested string
		want, source                string
	}{
		{deviceID, "ios", "", "internal", SourceOverride},
		{"other", "ios", "", "production", SourceDefault},
		{"other", "android", "beta", "beta", SourceDevice},
		{"other", "ios", "internal", "", ""},
		{"other", "ios", "missing", "", ""},
		{"", "ios", "", "production", SourceDefault},
	}
	for _, tt := range tests {
		cv, src := av.Resolve(tt.device, tt.platform, tt.requested)
		got := ""
		if cv != nil {
			got = cv.Channel.Name
		}
		if got != tt.want || src != tt.source {
			t.Errorf("Resolve(%q, %q, %q) = %q, %q; want %q, %q", tt.device, tt.platform, tt.requested, got, src, tt.want, tt.source)
		}
	}
	var nilApp *AppView
	if cv, _ := nilApp.Resolve("a", "ios", ""); cv != nil {
		t.Error("nil app resolved a channel")
	}
}

func TestDecideAllocs(t *testing.T) {
	snap := Build(fixtureState(), testURL)
	req := baseRequest()
	allocs := testing.AllocsPerRun(100, func() { _ = Decide(snap, &req, "") })
	if allocs > 0 {
		t.Errorf("Decide success allocates %.0f times, want 0", allocs)
	}
}

func BenchmarkDecide(b *testing.B) {
	snap := Build(fixtureState(), testURL)
	for _, bc := range []struct {
		name string
		mod  func(*ota.UpdateRequest)
	}{
		{"success", nil},
		{"up_to_date", func(r *ota.UpdateRequest) { r.VersionName = "1.0.1" }},
		{"self_set_channel", func(r *ota.UpdateRequest) { r.DefaultChannel = "beta" }},
	} {
		req := baseRequest()
		if bc.mod != nil {
			bc.mod(&req)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Decide(snap, &req, "")
			}
		})
	}
}

func TestLongInputIsClipped(t *testing.T) {
	snap := Build(fixtureState(), testURL)
	req := baseRequest()
	req.AppID = strings.Repeat("é", 1000)
	r := Decide(snap, &req, "").Response
	if r.Error != ota.UpdUnknownApp || len(r.Message) > 200 || !utf8.ValidString(r.Message) {
		t.Fatalf("message %q (%d bytes)", r.Message, len(r.Message))
	}
}
