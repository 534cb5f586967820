package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var checksumLine = regexp.MustCompile(`Checksum SHA256: ([0-9a-f]{64})`)

// phaseZip: target 3. otactl bundle zip against Info-ZIP zip + sha256sum
// (speed and size) and against the Capgo CLI's bundle zip (speed).
func (b *bench) phaseZip(ctx context.Context) error {
	if b.cfg.web == "" {
		return errors.New("no web dir (--web); run bench/run.sh")
	}
	web, err := filepath.Abs(b.cfg.web)
	if err != nil {
		return err
	}
	otactl := filepath.Join(b.cfg.bin, "otactl")
	otaOut, zipOut := b.path("otactl.zip"), b.path("infozip.zip")
	var otaTimes, zipTimes []time.Duration
	var ratios []float64
	var otaSum string
	for i := range b.cfg.reps {
		_ = os.Remove(otaOut)
		d, out, err := timeCmd(ctx, web, otactl, "bundle", "zip", web, "-o", otaOut, "--no-code-check")
		if err != nil {
			return err
		}
		m := checksumLine.FindSubmatch(out)
		if m == nil {
			return fmt.Errorf("otactl bundle zip printed no Checksum SHA256 line:\n%s", lastLines(out, 5))
		}
		otaSum = string(m[1])
		// zip adds to an existing archive: start from nothing every time.
		_ = os.Remove(zipOut)
		z, _, err := timeCmd(ctx, web, "sh", "-c", `zip -qrX "$1" . && sha256sum "$1"`, "sh", zipOut)
		if err != nil {
			return err
		}
		logf("  run %d: otactl %s, zip+sha256sum %s", i+1, fmtDur(d), fmtDur(z))
		otaTimes, zipTimes = append(otaTimes, d), append(zipTimes, z)
		ratios = append(ratios, d.Seconds()/z.Seconds())
	}
	if got, err := fileSHA256(otaOut); err != nil || got != otaSum {
		return fmt.Errorf("otactl printed checksum %s but its zip hashes to %s (%v)", otaSum, got, err)
	}
	ot, zt, ratio := median(otaTimes), median(zipTimes), median(ratios)
	b.add(row{
		target:    "bundle zip + checksum, 1,500 files / 25 MiB",
		measured:  "otactl " + fmtDur(ot),
		reference: "zip -qrX + sha256sum " + fmtDur(zt),
		ratio:     fmt.Sprintf("%.2f", ratio),
		threshold: "< 1.00",
		ok:        ratio < 1,
	})
	os1, err1 := os.Stat(otaOut)
	zs, err2 := os.Stat(zipOut)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	sizeRatio := float64(os1.Size()) / float64(zs.Size())
	b.add(row{
		target:    "bundle zip compressed size",
		measured:  fmt.Sprintf("%d B", os1.Size()),
		reference: fmt.Sprintf("%d B Info-ZIP -6", zs.Size()),
		ratio:     fmt.Sprintf("%.3f", sizeRatio),
		threshold: "≤ 1.02",
		ok:        sizeRatio <= 1.02,
	})
	return b.capgoZip(ctx, web, ot)
}

// capgoZip times npx @capgo/cli bundle zip on the same folder.
func (b *bench) capgoZip(ctx context.Context, web string, otaTime time.Duration) error {
	const target, threshold = "bundle zip vs Capgo CLI", "≥ 3.00 (capgo/otactl)"
	dir := b.cfg.capgo
	fi, err := os.Stat(dir)
	switch {
	case dir == "":
		b.miss(target, threshold, errors.New("no Capgo CLI project given (--capgo)"))
		return nil
	case err != nil:
		b.miss(target, threshold, err)
		return nil
	case !fi.IsDir():
		reason, _ := os.ReadFile(dir)
		b.miss(target, threshold, fmt.Errorf("the Capgo CLI is unavailable: %s", strings.TrimSpace(string(reason))))
		return nil
	}
	version := "?"
	if pj, err := os.ReadFile(filepath.Join(dir, "node_modules", "@capgo", "cli", "package.json")); err == nil {
		version = jsonField(pj, "version")
	}
	var times []time.Duration
	out := filepath.Join(dir, "capgo-bench.zip")
	for i := range b.cfg.reps {
		_ = os.Remove(out)
		// --no-install: the package is installed in dir, so no registry
		// round trip is timed; the command is otherwise the documented
		// npx @capgo/cli bundle zip.
		d, o, err := timeCmd(ctx, dir, "npx", "--no-install", "@capgo/cli", "bundle", "zip", "com.example.bench",
			"--path", web, "--bundle", "1.0.0", "--name", "capgo-bench.zip", "--no-code-check")
		if err != nil {
			b.miss(target, threshold, err)
			return nil
		}
		if !checksumLine.Match(o) {
			b.miss(target, threshold, fmt.Errorf("capgo printed no checksum:\n%s", lastLines(o, 5)))
			return nil
		}
		logf("  run %d: capgo %s", i+1, fmtDur(d))
		times = append(times, d)
	}
	size := int64(-1)
	if fi, err := os.Stat(out); err == nil {
		size = fi.Size()
	}
	ct := median(times)
	ratio := ct.Seconds() / otaTime.Seconds()
	b.add(row{
		target:    target,
		measured:  "otactl " + fmtDur(otaTime),
		reference: fmt.Sprintf("@capgo/cli %s %s", version, fmtDur(ct)),
		ratio:     fmt.Sprintf("%.2f", ratio),
		threshold: threshold,
		ok:        ratio >= 3,
	})
	b.notef("Capgo CLI %s zip: %d bytes (run with npx --no-install from a project with @capgo/capacitor-updater installed)", version, size)
	return nil
}

func fileSHA256(path string) (string, error) {
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
