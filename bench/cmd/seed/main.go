// Command seed fills an otad data directory with a synthetic release history
// for the benchmarks: apps × channels × bundles published through the real
// store (bolt.Store.Publish), so the file has exactly the layout otad writes.
// Every publish is one upload event, so 1,000 × 10 × 100 also gives a
// history of 1,000,000 events.
//
// Bundle bytes are not written: /updates and history never read them.
//
// bbolt syncs every transaction; to seed a million of them in reasonable
// time, point --data-dir at a tmpfs (/dev/shm), where fsync costs nothing.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run() error {
	dataDir := flag.String("data-dir", "", "otad data directory to fill (created when missing)")
	apps := flag.Int("apps", 1000, "number of apps")
	channels := flag.Int("channels", 10, "channels per app")
	bundles := flag.Int("bundles", 100, "bundles published per channel")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the seeding to this file")
	flag.Parse()
	if *dataDir == "" || *apps < 1 || *channels < 1 || *bundles < 1 {
		return fmt.Errorf("usage: seed --data-dir DIR [--apps N] [--channels N] [--bundles N], every count at least 1")
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// otad's file name inside its data dir (internal/daemon config.DBPath).
	st, err := bolt.Open(filepath.Join(*dataDir, "otad.db"), bolt.Options{})
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	start := time.Now()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for a := range *apps {
		appID := AppID(a)
		for c := range *channels {
			for b := range *bundles {
				v := Version(c, b)
				sum := sha256.Sum256([]byte(appID + "/" + v))
				_, err := st.Publish(ctx, store.PublishInput{
					Bundle: ota.Bundle{
						AppID: appID, Version: v, Kind: ota.KindWeb,
						SHA256: hex.EncodeToString(sum[:]), Size: 1 << 20,
					},
					Channel: ChannelName(c),
					Actor:   "seed",
					Time:    base.Add(time.Duration(n) * time.Second),
				})
				if err != nil {
					_ = st.Close()
					return fmt.Errorf("after %d bundles: %w", n, err)
				}
				n++
			}
		}
		if (a+1)%100 == 0 {
			fmt.Fprintf(os.Stderr, "seed: %d apps, %d bundles, %s\n", a+1, n, time.Since(start).Round(time.Millisecond))
		}
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	fmt.Printf("seeded %d apps × %d channels × %d bundles (%d events) in %s\n",
		*apps, *channels, *bundles, n, time.Since(start).Round(time.Millisecond))
	return nil
}

// AppID, ChannelName and Version name the seeded objects; the benchmark
// driver uses the same scheme (app 0, channel 0 is the default channel).
func AppID(i int) string       { return fmt.Sprintf("com.bench.app%04d", i) }
func ChannelName(i int) string { return fmt.Sprintf("ch%d", i) }
func Version(ch, b int) string { return fmt.Sprintf("1.%d.%d", ch, b) }
