package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/internal/store"
)

// BenchmarkChannelPage times the channel page and the health panel it
// reloads every ten seconds, with a full stats store (100,000 events, the
// per-app cap) spread over the last day.
func BenchmarkChannelPage(b *testing.B) {
	for _, events := range []int{0, 100000} {
		b.Run(fmt.Sprintf("stats=%d", events), func(b *testing.B) {
			e := newEnv(b, func(_ *server.Config, c *Config) { c.HealthCache = time.Hour })
			e.deploy(testApp, "stable", "1.0.0", "min_native", "1.0.0")
			e.deploy(testApp, "stable", "1.1.0", "min_native", "2.0.0", "rollout", "30")
			e.clock.Advance(24 * time.Hour)
			var batch []store.StoredStat
			for i := 0; i < events; i++ {
				action := "set"
				if i%20 == 0 {
					action = "update_fail"
				}
				ev := statsEvent(fmt.Sprintf("dev-%06d", i), "1.1.0", action)
				batch = append(batch, store.StoredStat{Received: e.clock.Now().Add(-time.Duration(events-i) * 800 * time.Millisecond), Event: ev})
				if len(batch) == 1000 {
					if err := e.store.AppendStats(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			br := e.browser()
			br.mustLogin()
			d := e.dashboard
			for _, tc := range []struct {
				name, path string
				cache      bool
			}{{"page", stablePath, false}, {"panel", stablePath + "/health", false}, {"panel-cached", stablePath + "/health", true}} {
				b.Run(tc.name, func(b *testing.B) {
					d.cfg.HealthCache = 0
					if tc.cache {
						d.cfg.HealthCache = time.Hour
						br.get(tc.path, "HX-Request", "true")
					}
					for b.Loop() {
						if a := br.get(tc.path, "HX-Request", "true"); a.StatusCode != http.StatusOK {
							b.Fatal(a.StatusCode)
						}
					}
				})
			}
		})
	}
}
