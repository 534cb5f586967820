package crashtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

const (
	crashUser     = "crash"
	crashPassword = "crash-test-password"
	// defaultKills is the CI run; OTA_CRASH_KILLS sets more for a long
	// local run, -short fewer.
	defaultKills = 50
	shortKills   = 10
	// maxKillDelay bounds how long a workload runs before its SIGKILL.
	maxKillDelay = 300 * time.Millisecond
	startTimeout = 30 * time.Second
	// opTimeout only guards against a hung server; requests normally end
	// in milliseconds or with the kill.
	opTimeout = 30 * time.Second
	// crashApps writers run at once, one per app.
	crashApps = 2
	// bigUploadShare of uploads carry 1–4 MiB, so kills land mid-stream.
	bigUploadShare = 0.25
)

// TestCrashConsistency kills a real otad with SIGKILL at random moments of a
// random workload and checks after every restart that the database opens,
// that every acknowledged write is in history exactly once and in the
// channels' state, that the write a kill interrupted happened completely or
// not at all, and that every visible bundle is complete.
func TestCrashConsistency(t *testing.T) {
	if testing.Short() && os.Getenv("OTA_CRASH_KILLS") == "" {
		t.Logf("-short: %d kills instead of %d", shortKills, defaultKills)
	}
	kills := crashKills(t)
	seed := envSeed(t)
	started := time.Now()

	r := newCrashRun(t, seed)
	for cycle := 1; cycle <= kills; cycle++ {
		p := r.start(cycle)
		c, hc := r.login(cycle, p)
		r.check(cycle, p, c, hc)

		delay := time.Duration(r.rng.Int64N(int64(maxKillDelay) + 1))
		var wg sync.WaitGroup
		for _, w := range r.workers {
			wg.Go(func() { w.run(c, cycle) })
		}
		time.Sleep(delay)
		p.kill()
		wg.Wait()
		hc.CloseIdleConnections()
		for _, w := range r.workers {
			r.violate(cycle, w.drainProblems()...)
		}
		r.violate(cycle, checkFileReadOnly(r.dbPath())...)
	}

	// One more start checks what the last kill left; then a clean stop, and
	// the file is opened the way otad opens it and checked page by page.
	p := r.start(kills + 1)
	c, hc := r.login(kills+1, p)
	r.check(kills+1, p, c, hc)
	hc.CloseIdleConnections()
	if err := p.stop(); err != nil {
		r.violate(kills+1, fmt.Sprintf("otad did not stop cleanly on SIGTERM: %v", err))
	}
	st, err := bolt.Open(r.dbPath(), bolt.Options{})
	if err != nil {
		r.fatalf(kills+1, "open the database after the run: %v", err)
	}
	if err := st.Check(); err != nil {
		r.violate(kills+1, fmt.Sprintf("database consistency check: %v", err))
	}
	if err := st.Close(); err != nil {
		t.Errorf("close database: %v", err)
	}
	r.violate(kills+1, checkBlobDir(r.blobDir(), nil)...) // everything once more, no cache
	r.checkLogForRaces()
	r.summary(kills, time.Since(started))
}

// crashKills is the number of kills of this run.
func crashKills(t *testing.T) int {
	t.Helper()
	if s := os.Getenv("OTA_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("OTA_CRASH_KILLS %q: want a number of kills of at least 1", s)
		}
		return n
	}
	if testing.Short() {
		return shortKills
	}
	return defaultKills
}

// crashRun is the state of one TestCrashConsistency run.
type crashRun struct {
	t        *testing.T
	bin      string
	dir      string // holds data/, the address file and the log
	log      *os.File
	rng      *rand.Rand // kill delays
	workers  []*appWorker
	verified map[string]blobStamp
	cur      *otadProc

	violations int
}

