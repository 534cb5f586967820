package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/otaship/ota/bench/internal/load"
)

// loadRun runs one fixed-time load phase and refuses results with errors or
// non-2xx answers: a server that fails requests fast must not look fast.
func (b *bench) loadRun(ctx context.Context, addr string, conns int, rate float64, req load.Request) (load.Result, error) {
	res, err := load.Run(ctx, load.Options{Addr: addr, Conns: conns, Duration: b.cfg.dur, Warmup: b.cfg.warmup, RatePerSec: rate}, req)
	if err != nil {
		return res, err
	}
	if res.Non2xx > 0 || res.Errors > 0 || res.Requests == 0 {
		return res, fmt.Errorf("%s %s on %s: %s", req.Method, req.Path, addr, res)
	}
	return res, nil
}

// abResult is what alternating runs of two servers gave.
type abResult struct {
	a, b       load.Result // the median runs of each (by req/s), for display
	aRPS, bRPS float64
	// ratio is the median of a/b over the pairs of adjacent runs: a pair
	// shares whatever else the machine was doing at the time, so this is
	// steadier than the ratio of the medians.
	ratio float64
}

// alternate runs the same load against a and b, reps times each, in the
// order a b, b a, a b…, so that neither side always runs first (the
// second run of a pair may find the machine warmer, or busier).
func (b *bench) alternate(ctx context.Context, addrA, addrB string, conns int, reqA, reqB load.Request) (abResult, error) {
	var ra, rb []load.Result
	var ratios []float64
	for i := range b.cfg.reps {
		var x, y load.Result
		var err error
		if i%2 == 0 {
			if x, err = b.loadRun(ctx, addrA, conns, 0, reqA); err == nil {
				y, err = b.loadRun(ctx, addrB, conns, 0, reqB)
			}
		} else {
			if y, err = b.loadRun(ctx, addrB, conns, 0, reqB); err == nil {
				x, err = b.loadRun(ctx, addrA, conns, 0, reqA)
			}
		}
		if err != nil {
			return abResult{}, err
		}
		logf("  run %d, %d conns: %s | %s", i+1, conns, x, y)
		ra, rb = append(ra, x), append(rb, y)
		ratios = append(ratios, x.RPS()/y.RPS())
	}
	out := abResult{a: medianRun(ra), b: medianRun(rb), ratio: median(ratios)}
	out.aRPS, out.bRPS = out.a.RPS(), out.b.RPS()
	return out, nil
}

// medianRun is the run with the median req/s.
func medianRun(rs []load.Result) load.Result {
	rps := make([]float64, len(rs))
	for i, r := range rs {
		rps[i] = r.RPS()
	}
	m := median(rps)
	for _, r := range rs {
		if r.RPS() == m {
			return r
		}
	}
	return rs[0]
}

// phaseUpdates: target 1, /updates against a bare echo handler that answers
// a constant JSON of the same size behind the same middleware.
func (b *bench) phaseUpdates(ctx context.Context) error {
	dir := b.path("small-updates")
	if err := b.seedSmall(ctx, dir, 100); err != nil {
		return err
	}
	otad, err := b.startOtad(ctx, "otad-updates", dir)
	if err != nil {
		return err
	}
	defer otad.stop()
	body, err := probeUpdate(otad.addr)
	if err != nil {
		return err
	}
	bodyFile := b.path("updates-response.json")
	if err := os.WriteFile(bodyFile, body, 0o644); err != nil {
		return fmt.Errorf("write reference body: %w", err)
	}
	ref, err := startProc(ctx, "refserver-echo", filepath.Join(b.cfg.bin, "refserver"),
		[]string{"echo", "--body", bodyFile, "--addr-file", b.path("refserver-echo.addr")}, nil, b.path("refserver-echo.addr"))
	if err != nil {
		return err
	}
	defer ref.stop()
	b.notef("/updates answers %d bytes (`%s`); the echo reference answers the same bytes", len(body), bytes.TrimSpace(body))

	req := updatesRequest(benchApp)
	for _, conns := range []int{64, 256} {
		target := fmt.Sprintf("/updates req/s, %d conns", conns)
		r, err := b.alternate(ctx, otad.addr, ref.addr, conns, req, req)
		if err != nil {
			b.miss(target, "≥ 0.85", err)
			continue
		}
		ratio := r.ratio
		b.add(row{
			target:    target,
			measured:  fmt.Sprintf("%.0f req/s (p99 %s)", r.aRPS, fmtDur(r.a.P99)),
			reference: fmt.Sprintf("%.0f req/s (p99 %s) echo", r.bRPS, fmtDur(r.b.P99)),
			ratio:     fmt.Sprintf("%.2f", ratio),
			threshold: "≥ 0.85",
			ok:        ratio >= 0.85,
		})
	}
	return nil
}
