package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/otaship/ota/bench/internal/load"
	"github.com/otaship/ota/pkg/ota"
)

// phaseDataSize: target 2. The same update check and history pages against
// a store of one app with 100 bundles and against the seeded big store.
func (b *bench) phaseDataSize(ctx context.Context) error {
	if b.cfg.bigData == "" {
		return errors.New("no seeded data dir (--big-data); run bench/run.sh")
	}
	small := b.path("small-datasize")
	if err := b.seedSmall(ctx, small, 100); err != nil {
		return err
	}
	big := b.path("big")
	t0 := time.Now()
	if err := copyDir(ctx, b.cfg.bigData, big); err != nil {
		return err
	}
	logf("  copied the seeded store (%s) in %s", b.cfg.bigLabel, time.Since(t0).Round(time.Millisecond))

	// Start-up: exec until /readyz says 200. The first start of each store
	// creates the user and is not counted; the timed ones run without
	// OTAD_ADMIN_*, whose password check (a bcrypt hash, on every start)
	// would measure bcrypt, not the store.
	// The last start keeps running: it serves the load phases.
	// After each timed start, the first update check of the last app (the
	// one WarmUp reaches last, so the check loads it itself) is timed
	// too: otad lists its apps at start and loads each on first use or in
	// the background.
	lastApp := fmt.Sprintf("com.bench.app%04d", b.cfg.bigApps-1)
	var firstChecks []time.Duration
	startTimes := func(name, dir string) ([]time.Duration, *proc, error) {
		var ds []time.Duration
		for i := range b.cfg.reps + 1 {
			var p *proc
			var err error
			if i == 0 {
				p, err = b.startOtad(ctx, name, dir)
			} else {
				p, err = b.startOtadEnv(ctx, name, dir)
			}
			if err != nil {
				return nil, nil, err
			}
			err = waitReady(ctx, p.addr, 3*time.Minute)
			d := time.Since(p.started)
			if err != nil {
				p.stop()
				return nil, nil, err
			}
			if i > 0 && name == "otad-big" {
				t := time.Now()
				_, err := probeUpdateOf(p.addr, lastApp)
				firstChecks = append(firstChecks, time.Since(t))
				if err != nil {
					p.stop()
					return nil, nil, err
				}
			}
			if i > 0 {
				ds = append(ds, d)
				if i == b.cfg.reps || d > 5*time.Second {
					// Far over the bound, more starts would only cost time.
					return ds, p, nil
				}
			}
			p.stop()
		}
		return ds, nil, errors.New("no timed start")
	}
	smallStarts, sp, err := startTimes("otad-small", small)
	if err != nil {
		return err
	}
	defer sp.stop()
	bigStarts, ob, err := startTimes("otad-big", big)
	if err != nil {
		return err
	}
	defer ob.stop()
	logf("  start-up small %v, big %v; first update check of %s after start %v", smallStarts, bigStarts, lastApp, firstChecks)
	bs, ss := median(bigStarts), median(smallStarts)
	b.add(row{
		target:    fmt.Sprintf("otad start to /readyz, %s (%s events)", b.cfg.bigLabel, thousands(b.cfg.bigEvents)),
		measured:  fmtDur(bs),
		reference: fmtDur(ss) + " (1 app, 100 bundles)",
		ratio:     fmt.Sprintf("%.2f", bs.Seconds()/ss.Seconds()),
		threshold: "< 1 s",
		ok:        bs < time.Second,
	})
	b.notef("first update check of an app not loaded yet, right after start (the check loads the app: %s bundles): %s (median of %d)",
		thousands(b.cfg.bigEvents/max(b.cfg.bigApps, 1)), fmtDur(median(firstChecks)), len(firstChecks))
	// The load phases measure a warm otad: wait until every app is loaded.
	warm, err := waitWarm(ctx, ob, 5*time.Minute)
	if err != nil {
		return err
	}
	if _, err := waitWarm(ctx, sp, time.Minute); err != nil {
		return err
	}
	b.notef("otad loaded every app of the big store in the background in %s after listening (its `release state loaded` log line)", warm)

	if _, err := probeUpdate(sp.addr); err != nil {
		return err
	}
	if _, err := probeUpdate(ob.addr); err != nil {
		return err
	}
	if rss, err := procStatusKB(ob.pid(), "VmRSS"); err == nil {
		b.notef("otad RSS with every app of the big store loaded: %s", fmtMB(rss*1024))
	}

	req := updatesRequest(benchApp)
	target := "/updates req/s, 64 conns, big store vs 1 app"
	r, err := b.alternate(ctx, ob.addr, sp.addr, 64, req, req)
	if err != nil {
		b.miss(target, "≥ 0.90", err)
	} else {
		ratio := r.ratio
		b.add(row{
			target:    target,
			measured:  fmt.Sprintf("%.0f req/s (p99 %s)", r.aRPS, fmtDur(r.a.P99)),
			reference: fmt.Sprintf("%.0f req/s (p99 %s)", r.bRPS, fmtDur(r.b.P99)),
			ratio:     fmt.Sprintf("%.2f", ratio),
			threshold: "≥ 0.90",
			ok:        ratio >= 0.90,
		})
	}

	return b.historyPaging(ctx, sp.addr, ob.addr)
}

