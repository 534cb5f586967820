// Package webbundle writes a realistic Capacitor web build (a webDir) for
// benchmarks and tests: by default about 1,500 files and 25 MiB, half
// compressible text (hashed JS and CSS chunks, prerendered HTML pages, JSON
// payloads, SVG icons) and half incompressible binary assets (PNG, JPEG and
// WebP images, WOFF2 fonts), named the way Vite and Nuxt name their output.
//
// The tree is a pure function of its Options: the same options give the
// same names and bytes on every machine and Go version (the only source of
// randomness is a PCG generator, whose algorithm is fixed), and every file
// and folder has the same fixed modification time, so tools that store
// times (zip) give stable output too.
//
// Next makes the following release of a generated tree in place, as an app
// rebuilt after a one-line fix: the entry chunk (40 KiB, referenced by
// index.html) gets new content and so a new hashed name, and index.html
// names it; every other file keeps its bytes. Delta-update benchmarks
// compare such a pair.
//
// It is used by bench/cmd/mkbundle and by benchmarks; it is not part of
// otad or otactl.
package webbundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultFiles = 1500
	DefaultSize  = 25 << 20
)

// EntryChunkSize is the size of the entry chunk, the file Next changes.
const EntryChunkSize = 40 << 10

// ModTime is the modification time of every file and folder written.
var ModTime = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// Options say what tree to write. Zero fields take the defaults.
type Options struct {
	// Seed picks the tree; the same seed gives the same tree.
	Seed uint64
	// Files is the number of files (at least 10).
	Files int
	// Size is the total size in bytes, roughly (at least 64 KiB).
	Size int64
	// Release is the release of the tree: release n+1 is what Next makes
	// of release n.
	Release int
}

func (o Options) withDefaults() (Options, error) {
	if o.Files == 0 {
		o.Files = DefaultFiles
	}
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	switch {
	case o.Files < 10:
		return o, fmt.Errorf("webbundle: %d files are too few; use at least 10", o.Files)
	case o.Size < 64<<10:
		return o, fmt.Errorf("webbundle: %d bytes are too few; use at least 64 KiB", o.Size)
	case o.Size < int64(o.Files)*64:
		return o, fmt.Errorf("webbundle: %d bytes cannot make %d files", o.Size, o.Files)
	case o.Release < 0:
		return o, fmt.Errorf("webbundle: release %d is negative", o.Release)
	}
	return o, nil
}

// Tree describes a written tree.
type Tree struct {
	Files int
	// Bytes is the total size of the files.
	Bytes int64
	// TextBytes is the part of Bytes in text files.
	TextBytes int64
	// Entry is the entry chunk's path, slash-separated and relative to the
	// tree's root: the file Next replaces.
	Entry string
}

// Generate writes the tree o describes into dir, which must not exist or
// be empty.
func Generate(dir string, o Options) (Tree, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Tree{}, err
	}
	if err := checkEmpty(dir); err != nil {
		return Tree{}, err
	}
	files := plan(o)
	var t Tree
	for _, f := range files {
		if err := writeFile(dir, f.path, f.data); err != nil {
			return Tree{}, err
		}
		t.Files++
		t.Bytes += int64(len(f.data))
		if f.text {
			t.TextBytes += int64(len(f.data))
		}
		if f.entry {
			t.Entry = f.path
		}
	}
	if err := fixTimes(dir); err != nil {
		return Tree{}, err
	}
	return t, nil
}

// Next turns the tree in dir, written by Generate (or Next), into its next
// release: a new entry chunk under a new hashed name, and index.html
// pointing at it. It returns the release made and the paths of the old and
// new entry chunks.
func Next(dir string) (release int, oldEntry, newEntry string, err error) {
	index, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		return 0, "", "", fmt.Errorf("webbundle: read the tree's index.html: %w", err)
	}
	m := generatorRE.FindSubmatch(index)
	e := entryRE.FindSubmatch(index)
	if m == nil || e == nil {
		return 0, "", "", errors.New("webbundle: index.html was not written by webbundle (no generator meta or entry script)")
	}
	seed, _ := strconv.ParseUint(string(m[1]), 10, 64)
	rel, _ := strconv.Atoi(string(m[2]))
	oldEntry = string(e[1])
	rel++
	chunk := entryChunk(seed, rel)
	newEntry = "assets/" + hashedName("index", chunk, ".js")
	css := cssRE.FindSubmatch(index)
	if css == nil {
		return 0, "", "", errors.New("webbundle: index.html names no stylesheet")
	}
	html := indexHTML(seed, rel, newEntry, string(css[1]), index)
	if err := writeFile(dir, newEntry, chunk); err != nil {
		return 0, "", "", err
	}
	if err := writeFile(dir, "index.html", html); err != nil {
		return 0, "", "", err
	}
	if err := os.Remove(filepath.Join(dir, filepath.FromSlash(oldEntry))); err != nil {
		return 0, "", "", fmt.Errorf("webbundle: remove the old entry chunk: %w", err)
	}
	if err := fixTimes(dir); err != nil {
		return 0, "", "", err
	}
	return rel, oldEntry, newEntry, nil
}

