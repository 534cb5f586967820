package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/otaship/ota/internal/capacitor"
	"github.com/otaship/ota/pkg/ota"
)

// nativeFingerprint reads the project's native side in the wire form.
func nativeFingerprint(dir string) (*ota.NativeFingerprint, error) {
	fp, err := capacitor.NativeFingerprint(dir)
	if err != nil {
		return nil, err
	}
	return &ota.NativeFingerprint{Capacitor: fp.Capacitor, Plugins: fp.Plugins}, nil
}

// newestNativeAPK is the most recently uploaded APK of the app that recorded its
// native fingerprint, nil when there is none.
func newestNativeAPK(bundles []ota.Bundle) *ota.Bundle {
	var best *ota.Bundle
	for i := range bundles {
		b := &bundles[i]
		if b.Kind != ota.KindAPK || b.Deleted || b.Native == nil {
			continue
		}
		if best == nil || b.UploadedAt.After(best.UploadedAt) {
			best = b
		}
	}
	return best
}

// checkNative compares the project's native fingerprint with the newest
// APK's and refuses a web bundle that needs native code the APK lacks,
// unless force is set; then forced explains the override for the history.
func checkNative(ctx context.Context, f *Factory, client *ota.Client, app, dir string, force bool) (native *ota.NativeFingerprint, forced string, err error) {
	native, err = nativeFingerprint(dir)
	if err != nil {
		if force {
			fmt.Fprintf(f.IO.ErrOut, "warning: %v; native compatibility not checked (--force)\n", err)
			return nil, "native fingerprint unreadable", nil
		}
		return nil, "", fmt.Errorf("check native compatibility: %w (--force uploads without the check)", err)
	}
	bundles, err := client.Bundles(ctx, app)
	var apiErr *ota.APIError
	if errors.As(err, &apiErr) && apiErr.Code == ota.ErrCodeAppNotFound {
		bundles, err = nil, nil // the first upload creates the app
	}
	if err != nil {
		return nil, "", fmt.Errorf("list the APKs of %s to check native compatibility: %w", app, err)
	}
	apk := newestNativeAPK(bundles)
	if apk == nil {
		fmt.Fprintf(f.IO.ErrOut, "note: no APK of %s recorded its native plugins; native compatibility not checked\n", app)
		return native, "", nil
	}
	missing := native.MissingFrom(*apk.Native)
	if len(missing) == 0 {
		return native, "", nil
	}
	list := "  - needs " + strings.Join(missing, "\n  - needs ")
	if !force {
		return nil, "", fmt.Errorf("this web bundle cannot run on the newest APK (%s):\n%s\n"+
			"devices would call native code they do not have; ship a new APK first (otactl deploy apk), "+
			"or pass --force if the bundle guards these calls", apk.Version, list)
	}
	fmt.Fprintf(f.IO.ErrOut, "warning: uploading despite native differences with APK %s (--force):\n%s\n", apk.Version, list)
	return native, fmt.Sprintf("APK %s: needs %s", apk.Version, strings.Join(missing, "; ")), nil
}
