package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/testengine"
	"github.com/otaship/ota/pkg/ota"
)

// Screenshots are written to docs/img only when asked for, so a test run
// never changes the repository by accident.
const envScreenshots = "OTA_UPDATE_SCREENSHOTS"

// Viewports of the screenshots: a phone and a laptop.
var viewports = []struct {
	name          string
	width, height int64
	mobile        bool
}{
	{"phone", 390, 844, true},
	{"desktop", 1280, 900, false},
}

// chromium starts a headless Chromium with a fresh profile and returns a
// browser context, and a func listing the page's console errors (CSP
// violations are among them).
func chromium(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path := testengine.Chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	// The listener must hear errors, or a CSP violation would pass
	// unnoticed: make one and wait for it.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`console.error("otad self-check")`)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		heard := slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "otad self-check") })
		if heard {
			problems = nil
		}
		mu.Unlock()
		if heard {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the console listener does not hear console.error")
		}
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// screenshot saves a PNG of the page (sel "") or of one element, at a
// viewport, under docs/img when OTA_UPDATE_SCREENSHOTS=1 and in the test's
// temporary directory otherwise.
func screenshot(t *testing.T, ctx context.Context, name, sel string, vp int) {
	t.Helper()
	v := viewports[vp]
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if v.mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(v.width, v.height, opts...), chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatalf("viewport %s: %v", v.name, err)
	}
	var png []byte
	var err error
	if sel == "" {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel), chromedp.NodeVisible))
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	dir := t.TempDir()
	if os.Getenv(envScreenshots) == "1" {
		dir = filepath.Join("..", "..", "docs", "img")
	}
	file := filepath.Join(dir, fmt.Sprintf("dashboard-%s-%s.png", name, v.name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", file, len(png))
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
}

// text reads the text of the first element matching a CSS selector.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestBrowser drives the dashboard in a real headless Chromium: log in,
// see what a channel serves, watch its health chart follow device
// traffic, roll it back and see /updates change, log out and be refused.
func TestBrowser(t *testing.T) {
	e := newEnv(t, withRefresh(time.Second))
	e.deploy(testApp, "stable", "1.0.0", "notes", "First release", "min_native", "1.0.0")
	e.deploy(testApp, "stable", "1.1.0", "notes", "New login screen and faster start-up", "min_native", "2.0.0", "rollout", "25")
	e.deploy(testApp, "beta", "1.2.0-beta.1", "min_native", "2.0.0")
	// A morning of traffic on 1.1.0: installs every hour, a few failures.
	for h := 0; h < 6; h++ {
		var evs []ota.StatsEvent
		for i := 0; i < 3+h*2; i++ {
			evs = append(evs, statsEvent(fmt.Sprintf("dev-%d-%d", h, i), "1.1.0", "set"))
		}
		if h%2 == 1 {
			evs = append(evs, statsEvent(fmt.Sprintf("bad-%d", h), "1.1.0", "update_fail"))
		}
		evs = append(evs, statsEvent(fmt.Sprintf("old-%d", h), "1.0.0", "set"))
		e.stats(evs...)
		e.clock.Advance(time.Hour)
	}
	// Two weeks of adoption as otad stores it (loaded as at a start):
	// 1.1.0 taking over from 1.0.0 and the built-in bundle.
	var days []store.AdoptionDay
	today := e.clock.Now().UTC().Truncate(24 * time.Hour)
	for i := 14; i >= 1; i-- {
		nu := 1200 * (14 - i) / 13
		days = append(days, store.AdoptionDay{AppID: testApp, Day: today.Add(-time.Duration(i) * 24 * time.Hour), Counts: []store.AdoptionCount{
			{Channel: "stable", Version: "1.1.0", Devices: nu},
			{Channel: "stable", Version: "1.0.0", Devices: 1500 - nu - 100},
			{Channel: "stable", Version: ota.VersionBuiltin, Devices: 100},
		}})
	}
	e.srv.Offers().Adoption().Load(days)
	ctx, problems := chromium(t)
	channel := e.url + "/ui/apps/" + testApp + "/channels/stable"

	// Not logged in: the login form, which comes back to the channel.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(channel),
		chromedp.WaitVisible(chromedp.ID("username")),
	); err != nil {
		t.Fatal(err)
	}
	if u := location(t, ctx); !strings.Contains(u, "/ui/login?next=") {
		t.Fatalf("not logged in, the channel page went to %s", u)
	}
	screenshot(t, ctx, "login", "", 0)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), testUser),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("active-version")),
	); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#active-version"); got != "1.1.0" {
		t.Fatalf("active version shown = %q, want 1.1.0", got)
	}
	for i := range viewports {
		screenshot(t, ctx, "channel", "", i)
		screenshot(t, ctx, "health", "#health", i)
		screenshot(t, ctx, "adoption", "#adoption", i)
	}

	// Device traffic moves the chart: the panel refreshes itself.
	before := text(t, ctx, "#health-chart-d")
	var evs []ota.StatsEvent
	for i := 0; i < 25; i++ {
		evs = append(evs, statsEvent(fmt.Sprintf("late-%d", i), "1.1.0", "set"))
	}
	e.stats(evs...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		after := text(t, ctx, "#health-chart-d")
		if after != before {
			if !strings.Contains(after, "installs") {
				t.Fatalf("chart description %q", after)
			}
			t.Logf("chart moved: %q → %q", before, after)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the health chart did not change after 25 installs: %q", after)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Roll back through the UI; devices are offered 1.0.0 again.
	running := device("phone-1", "1.1.0")
	if r := e.poll(running); r.Error != ota.UpdNoNewVersion {
		t.Fatalf("before the rollback a device on 1.1.0 got %+v", r)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a.btn.danger[href$="/rollback"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm-summary")),
	); err != nil {
		t.Fatal(err)
	}
	if s := text(t, ctx, "#confirm-summary"); !strings.Contains(s, "1.0.0 instead of 1.1.0") {
		t.Fatalf("confirmation says %q", s)
	}
	screenshot(t, ctx, "confirm", "", 0)
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form button[type=submit].danger`)),
		chromedp.WaitVisible(chromedp.CSS(".flash")),
	); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#active-version"); got != "1.0.0" {
		t.Fatalf("after the rollback the page shows %q", got)
	}
	if r := e.poll(running); r.Version != "1.0.0" {
		t.Fatalf("after the rollback /updates answered %+v, want 1.0.0", r)
	}
	h, err := e.api().History(context.Background(), testApp, "stable", 0, 1)
	if err != nil || len(h.Events) == 0 || h.Events[0].Type != ota.EventRollback || h.Events[0].Actor != testUser {
		t.Fatalf("latest event = %+v (%v), want a rollback by %s", h.Events, err, testUser)
	}

	// Log out: the channel page sends to the login form again.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form.logout button`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
		chromedp.Navigate(channel),
		chromedp.WaitVisible(chromedp.ID("username")),
	); err != nil {
		t.Fatal(err)
	}
	if u := location(t, ctx); !strings.Contains(u, "/ui/login") {
		t.Fatalf("after logging out the channel page showed %s", u)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the browser reported problems (CSP violations are reported as errors):\n%s", strings.Join(p, "\n"))
	}
}
