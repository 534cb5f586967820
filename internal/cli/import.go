package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// ImportOptions are the inputs of otactl import.
type ImportOptions struct {
	F       *Factory
	Dir     string
	History string
	DryRun  bool
}

// NewCmdImport builds `otactl import`.
func NewCmdImport(f *Factory, runF func(*ImportOptions) error) *cobra.Command {
	opts := &ImportOptions{F: f}
	cmd := &cobra.Command{
		Use:   "import DIR",
		Short: "Recreate channels and history from the old worker's bundles",
		Long: `Import a folder of bundles as the old worker stored them, named
<channel>-<version>.zip (the "apk" channel holds APKs), into the app on otad.

With --history, a history export (JSON or CSV with the columns channel,
version, filename, uploaded_at, checksum) gives each bundle its original
upload time, and every file's SHA-256 must match its checksum there;
history.json or history.csv inside DIR is used when --history is not given.
Without an export, a file's modification time stands for its upload time.

Bundles are uploaded oldest first, so each channel ends up serving its last
upload, as it did on the old worker. Nothing is uploaded when any file does
not match the export or a version already exists on otad with other bytes.
Versions already there with the same bytes are skipped, so running the
import again changes nothing. Needs a user login (upload times can only be
set by users, not CI tokens).`,
		Example: `  otactl import ./old-bundles --history history.csv --dry-run
  otactl import ./old-bundles --history history.csv --app-id com.example.app`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			if runF != nil {
				return runF(opts)
			}
			return importRun(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.History, "history", "", "history export of the old worker (JSON or CSV)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "check everything and print the plan; upload nothing")
	return cmd
}

// importItem is one bundle to import, in plan order.
type importItem struct {
	File       string    `json:"file"`
	Channel    string    `json:"channel"`
	Version    string    `json:"version"`
	Kind       string    `json:"kind"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	UploadedAt time.Time `json:"uploaded_at"`
	// TimeFrom says where UploadedAt came from: "history" or "mtime".
	TimeFrom string `json:"time_from"`
	// Action is "upload", "skip" (already on otad) or, after a run,
	// "uploaded".
	Action string `json:"action"`
	path   string
}

// parseBundleName splits the old worker's <channel>-<version>.zip (or
// .apk): the version starts at the first "-" followed by a digit, since
// channel names rarely hold one and versions always start with one.
func parseBundleName(name string) (channel, version, kind string, ok bool) {
	ext := strings.ToLower(filepath.Ext(name))
	if ext != ".zip" && ext != ".apk" {
		return "", "", "", false
	}
	base := name[:len(name)-len(ext)]
	for i := 1; i+1 < len(base); i++ {
		if base[i] == '-' && base[i+1] >= '0' && base[i+1] <= '9' {
			channel, version = base[:i], base[i+1:]
			kind = ota.KindWeb
			if ext == ".apk" || channel == ota.APKChannel {
				kind = ota.KindAPK
			}
			return channel, version, kind, true
		}
	}
	return "", "", "", false
}

// historyNames are the export file names looked for inside DIR.
var historyNames = []string{"history.json", "history.csv"}

// buildImportPlan reads DIR and the export and returns the bundles in
// upload order. Every problem found is reported together, before anything
// is uploaded.
func buildImportPlan(dir, historyPath string) ([]*importItem, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read bundle folder: %w", err)
	}
	if historyPath == "" {
		for _, n := range historyNames {
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				historyPath = filepath.Join(dir, n)
				break
			}
		}
	}
	var rows []historyRow
	if historyPath != "" {
		fh, err := os.Open(historyPath)
		if err != nil {
			return nil, nil, fmt.Errorf("open history export: %w", err)
		}
		rows, err = parseHistory(fh)
		fh.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", historyPath, err)
		}
	}
	// The old worker added a row per upload, also when it overwrote the
	// same file; the file holds the last upload's bytes.
	latest := map[string]historyRow{}
	for _, r := range rows {
		if prev, ok := latest[r.Filename]; !ok || !r.UploadedAt.Before(prev.UploadedAt) {
			latest[r.Filename] = r
		}
	}

	var items []*importItem
	var warnings, problems []string
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (historyPath != "" && filepath.Join(dir, name) == filepath.Clean(historyPath)) {
			continue
		}
		channel, version, kind, ok := parseBundleName(name)
		if !ok {
			warnings = append(warnings, fmt.Sprintf("skipped %s: not named <channel>-<version>.zip", name))
			continue
		}
		path := filepath.Join(dir, name)
		sum, size, mtime, err := hashFile(path)
		if err != nil {
			return nil, nil, err
		}
		it := &importItem{File: name, Channel: channel, Version: version, Kind: kind, SHA256: sum, Size: size,
			UploadedAt: mtime.UTC().Truncate(time.Second), TimeFrom: "mtime", Action: "upload", path: path}
		if r, ok := latest[name]; ok {
			seen[name] = true
			it.UploadedAt, it.TimeFrom = r.UploadedAt, "history"
			if r.Channel != channel || r.Version != version {
				problems = append(problems, fmt.Sprintf("%s: the export says channel %s version %s", name, r.Channel, r.Version))
			}
			switch {
			case r.Checksum == "":
			case len(r.Checksum) == 8:
				problems = append(problems, fmt.Sprintf("%s: checksum %s in the export is a CRC32; export the SHA-256 or drop the checksum column", name, r.Checksum))
			case r.Checksum != sum:
				problems = append(problems, fmt.Sprintf("%s: sha256 %s of the file does not match %s in the export (line %d)", name, sum, r.Checksum, r.Line))
			}
		} else if historyPath != "" {
			warnings = append(warnings, fmt.Sprintf("%s is not in the history export; its file time %s stands for the upload time", name, humanTime(it.UploadedAt)))
		}
		items = append(items, it)
	}
	for name, r := range latest {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("%s: in the export (line %d) but not in %s", name, r.Line, dir))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, warnings, fmt.Errorf("nothing was uploaded; fix the folder or the export first:\n  %s", strings.Join(problems, "\n  "))
	}
	if len(items) == 0 {
		return nil, warnings, fmt.Errorf("no <channel>-<version>.zip files in %s", dir)
	}
	sort.SliceStable(items, func(i, j int) bool {
		if !items[i].UploadedAt.Equal(items[j].UploadedAt) {
			return items[i].UploadedAt.Before(items[j].UploadedAt)
		}
		return items[i].File < items[j].File
	})
	return items, warnings, nil
}

func hashFile(path string) (sum string, size int64, mtime time.Time, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("open bundle: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("stat bundle: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("read bundle %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, st.ModTime(), nil
}

func importRun(cmd *cobra.Command, opts *ImportOptions) error {
	f := opts.F
	ctx := cmd.Context()
	items, warnings, err := buildImportPlan(opts.Dir, opts.History)
	for _, w := range warnings {
		fmt.Fprintln(f.IO.ErrOut, "warning:", w)
	}
	if err != nil {
		return err
	}
	client, err := f.Client(true)
	if err != nil {
		return err
	}
	// Only users may set upload times: fail now rather than after the
	// plan, with nothing uploaded.
	if cfg, err := f.Config(); err == nil && strings.HasPrefix(cfg.Token, ota.CITokenPrefix) && !opts.DryRun {
		return &AuthError{Err: errors.New("otactl import keeps upload times, which needs a user login, not a CI token; unset OTACTL_TOKEN and run: otactl login")}
	}
	app, err := f.AppID(ctx)
	if err != nil {
		return err
	}
	existing, err := client.Bundles(ctx, app)
	var apiErr *ota.APIError
	if errors.As(err, &apiErr) && apiErr.Status == 404 {
		existing, err = nil, nil // a new app: everything is uploaded
	}
	if err != nil {
		return fmt.Errorf("list bundles of %s: %w", app, err)
	}
	have := map[string]string{} // kind/version → sha256, on otad or earlier in the plan
	for _, b := range existing {
		have[b.Kind+"/"+b.Version] = strings.ToLower(b.SHA256)
	}
	released, err := channelReleases(cmd, client, app, existing != nil)
	if err != nil {
		return err
	}
	var conflicts []string
	for _, it := range items {
		key := it.Kind + "/" + it.Version
		if sum, ok := have[key]; ok && sum != it.SHA256 {
			conflicts = append(conflicts, fmt.Sprintf("%s: %s version %s is already on otad or in the folder with sha256 %s", it.File, it.Kind, it.Version, sum))
			continue
		}
		have[key] = it.SHA256
		// The same version in a second channel (the old way to promote) is
		// still uploaded there; only a channel that has it already is done.
		if released[it.Channel+"/"+it.Version] {
			it.Action = "skip"
		}
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("nothing was uploaded; these versions exist with other bytes (version names are immutable):\n  %s", strings.Join(conflicts, "\n  "))
	}

	if !opts.DryRun {
		for _, it := range items {
			if it.Action == "skip" {
				continue
			}
			if err := importOne(cmd, f, app, it); err != nil {
				return err
			}
			it.Action = "uploaded"
			if !f.JSON() {
				fmt.Fprintf(f.IO.ErrOut, "uploaded %s → %s %s\n", it.File, it.Channel, it.Version)
			}
		}
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, items)
	}
	tw := newTable(f.IO.Out)
	fmt.Fprintln(tw, "UPLOADED AT\tCHANNEL\tVERSION\tKIND\tSHA256\tFROM\tACTION\tFILE")
	for _, it := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", humanTime(it.UploadedAt), it.Channel, it.Version, it.Kind,
			short(it.SHA256), it.TimeFrom, it.Action, it.File)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if opts.DryRun {
		fmt.Fprintln(f.IO.ErrOut, "dry run: nothing was uploaded")
	}
	return nil
}

// channelReleases lists the versions each channel of app has held, as
// channel/version keys, so a re-run knows what is imported already.
func channelReleases(cmd *cobra.Command, client *ota.Client, app string, appExists bool) (map[string]bool, error) {
	out := map[string]bool{}
	if !appExists {
		return out, nil
	}
	chans, err := client.Channels(cmd.Context(), app)
	if err != nil {
		return nil, fmt.Errorf("list channels of %s: %w", app, err)
	}
	for _, c := range chans {
		for _, r := range c.Releases {
			out[c.Name+"/"+r.Version] = true
		}
	}
	return out, nil
}

// importOne uploads one bundle with its original time. The checksum makes
// otad verify the bytes it received against the ones hashed here.
func importOne(cmd *cobra.Command, f *Factory, app string, it *importItem) error {
	client, err := f.Client(true)
	if err != nil {
		return err
	}
	fh, err := os.Open(it.path)
	if err != nil {
		return fmt.Errorf("open bundle: %w", err)
	}
	defer fh.Close()
	_, err = client.Upload(cmd.Context(), ota.UploadRequest{
		AppID: app, Channel: it.Channel, Version: it.Version, Kind: it.Kind, Checksum: it.SHA256,
		File: fh, Size: it.Size, FileName: it.File, UploadedAt: it.UploadedAt,
		Notes: "imported from " + it.File,
	})
	if err != nil {
		return fmt.Errorf("import %s (bundles before it are on otad; run the import again to go on): %w", it.File, err)
	}
	return nil
}
