package update

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// TestDecideForSameRules checks that both plugins are decided by the same
// rules: over a staged rollout, a failure memory and a native range, every
// device gets the same answer, channel and bundle from either plugin.
func TestDecideForSameRules(t *testing.T) {
	st := safetyState()
	st.Channels[0].Rollout = &ota.Rollout{Target: "1.2.0", Previous: "1.1.0", Percent: 30}
	snap := Build(st, testURL)
	mem := memory{"1.1.0/device-7": true}
	in, out := 0, 0
	for i := range 400 {
		for _, native := range []string{"1.5.0", "2.1.0"} {
			req := baseRequest()
			req.DeviceID, req.VersionBuild, req.VersionName = fmt.Sprintf("device-%d", i), native, "0.9.0"
			capgo := DecideWith(snap, &req, "", mem)
			capa := DecideFor(snap, PluginCapawesome, &req, "", mem)
			if !reflect.DeepEqual(capgo.Response, capa.Response) || capgo.Channel != capa.Channel ||
				capgo.Source != capa.Source || capgo.Bundle != capa.Bundle {
				t.Fatalf("device-%d on %s: capgo %+v (%s), capawesome %+v (%s)", i, native,
					capgo.Response, capgo.Channel, capa.Response, capa.Channel)
			}
			switch capa.Response.Version {
			case "1.2.0":
				in++
			case "1.1.0", "1.0.0":
				out++
			}
			if (capa.Response.Error == "") != (capa.Bundle != nil) {
				t.Fatalf("device-%d: answer %+v with bundle %v", i, capa.Response, capa.Bundle)
			}
			if capa.Bundle != nil && capa.Bundle.Version != capa.Response.Version {
				t.Fatalf("device-%d: offers %s but Bundle is %s", i, capa.Response.Version, capa.Bundle.Version)
			}
		}
	}
	if in == 0 || out == 0 {
		t.Errorf("%d devices in the cohort and %d outside; the test needs both", in, out)
	}
}

func TestDecideForCapawesome(t *testing.T) {
	builtin := func(st *store.State) {
		c := channelOf(st, "production")
		c.Active, c.ActiveBundle = ota.VersionBuiltin, nil
	}
	tests := []struct {
		name        string
		state       func(*store.State)
		running     string
		wantCapgo   ota.UpdateResponse // checked by Error and Version
		wantCapa    string             // error code; "" for an offer
		wantVersion string
	}{
		{name: "a plain offer is the same", running: "1.0.0",
			wantCapgo: ota.UpdateResponse{Version: "1.0.1"}, wantVersion: "1.0.1"},
		{name: "builtin target from a bundle", state: builtin, running: "1.0.1",
			wantCapgo: ota.UpdateResponse{Version: ota.VersionBuiltin}, wantCapa: ota.UpdBuiltinUnsupported, wantVersion: ota.VersionBuiltin},
		{name: "builtin target on builtin", state: builtin, running: "",
			wantCapgo: ota.UpdateResponse{Error: ota.UpdNoNewVersion}, wantCapa: ota.UpdNoNewVersion},
		{name: "encrypted bundle", state: func(st *store.State) { *st = encryptedState() }, running: "1.0.0",
			wantCapgo: ota.UpdateResponse{Error: ota.UpdEncryptionKeyRequired, Version: "1.0.1"}, wantCapa: ota.UpdEncryptionUnsupported, wantVersion: "1.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := fixtureState()
			if tt.state != nil {
				tt.state(&st)
			}
			snap := Build(st, testURL)
			req := baseRequest()
			req.VersionName = tt.running
			capgo := DecideWith(snap, &req, "", nil)
			if capgo.Response.Error != tt.wantCapgo.Error || capgo.Response.Version != tt.wantCapgo.Version {
				t.Errorf("capgo: %+v, want error %q version %q", capgo.Response, tt.wantCapgo.Error, tt.wantCapgo.Version)
			}
			capa := DecideFor(snap, PluginCapawesome, &req, "", nil)
			r := capa.Response
			if r.Error != tt.wantCapa || r.Version != tt.wantVersion {
				t.Errorf("capawesome: %+v, want error %q version %q", r, tt.wantCapa, tt.wantVersion)
			}
			if r.Error != "" && r.Kind != KindOf(r.Error) {
				t.Errorf("capawesome: kind %q for %s, want %q", r.Kind, r.Error, KindOf(r.Error))
			}
			if (r.Error == "") != (capa.Bundle != nil) {
				t.Errorf("capawesome: answer %+v with bundle %v", r, capa.Bundle)
			}
			ex := ExplainFor(snap, PluginCapawesome, &req, "", nil)
			if !reflect.DeepEqual(ex.Response, r) || len(ex.Steps) == 0 {
				t.Errorf("ExplainFor = %+v with %d steps; DecideFor said %+v", ex.Response, len(ex.Steps), r)
			}
		})
	}
}

func TestKindOfCapawesomeCodes(t *testing.T) {
	for _, code := range []string{ota.UpdBuiltinUnsupported, ota.UpdEncryptionUnsupported} {
		if k := KindOf(code); k != ota.KindBlocked {
			t.Errorf("KindOf(%s) = %s, want blocked", code, k)
		}
	}
}

// TestDecideForAllocs keeps a Capawesome check's decision as light as a
// Capgo one: a success copies the prepared answer.
func TestDecideForAllocs(t *testing.T) {
	snap := Build(fixtureState(), testURL)
	req := baseRequest()
	allocs := testing.AllocsPerRun(100, func() {
		if d := DecideFor(snap, PluginCapawesome, &req, "", nil); d.Bundle == nil {
			t.Fatal("no offer")
		}
	})
	if allocs != 0 {
		t.Errorf("DecideFor allocates %.0f times per success, want 0", allocs)
	}
}
