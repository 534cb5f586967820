package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/otaship/ota/pkg/ota"
)

// Actions change what devices get, so each is two steps: a page that says
// exactly what will happen (GET, harmless), and its form, posted with the
// session's CSRF token, which calls the API. The API does the work as it
// does for otactl: the same store call, an event in the history with the
// user's name, and the channel's rules (a refusal is shown as the API
// words it).

// confirmPage is an action's confirmation.
type confirmPage struct {
	App, Channel string
	Action       string // rollback, promote, rollout
	Ch           ota.Channel
	Summary      string // what will happen, in a sentence
	Danger       bool
	Button       string
	// Choices for the form.
	To       string   // rollback target
	Targets  []string // versions to roll back to
	From     string   // promote source
	Sources  []option
	Do       string // rollout action
	Percent  int
	Error    string
	CanApply bool
}

type option struct {
	Value, Label string
}

func channelURL(app, channel string) string {
	return "/ui/apps/" + url.PathEscape(app) + "/channels/" + url.PathEscape(channel)
}

// prepare fills the confirmation of the action from the channel's state
// and the request's choices (query or form).
func (d *Dashboard) prepare(r *http.Request, c *ota.Client, action string, ch ota.Channel, get func(string) string) (*confirmPage, error) {
	ctx := r.Context()
	p := &confirmPage{App: ch.AppID, Channel: ch.Name, Action: action, Ch: ch, CanApply: true}
	switch action {
	case "rollback":
		p.Danger, p.Button = true, "Roll back"
		seen := map[string]bool{ch.Active: true}
		for i := len(ch.Releases) - 1; i >= 0; i-- {
			if v := ch.Releases[i].Version; !seen[v] {
				seen[v] = true
				p.Targets = append(p.Targets, v)
			}
		}
		if ch.Kind == ota.KindWeb && ch.Active != ota.VersionBuiltin {
			p.Targets = append(p.Targets, ota.VersionBuiltin)
		}
		p.To = get("to")
		if p.To == "" {
			p.To = previousRelease(&ch)
		}
		if p.To == "" && len(p.Targets) > 0 {
			p.To = p.Targets[0] // nothing before the active one: the built-in bundle
		}
		switch {
		case len(p.Targets) == 0:
			p.CanApply = false
			p.Summary = fmt.Sprintf("Channel %s has no earlier release to roll back to.", ch.Name)
		case p.To == ota.VersionBuiltin:
			p.Summary = fmt.Sprintf("Devices on %s will be sent back to the bundle built into the app, instead of %s.", ch.Name, orDash(ch.Active))
		default:
			p.Summary = fmt.Sprintf("Channel %s will serve %s instead of %s to every device, right away.", ch.Name, p.To, orDash(ch.Active))
		}
	case "promote":
		p.Button = "Promote"
		chs, err := c.Channels(ctx, ch.AppID)
		if err != nil {
			return nil, err
		}
		for _, o := range chs {
			if o.Name != ch.Name && o.Kind == ch.Kind && o.Active != "" && o.Active != ota.VersionBuiltin {
				p.Sources = append(p.Sources, option{o.Name, o.Name + " (" + o.Active + ")"})
				if p.From == "" || o.Name == get("from") {
					p.From = o.Name
					p.Summary = fmt.Sprintf("Channel %s will serve %s, which %s serves now, instead of %s.", ch.Name, o.Active, o.Name, orDash(ch.Active))
				}
			}
		}
		if len(p.Sources) == 0 {
			p.CanApply = false
			p.Summary = "No other channel of this app has a release to promote."
		}
	case "rollout":
		p.Do = get("do")
		switch p.Do {
		case ota.RolloutPause, ota.RolloutResume, ota.RolloutComplete, ota.RolloutSet:
		default:
			return nil, &httpError{status: http.StatusNotFound, msg: "Unknown rollout change; use pause, resume, complete or set."}
		}
		r := ch.Rollout
		if !r.InEffect(ch.Active) || r.Halted {
			p.CanApply = false
			p.Summary = fmt.Sprintf("Channel %s has no staged rollout of %s to change.", ch.Name, orDash(ch.Active))
			break
		}
		p.Percent = r.Percent
		switch p.Do {
		case ota.RolloutPause:
			p.Button = "Pause"
			p.Summary = fmt.Sprintf("Devices that do not run %s yet will stop being offered it; the %d %% that may have it keep it.", r.Target, r.Percent)
		case ota.RolloutResume:
			p.Button = "Resume"
			p.Summary = fmt.Sprintf("%s will be offered to %d %% of devices again.", r.Target, r.Percent)
		case ota.RolloutComplete:
			p.Button = "Release to everyone"
			p.Summary = fmt.Sprintf("%s will be offered to every device on %s.", r.Target, ch.Name)
		case ota.RolloutSet:
			p.Button = "Change"
			if n, err := strconv.Atoi(strings.TrimSpace(get("percent"))); err == nil {
				p.Percent = n
			}
			p.Summary = fmt.Sprintf("%s will be offered to %d %% of devices (now %d %%).", r.Target, p.Percent, r.Percent)
		}
	default:
		return nil, &httpError{status: http.StatusNotFound, msg: "There is no such page."}
	}
	return p, nil
}

