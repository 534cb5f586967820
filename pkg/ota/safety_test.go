package ota

import (
	"reflect"
	"testing"
)

func TestMissingFrom(t *testing.T) {
	apk := NativeFingerprint{Capacitor: "7.2.0", Plugins: []string{"@capacitor/app@7.0.0", "@capgo/capacitor-updater@7.17.0"}}
	tests := []struct {
		name string
		web  NativeFingerprint
		want []string
	}{
		{"same", apk, nil},
		{"subset and minor Capacitor difference", NativeFingerprint{Capacitor: "7.4.1", Plugins: []string{"@capacitor/app@7.0.0"}}, nil},
		{"plugin missing", NativeFingerprint{Capacitor: "7.2.0", Plugins: []string{"@capacitor/camera@7.0.1"}},
			[]string{"native plugin @capacitor/camera@7.0.1, which the APK lacks"}},
		{"plugin at another version", NativeFingerprint{Plugins: []string{"@capacitor/app@7.1.0"}},
			[]string{"native plugin @capacitor/app@7.1.0, but the APK has @capacitor/app@7.0.0"}},
		{"Capacitor major", NativeFingerprint{Capacitor: "8.0.0"}, []string{"Capacitor 8.0.0, but the APK has 7.2.0"}},
		{"unknown Capacitor is not a mismatch", NativeFingerprint{Capacitor: ""}, nil},
	}
	for _, tt := range tests {
		if got := tt.web.MissingFrom(apk); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: MissingFrom = %q; want %q", tt.name, got, tt.want)
		}
	}
}