func newCrashRun(t *testing.T, seed uint64) *crashRun {
	r := &crashRun{
		t:        t,
		bin:      buildOtad(t),
		dir:      t.TempDir(),
		rng:      newRand(seed, 0),
		verified: map[string]blobStamp{},
	}
	f, err := os.Create(filepath.Join(r.dir, "otad.log"))
	if err != nil {
		t.Fatalf("create otad log: %v", err)
	}
	r.log = f
	t.Cleanup(func() {
		if r.cur != nil {
			r.cur.kill()
		}
		_ = f.Close()
	})
	for i := range crashApps {
		r.workers = append(r.workers, newAppWorker(fmt.Sprintf("com.example.crash%d", i+1), newRand(seed, i+1)))
	}
	return r
}

func (r *crashRun) dataDir() string  { return filepath.Join(r.dir, "data") }
func (r *crashRun) dbPath() string   { return filepath.Join(r.dataDir(), "otad.db") }
func (r *crashRun) blobDir() string  { return filepath.Join(r.dataDir(), "blobs") }
func (r *crashRun) addrFile() string { return filepath.Join(r.dir, "addr") }

// violate reports broken invariants; the run goes on so that one fault
// does not hide others.
func (r *crashRun) violate(cycle int, msgs ...string) {
	r.t.Helper()
	for _, m := range msgs {
		r.violations++
		r.t.Errorf("after kill %d: %s", cycle-1, m)
	}
}

// fatalf ends the run, showing the end of otad's log.
func (r *crashRun) fatalf(cycle int, format string, args ...any) {
	r.t.Helper()
	r.t.Logf("end of otad's log:\n%s", r.logTail(40))
	r.t.Fatalf("after kill %d: %s", cycle-1, fmt.Sprintf(format, args...))
}

func (r *crashRun) logTail(lines int) string {
	b, err := os.ReadFile(r.log.Name())
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", r.log.Name(), err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// buildOtad builds cmd/otad once per run. OTA_CRASH_RACE=1 builds it with
// the race detector: that finds races under the crash workload but slows
// otad so much that far fewer writes fit between kills, so it is not the
// default (TestConcurrentWrites runs the server under -race in-process).
// OTA_CRASH_OTAD names a binary to test instead, such as a release build.
func buildOtad(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("OTA_CRASH_OTAD"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatalf("OTA_CRASH_OTAD %q: %v", bin, err)
		}
		t.Logf("testing %s (OTA_CRASH_OTAD)", abs)
		return abs
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the crash test builds otad and needs the go command: %v", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		t.Fatalf("find the module root with go env GOMOD: %v (got %q)", err, gomod)
	}
	bin := filepath.Join(t.TempDir(), "otad")
	args := []string{"build", "-o", bin}
	if raceOtad() {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, "./cmd/otad")...)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/otad: %v\n%s", err, out)
	}
	return bin
}

func raceOtad() bool { return os.Getenv("OTA_CRASH_RACE") == "1" }

// otadEnv is the test's environment without any OTAD_ setting a developer
// may have exported, plus the admin user and a cheap bcrypt cost.
func otadEnv() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OTAD_") })
	return append(env,
		"OTAD_ADMIN_USER="+crashUser,
		"OTAD_ADMIN_PASSWORD="+crashPassword,
		"OTAD_BCRYPT_COST=4",
		"OTAD_LOG_FORMAT=json",
	)
}

// otadProc is one running otad.
type otadProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
	err  error         // its exit, valid once done is closed
	base string
}

func (p *otadProc) kill() {
	_ = p.cmd.Process.Kill() // SIGKILL: no handler, no flush, no cleanup
	<-p.done
}

// stop asks otad to shut down and waits for a clean exit.
func (p *otadProc) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("send SIGTERM: %w", err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(startTimeout):
		p.kill()
		return errors.New("still running 30s after SIGTERM; killed")
	}
}

