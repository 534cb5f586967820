// Command gendocs writes otactl's command reference, one Markdown page per
// command, from the cobra command tree into docs/cli/. Run it from the
// repository root after changing a command's help or flags:
//
//	go run ./internal/cli/gendocs
//
// A test fails while docs/cli/ differs from what it would write.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra/doc"

	"github.com/otaship/ota/internal/cli"
)

func main() {
	dir := "docs/cli"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := Generate(dir); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// Generate replaces the Markdown files in dir with the current reference.
// Stale pages of removed commands go too.
func Generate(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	old, err := filepath.Glob(filepath.Join(dir, "otactl*.md"))
	if err != nil {
		return fmt.Errorf("list old pages: %w", err)
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove stale page: %w", err)
		}
	}
	// A factory over an empty environment, so nothing of the machine that
	// generates the pages (config files, OTACTL_* variables) shows up.
	f := cli.NewFactory()
	f.Getenv = func(string) string { return "" }
	root := cli.NewCmdRoot(f)
	// Dates in the pages would make every run differ.
	root.DisableAutoGenTag = true
	if err := doc.GenMarkdownTree(root, dir); err != nil {
		return fmt.Errorf("generate markdown into %s: %w", dir, err)
	}
	return nil
}