func (d *Dashboard) handleConfirm(w http.ResponseWriter, r *http.Request, s *session) error {
	c := d.apiClient(r, w, s.token)
	ch, err := c.Channel(r.Context(), r.PathValue("app"), r.PathValue("channel"))
	if err != nil {
		return err
	}
	p, err := d.prepare(r, c, r.PathValue("action"), ch, r.URL.Query().Get)
	if err != nil {
		return err
	}
	d.render(w, r, s, http.StatusOK, "confirm", page{Title: p.Button + " · " + ch.Name, Nav: "apps", App: ch.AppID, Data: p})
	return nil
}

// handleAction carries out a confirmed action through the API and goes
// back to the channel (POST, redirect, GET: reloading the page does not
// repeat the action).
func (d *Dashboard) handleAction(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	c := d.apiClient(r, w, s.token)
	app, name, action := r.PathValue("app"), r.PathValue("channel"), r.PathValue("action")
	ch, err := c.Channel(ctx, app, name)
	if err != nil {
		return err
	}
	p, err := d.prepare(r, c, action, ch, r.PostFormValue)
	if err != nil {
		return err
	}
	var done string
	switch action {
	case "rollback":
		var change ota.ChannelChange
		if change, err = c.Rollback(ctx, app, name, r.PostFormValue("to")); err == nil {
			done = fmt.Sprintf("Rolled %s back from %s to %s.", name, orDash(change.From), change.To)
		}
	case "promote":
		var change ota.ChannelChange
		if change, err = c.Promote(ctx, app, name, ota.PromoteRequest{From: r.PostFormValue("from")}); err == nil {
			done = fmt.Sprintf("Promoted %s to %s (it served %s).", change.To, name, orDash(change.From))
		}
	case "rollout":
		req := ota.RolloutRequest{Action: p.Do}
		if p.Do == ota.RolloutSet {
			if req.Percent, err = strconv.Atoi(strings.TrimSpace(r.PostFormValue("percent"))); err != nil {
				err = &httpError{status: http.StatusBadRequest, msg: "The percent must be a whole number from 1 to 100."}
				break
			}
		}
		var updated ota.Channel
		if updated, err = c.SetRollout(ctx, app, name, req); err == nil {
			st, _ := rolloutState(&updated)
			done = fmt.Sprintf("Rollout of %s on %s: %s.", orDash(updated.Active), name, st)
		}
	}
	if status, msg := errorPage(err); err != nil && status < 500 {
		p.Error = msg
		d.render(w, r, s, status, "confirm", page{Title: p.Button + " · " + name, Nav: "apps", App: app, Data: p})
		return nil
	}
	if err != nil {
		return err
	}
	d.log.Info("dashboard action", "user", s.user, "app", app, "channel", name, "action", action,
		"request_id", w.Header().Get("X-Request-Id"))
	d.setFlash(w, r, done)
	http.Redirect(w, r, channelURL(app, name), http.StatusSeeOther)
	return nil
}
