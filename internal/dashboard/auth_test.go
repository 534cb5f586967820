package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/pkg/ota"
)

// seedRollout gives the test app a stable channel rolling 1.1.0 out to
// half the devices over 1.0.0, and a beta channel on 2.0.0.
func seedRollout(e *env) {
	e.t.Helper()
	e.deploy(testApp, "stable", "1.0.0")
	e.deploy(testApp, "stable", "1.1.0", "rollout", "50")
	e.deploy(testApp, "beta", "2.0.0")
}

const stablePath = "/ui/apps/" + testApp + "/channels/stable"

// pages are every page of the dashboard, with the query each needs.
var allPages = []string{
	"/ui/",
	"/ui/apps/" + testApp,
	stablePath,
	stablePath + "/health?window=7d",
	stablePath + "/rollback",
	stablePath + "/promote",
	stablePath + "/rollout?do=pause",
	"/ui/apps/" + testApp + "/history?kind=upload",
	"/ui/apps/" + testApp + "/device?device_id=d1&native=1.0.0",
	"/ui/webhooks",
}

// actions are every state-changing form, with valid values.
var actions = []struct {
	path string
	form url.Values
}{
	{stablePath + "/rollback", url.Values{"to": {"1.0.0"}}},
	{stablePath + "/promote", url.Values{"from": {"beta"}}},
	{stablePath + "/rollout", url.Values{"do": {"pause"}}},
	{"/ui/logout", url.Values{}},
}

// wantUnchanged fails unless stable still rolls 1.1.0 out, unpaused.
func wantUnchanged(t *testing.T, e *env) {
	t.Helper()
	ch, err := e.api().Channel(context.Background(), testApp, "stable")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Active != "1.1.0" || ch.Rollout == nil || ch.Rollout.Paused || ch.Rollout.Percent != 50 {
		t.Fatalf("stable changed: active %s, rollout %+v", ch.Active, ch.Rollout)
	}
}