// start runs otad on the run's data dir and waits until /readyz says 200:
// that the store opens after a kill is the first invariant.
func (r *crashRun) start(cycle int) *otadProc {
	r.t.Helper()
	if err := os.Remove(r.addrFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.t.Fatalf("remove old address file: %v", err)
	}
	fmt.Fprintf(r.log, "=== crashtest: start %d\n", cycle)
	cmd := exec.Command(r.bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", r.dataDir(), "--addr-file", r.addrFile())
	cmd.Env = otadEnv()
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start otad: %v", err)
	}
	p := &otadProc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	r.cur = p

	deadline := time.Now().Add(startTimeout)
	for p.base == "" {
		if b, err := os.ReadFile(r.addrFile()); err == nil && strings.HasSuffix(string(b), "\n") {
			p.base = "http://" + strings.TrimSpace(string(b))
			break
		}
		select {
		case <-p.done:
			r.fatalf(cycle, "otad exited while starting (the data dir did not open?): %v", p.err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			r.fatalf(cycle, "otad did not write its address within %s", startTimeout)
		}
	}
	for {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			r.fatalf(cycle, "otad at %s not ready within %s (last: %v)", p.base, startTimeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// login gets a token with the Go client, as otactl would.
func (r *crashRun) login(cycle int, p *otadProc) (*ota.Client, *http.Client) {
	r.t.Helper()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: crashApps * 2}}
	c, err := ota.NewClient(p.base, ota.WithHTTPClient(hc))
	if err != nil {
		r.t.Fatalf("client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	lr, err := c.Login(ctx, crashUser, crashPassword)
	if err != nil {
		r.fatalf(cycle, "log in after restart: %v", err)
	}
	c.Token = lr.Token
	return c, hc
}

// check verifies every invariant against the freshly started otad, while no
// workload runs.
func (r *crashRun) check(cycle int, p *otadProc, c *ota.Client, hc *http.Client) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	global, err := fetchHistory(ctx, c, "")
	if err != nil {
		r.fatalf(cycle, "%v", err)
	}
	r.violate(cycle, checkSeqs(global, true)...)

	byApp := map[string][]ota.Channel{}
	for _, w := range r.workers {
		chans, err := c.Channels(ctx, w.app)
		if apiStatus(err) == http.StatusNotFound {
			chans, err = nil, nil // nothing written to this app yet
		}
		if err != nil {
			r.fatalf(cycle, "list channels of %s: %v", w.app, err)
		}
		byApp[w.app] = chans
		var mine []ota.Event
		for _, e := range global {
			if e.AppID == w.app {
				mine = append(mine, e)
			}
		}
		r.violate(cycle, w.resolve(mine)...)
		if bad := compareChannels(w.app, w.chans, chans); len(bad) > 0 {
			r.violate(cycle, bad...)
			w.chans = modelOf(chans) // report each fault once
		}
		bundles, err := c.Bundles(ctx, w.app)
		if apiStatus(err) == http.StatusNotFound {
			bundles, err = nil, nil
		}
		if err != nil {
			r.fatalf(cycle, "list bundles of %s: %v", w.app, err)
		}
		r.violate(cycle, checkBundles(w.app, bundles, chans, w.shas, r.blobDir())...)
		r.violate(cycle, w.checkBundleSet(bundles)...)
		r.violate(cycle, checkActiveBytes(ctx, hc, p.base, chans)...)
	}
	r.violate(cycle, checkChains(global, byApp)...)
	r.violate(cycle, checkBlobDir(r.blobDir(), r.verified)...)
}

// checkFileReadOnly opens the database read-only while otad is down and
// runs bbolt's page check. Read-only, so the file otad opens next is
// exactly what the kill left.
func checkFileReadOnly(path string) []string {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil // killed before it was created
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return []string{fmt.Sprintf("database does not open after the kill: %v", err)}
	}
	defer db.Close()
	var bad []string
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			bad = append(bad, fmt.Sprintf("database page check: %v", err))
		}
		return nil
	})
	if err != nil {
		bad = append(bad, fmt.Sprintf("read database after the kill: %v", err))
	}
	return bad
}

