// Command otabench runs the benchmark comparisons of docs/benchmarks.md:
// otad against the least a server could do for the same work on the same
// machine, each target a ratio measured in one run. bench/run.sh builds
// the binaries and inputs and calls it; run that, not this.
//
// Every server listens on 127.0.0.1. Each load phase runs for a fixed time
// with a fixed number of connections; otad and its reference alternate
// within a phase and the median is kept, so a noisy neighbour on the
// machine hurts both sides alike.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// config is what run.sh passes in.
type config struct {
	bin       string // directory with otad, otactl, refserver, seed
	work      string // scratch directory, on the disk uploads are measured on
	web       string // generated web dir (bench/cmd/mkbundle)
	bigData   string // seeded data dir: 1,000 apps × 10 channels × 100 bundles (read only)
	bigLabel  string // what bigData holds, for the report
	bigApps   int    // apps in bigData, named as bench/cmd/seed names them
	bigEvents int    // history events in bigData
	capgo     string // npm project with @capgo/cli and @capgo/capacitor-updater, or a file explaining why not
	out       string // markdown results file
	quick     bool
	phases    string
	dur       time.Duration
	warmup    time.Duration
	reps      int
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "", "directory holding the otad, otactl, refserver and seed binaries")
	flag.StringVar(&c.work, "work", "", "scratch directory")
	flag.StringVar(&c.web, "web", "", "web dir to zip (bench/cmd/mkbundle output)")
	flag.StringVar(&c.bigData, "big-data", "", "seeded otad data dir for the data-size targets (copied, not changed)")
	flag.StringVar(&c.bigLabel, "big-label", "1,000 apps × 10 channels × 100 bundles", "what --big-data holds")
	flag.IntVar(&c.bigEvents, "big-events", 1_000_000, "history events in --big-data")
	flag.IntVar(&c.bigApps, "big-apps", 1000, "apps in --big-data")
	flag.StringVar(&c.capgo, "capgo", "", "npm project dir with @capgo/cli installed (or a file whose text says why there is none)")
	flag.StringVar(&c.out, "out", "", "write the results as markdown to this file")
	flag.BoolVar(&c.quick, "quick", false, "one repetition of shorter load phases")
	flag.StringVar(&c.phases, "phases", "updates,datasize,zip,upload,download,stats,delta", "comma-separated phases to run")
	flag.Parse()
	if c.bin == "" || c.work == "" {
		fmt.Fprintln(os.Stderr, "otabench: --bin and --work are required; run bench/run.sh")
		os.Exit(2)
	}
	// Five pairs: on a shared machine single ratios move by ±0.1, and the
	// median of five is steadier than that of three.
	c.dur, c.warmup, c.reps = 5*time.Second, time.Second, 5
	if c.quick {
		c.dur, c.warmup, c.reps = 2*time.Second, 500*time.Millisecond, 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{cfg: c}
	code := b.run(ctx)
	os.Exit(code)
}

// row is one line of the results table.
type row struct {
	target    string
	measured  string
	reference string
	ratio     string
	threshold string
	ok        bool
	note      string // why a row is MISS without a measurement, or caveats
}

type bench struct {
	cfg  config
	rows []row
	// notes are printed under the table (p99s, sizes, versions).
	notes []string
}

func (b *bench) add(r row) {
	b.rows = append(b.rows, r)
	status := "PASS"
	if !r.ok {
		status = "MISS"
	}
	logf("%s  %s: %s vs %s (ratio %s, %s) %s", status, r.target, r.measured, r.reference, r.ratio, r.threshold, r.note)
}

// miss records a target that could not be measured, with the reason.
func (b *bench) miss(target, threshold string, err error) {
	b.add(row{target: target, measured: "-", reference: "-", ratio: "-", threshold: threshold, note: "not measured: " + oneLine(err.Error())})
}

func (b *bench) notef(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
	logf("note: "+format, args...)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (b *bench) run(ctx context.Context) int {
	phases := map[string]func(context.Context) error{
		"updates":  b.phaseUpdates,
		"datasize": b.phaseDataSize,
		"zip":      b.phaseZip,
		"upload":   b.phaseUploadDownload,
		"stats":    b.phaseStats,
		"delta":    b.phaseDelta,
	}
	order := []string{"updates", "datasize", "zip", "upload", "stats", "delta"}
	want := strings.Split(b.cfg.phases, ",")
	if slices.Contains(want, "download") && !slices.Contains(want, "upload") {
		want = append(want, "upload") // download needs the uploaded bundle
	}
	start := time.Now()
	for _, name := range order {
		if !slices.Contains(want, name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		logf("== phase %s", name)
		if err := phases[name](ctx); err != nil {
			// A phase that breaks leaves its rows MISS; the others still run.
			b.miss("phase "+name, "-", err)
		}
	}
	total := time.Since(start).Round(time.Second)
	b.notef("benchmark phases took %s (%s mode)", total, map[bool]string{true: "--quick", false: "full"}[b.cfg.quick])

	b.printTable(os.Stdout)
	if b.cfg.out != "" {
		f, err := os.Create(b.cfg.out)
		if err != nil {
			logf("write results: %v", err)
			return 1
		}
		b.writeMarkdown(f)
		if err := f.Close(); err != nil {
			logf("write results: %v", err)
			return 1
		}
	}
	for _, r := range b.rows {
		if !r.ok {
			return 3 // some target missed: the table says which
		}
	}
	return 0
}

func status(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func (b *bench) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tMEASURED\tREFERENCE\tRATIO\tTHRESHOLD\tRESULT")
	for _, r := range b.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.target, r.measured, r.reference, r.ratio, r.threshold, status(r.ok))
	}
	tw.Flush()
	for _, r := range b.rows {
		if r.note != "" {
			fmt.Fprintf(w, "- %s: %s\n", r.target, r.note)
		}
	}
	for _, n := range b.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
}

func (b *bench) writeMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| Target | Measured | Reference | Ratio | Threshold | Result |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, r := range b.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", esc(r.target), esc(r.measured), esc(r.reference), esc(r.ratio), esc(r.threshold), status(r.ok))
	}
	fmt.Fprintln(w)
	for _, r := range b.rows {
		if r.note != "" {
			fmt.Fprintf(w, "- %s: %s\n", esc(r.target), r.note)
		}
	}
	for _, n := range b.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
}

// median of a non-empty slice (the lower middle for even lengths).
func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func (b *bench) path(name ...string) string {
	return filepath.Join(append([]string{b.cfg.work}, name...)...)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

func fmtMB(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