// TestRefusedWithoutSession: without a valid session every page sends
// to the login form and no action runs, even with a matching CSRF token:
// no cookie, a forged one, a CI token (which the API itself accepts), an
// expired session, a logged-out one, one from before a password change.
func TestRefusedWithoutSession(t *testing.T) {
	forged, _, _ := mustIssuer(t, []byte("another-key-0123456789abcdef-0123")).Issue(testUser, "any-user-id", 0)
	cases := []struct {
		name  string
		token func(t *testing.T, e *env) string
	}{
		{"no cookie", func(*testing.T, *env) string { return "" }},
		{"garbage", func(*testing.T, *env) string { return "not-a-token" }},
		{"forged", func(*testing.T, *env) string { return forged }},
		{"CI token", func(t *testing.T, e *env) string {
			res, err := e.api().CreateToken(context.Background(), ota.TokenCreateRequest{Name: "deploy", TTLSeconds: 86400})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mustClient(t, e, res.Token).Channels(context.Background(), testApp); err != nil {
				t.Fatalf("the CI token does not work on the API either: %v", err)
			}
			return res.Token
		}},
		{"expired", func(t *testing.T, e *env) string {
			b := e.browser()
			b.mustLogin()
			tok := b.cookie(cookieSession)
			e.clock.Advance(tokenTTL + time.Minute)
			return tok
		}},
		{"logged out", func(t *testing.T, e *env) string {
			b := e.browser()
			token := b.mustLogin()
			tok := b.cookie(cookieSession)
			a := b.post("/ui/logout", url.Values{"csrf": {token}})
			if a.StatusCode != http.StatusSeeOther || !strings.Contains(a.Header.Get("Set-Cookie"), "Max-Age=0") {
				t.Fatalf("logout: %d, Set-Cookie %q", a.StatusCode, a.Header.Get("Set-Cookie"))
			}
			return tok
		}},
		{"password changed", func(t *testing.T, e *env) string {
			b := e.browser()
			b.mustLogin()
			tok := b.cookie(cookieSession)
			hash, _ := auth.HashPassword("a new password", bcrypt.MinCost)
			if _, err := e.store.SetPassword(context.Background(), testUser, hash, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return tok
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			seedRollout(e)
			tok := tc.token(t, e)
			b := e.browser()
			if tok != "" {
				b.setCookie(cookieSession, tok)
			}
			for _, p := range allPages {
				wantLogin(t, b.get(p))
			}
			// An htmx refresh is told to load the login form.
			a := b.get(stablePath+"/health", "HX-Request", "true")
			if a.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(a.Header.Get("HX-Redirect"), "/ui/login") {
				t.Errorf("htmx refresh without a session: %d HX-Redirect %q", a.StatusCode, a.Header.Get("HX-Redirect"))
			}
			for _, act := range actions {
				form := url.Values{"csrf": {dashboardOf(t, e).csrfFor(tok)}}
				for k, v := range act.form {
					form[k] = v
				}
				wantLogin(t, b.post(act.path, form))
			}
			wantUnchanged(t, e)
		})
	}
}

func mustClient(t *testing.T, e *env, token string) *ota.Client {
	t.Helper()
	c, err := ota.NewClient(e.url, ota.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustIssuer(t *testing.T, key []byte) *auth.Issuer {
	t.Helper()
	i, err := auth.NewIssuer(key, auth.Options{TTL: time.Hour, Now: func() time.Time { return testEpoch }})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// dashboardOf builds a dashboard with the env's secret, to compute the
// CSRF token a given cookie would have.
func dashboardOf(t *testing.T, e *env) *Dashboard {
	t.Helper()
	d, err := New(Config{API: e.srv.InternalHandler(), Secret: []byte("dashboard-test-secret-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCSRF: a state-changing form runs only with its session's CSRF token
// and from this site.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	seedRollout(e)
	b := e.browser()
	token := b.mustLogin()
	other := e.browser()
	otherToken := other.mustLogin()
	if otherToken == token {
		t.Fatal("two sessions share a CSRF token")
	}
	pause := func(csrf string, header ...string) answer {
		f := url.Values{"do": {"pause"}}
		if csrf != "" {
			f.Set("csrf", csrf)
		}
		return b.post(stablePath+"/rollout", f, header...)
	}
	for name, a := range map[string]answer{
		"missing":              pause(""),
		"wrong":                pause(token[:len(token)-2] + "xx"),
		"another session's":    pause(otherToken),
		"cross-site":           pause(token, "Sec-Fetch-Site", "cross-site"),
		"from another origin":  pause(token, "Origin", "https://evil.example"),
		"same-site, not ours":  pause(token, "Sec-Fetch-Site", "same-site"),
		"logout without token": b.post("/ui/logout", url.Values{}),
	} {
		if a.StatusCode != http.StatusForbidden {
			t.Errorf("%s CSRF token: status %d, want 403", name, a.StatusCode)
		}
	}
	wantUnchanged(t, e)
	wantStatus(t, b.get("/ui/"), http.StatusOK) // the refused logout did not log out

	a := pause(token, "Sec-Fetch-Site", "same-origin", "Origin", e.url)
	if a.StatusCode != http.StatusSeeOther {
		t.Fatalf("pause with the right token: %d\n%s", a.StatusCode, a.Body)
	}
	ch, _ := e.api().Channel(context.Background(), testApp, "stable")
	if ch.Rollout == nil || !ch.Rollout.Paused {
		t.Fatalf("the rollout was not paused: %+v", ch.Rollout)
	}

	// The login form has its own token, bound to a cookie of the browser.
	fresh := e.browser()
	form := fresh.get("/ui/login")
	good := csrf(t, form.Body)
	creds := url.Values{"username": {testUser}, "password": {testPassword}}
	for name, f := range map[string]url.Values{
		"missing":  creds,
		"wrong":    with(creds, "csrf", "nope"),
		"stranger": with(creds, "csrf", csrf(t, e.browser().get("/ui/login").Body)),
	} {
		if a := fresh.post("/ui/login", f); a.StatusCode != http.StatusForbidden || fresh.cookie(cookieSession) != "" {
			t.Errorf("login with a %s token: %d, session cookie %q", name, a.StatusCode, fresh.cookie(cookieSession))
		}
		good = csrf(t, fresh.get("/ui/login").Body)
	}
	if a := fresh.post("/ui/login", with(creds, "csrf", good)); a.StatusCode != http.StatusSeeOther {
		t.Errorf("login with its token: %d\n%s", a.StatusCode, a.Body)
	}
}

func with(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for key, vs := range v {
		out[key] = vs
	}
	out.Set(k, val)
	return out
}

// setCookies returns the cookies an answer sets, by name.
func setCookies(a answer) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range a.Cookies() {
		out[c.Name] = c
	}
	return out
}

// TestCookies: the session cookie is HttpOnly and SameSite=Strict always,
// and Secure with the __Host- prefix whenever the browser is on HTTPS: an
// https public URL, or a trusted proxy that says so.
func TestCookies(t *testing.T) {
	login := func(t *testing.T, e *env, header ...string) answer {
		b := e.browser()
		form := b.get("/ui/login", header...)
		c := setCookies(form)
		var login *http.Cookie
		for _, k := range []string{cookieLogin, hostPrefix + cookieLogin} {
			if c[k] != nil {
				login = c[k]
			}
		}
		if login == nil {
			t.Fatalf("the login form set no CSRF cookie: %v", form.Header["Set-Cookie"])
		}
		header = append(header, "Cookie", login.Name+"="+login.Value)
		return b.post("/ui/login", url.Values{"csrf": {csrf(t, form.Body)}, "username": {testUser}, "password": {testPassword}}, header...)
	}
	check := func(t *testing.T, a answer, name, path string, secure bool) {
		t.Helper()
		c := setCookies(a)[name]
		if c == nil {
			t.Fatalf("no %s cookie set: %v (%d %s)", name, a.Header["Set-Cookie"], a.StatusCode, a.Body)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != secure || c.Path != path || c.Domain != "" {
			t.Errorf("%s: HttpOnly %v SameSite %v Secure %v Path %q Domain %q", name, c.HttpOnly, c.SameSite, c.Secure, c.Path, c.Domain)
		}
		if want := int(tokenTTL / time.Second); c.MaxAge < want-5 || c.MaxAge > want {
			t.Errorf("%s Max-Age = %d, want the token's lifetime %d", name, c.MaxAge, want)
		}
	}
	t.Run("http", func(t *testing.T) {
		check(t, login(t, newEnv(t)), cookieSession, "/ui", false)
	})
	t.Run("https public URL", func(t *testing.T) {
		check(t, login(t, newEnv(t, withPublicURL("https://ota.example.test"))), hostPrefix+cookieSession, "/", true)
	})
	t.Run("trusted proxy says https", func(t *testing.T) {
		check(t, login(t, newEnv(t, withTrustProxy()), "X-Forwarded-Proto", "https"), hostPrefix+cookieSession, "/", true)
	})
	t.Run("untrusted X-Forwarded-Proto", func(t *testing.T) {
		check(t, login(t, newEnv(t), "X-Forwarded-Proto", "https"), cookieSession, "/ui", false)
	})
}

// TestLogin: wrong passwords, the API's rate limits (shared with
// /api/v1/auth/login, not copied), and where the form leads.
func TestLogin(t *testing.T) {
	e := newEnv(t)
	seedRollout(e)
	b := e.browser()
	a := b.login(testUser, "wrong")
	wantStatus(t, a, http.StatusUnauthorized)
	if !strings.Contains(a.Body, "Wrong user name or password.") || b.cookie(cookieSession) != "" {
		t.Fatalf("wrong password: %s", a.Body)
	}
	wantStatus(t, b.login("nobody", "wrong"), http.StatusUnauthorized)
	for i := 0; i < 4; i++ {
		b.login(testUser, "wrong")
	}
	// Five wrong attempts for one user name: the sixth is limited, by the
	// same limiter the API uses.
	a = b.login(testUser, testPassword)
	wantStatus(t, a, http.StatusTooManyRequests)
	if !strings.Contains(a.Body, "too many login attempts") {
		t.Errorf("rate limited login says:\n%s", a.Body)
	}
	_, err := mustClient(t, e, "").Login(context.Background(), testUser, testPassword)
	if apiStatus(err) != http.StatusTooManyRequests {
		t.Errorf("the API's login after the dashboard's attempts: %v, want 429", err)
	}
	e.clock.Advance(time.Minute)

	// The form goes back where the browser was going, never elsewhere.
	for next, want := range map[string]string{
		stablePath:                stablePath,
		"//evil.example/ui/":      "/ui/",
		"https://evil.example/ui": "/ui/",
		"/ui//evil.example":       "/ui/",
		"/api/v1/backup":          "/ui/",
	} {
		b := e.browser()
		form := b.get("/ui/login?next=" + url.QueryEscape(next))
		a := b.post("/ui/login", url.Values{"csrf": {csrf(t, form.Body)}, "username": {testUser}, "password": {testPassword}, "next": {next}})
		if a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != want {
			t.Errorf("next %q: %d to %q, want %q", next, a.StatusCode, a.Header.Get("Location"), want)
		}
		// Logged in, the form sends on at once.
		if a := b.get("/ui/login?next=" + url.QueryEscape(stablePath)); a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != stablePath {
			t.Errorf("login form while logged in: %d %q", a.StatusCode, a.Header.Get("Location"))
		}
	}
	if !strings.Contains(e.logs.String(), "dashboard login") {
		t.Error("logins are not logged")
	}
}