// checkLogForRaces fails the run when a race-enabled otad reported a data
// race; SIGKILL gives it no exit status to report it with.
func (r *crashRun) checkLogForRaces() {
	b, err := os.ReadFile(r.log.Name())
	if err != nil {
		r.t.Errorf("read otad log: %v", err)
		return
	}
	if n := bytes.Count(b, []byte("WARNING: DATA RACE")); n > 0 {
		r.violations += n
		i := bytes.Index(b, []byte("WARNING: DATA RACE"))
		r.t.Errorf("otad reported %d data race(s); first:\n%s", n, b[i:min(len(b), i+4000)])
	}
}

func (r *crashRun) summary(kills int, elapsed time.Duration) {
	var s opStats
	for _, w := range r.workers {
		s.add(w.stats)
	}
	r.t.Logf("crash summary: kills=%d acknowledged=%d (upload=%d rollback=%d promote=%d delete=%d, %d MiB uploaded) "+
		"rejected=%d in_flight_at_kill=%d %v (completed=%d, not_done=%d) violations=%d race_otad=%v elapsed=%s",
		kills, s.acked(), s.ok[ota.EventUpload], s.ok[ota.EventRollback], s.ok[ota.EventPromote], s.ok[ota.EventDelete],
		s.uploaded>>20, s.rejected, s.inFlight, s.cut, s.completed, s.inFlight-s.completed, r.violations, raceOtad(),
		elapsed.Round(time.Second))
}

// opStats counts what a worker's requests came to.
type opStats struct {
	ok        map[string]int // acknowledged, by event type of the operation
	uploaded  int64          // bytes of acknowledged uploads
	rejected  int            // 4xx answers: nothing happened
	inFlight  int            // requests a kill cut off
	cut       map[string]int // the same, by event type of the operation
	completed int            // of those, found done after the restart
}

func (s *opStats) add(o opStats) {
	if s.ok == nil {
		s.ok, s.cut = map[string]int{}, map[string]int{}
	}
	for k, v := range o.ok {
		s.ok[k] += v
	}
	for k, v := range o.cut {
		s.cut[k] += v
	}
	s.uploaded += o.uploaded
	s.rejected += o.rejected
	s.inFlight += o.inFlight
	s.completed += o.completed
}

func (s *opStats) acked() int {
	n := 0
	for _, v := range s.ok {
		n += v
	}
	return n
}

// op is one write of the workload. typ is the event type it records.
type op struct {
	typ     string
	channel string // the channel written to (the target of a promote)
	version string // uploaded, rolled back to, promoted or deleted; "" lets the server pick
	from    string // promote: the source channel
	body    []byte // upload: the zip
	sum     string // upload: its SHA-256
}

// pendingOp is a write a kill interrupted: it may or may not have happened.
type pendingOp struct {
	op   op
	from string // what the channel served before it
}

// matches reports whether event k is what op would have recorded.
func (p *pendingOp) matches(app string, k evKey) bool {
	if k.App != app || k.Type != p.op.typ || k.Channel != p.op.channel || k.From != p.from {
		return false
	}
	switch p.op.typ {
	case ota.EventUpload:
		return k.Version == p.op.version && k.To == p.op.version
	case ota.EventDelete:
		return k.Version == p.op.version
	default: // rollback, promote: the version is where the channel went
		return k.Version == k.To && (p.op.version == "" || k.To == p.op.version)
	}
}

// appWorker writes to one app, one request at a time, and keeps the model
// of what the app must look like: with a single writer per app every
// answer can be checked against it.
type appWorker struct {
	app      string
	rng      *rand.Rand
	chans    map[string]*chanModel
	want     []evKey           // the app's history as the answers imply it, in order
	shas     map[string]string // version → SHA-256 of every upload ever sent
	versions []string          // versions whose upload is recorded
	next     int
	pending  *pendingOp
	stats    opStats
	problems []string // violations seen while the workload runs
}

func newAppWorker(app string, rng *rand.Rand) *appWorker {
	return &appWorker{app: app, rng: rng, chans: map[string]*chanModel{}, shas: map[string]string{}, stats: opStats{ok: map[string]int{}, cut: map[string]int{}}}
}

func (w *appWorker) drainProblems() []string {
	p := w.problems
	w.problems = nil
	return p
}

