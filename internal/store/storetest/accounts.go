package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

func testTokens(t *testing.T, f *fixture) {
	ctx := t.Context()
	epoch := f.tick()
	if ts, err := f.s.ListTokens(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("ListTokens on a new store = %v, %v; want none", ts, err)
	}
	if _, err := f.s.GetToken(ctx, "0123456789abcdef"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetToken on a new store: %v, want ErrNotFound", err)
	}
	if _, err := f.s.RevokeToken(ctx, "0123456789abcdef", epoch); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RevokeToken on a new store: %v, want ErrNotFound", err)
	}
	a := store.CIToken{ID: "aaaa", Name: "ci", SecretHash: []byte{1, 2, 3}, AppID: "com.x", Channel: "beta",
		CreatedBy: "alice", CreatedAt: epoch.Add(time.Minute), ExpiresAt: epoch.Add(time.Hour)}
	b := store.CIToken{ID: "bbbb", Name: "old", SecretHash: []byte{4}, CreatedBy: "alice", CreatedAt: epoch, ExpiresAt: epoch.Add(time.Hour)}
	for _, tk := range []store.CIToken{a, b} {
		if err := f.s.CreateToken(ctx, tk); err != nil {
			t.Fatalf("create %s: %v", tk.ID, err)
		}
	}
	wantErr(t, "create a duplicate id", f.s.CreateToken(ctx, a), store.ErrConflict)
	for _, bad := range []store.CIToken{{Name: "x", SecretHash: []byte{1}}, {ID: "c", SecretHash: []byte{1}}, {ID: "c", Name: "x"}} {
		wantErr(t, fmt.Sprintf("create %+v", bad), f.s.CreateToken(ctx, bad), store.ErrInvalid)
	}
	ts, err := f.s.ListTokens(ctx)
	if err != nil || len(ts) != 2 || ts[0].ID != "bbbb" || ts[1].ID != "aaaa" {
		t.Fatalf("ListTokens = %+v, %v; want bbbb then aaaa (oldest first)", ts, err)
	}
	r1, err := f.s.RevokeToken(ctx, "aaaa", epoch.Add(2*time.Minute))
	if err != nil || !r1.RevokedAt.Equal(epoch.Add(2*time.Minute)) {
		t.Fatalf("revoke = %+v, %v", r1, err)
	}
	r2, err := f.s.RevokeToken(ctx, "aaaa", epoch.Add(time.Hour))
	if err != nil || !r2.RevokedAt.Equal(r1.RevokedAt) {
		t.Errorf("second revoke = %+v, %v; want the first time kept", r2, err)
	}
	got, err := f.s.GetToken(ctx, "aaaa")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "ci" || got.AppID != "com.x" || got.Channel != "beta" || string(got.SecretHash) != "\x01\x02\x03" ||
		got.CreatedBy != "alice" || !got.CreatedAt.Equal(a.CreatedAt) || !got.ExpiresAt.Equal(a.ExpiresAt) || !got.RevokedAt.Equal(r1.RevokedAt) {
		t.Errorf("stored token = %+v", got)
	}
	if got, err := f.s.GetToken(ctx, "bbbb"); err != nil || !got.RevokedAt.IsZero() {
		t.Errorf("token never revoked = %+v, %v; want no revocation time", got, err)
	}
}

