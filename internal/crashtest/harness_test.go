package crashtest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// channelNames are the channels of every app the workloads write to.
var channelNames = []string{"production", "beta", "dev"}

// envSeed returns OTA_CRASH_SEED when set, else a fresh seed, and logs it
// so a failing run can be replayed.
func envSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OTA_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("OTA_CRASH_SEED %q: want a decimal number: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay the same choices with OTA_CRASH_SEED=%d)", seed, seed)
	return seed
}

// newRand returns the random source of one actor of a test, derived from
// the test's seed so that every actor draws its own stream.
func newRand(seed uint64, actor int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(actor)+0x9e3779b97f4a7c15))
}

// makeBundle returns a web bundle zip the server accepts: an index.html at
// the root that names the version (so every version has its own bytes) and,
// when payload > 0, a stored (uncompressed) file of that many random bytes,
// so large uploads take long enough for a kill to land inside them.
func makeBundle(rng *rand.Rand, version string, payload int) ([]byte, string, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := []struct{ name, body string }{
		{"index.html", "<!doctype html><title>" + version + "</title><script src=\"app.js\"></script>\n"},
		{"app.js", fmt.Sprintf("console.log(%q, %d);\n", version, rng.Uint64())},
	}
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			return nil, "", fmt.Errorf("zip %s: %w", f.name, err)
		}
		if _, err := io.WriteString(w, f.body); err != nil {
			return nil, "", fmt.Errorf("zip %s: %w", f.name, err)
		}
	}
	if payload > 0 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "assets/payload.bin", Method: zip.Store})
		if err != nil {
			return nil, "", fmt.Errorf("zip payload: %w", err)
		}
		chunk := make([]byte, 64<<10)
		for left := payload; left > 0; left -= len(chunk) {
			for i := 0; i+8 <= len(chunk); i += 8 {
				binary.LittleEndian.PutUint64(chunk[i:], rng.Uint64())
			}
			if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
				return nil, "", fmt.Errorf("zip payload: %w", err)
			}
		}
	}
	if err := zw.Close(); err != nil {
		return nil, "", fmt.Errorf("zip close: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}

// evKey is what an event says happened, without when: acknowledged answers
// are matched against history on it.
type evKey struct {
	Type, App, Channel, Version, From, To string
}

func (k evKey) String() string {
	return fmt.Sprintf("%s %s/%s version=%q from=%q to=%q", k.Type, k.App, k.Channel, k.Version, k.From, k.To)
}

func keyOf(e ota.Event) evKey {
	return evKey{Type: e.Type, App: e.AppID, Channel: e.Channel, Version: e.Version, From: e.From, To: e.To}
}

// uploadEvent is the event an acknowledged upload of a new version must
// have recorded.
func uploadEvent(app, version string, r ota.UploadResult) evKey {
	return evKey{Type: ota.EventUpload, App: app, Channel: r.Channel, Version: version, From: r.Previous, To: version}
}

// changeEvent is the event an acknowledged rollback, promote or delete must
// have recorded; ok is false when the answer says nothing changed (a
// rollback or promote to what the channel already serves records nothing).
// version is the deleted version for deletes and ignored otherwise.
func changeEvent(typ, app, version string, c ota.ChannelChange) (evKey, bool) {
	k := evKey{Type: typ, App: app, Channel: c.Channel, Version: c.To, From: c.From, To: c.To}
	if typ == ota.EventDelete {
		k.Version = version
		return k, true
	}
	return k, c.From != c.To
}

// chanModel is what a channel should look like: its active version and its
// releases in deploy order.
type chanModel struct {
	Active   string
	Releases []string
}

// applyEvent changes a model of one app's channels the way the store
// changes the channel an event records.
func applyEvent(chans map[string]*chanModel, k evKey) {
	c := chans[k.Channel]
	if c == nil {
		c = &chanModel{}
		chans[k.Channel] = c
	}
	switch k.Type {
	case ota.EventUpload, ota.EventActivate:
		if !slices.Contains(c.Releases, k.Version) {
			c.Releases = append(c.Releases, k.Version)
		}
	case ota.EventPromote:
		c.Releases = append(c.Releases, k.Version)
	case ota.EventDelete:
		c.Releases = slices.DeleteFunc(c.Releases, func(v string) bool { return v == k.Version })
	}
	c.Active = k.To
}

// modelOf returns the model of channels as the server reports them.
func modelOf(chans []ota.Channel) map[string]*chanModel {
	m := make(map[string]*chanModel, len(chans))
	for _, c := range chans {
		m[c.Name] = &chanModel{Active: c.Active, Releases: releaseVersions(c)}
	}
	return m
}

func releaseVersions(c ota.Channel) []string {
	vs := make([]string, 0, len(c.Releases))
	for _, r := range c.Releases {
		vs = append(vs, r.Version)
	}
	return vs
}

// compareChannels reports every difference between the expected channels of
// app and what the server reports.
func compareChannels(app string, want map[string]*chanModel, got []ota.Channel) []string {
	var bad []string
	seen := map[string]bool{}
	for _, c := range got {
		seen[c.Name] = true
		w := want[c.Name]
		if w == nil {
			bad = append(bad, fmt.Sprintf("channel %s/%s exists (active %q) but no acknowledged or recorded write created it", app, c.Name, c.Active))
			continue
		}
		if c.Active != w.Active {
			bad = append(bad, fmt.Sprintf("channel %s/%s serves %q, the writes imply %q", app, c.Name, c.Active, w.Active))
		}
		if rv := releaseVersions(c); !slices.Equal(rv, w.Releases) {
			bad = append(bad, fmt.Sprintf("channel %s/%s has releases %q, the writes imply %q", app, c.Name, rv, w.Releases))
		}
	}
	for name, w := range want {
		if !seen[name] {
			bad = append(bad, fmt.Sprintf("channel %s/%s is missing; the writes imply it serves %q", app, name, w.Active))
		}
	}
	sort.Strings(bad)
	return bad
}

// fetchHistory reads the whole history of app (every app when empty),
// oldest first, following the pages.
func fetchHistory(ctx context.Context, c *ota.Client, app string) ([]ota.Event, error) {
	var all []ota.Event
	var before uint64
	for {
		page, err := c.History(ctx, app, "", before, 500)
		if err != nil {
			return nil, fmt.Errorf("read history after %d events: %w", len(all), err)
		}
		all = append(all, page.Events...)
		if page.Next == 0 {
			break
		}
		if before != 0 && page.Next >= before {
			return nil, fmt.Errorf("history page cursor went from %d to %d: it must decrease", before, page.Next)
		}
		before = page.Next
	}
	slices.Reverse(all)
	return all, nil
}

// checkSeqs reports a history (oldest first) whose event numbers do not
// grow strictly; with complete set, the numbers must also be 1, 2, 3, ...
// with no gap, as they are for the whole server's history.
func checkSeqs(evs []ota.Event, complete bool) []string {
	var bad []string
	gap := false
	for i, e := range evs {
		if i > 0 && e.Seq <= evs[i-1].Seq {
			bad = append(bad, fmt.Sprintf("history is out of order: event %d follows event %d", e.Seq, evs[i-1].Seq))
		}
		if complete && !gap && e.Seq != uint64(i)+1 {
			bad = append(bad, fmt.Sprintf("history has a gap or duplicate: position %d holds event %d", i+1, e.Seq))
			gap = true // every later position would repeat it
		}
	}
	return bad
}

// matchMultiset reports acknowledged events missing from or repeated in
// history, and events in history no acknowledged write explains. Each
// expected event must be there exactly as often as it was acknowledged.
func matchMultiset(want []evKey, got []ota.Event) []string {
	count := map[evKey]int{}
	for _, k := range want {
		count[k]++
	}
	for _, e := range got {
		count[keyOf(e)]--
	}
	var bad []string
	for k, n := range count {
		switch {
		case n > 0:
			bad = append(bad, fmt.Sprintf("acknowledged write missing from history %d time(s): %s", n, k))
		case n < 0:
			bad = append(bad, fmt.Sprintf("history has %d event(s) no acknowledged write explains: %s", -n, k))
		}
	}
	sort.Strings(bad)
	return bad
}

// checkChains replays the history (oldest first) channel by channel: each
// event must start where the one before it on its channel ended (no write
// was lost between them), and the replay must end in the state the server
// reports for every channel of the given apps.
func checkChains(evs []ota.Event, channels map[string][]ota.Channel) []string {
	var bad []string
	replay := map[string]map[string]*chanModel{}
	for app := range channels {
		replay[app] = map[string]*chanModel{}
	}
	for _, e := range evs {
		m := replay[e.AppID]
		if m == nil || e.Channel == "" {
			continue
		}
		prev := ""
		if c := m[e.Channel]; c != nil {
			prev = c.Active
		}
		if e.From != prev {
			bad = append(bad, fmt.Sprintf("event %d (%s) starts from %q, but %s/%s served %q after the event before it",
				e.Seq, keyOf(e), e.From, e.AppID, e.Channel, prev))
		}
		applyEvent(m, keyOf(e))
	}
	for app, chans := range channels {
		bad = append(bad, compareChannels(app, replay[app], chans)...)
	}
	return bad
}

// checkBundles checks an app's bundle records against its channels: no
// bundle a channel lists or serves is marked deleted, every
// active version is a stored, live bundle, every live bundle's bytes are in
// the blob directory, and (when shas is given) every bundle has the SHA-256
// of the bytes its upload sent.
func checkBundles(app string, bundles []ota.Bundle, chans []ota.Channel, shas map[string]string, blobDir string) []string {
	var bad []string
	used := map[string]bool{}
	for _, c := range chans {
		used[c.Active] = true
		for _, r := range c.Releases {
			used[r.Version] = true
		}
	}
	byVersion := map[string]ota.Bundle{}
	for _, b := range bundles {
		byVersion[b.Version] = b
		if shas != nil {
			if sum, ok := shas[b.Version]; !ok {
				bad = append(bad, fmt.Sprintf("bundle %s %s exists but was never uploaded", app, b.Version))
			} else if b.SHA256 != sum {
				bad = append(bad, fmt.Sprintf("bundle %s %s records sha256 %s, its upload sent %s", app, b.Version, b.SHA256, sum))
			}
		}
		// Only this direction is an invariant: a bundle that a rollback
		// moved away from stays live although no channel lists it.
		if b.Deleted && used[b.Version] {
			bad = append(bad, fmt.Sprintf("bundle %s %s is marked deleted but a channel lists or serves it", app, b.Version))
		}
		if !b.Deleted {
			if _, err := os.Stat(blobPath(blobDir, b.SHA256)); err != nil {
				bad = append(bad, fmt.Sprintf("bundle %s %s is live but its bytes are not stored: %v", app, b.Version, err))
			}
		}
	}
	for _, c := range chans {
		if c.Active == "" || c.Active == ota.VersionBuiltin {
			continue
		}
		b, ok := byVersion[c.Active]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("channel %s/%s serves %s, which has no bundle record", app, c.Name, c.Active))
		case b.Deleted:
			bad = append(bad, fmt.Sprintf("channel %s/%s serves %s, which is marked deleted", app, c.Name, c.Active))
		case c.ActiveBundle == nil || c.ActiveBundle.SHA256 != b.SHA256:
			bad = append(bad, fmt.Sprintf("channel %s/%s serves %s but reports active bundle %+v, want sha256 %s", app, c.Name, c.Active, c.ActiveBundle, b.SHA256))
		}
	}
	return bad
}