// record adds an event known to be in history to the model.
func (w *appWorker) record(k evKey) {
	w.want = append(w.want, k)
	applyEvent(w.chans, k)
	if k.Type == ota.EventUpload {
		w.versions = append(w.versions, k.Version)
	}
}

// active is what the model says channel serves.
func (w *appWorker) active(channel string) string {
	if c := w.chans[channel]; c != nil {
		return c.Active
	}
	return ""
}

// run writes until a request fails for want of a server.
func (w *appWorker) run(c *ota.Client, cycle int) {
	for w.step(c, cycle) {
	}
}

// choose picks the next write from the model. Map order is random, so
// every choice goes through channelNames to stay reproducible by seed.
func (w *appWorker) choose(cycle int) (op, error) {
	var live, released, serving []string
	for _, name := range channelNames {
		c := w.chans[name]
		if c == nil {
			continue
		}
		live = append(live, name)
		if len(c.Releases) > 0 {
			released = append(released, name)
		}
		if c.Active != "" && c.Active != ota.VersionBuiltin {
			serving = append(serving, name)
		}
	}
	pick := func(s []string) string { return s[w.rng.IntN(len(s))] }
	x := w.rng.Float64()
	switch {
	case x < 0.20 && len(live) > 0:
		o := op{typ: ota.EventRollback, channel: pick(live)}
		switch y := w.rng.Float64(); {
		case y < 0.05:
			o.version = ota.VersionBuiltin
		case y < 0.40 && len(w.versions) > 0:
			o.version = pick(w.versions) // may be deleted: a refusal is fine
		}
		return o, nil
	case x < 0.35 && len(serving) > 0:
		from := pick(serving)
		targets := slices.DeleteFunc(slices.Clone(channelNames), func(s string) bool { return s == from })
		o := op{typ: ota.EventPromote, channel: pick(targets), from: from}
		if rel := w.chans[from].Releases; len(rel) > 0 && w.rng.IntN(2) == 0 {
			o.version = pick(rel)
		}
		return o, nil
	case x < 0.55 && len(released) > 0:
		ch := pick(released)
		return op{typ: ota.EventDelete, channel: ch, version: pick(w.chans[ch].Releases)}, nil
	}
	w.next++
	o := op{typ: ota.EventUpload, channel: pick(channelNames), version: fmt.Sprintf("1.%d.%d", cycle, w.next)}
	payload := w.rng.IntN(8 << 10)
	if w.rng.Float64() < bigUploadShare {
		payload = 1<<20 + w.rng.IntN(3<<20)
	}
	var err error
	o.body, o.sum, err = makeBundle(w.rng, o.version, payload)
	w.shas[o.version] = o.sum
	return o, err
}