var (
	generatorRE = regexp.MustCompile(`<meta name="generator" content="webbundle seed (\d+) release (\d+)">`)
	entryRE     = regexp.MustCompile(`<script type="module" crossorigin src="/?([^"]+)"></script>`)
	cssRE       = regexp.MustCompile(`<link rel="stylesheet" crossorigin href="/?([^"]+)">`)
)

// file is one file of a planned tree.
type file struct {
	path  string
	data  []byte
	text  bool
	entry bool
}

// class is one kind of file: its share of the files, how it is named and
// what it holds.
type class struct {
	ext   string
	share float64 // of the files
	text  bool
	// name returns the path for file i with content data.
	name func(r *gen, i int, data []byte) string
	// fill returns n bytes of content.
	fill func(r *gen, n int) []byte
	// meanSize steers the size distribution before scaling to the budget.
	meanSize float64
}

// plan computes every file of the tree, in the order they are written.
func plan(o Options) []file {
	r := newGen(o.Seed, 1)
	classes := fileClasses()
	// index.html, the entry chunk and its stylesheet, then the classes.
	rest := o.Files - 3
	counts := make([]int, len(classes))
	left := rest
	for i, c := range classes {
		if i == len(classes)-1 {
			counts[i] = left
			break
		}
		counts[i] = int(math.Round(float64(rest) * c.share))
		left -= counts[i]
	}

	// Half the bytes are text, half binary, as in an app with its own
	// images and fonts; sizes are log-normal (many small files, a few
	// large ones), scaled to each half's budget.
	const entryCSSSize = 24 << 10
	textBudget := o.Size/2 - EntryChunkSize - entryCSSSize - 4<<10
	binBudget := o.Size - o.Size/2
	sizes := make([][]int, len(classes))
	var textRaw, binRaw float64
	for i, c := range classes {
		sizes[i] = make([]int, counts[i])
		for j := range sizes[i] {
			v := math.Exp(math.Log(c.meanSize*0.7) + 0.8*r.normal())
			sizes[i][j] = int(v)
			if c.text {
				textRaw += v
			} else {
				binRaw += v
			}
		}
	}
	for i, c := range classes {
		scale := float64(binBudget) / math.Max(binRaw, 1)
		if c.text {
			scale = float64(max(textBudget, 0)) / math.Max(textRaw, 1)
		}
		for j := range sizes[i] {
			sizes[i][j] = max(64, min(int(float64(sizes[i][j])*scale), 2<<20))
		}
	}

	var out []file
	seen := map[string]bool{}
	add := func(f file) {
		for n := 2; seen[f.path]; n++ { // a repeated name: number it
			ext := filepath.Ext(f.path)
			f.path = strings.TrimSuffix(f.path, ext) + "-" + strconv.Itoa(n) + ext
		}
		seen[f.path] = true
		out = append(out, f)
	}
	css := fillCSS(r, entryCSSSize)
	cssPath := "assets/" + hashedName("index", css, ".css")
	entry := entryChunk(o.Seed, o.Release)
	entryPath := "assets/" + hashedName("index", entry, ".js")
	add(file{path: "index.html", data: indexHTML(o.Seed, o.Release, entryPath, cssPath, nil), text: true})
	add(file{path: entryPath, data: entry, text: true, entry: true})
	add(file{path: cssPath, data: css, text: true})
	for i, c := range classes {
		for j := range counts[i] {
			data := c.fill(r, sizes[i][j])
			add(file{path: c.name(r, j, data), data: data, text: c.text})
		}
	}
	return out
}

func fileClasses() []class {
	return []class{
		{ext: ".js", share: 0.40, text: true, meanSize: 12000, fill: fillJS,
			name: func(r *gen, i int, d []byte) string { return "assets/" + hashedName(r.pick(chunkNames), d, ".js") }},
		{ext: ".css", share: 0.10, text: true, meanSize: 6000, fill: fillCSS,
			name: func(r *gen, i int, d []byte) string { return "assets/" + hashedName(r.pick(chunkNames), d, ".css") }},
		{ext: ".html", share: 0.06, text: true, meanSize: 9000, fill: fillHTML,
			name: func(r *gen, i int, d []byte) string {
				return r.pick(routes) + "/" + r.pick(slugs) + "-" + strconv.Itoa(i) + "/index.html"
			}},
		{ext: ".json", share: 0.04, text: true, meanSize: 7000, fill: fillJSON,
			name: func(r *gen, i int, d []byte) string {
				if i < len(locales) {
					return "locales/" + locales[i] + ".json"
				}
				return "_payload/" + r.pick(slugs) + "-" + strconv.Itoa(i) + ".json"
			}},
		{ext: ".svg", share: 0.06, text: true, meanSize: 2500, fill: fillSVG,
			name: func(r *gen, i int, d []byte) string { return "icons/" + r.pick(icons) + "-" + strconv.Itoa(i) + ".svg" }},
		{ext: ".img", share: 0.30, text: false, meanSize: 30000,
			fill: func(r *gen, n int) []byte { return fillBinary(r, n, imageMagic[r.intn(len(imageMagic))]) },
			name: func(r *gen, i int, d []byte) string {
				ext := ".png"
				for _, m := range imageMagic {
					if bytes.HasPrefix(d, m.magic) {
						ext = m.ext
					}
				}
				return "assets/img/" + hashedName(r.pick(imageNames), d, ext)
			}},
		{ext: ".woff2", share: 0.04, text: false, meanSize: 40000,
			fill: func(r *gen, n int) []byte { return fillBinary(r, n, magic{".woff2", []byte("wOF2\x00\x01\x00\x00")}) },
			name: func(r *gen, i int, d []byte) string {
				return "assets/fonts/" + hashedName(r.pick(fontNames)+"-"+r.pick(fontWeights), d, ".woff2")
			}},
	}
}

