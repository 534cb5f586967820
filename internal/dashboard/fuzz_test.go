package dashboard

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSafeNext: whatever a login link says, the browser is sent to a
// path of the dashboard and nowhere else.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/ui/", "/ui/apps/a", "//evil", "/ui//evil", "/ui/\\evil", "https://evil/ui/", "/ui/%0d%0a", "/ui/\t/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if !strings.HasPrefix(got, "/ui/") || strings.HasPrefix(got, "/ui//") || strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" {
			t.Fatalf("safeNext(%q) = %q leaves the site (%v)", next, got, err)
		}
	})
}

// FuzzRedactURL: a webhook URL is never shown with its password or the
// values of its query.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"https://u:pw@h.example/p?token=secret", "http://h/?a=1&b=2", "https://h/%zz", "https://h/?k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := redactURL(raw)
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return
		}
		if pw, ok := u.User.Password(); ok && len(pw) > 3 && strings.Contains(got, pw) && !strings.Contains(u.Host+u.EscapedPath()+u.User.Username(), pw) {
			t.Fatalf("redactURL(%q) = %q shows the password", raw, got)
		}
		if strings.Contains(got, "?") && strings.ContainsAny(got[strings.Index(got, "?"):], "#") {
			t.Fatalf("redactURL(%q) = %q shows the fragment", raw, got)
		}
		for _, kv := range strings.Split(u.RawQuery, "&") {
			_, v, ok := strings.Cut(kv, "=")
			if ok && len(v) > 3 && !strings.Contains(u.Host+u.EscapedPath()+u.User.String(), v) && strings.Contains(got[strings.Index(got, "?"):], v) {
				t.Fatalf("redactURL(%q) = %q shows the query value %q", raw, got, v)
			}
		}
	})
}
