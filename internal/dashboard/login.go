package dashboard

import (
	"net/http"
	"strings"
	"time"
)

// loginData is what the login form shows.
type loginData struct {
	Next     string
	Username string
	Error    string
	Notice   string
	Insecure bool // served over plain HTTP: say the password travels in clear
}

func (d *Dashboard) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	data := loginData{Next: safeNext(r.URL.Query().Get("next")), Insecure: !d.secure(r) && !isLoopback(r)}
	if r.URL.Query().Get("out") == "1" {
		data.Notice = "You are logged out."
	}
	// A browser that still has a session goes where it was going.
	if _, err := d.session(w, r); err == nil {
		http.Redirect(w, r, data.Next, http.StatusSeeOther)
		return
	}
	d.render(w, r, nil, http.StatusOK, "login", page{Title: "Log in", Data: data, CSRF: d.loginCSRF(w, r)})
}

// handleLogin checks the form through the API's own login endpoint, in
// process: the same users, the same password check, and the same rate
// limits per address and per user (whatever they become), with nothing
// copied here. The token it returns is the session.
func (d *Dashboard) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	data := loginData{Next: safeNext(r.PostFormValue("next")), Username: r.PostFormValue("username"),
		Insecure: !d.secure(r) && !isLoopback(r)}
	fail := func(status int, msg string) {
		data.Error = msg
		d.render(w, r, nil, status, "login", page{Title: "Log in", Data: data, CSRF: d.loginCSRF(w, r)})
	}
	if !d.checkLoginCSRF(r) {
		d.log.Warn("dashboard login refused without its CSRF token", "request_id", w.Header().Get("X-Request-Id"))
		fail(http.StatusForbidden, "The login form expired. Please try again.")
		return
	}
	user, password := strings.TrimSpace(data.Username), r.PostFormValue("password")
	if user == "" || password == "" {
		fail(http.StatusBadRequest, "Enter your user name and password.")
		return
	}
	res, err := d.apiClient(r, w, "").Login(r.Context(), user, password)
	switch st := apiStatus(err); {
	case st == http.StatusUnauthorized:
		fail(http.StatusUnauthorized, "Wrong user name or password.")
		return
	case st == http.StatusTooManyRequests:
		_, msg := errorPage(err)
		fail(http.StatusTooManyRequests, msg)
		return
	case st >= 400 && st < 500:
		_, msg := errorPage(err)
		fail(st, msg)
		return
	case err != nil:
		d.log.Error("dashboard login failed", "err", err, "request_id", w.Header().Get("X-Request-Id"))
		fail(http.StatusInternalServerError, "The server could not check the login; its log has the details.")
		return
	}
	ttl := res.ExpiresAt.Sub(d.cfg.Now())
	if ttl <= 0 {
		ttl = time.Minute
	}
	d.setCookie(w, r, cookieSession, res.Token, ttl)
	d.setCookie(w, r, cookieLogin, "", -1)
	d.log.Info("dashboard login", "user", user, "request_id", w.Header().Get("X-Request-Id"))
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
}

// handleLogout ends the session: its token is refused from now on (by this
// otad) and the browser deletes its cookie.
func (d *Dashboard) handleLogout(w http.ResponseWriter, r *http.Request, s *session) error {
	d.revoked.add(s.token, s.exp, d.cfg.Now())
	d.setCookie(w, r, cookieSession, "", -1)
	d.log.Info("dashboard logout", "user", s.user, "request_id", w.Header().Get("X-Request-Id"))
	http.Redirect(w, r, "/ui/login?out=1", http.StatusSeeOther)
	return nil
}

// isLoopback reports whether the browser is on this machine, where plain
// HTTP does not expose the password.
func isLoopback(r *http.Request) bool {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.Trim(host, "[]")
	return host == "127.0.0.1" || host == "::1" || strings.HasPrefix(host, "127.")
}