// hashedName is name-<8 hex of the content's SHA-256>ext, as bundlers
// name their output so that it can be cached forever.
func hashedName(name string, data []byte, ext string) string {
	sum := sha256.Sum256(data)
	return name + "-" + hex.EncodeToString(sum[:4]) + ext
}

// entryChunk is the entry chunk of a release: the same size in every
// release, content that depends on the release, and the updater call a
// Capgo app makes (otactl's code check looks for it).
func entryChunk(seed uint64, release int) []byte {
	r := newGen(seed, 1000+uint64(release))
	head := fmt.Sprintf("import{CapacitorUpdater as U}from\"./updater.js\";U.notifyAppReady();const RELEASE=%d;\n", release)
	return append([]byte(head), fillJS(r, EntryChunkSize-len(head))...)
}

// indexHTML is the root page naming the entry chunk and stylesheet. When
// prev is given, only its references change (Next), as a rebuild does.
func indexHTML(seed uint64, release int, entry, css string, prev []byte) []byte {
	if prev != nil {
		b := generatorRE.ReplaceAll(prev, []byte(fmt.Sprintf(`<meta name="generator" content="webbundle seed %d release %d">`, seed, release)))
		return entryRE.ReplaceAll(b, []byte(`<script type="module" crossorigin src="/`+entry+`"></script>`))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="generator" content="webbundle seed %d release %d">
<title>Shop</title>
<link rel="icon" href="/icons/favicon.svg">
<script type="module" crossorigin src="/%s"></script>
<link rel="stylesheet" crossorigin href="/%s">
</head>
<body>
<div id="app"></div>
</body>
</html>
`, seed, release, entry, css)
	return b.Bytes()
}

// writeFile writes data to the slash path rel under dir.
func writeFile(dir, rel string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("webbundle: %w", err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("webbundle: %w", err)
	}
	return nil
}

// checkEmpty wants dir missing or empty: Generate never mixes its files
// with others'.
func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("webbundle: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("webbundle: %s is not empty; generate into a new folder", dir)
	}
	return nil
}

// fixTimes sets every file's and folder's modification time to ModTime,
// folders last (writing into a folder changes its time).
func fixTimes(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		return os.Chtimes(p, ModTime, ModTime)
	})
	if err != nil {
		return fmt.Errorf("webbundle: %w", err)
	}
	slices.Reverse(dirs) // deepest first
	for _, d := range dirs {
		if err := os.Chtimes(d, ModTime, ModTime); err != nil {
			return fmt.Errorf("webbundle: %w", err)
		}
	}
	return nil
}

// gen is the tree's only source of randomness: a PCG generator, whose
// output for a seed is fixed by its algorithm. Everything else derives from
// Uint64 here, never from math/rand's helpers, whose algorithms may change.
type gen struct{ p *rand.PCG }

func newGen(seed, stream uint64) *gen { return &gen{rand.NewPCG(seed, stream)} }

// intn returns a number in [0, n).
func (g *gen) intn(n int) int { return int(g.p.Uint64() % uint64(n)) }

// float returns a number in [0, 1).
func (g *gen) float() float64 { return float64(g.p.Uint64()>>11) / (1 << 53) }

// normal returns a standard normal number (Box-Muller).
func (g *gen) normal() float64 {
	u := 1 - g.float() // (0, 1]
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*g.float())
}

func (g *gen) pick(words []string) string { return words[g.intn(len(words))] }

// zipf returns an index in [0, n) with weight 1/(i+1)^1.1, as word use in
// code and prose goes: some tokens repeat a lot, which is what makes text
// compress.
func (g *gen) zipf(cum []float64) int {
	x := g.float() * cum[len(cum)-1]
	i, _ := slices.BinarySearch(cum, x)
	return min(i, len(cum)-1)
}

func cumulative(n int) []float64 {
	c := make([]float64, n)
	total := 0.0
	for i := range c {
		total += 1 / math.Pow(float64(i+1), 1.1)
		c[i] = total
	}
	return c
}