// historyPaging compares the latency of 50-event history pages: deep in
// the big history against its newest page, and the newest page of the big
// history against that of the small one.
func (b *bench) historyPaging(ctx context.Context, smallAddr, bigAddr string) error {
	const threshold = 1.5
	tokSmall, err := login(smallAddr)
	if err != nil {
		return err
	}
	tokBig, err := login(bigAddr)
	if err != nil {
		return err
	}
	mid := uint64(b.cfg.bigEvents/2 + 1)
	type pg struct {
		addr, tok string
		before    uint64
	}
	pages := []pg{{bigAddr, tokBig, 0}, {bigAddr, tokBig, mid}, {bigAddr, tokBig, 1_001}, {smallAddr, tokSmall, 0}}
	addrs := make([]string, len(pages))
	reqs := make([]load.Request, len(pages))
	for i, p := range pages {
		path := "/api/v1/history?limit=50"
		if p.before > 0 {
			path += fmt.Sprintf("&before=%d", p.before)
		}
		req := load.Request{Method: "GET", Path: path, Header: map[string]string{"Authorization": "Bearer " + p.tok}}
		status, body, err := load.Do(p.addr, req)
		if err != nil {
			return err
		}
		var hp ota.HistoryPage
		if status != http.StatusOK || json.Unmarshal(body, &hp) != nil || len(hp.Events) != 50 {
			return fmt.Errorf("GET %s: HTTP %d, want a page of 50 events: %.200s", path, status, body)
		}
		addrs[i], reqs[i] = p.addr, req
	}
	// The four pages in turn, request by request, so they share the noise.
	if _, err := load.RoundRobin(ctx, b.cfg.warmup, addrs, reqs); err != nil {
		return err
	}
	p50, err := load.RoundRobin(ctx, b.cfg.dur, addrs, reqs)
	if err != nil {
		return err
	}
	newestBig, midBig, deepBig, newestSmall := p50[0], p50[1], p50[2], p50[3]
	logf("  history p50: newest %s, middle %s, deep %s; small store newest %s", newestBig, midBig, deepBig, newestSmall)
	worst := max(midBig, deepBig)
	ratio := float64(worst) / float64(newestBig)
	b.add(row{
		target:    fmt.Sprintf("history page of 50, deep (below events 1,001 and %s of %s) vs newest", thousands(int(mid)), thousands(b.cfg.bigEvents)),
		measured:  fmt.Sprintf("p50 %s / %s", fmtDur(deepBig), fmtDur(midBig)),
		reference: "p50 " + fmtDur(newestBig) + " newest",
		ratio:     fmt.Sprintf("%.2f", ratio),
		threshold: fmt.Sprintf("≤ %.1f", threshold),
		ok:        ratio <= threshold,
	})
	ratio = float64(newestBig) / float64(newestSmall)
	b.add(row{
		target:    fmt.Sprintf("history newest page of 50, %s events vs 100 events", thousands(b.cfg.bigEvents)),
		measured:  "p50 " + fmtDur(newestBig),
		reference: "p50 " + fmtDur(newestSmall),
		ratio:     fmt.Sprintf("%.2f", ratio),
		threshold: fmt.Sprintf("≤ %.1f", threshold),
		ok:        ratio <= threshold,
	})
	return nil
}

// thousands formats n with commas: 1000000 → 1,000,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