// step sends one write and records what came of it; false means the server
// is gone and the worker stops.
func (w *appWorker) step(c *ota.Client, cycle int) bool {
	o, err := w.choose(cycle)
	if err != nil {
		w.problems = append(w.problems, fmt.Sprintf("build workload: %v", err))
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	from := w.active(o.channel)
	var (
		ev    evKey
		hasEv bool
	)
	switch o.typ {
	case ota.EventUpload:
		var res ota.UploadResult
		res, err = c.Upload(ctx, ota.UploadRequest{
			AppID: w.app, Channel: o.channel, Version: o.version, Checksum: o.sum,
			File: bytes.NewReader(o.body), Size: int64(len(o.body)),
		})
		if err == nil {
			if !res.Created || res.Bundle.SHA256 != o.sum {
				w.problems = append(w.problems, fmt.Sprintf("upload of new version %s of %s answered created=%v sha256=%s, want true and %s",
					o.version, w.app, res.Created, res.Bundle.SHA256, o.sum))
			}
			ev, hasEv = uploadEvent(w.app, o.version, res), true
			w.stats.uploaded += int64(len(o.body))
		}
	case ota.EventRollback:
		var ch ota.ChannelChange
		if ch, err = c.Rollback(ctx, w.app, o.channel, o.version); err == nil {
			ev, hasEv = changeEvent(o.typ, w.app, "", ch)
		}
	case ota.EventPromote:
		var ch ota.ChannelChange
		if ch, err = c.Promote(ctx, w.app, o.channel, ota.PromoteRequest{From: o.from, Version: o.version}); err == nil {
			ev, hasEv = changeEvent(o.typ, w.app, "", ch)
		}
	case ota.EventDelete:
		var ch ota.ChannelChange
		if ch, err = c.DeleteRelease(ctx, w.app, o.channel, o.version); err == nil {
			ev, hasEv = changeEvent(o.typ, w.app, o.version, ch)
		}
	}

	switch status := apiStatus(err); {
	case err == nil:
		w.stats.ok[o.typ]++
		if hasEv && ev.From != from {
			w.problems = append(w.problems, fmt.Sprintf("%s answered that %s/%s served %q before, but the last acknowledged write left %q",
				o.typ, w.app, o.channel, ev.From, from))
		}
		if hasEv {
			w.record(ev)
		}
		return true
	case status >= 400 && status < 500 && o.typ != ota.EventUpload:
		w.stats.rejected++ // e.g. nothing to roll back to: nothing happened
		return true
	case status != 0:
		w.problems = append(w.problems, fmt.Sprintf("%s %s/%s %q answered %d: %v", o.typ, w.app, o.channel, o.version, status, err))
		w.pending = &pendingOp{op: o, from: from} // a 5xx may come after the commit
		return false
	case errors.Is(err, syscall.ECONNREFUSED):
		return false // sent after the kill: certainly not done
	default:
		w.pending = &pendingOp{op: o, from: from}
		w.stats.inFlight++
		w.stats.cut[o.typ]++
		return false
	}
}

// resolve compares the app's history with the acknowledged writes: they
// must be there in order, each once, followed by at most the interrupted
// write, which then must be what it would have recorded.
func (w *appWorker) resolve(got []ota.Event) []string {
	var bad []string
	r := checkSeqs(got, false)
	bad = append(bad, r...)
	keys := make([]evKey, len(got))
	for i, e := range got {
		keys[i] = keyOf(e)
	}
	pend := w.pending
	w.pending = nil
	n := min(len(w.want), len(keys))
	for i := range n {
		if keys[i] != w.want[i] {
			bad = append(bad, fmt.Sprintf("history of %s, event %d of the app: has %s, the acknowledged writes say %s", w.app, i+1, keys[i], w.want[i]))
			break
		}
	}
	if len(keys) < len(w.want) {
		bad = append(bad, fmt.Sprintf("history of %s lost %d acknowledged event(s), the first: %s", w.app, len(w.want)-len(keys), w.want[len(keys)]))
	}
	extra := keys[n:]
	if pend != nil && len(extra) > 0 && pend.matches(w.app, extra[0]) {
		w.stats.completed++
		w.record(extra[0])
		extra = extra[1:]
	}
	for _, k := range extra {
		bad = append(bad, fmt.Sprintf("history of %s holds an event no write explains: %s", w.app, k))
	}
	if len(bad) > 0 {
		// Take the server's word from here on so each fault is reported once.
		w.want = keys
		w.versions = w.versions[:0]
		for _, k := range keys {
			if k.Type == ota.EventUpload {
				w.versions = append(w.versions, k.Version)
			}
		}
	}
	return bad
}

// checkBundleSet reports bundle records that no recorded upload explains
// (an interrupted upload left a record without its event) and recorded
// uploads without a record.
func (w *appWorker) checkBundleSet(bundles []ota.Bundle) []string {
	var have []string
	for _, b := range bundles {
		have = append(have, b.Version)
	}
	want := slices.Clone(w.versions)
	sort.Strings(have)
	sort.Strings(want)
	if slices.Equal(have, want) {
		return nil
	}
	return []string{fmt.Sprintf("bundles of %s are %q, the recorded uploads are %q", w.app, have, want)}
}
