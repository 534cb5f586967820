// Command mkbundle writes a deterministic, realistic Capacitor web build
// for the benchmarks: about 1,500 files and 25 MiB, hashed JS and CSS
// chunks, HTML pages, JSON, SVG icons, images and fonts (internal/webbundle
// says what and why).
//
//	go run ./bench/cmd/mkbundle [--seed 1] [--files 1500] [--mib 25] [--release 0] DIR
//	go run ./bench/cmd/mkbundle --next DIR
//
// The first form writes release N of the tree into DIR, which must not
// exist or be empty. --next turns the tree in DIR into its next release in
// place: the 40 KiB entry chunk gets new content under a new hashed name
// and index.html points at it, as a rebuild after a one-line fix does.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/otaship/ota/internal/webbundle"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkbundle:", err)
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("mkbundle", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "the tree to write: the same seed gives the same bytes")
	files := fs.Int("files", webbundle.DefaultFiles, "number of files")
	mib := fs.Float64("mib", float64(webbundle.DefaultSize)/(1<<20), "total size in MiB")
	release := fs.Int("release", 0, "release of the tree (release N+1 is what --next makes of N)")
	next := fs.Bool("next", false, "turn the tree in DIR into its next release, in place")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: mkbundle [--seed N] [--files N] [--mib N] [--release N] DIR, or mkbundle --next DIR")
	}
	dir := fs.Arg(0)
	if *next {
		rel, oldEntry, newEntry, err := webbundle.Next(dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "release %d of %s: %s replaced by %s, index.html updated\n", rel, dir, oldEntry, newEntry)
		return nil
	}
	t, err := webbundle.Generate(dir, webbundle.Options{
		Seed: *seed, Files: *files, Size: int64(*mib * (1 << 20)), Release: *release,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %d files, %d bytes (%.1f MiB, %.0f%% text) to %s (seed %d, release %d, entry %s)\n",
		t.Files, t.Bytes, float64(t.Bytes)/(1<<20), 100*float64(t.TextBytes)/float64(t.Bytes), dir, *seed, *release, t.Entry)
	return nil
}