// checkActiveBytes downloads every active bundle of chans through the
// public download route and checks that its bytes hash to the SHA-256 the
// record (and so every device) was told.
func checkActiveBytes(ctx context.Context, hc *http.Client, base string, chans []ota.Channel) []string {
	var bad []string
	done := map[string]bool{}
	for _, c := range chans {
		b := c.ActiveBundle
		if b == nil || done[b.SHA256] {
			continue
		}
		done[b.SHA256] = true
		got, n, err := downloadHash(ctx, hc, base+"/api/ota/bundle/"+b.SHA256+".zip")
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("active bundle %s of %s/%s cannot be downloaded: %v", b.Version, c.AppID, c.Name, err))
		case got != b.SHA256:
			bad = append(bad, fmt.Sprintf("active bundle %s of %s/%s downloads as %d bytes with sha256 %s, recorded %s", b.Version, c.AppID, c.Name, n, got, b.SHA256))
		case n != b.Size:
			bad = append(bad, fmt.Sprintf("active bundle %s of %s/%s downloads as %d bytes, recorded %d", b.Version, c.AppID, c.Name, n, b.Size))
		}
	}
	return bad
}

func downloadHash(ctx context.Context, hc *http.Client, url string) (string, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("GET %s answered %s", url, resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return "", n, fmt.Errorf("read %s: %w", url, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// blobPath is where blob.FS keeps the blob with key sum.
func blobPath(dir, sum string) string {
	if len(sum) < 2 {
		return filepath.Join(dir, "sha256", sum)
	}
	return filepath.Join(dir, "sha256", sum[:2], sum)
}

// blobStamp identifies a version of a file already hashed, so repeated
// checks hash only new blobs.
type blobStamp struct {
	size int64
	mod  time.Time
}

// checkBlobDir walks a blob directory: every file under its final
// locations (sha256/<2 hex>/<64 hex>) must hash to its name, nothing else
// may be there, and the temp dir must be empty (otad clears it at start,
// and no upload runs while this is called). verified remembers files hashed
// before; pass nil to hash everything.
func checkBlobDir(dir string, verified map[string]blobStamp) []string {
	var bad []string
	tmp := filepath.Join(dir, "tmp")
	entries, err := os.ReadDir(tmp)
	if err != nil {
		bad = append(bad, fmt.Sprintf("read blob temp dir: %v", err))
	}
	for _, e := range entries {
		bad = append(bad, fmt.Sprintf("blob temp dir holds %s after a restart: an interrupted upload was not cleaned up", e.Name()))
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if d.IsDir() {
			switch {
			case path == tmp:
				return filepath.SkipDir
			case rel == "." || rel == "sha256":
			case len(parts) == 2 && parts[0] == "sha256" && len(parts[1]) == 2:
			default:
				bad = append(bad, fmt.Sprintf("unexpected directory %s in the blob dir", rel))
				return filepath.SkipDir
			}
			return nil
		}
		if len(parts) != 3 || parts[0] != "sha256" || len(parts[2]) != 64 || parts[2][:2] != parts[1] {
			bad = append(bad, fmt.Sprintf("unexpected file %s in the blob dir", rel))
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		stamp := blobStamp{size: info.Size(), mod: info.ModTime()}
		if verified != nil && verified[path] == stamp {
			return nil
		}
		sum, err := hashFile(path)
		if err != nil {
			return err
		}
		if sum != parts[2] {
			bad = append(bad, fmt.Sprintf("blob %s holds bytes with sha256 %s: a half-written or damaged bundle is visible", rel, sum))
			return nil
		}
		if verified != nil {
			verified[path] = stamp
		}
		return nil
	})
	if err != nil {
		bad = append(bad, fmt.Sprintf("walk blob dir %s: %v", dir, err))
	}
	return bad
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// apiStatus returns the HTTP status of an error answer from otad, or 0 when
// err is not one (the request did not get an answer).
func apiStatus(err error) int {
	var ae *ota.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}
