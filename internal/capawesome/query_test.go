package capawesome

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	full := Query{AppVersionCode: "1", AppVersionName: "1.0.0", BundleID: "1.0.3+b.5", ChannelName: "beta",
		CustomID: "a b+c&d", DeviceID: "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11", OSVersion: "34", Platform: "0", PluginVersion: "8.4.1"}
	tests := []struct {
		name, raw, header string
		want              Query
		wantErr           string
	}{
		{name: "android with bare keys",
			raw:  "appVersionCode=1&appVersionName=1.0.0&bundleId&channelName&customId&deviceId=abc&osVersion=34&platform=0&pluginVersion=8.4.1",
			want: Query{AppVersionCode: "1", AppVersionName: "1.0.0", DeviceID: "abc", OSVersion: "34", Platform: "0", PluginVersion: "8.4.1"}},
		{name: "escapes, '+' kept",
			raw:  "appVersionCode=1&appVersionName=1.0.0&bundleId=1.0.3%2Bb.5&channelName=beta&customId=a%20b+c%26d&deviceId=6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11&osVersion=34&platform=0&pluginVersion=8.4.1",
			want: full},
		{name: "ios order, header ignored when the query has the device",
			raw: "platform=1&deviceId=abc&appVersionName=2.0", header: "other",
			want: Query{AppVersionName: "2.0", DeviceID: "abc", Platform: "1"}},
		{name: "device from the header", raw: "platform=1", header: "ABC-1", want: Query{DeviceID: "ABC-1", Platform: "1"}},
		{name: "unknown keys and empty pieces", raw: "&&future=x&platform=0&&x", want: Query{Platform: "0"}},
		{name: "empty value is unset", raw: "platform=0&bundleId=", want: Query{Platform: "0"}},
		{name: "no platform", raw: "deviceId=abc", wantErr: "platform is missing"},
		{name: "platform 2", raw: "platform=2", wantErr: "not 0 (Android) or 1 (iOS)"},
		{name: "twice", raw: "platform=0&platform=0", wantErr: "given twice"},
		{name: "bare twice", raw: "platform=0&bundleId&bundleId", wantErr: "given twice"},
		{name: "bad escape", raw: "platform=0&bundleId=%g1", wantErr: "malformed escape"},
		{name: "escape at the end", raw: "platform=0&bundleId=%2", wantErr: "malformed escape"},
		{name: "bad key escape", raw: "platform=0&%=1", wantErr: "malformed escape"},
		{name: "not UTF-8", raw: "platform=0&customId=%C3", wantErr: "UTF-8"},
		{name: "long value", raw: "platform=0&customId=" + strings.Repeat("x", 513), wantErr: "limit is 512"},
		{name: "long query", raw: "platform=0&" + strings.Repeat("y", maxQueryLen), wantErr: "limit is 8192"},
		{name: "bad device", raw: "platform=0&deviceId=a/b", wantErr: "device id"},
		{name: "device starts with a dash", raw: "platform=0&deviceId=-a", wantErr: "device id"},
		{name: "long header", raw: "platform=0", header: strings.Repeat("a", 129), wantErr: "limit is 128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseQuery(tt.raw, tt.header)
			if tt.wantErr != "" {
				var qe *QueryError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &qe) {
					t.Fatalf("ParseQuery = %+v, %v; want a QueryError with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseQuery = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestQueryRequest(t *testing.T) {
	q := Query{AppVersionCode: "7", AppVersionName: "1.4.0", BundleID: "1.4.2", ChannelName: "beta", CustomID: "c",
		DeviceID: "AbC", OSVersion: "17.5", Platform: "1", PluginVersion: "8.4.1"}
	r := q.Request("com.example.app")
	if r.Platform != "ios" || r.DeviceID != "abc" || r.AppID != "com.example.app" || r.VersionBuild != "1.4.0" ||
		r.VersionCode != "7" || r.VersionName != "1.4.2" || r.DefaultChannel != "beta" || r.PluginVersion != "8.4.1" ||
		r.VersionOS != "17.5" || r.CustomID != "c" || r.IsProd != nil || r.IsEmulator != nil || r.KeyID != "" {
		t.Errorf("Request = %+v", r)
	}
	q.Platform = "0"
	if r := q.Request("a"); r.Platform != "android" {
		t.Errorf("platform 0 → %q", r.Platform)
	}
}

func TestUnescapeDoesNotCopy(t *testing.T) {
	s := "6aa0b2a5-2c3e-4d5b"
	allocs := testing.AllocsPerRun(100, func() {
		if v, err := unescape(s); err != nil || v != s {
			t.Fatal(v, err)
		}
	})
	if allocs != 0 {
		t.Errorf("unescape of a plain value allocates %.0f times", allocs)
	}
}

// encodeQuery writes q as a platform would: Android with every key (unset
// bare) and escapes for everything outside the unreserved set, iOS with set
// keys only and '+' left as it is.
func encodeQuery(q Query, android bool) string {
	pairs := [][2]string{
		{"appVersionCode", q.AppVersionCode}, {"appVersionName", q.AppVersionName}, {"bundleId", q.BundleID},
		{"channelName", q.ChannelName}, {"customId", q.CustomID}, {"deviceId", q.DeviceID},
		{"osVersion", q.OSVersion}, {"platform", q.Platform}, {"pluginVersion", q.PluginVersion},
	}
	var parts []string
	for _, p := range pairs {
		switch {
		case android && p[1] == "":
			parts = append(parts, p[0])
		case android:
			parts = append(parts, p[0]+"="+escape(p[1], false))
		case p[1] != "":
			parts = append(parts, p[0]+"="+escape(p[1], true))
		}
	}
	if !android {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	return strings.Join(parts, "&")
}

// escape percent-encodes all but unreserved characters, and '+' too
// unless keepPlus (as iOS leaves it).
func escape(s string, keepPlus bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 || keepPlus && c == '+' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// FuzzParseQuery feeds the parser arbitrary query strings: it must not
// panic, whatever it accepts must survive being written in either
// platform's form and read again, and where '+' and ';' play no part it
// must agree with net/url on every value.
func FuzzParseQuery(f *testing.F) {
	f.Add("appVersionCode=1&appVersionName=1.0.0&bundleId&channelName&customId&deviceId=6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11&osVersion=34&platform=0&pluginVersion=8.4.1", "")
	f.Add("pluginVersion=8.4.1&platform=1&deviceId=abc&bundleId=1.0.3+b&customId=a%20b", "")
	f.Add("platform=0&bundleId=%2B%25%26", "HDR")
	f.Add("platform=1&&&=&%41=%42", "x")
	f.Add("platform=0&customId=%C3%A9", "")
	f.Fuzz(func(t *testing.T, raw, header string) {
		q, err := ParseQuery(raw, header)
		if err != nil {
			var qe *QueryError
			if !errors.As(err, &qe) {
				t.Fatalf("error %v is not a QueryError", err)
			}
			return
		}
		r := q.Request("com.example.app")
		if r.Platform != "android" && r.Platform != "ios" {
			t.Fatalf("accepted platform %q", q.Platform)
		}
		for _, android := range []bool{true, false} {
			enc := encodeQuery(q, android)
			back, err := ParseQuery(enc, "")
			if q.DeviceID == "" {
				back.DeviceID = ""
			}
			if err != nil && len(enc) <= maxQueryLen {
				t.Fatalf("%+v written as %q (android %t) does not parse: %v", q, enc, android, err)
			}
			if err == nil && back != q {
				t.Fatalf("%+v written as %q (android %t) reads back as %+v", q, enc, android, back)
			}
		}
		if strings.ContainsAny(raw, "+;") {
			return
		}
		vals, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for key, got := range map[string]string{"appVersionCode": q.AppVersionCode, "appVersionName": q.AppVersionName,
			"bundleId": q.BundleID, "channelName": q.ChannelName, "customId": q.CustomID, "osVersion": q.OSVersion,
			"platform": q.Platform, "pluginVersion": q.PluginVersion} {
			if want := vals.Get(key); want != got {
				t.Fatalf("%s: net/url reads %q, ParseQuery %q (raw %q)", key, want, got, raw)
			}
		}
	})
}