func testWebhooks(t *testing.T, f *fixture) {
	ctx := t.Context()
	epoch := f.tick()
	if ws, err := f.s.ListWebhooks(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("list on a new store = %v, %v", ws, err)
	}
	_, err := f.s.Deliveries(ctx, "wh1", 10)
	wantErr(t, "deliveries of a missing webhook", err, store.ErrNotFound)
	wantErr(t, "delete of a missing webhook", f.s.DeleteWebhook(ctx, "wh1"), store.ErrNotFound)
	_, err = f.s.GetWebhook(ctx, "wh1")
	wantErr(t, "get of a missing webhook", err, store.ErrNotFound)

	w1 := store.StoredWebhook{Secret: "s1", Webhook: ota.Webhook{ID: "wh1", URL: "https://a.example/h", CreatedBy: "alice", CreatedAt: epoch.Add(time.Minute)}}
	w2 := store.StoredWebhook{Secret: "s2", Webhook: ota.Webhook{ID: "wh0", URL: "https://b.example/h", AppID: "app",
		Events: []string{ota.EventHalt}, CreatedAt: epoch}}
	for _, w := range []store.StoredWebhook{w1, w2} {
		if err := f.s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "second create of wh1", f.s.CreateWebhook(ctx, w1), store.ErrConflict)
	ws, err := f.s.ListWebhooks(ctx)
	if err != nil || len(ws) != 2 || ws[0].ID != "wh0" || ws[1].ID != "wh1" || ws[0].Secret != "s2" ||
		!reflect.DeepEqual(ws[0].Events, []string{ota.EventHalt}) || ws[0].AppID != "app" {
		t.Fatalf("list = %+v, %v; want wh0 then wh1 (creation order) with secrets", ws, err)
	}
	if got, err := f.s.GetWebhook(ctx, "wh1"); err != nil || got.Secret != "s1" || got.URL != w1.URL ||
		got.CreatedBy != "alice" || !got.CreatedAt.Equal(w1.CreatedAt) {
		t.Errorf("get = %+v, %v; want %+v", got, err, w1)
	}

	const keep = 3
	for i := 1; i <= 5; i++ {
		d := ota.WebhookDelivery{WebhookID: "wh1", EventID: fmt.Sprint(i), EventType: ota.EventUpload, Attempt: i,
			Time: epoch.Add(time.Duration(i) * time.Second), Status: 500 + i, Error: "boom", DurationMS: int64(i)}
		if err := f.s.AppendDelivery(ctx, d, keep); err != nil {
			t.Fatal(err)
		}
	}
	// A delivery for a webhook deleted meanwhile is dropped, not an error.
	if err := f.s.AppendDelivery(ctx, ota.WebhookDelivery{WebhookID: "gone"}, keep); err != nil {
		t.Errorf("delivery of a deleted webhook: %v", err)
	}
	ds, err := f.s.Deliveries(ctx, "wh1", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.EventID)
	}
	want := ota.WebhookDelivery{WebhookID: "wh1", EventID: "5", EventType: ota.EventUpload, Attempt: 5,
		Time: epoch.Add(5 * time.Second), Status: 505, Error: "boom", DurationMS: 5}
	if fmt.Sprint(ids) != "[5 4 3]" || !reflect.DeepEqual(ds[0], want) {
		t.Errorf("log = %v (%+v), want the newest 3, newest first, the first %+v", ids, ds[0], want)
	}
	if ds, err := f.s.Deliveries(ctx, "wh1", 2); err != nil || len(ds) != 2 || ds[0].EventID != "5" {
		t.Errorf("two newest deliveries = %+v, %v", ds, err)
	}
	if ds, err := f.s.Deliveries(ctx, "wh0", 0); err != nil || len(ds) != 0 {
		t.Errorf("log of a webhook never called = %v, %v; want empty", ds, err)
	}

	// Delete removes the webhook and its log.
	if err := f.s.DeleteWebhook(ctx, "wh1"); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.GetWebhook(ctx, "wh1")
	wantErr(t, "get after delete", err, store.ErrNotFound)
	if err := f.s.CreateWebhook(ctx, w1); err != nil {
		t.Fatal(err)
	}
	if ds, err := f.s.Deliveries(ctx, "wh1", 0); err != nil || len(ds) != 0 {
		t.Errorf("log of a re-created webhook = %v, %v; want it empty", ds, err)
	}
}

// testBundleFields: every field a caller sets on ota.Bundle survives
// Publish and reads back from GetBundle, ListBundles and the channel's
// active bundle. A field added to ota.Bundle fails here until the store
// keeps it.
func testBundleFields(t *testing.T, f *fixture) {
	in := ota.Bundle{AppID: "a", Version: "1.0.0", Kind: ota.KindWeb, SHA256: Sum("fields")}
	// Fields the store sets or derives itself.
	// Files is the length of the manifest stored with the bundle.
	derived := map[string]bool{"AppID": true, "Version": true, "Kind": true, "SHA256": true, "UploadedAt": true, "URL": true, "Deleted": true, "Files": true}
	v := reflect.ValueOf(&in).Elem()
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		if derived[name] {
			continue
		}
		fill(t, name, v.Field(i), i)
	}
	res, err := f.s.Publish(t.Context(), store.PublishInput{Bundle: in, Channel: "stable", Actor: actor, Time: f.tick()})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	want := in
	want.UploadedAt = *f.now
	list, err := f.s.ListBundles(t.Context(), "a")
	if err != nil || len(list) != 1 {
		t.Fatalf("list bundles = %v, %v", list, err)
	}
	for what, got := range map[string]*ota.Bundle{
		"the result of publish": &res.Bundle, "GetBundle": ptr(f.bundle("a", ota.KindWeb, "1.0.0")),
		"ListBundles": &list[0], "the active bundle": f.channel("a", "stable").ActiveBundle,
	} {
		if got == nil || !reflect.DeepEqual(*got, want) {
			t.Errorf("%s = %+v\nwant %+v", what, got, want)
		}
	}
}

// fill sets v, a field named name, to a value that is not its zero, made
// from seed.
func fill(t *testing.T, name string, v reflect.Value, seed int) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("%s-%d", name, seed))
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(1000 + seed))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Float64:
		v.SetFloat(float64(seed) + 0.5)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(t, name, s.Index(i), seed*10+i)
		}
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, name, p.Elem(), seed)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, seed, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(t, name+"."+v.Type().Field(i).Name, v.Field(i), seed*10+i)
			}
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, name, k, seed)
		fill(t, name, e, seed+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	default:
		t.Fatalf("field %s has kind %s, which fill does not know: teach it", name, v.Kind())
	}
}
