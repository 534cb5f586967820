package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

const (
	concurrentWorkers = 12
	concurrentOps     = 40 // per worker; -short runs fewer
	concurrentShort   = 12
)

var concurrentApps = []string{"com.example.one", "com.example.two", "com.example.three"}

// TestConcurrentWrites runs many writers at once over 3 apps × 3 channels
// against one server and checks that every acknowledged write is in the
// history exactly once, that each channel's history is an unbroken chain
// (every write starts where the one before it ended: none was lost or
// applied on stale state), and that replaying it gives each channel's
// pointer, in the store and in the device-facing snapshot.
func TestConcurrentWrites(t *testing.T) {
	seed := envSeed(t)
	ops := concurrentOps
	if testing.Short() {
		ops = concurrentShort
	}
	env := newConcurrentEnv(t)

	var (
		mu       sync.Mutex
		want     []evKey
		shas     = map[string]map[string]string{} // app → version → SHA-256 sent
		versions = map[string][]string{}          // app → acknowledged uploads
		acked    = map[string]int{}
		rejected = map[string]int{}
	)
	for _, app := range concurrentApps {
		shas[app] = map[string]string{}
	}
	started := time.Now()
	var wg sync.WaitGroup
	for i := range concurrentWorkers {
		wg.Go(func() {
			rng := newRand(seed, i)
			for n := range ops {
				app := concurrentApps[rng.IntN(len(concurrentApps))]
				mu.Lock()
				known := slices.Clone(versions[app])
				mu.Unlock()
				o, err := env.chooseOp(rng, app, known, fmt.Sprintf("1.%d.%d", i, n))
				if err != nil {
					t.Errorf("worker %d: %v", i, err)
					return
				}
				if o.typ == ota.EventUpload {
					mu.Lock()
					shas[app][o.version] = o.sum
					mu.Unlock()
				}
				ev, hasEv, err := env.send(app, o)
				mu.Lock()
				switch status := apiStatus(err); {
				case err == nil:
					acked[o.typ]++
					if hasEv {
						want = append(want, ev)
					}
					if o.typ == ota.EventUpload {
						versions[app] = append(versions[app], o.version)
					}
				case status >= 400 && status < 500 && o.typ != ota.EventUpload:
					rejected[o.typ]++ // lost a race for the release it named: nothing happened
				default:
					t.Errorf("worker %d: %s %s/%s %q: %v", i, o.typ, app, o.channel, o.version, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(started)
	if t.Failed() {
		t.FailNow()
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	history, err := fetchHistory(ctx, env.client, "")
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	bad = append(bad, checkSeqs(history, true)...)
	bad = append(bad, matchMultiset(want, history)...)
	byApp := map[string][]ota.Channel{}
	for _, app := range concurrentApps {
		chans, err := env.client.Channels(ctx, app)
		if err != nil {
			t.Fatalf("list channels of %s: %v", app, err)
		}
		byApp[app] = chans
		bundles, err := env.client.Bundles(ctx, app)
		if err != nil {
			t.Fatalf("list bundles of %s: %v", app, err)
		}
		bad = append(bad, checkBundles(app, bundles, chans, shas[app], env.blobDir)...)
		bad = append(bad, checkActiveBytes(ctx, env.http, env.base, chans)...)
		bad = append(bad, env.checkSnapshot(app, chans)...)
	}
	bad = append(bad, checkChains(history, byApp)...)
	bad = append(bad, checkBlobDir(env.blobDir, nil)...)
	for _, b := range bad {
		t.Error(b)
	}

	// The same history must come back from the file after a clean reopen.
	env.close()
	st, err := bolt.Open(env.dbPath, bolt.Options{})
	if err != nil {
		t.Fatalf("reopen database: %v", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Errorf("database consistency check: %v", err)
	}
	newest, _, err := st.History(ctx, store.HistoryQuery{Limit: 1})
	switch {
	case err != nil:
		t.Errorf("history after reopen: %v", err)
	case len(newest) != 1 || newest[0].Seq != uint64(len(history)):
		t.Errorf("after reopen the newest event is %+v, want seq %d", newest, len(history))
	}

	t.Logf("concurrent summary: workers=%d acknowledged=%d (upload=%d rollback=%d promote=%d delete=%d) events=%d "+
		"rejected=%v violations=%d elapsed=%s",
		concurrentWorkers, sum(acked), acked[ota.EventUpload], acked[ota.EventRollback], acked[ota.EventPromote], acked[ota.EventDelete],
		len(history), rejected, len(bad), elapsed.Round(time.Millisecond))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// concurrentEnv is one in-process server over a real bbolt file and blob
// directory, behind a real HTTP listener.
type concurrentEnv struct {
	t       *testing.T
	st      *bolt.Store
	srv     *server.Server
	ts      *httptest.Server
	http    *http.Client
	client  *ota.Client
	base    string
	dbPath  string
	blobDir string
	closed  bool
}

func newConcurrentEnv(t *testing.T) *concurrentEnv {
	t.Helper()
	dir := t.TempDir()
	e := &concurrentEnv{t: t, dbPath: filepath.Join(dir, "otad.db"), blobDir: filepath.Join(dir, "blobs")}
	st, err := bolt.Open(e.dbPath, bolt.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	e.st = st
	bl, err := blob.NewFS(e.blobDir)
	if err != nil {
		t.Fatalf("open blob dir: %v", err)
	}
	iss, err := auth.NewIssuer(bytes.Repeat([]byte("k"), auth.MinKeyLen), auth.Options{})
	if err != nil {
		t.Fatalf("token issuer: %v", err)
	}
	hash, err := auth.HashPassword(crashPassword, bcrypt.MinCost)
	if err != nil {
		t.Fatalf("hash password: %v", err)
	}
	now := time.Now()
	if err := st.CreateUser(context.Background(), store.User{Name: crashUser, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("create user: %v", err)
	}
	srv, err := server.New(context.Background(), server.Config{PublicURL: "http://otad.test", MaxUploadBytes: 8 << 20},
		st, bl, iss, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler())
	e.base = e.ts.URL
	e.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrentWorkers}}
	t.Cleanup(e.close)
	c, err := ota.NewClient(e.base, ota.WithHTTPClient(e.http))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	lr, err := c.Login(context.Background(), crashUser, crashPassword)
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	c.Token = lr.Token
	e.client = c
	return e
}

func (e *concurrentEnv) close() {
	if e.closed {
		return
	}
	e.closed = true
	e.http.CloseIdleConnections()
	e.ts.Close()
	if err := e.st.Close(); err != nil {
		e.t.Errorf("close store: %v", err)
	}
}

// chooseOp picks a write on app. Rollback, promote and delete targets come
// from a fresh read of the channel, which other writers may make stale
// before the write lands: that race is the point.
func (e *concurrentEnv) chooseOp(rng *rand.Rand, app string, known []string, newVersion string) (op, error) {
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	channel := pick(channelNames)
	x := rng.Float64()
	if x < 0.6 && len(known) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		ch, err := e.client.Channel(ctx, app, channel)
		if err == nil {
			rel := releaseVersions(ch)
			switch {
			case x < 0.2:
				o := op{typ: ota.EventRollback, channel: channel}
				if rng.IntN(3) == 0 {
					o.version = pick(known)
				}
				return o, nil
			case x < 0.4:
				to := pick(slices.DeleteFunc(slices.Clone(channelNames), func(s string) bool { return s == channel }))
				o := op{typ: ota.EventPromote, channel: to, from: channel}
				if len(rel) > 0 && rng.IntN(2) == 0 {
					o.version = pick(rel)
				}
				return o, nil
			case len(rel) > 0:
				return op{typ: ota.EventDelete, channel: channel, version: pick(rel)}, nil
			}
		} else if apiStatus(err) != http.StatusNotFound {
			return op{}, fmt.Errorf("read channel %s/%s: %w", app, channel, err)
		}
	}
	payload := rng.IntN(4 << 10)
	if rng.IntN(10) == 0 {
		payload = 256<<10 + rng.IntN(768<<10)
	}
	body, sum, err := makeBundle(rng, newVersion, payload)
	return op{typ: ota.EventUpload, channel: channel, version: newVersion, body: body, sum: sum}, err
}

// send performs o and returns the event its answer implies.
func (e *concurrentEnv) send(app string, o op) (evKey, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c := e.client
	switch o.typ {
	case ota.EventUpload:
		res, err := c.Upload(ctx, ota.UploadRequest{
			AppID: app, Channel: o.channel, Version: o.version, Checksum: o.sum,
			File: bytes.NewReader(o.body), Size: int64(len(o.body)),
		})
		if err != nil {
			return evKey{}, false, err
		}
		if !res.Created {
			return evKey{}, false, fmt.Errorf("upload of new version %s answered created=false", o.version)
		}
		return uploadEvent(app, o.version, res), true, nil
	case ota.EventRollback:
		ch, err := c.Rollback(ctx, app, o.channel, o.version)
		if err != nil {
			return evKey{}, false, err
		}
		ev, ok := changeEvent(o.typ, app, "", ch)
		return ev, ok, nil
	case ota.EventPromote:
		ch, err := c.Promote(ctx, app, o.channel, ota.PromoteRequest{From: o.from, Version: o.version})
		if err != nil {
			return evKey{}, false, err
		}
		ev, ok := changeEvent(o.typ, app, "", ch)
		return ev, ok, nil
	default:
		ch, err := c.DeleteRelease(ctx, app, o.channel, o.version)
		if err != nil {
			return evKey{}, false, err
		}
		ev, ok := changeEvent(o.typ, app, o.version, ch)
		return ev, ok, nil
	}
}

// checkSnapshot compares the device-facing snapshot with the channels the
// admin API reports: every write refreshes it, and concurrent refreshes
// must not leave an older state in place.
func (e *concurrentEnv) checkSnapshot(app string, chans []ota.Channel) []string {
	view := e.srv.Snapshot().App(app)
	if view == nil {
		return []string{fmt.Sprintf("device snapshot has no app %s", app)}
	}
	var bad []string
	for _, c := range chans {
		if c.Kind != ota.KindWeb {
			continue
		}
		cv := view.Channels[c.Name]
		switch {
		case cv == nil:
			bad = append(bad, fmt.Sprintf("device snapshot lacks channel %s/%s", app, c.Name))
		case cv.Channel.Active != c.Active:
			bad = append(bad, fmt.Sprintf("device snapshot says %s/%s serves %q, the store says %q", app, c.Name, cv.Channel.Active, c.Active))
		}
	}
	sort.Strings(bad)
	return bad
}
