package capacitor

import (
	"errors"
	"io/fs"
	"sort"
)

// Installed reports whether the package name is installed where Node would
// find it from the project: node_modules of the project or of a parent
// folder (hoisted monorepos).
func (p *Project) Installed(name string) bool {
	_, _, err := readInstalled(p.Dir, name)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// NotInstalled lists the declared dependencies that are not installed,
// sorted: all of them when npm ci (or npm install) never ran, so a build
// would fail with an error that does not say so.
func (p *Project) NotInstalled() []string {
	var missing []string
	for name := range p.Dependencies {
		if !p.Installed(name) {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	return missing
}
