package update

import (
	"bytes"
	"compress/gzip"
	"strings"
	"sync"
	"time"

	"github.com/otaship/ota/internal/download"

	"github.com/otaship/ota/pkg/ota"
)

// Delta (manifest) answers (protocol §2.6). A delta release is offered as
// its zip plus the list of its files; a plugin that reads manifests
// fetches only the files it does not already have, in its built-in bundle
// or its download cache, and ignores the zip. The lists are built once per
// release and platform, encoded and gzipped with the snapshot, so an
// update check only picks one.

// FileURLFunc gives the download link of one stored file form of an app
// (see package download); blob is its key in the blob store.
type FileURLFunc func(appID, blob string) download.Link

// Option tunes Build and WithApp.
type Option func(*buildOptions)

type buildOptions struct {
	fileURL FileURLFunc
	cache   *DeltaCache
}

// WithFileURLs makes the snapshot offer delta releases with manifests
// whose download URLs fn builds. Without it they are offered as zips.
func WithFileURLs(fn FileURLFunc) Option { return func(o *buildOptions) { o.fileURL = fn } }

// WithDeltaCache reuses the manifest answers of releases prepared by
// earlier builds that used the same cache. A snapshot is rebuilt after
// every write to its app (a rollback, a policy change, a legacy device's
// setChannel), and preparing a thousand-file release's answers (encoding
// and gzipping hundreds of KB twice) costs tens of milliseconds; a
// release's manifest never changes. Only answers whose links never expire
// are reused, so the file URLs must then not change for a release either.
func WithDeltaCache(c *DeltaCache) Option { return func(o *buildOptions) { o.cache = c } }

// DeltaCache holds prepared manifest answers between snapshot builds, per
// app only those the app's newest view uses. Safe for concurrent use.
type DeltaCache struct {
	mu   sync.Mutex
	apps map[string]map[deltaKey]*deltaAnswers
}

// deltaKey identifies what a release's answers are built from: the
// bundle (its bytes and the zip URL), its manifest's length and how many
// of its files are Known. A manifest changes only when a deleted bundle is
// published again with the same bytes, which gives the same files.
type deltaKey struct {
	version, sha, url string
	files, known      int
}

// answers returns the cached answers of key for app, or builds them; used
// collects what the app's new view uses (answers with expiring file links
// are never kept).
func (c *DeltaCache) answers(app string, key deltaKey, used map[deltaKey]*deltaAnswers, build func() *deltaAnswers) *deltaAnswers {
	var d *deltaAnswers
	if c != nil {
		c.mu.Lock()
		d = c.apps[app][key]
		c.mu.Unlock()
	}
	if d == nil {
		d = build()
	}
	if d != nil && d[PlatformAndroid].renew.IsZero() && d[PlatformIOS].renew.IsZero() {
		used[key] = d
	}
	return d
}

// keep makes used the app's cached answers, dropping the others.
func (c *DeltaCache) keep(app string, used map[deltaKey]*deltaAnswers) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apps == nil {
		c.apps = map[string]map[deltaKey]*deltaAnswers{}
	}
	if len(used) == 0 {
		delete(c.apps, app)
		return
	}
	c.apps[app] = used
}

func newBuildOptions(opts []Option) buildOptions {
	var o buildOptions
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// SupportsManifest reports whether a plugin of this version installs
// manifest answers the way otad builds them: raw files under their name
// and Brotli ones under the name with ".br". Read from the plugin's tags:
// the ".br" handling (iOS fileName.hasSuffix(".br"), Android
// endsWith(".br")) is in every 5.50.x (there is no v5 tag between 5.9.5,
// which has no manifests, and 5.50.1), from 6.14.28 in v6 and 7.0.38 in
// v7, and in every v8; 7.0.20 to 7.0.37 Brotli-decode every manifest file,
// so a raw one would fail. Capgo sends manifests from 5.10.0, 6.25.0 and
// 7.0.35 (PR/utils/update.ts getResponseFeatureSupport); otad takes the
// later of the two bounds of each major: 5.10.0, 6.25.0, 7.0.38. An
// unreadable version gets the zip.
func SupportsManifest(pluginVersion string) bool {
	v, err := CoerceNative(pluginVersion)
	if err != nil || pluginVersion == "" {
		return false
	}
	switch {
	case v.Major >= 8:
		return true
	case v.Major == 7:
		return v.Compare(Version{Major: 7, Patch: 38}) >= 0
	case v.Major == 6:
		return v.Compare(Version{Major: 6, Minor: 25}) >= 0
	case v.Major == 5:
		return v.Compare(Version{Major: 5, Minor: 10}) >= 0
	}
	return false
}

// ManifestFor says which manifest a device gets: iOS plugins look a file up
// in their built-in bundle under its manifest name with ".br" still on
// (ios/Sources/CapacitorUpdaterPlugin/CapgoUpdater.swift L1477, in
// 8.51.14: resolvePathInsideDirectory(baseDirectory: builtinFolder,
// relativePath: fileName), then L1499 fileExists(builtinFilePath)), so
// they never reuse a built-in file listed as ".br"; Android strips the
// suffix first (DownloadService.java resolveManifestBuiltinFile L192-196).
// Both strip it for their download cache. Every platform but iOS gets the
// Android form.
func ManifestFor(platform string) Platform {
	if platform == "ios" {
		return PlatformIOS
	}
	return PlatformAndroid
}

// Platform picks one of a delta release's manifests.
type Platform int

func platformName(p Platform) string {
	if p == PlatformIOS {
		return "iOS"
	}
	return "Android"
}

// The two manifests of a delta release.
const (
	PlatformAndroid Platform = iota
	PlatformIOS
)

// ManifestEntries lists the files of a delta release the way a device of
// the platform is sent them. Every file goes in its Brotli form (name +
// ".br") when it has one, except, for iOS, a file an earlier release of
// the app had (Known): an iOS device reuses it from its built-in bundle
// only when it is listed raw, and a raw download of a file it has neither
// built in nor cached is the lesser cost (it usually has it cached, from
// the release that brought it). sizes holds the bytes each entry's
// download is. ok is false when the manifest cannot be sent as it is: a
// file whose path ends in ".br" without a Brotli form would be unpacked as
// Brotli by every plugin. renew is the earliest time one of the links must
// stop being handed out (presigned URLs; zero: never).
func ManifestEntries(appID string, files []ota.ManifestFile, p Platform, fileURL FileURLFunc) (entries []ota.ManifestEntry, sizes []int64, renew time.Time, ok bool) {
	entries = make([]ota.ManifestEntry, len(files))
	sizes = make([]int64, len(files))
	for i := range files {
		f := &files[i]
		name, blob, size := f.Path, f.Raw, f.RawSize
		if blob == "" {
			blob, size = f.SHA256, f.Size // a plain file's raw form is its content address
		}
		mustBr := strings.HasSuffix(f.Path, ".br")
		useBr := f.Br != "" && (mustBr || p != PlatformIOS || !f.Known)
		switch {
		case useBr:
			name, blob, size = f.Path+".br", f.Br, f.BrSize
		case mustBr:
			return nil, nil, time.Time{}, false
		}
		hash := f.SHA256
		if f.FileHash != "" {
			hash = f.FileHash
		}
		link := fileURL(appID, blob)
		if !link.Renew.IsZero() && (renew.IsZero() || link.Renew.Before(renew)) {
			renew = link.Renew
		}
		entries[i] = ota.ManifestEntry{FileName: name, FileHash: hash, DownloadURL: link.URL}
		sizes[i] = size
	}
	return entries, sizes, renew, true
}

// deltaAnswer is one platform's success answer for a delta release,
// prepared: the response, its JSON as echo writes it, that JSON gzipped
// (devices' HTTP stacks accept gzip and the list is a few hundred KB per
// thousand files), and the download size of each entry (manifest_size).
type deltaAnswer struct {
	resp  ota.UpdateResponse
	body  []byte
	gzip  []byte
	sizes []int64
	renew time.Time // when its links (zip and files) must stop being handed out
}

// deltaAnswers holds a delta release's answers, by Platform.
type deltaAnswers [2]deltaAnswer

// newDeltaAnswers prepares the answers offering a bundle (its zip answer
// being zip, whose link must stop being handed out at zipRenew) with
// manifest files; nil when they cannot be built.
func newDeltaAnswers(zip *ota.UpdateResponse, zipRenew time.Time, appID string, files []ota.ManifestFile, fileURL FileURLFunc) *deltaAnswers {
	if len(files) == 0 || fileURL == nil {
		return nil
	}
	var d deltaAnswers
	for p := PlatformAndroid; p <= PlatformIOS; p++ {
		entries, sizes, renew, ok := ManifestEntries(appID, files, p, fileURL)
		if !ok {
			return nil
		}
		a := &d[p]
		a.resp = *zip
		a.resp.Manifest = entries
		a.sizes = sizes
		a.renew = renew
		if !zipRenew.IsZero() && (a.renew.IsZero() || zipRenew.Before(a.renew)) {
			a.renew = zipRenew
		}
		a.body = encodeAnswer(&a.resp)
		if a.body == nil {
			return nil
		}
		a.gzip = gzipped(a.body)
	}
	// The SessionKey pointer of zip belongs to its offer; the answers
	// keep it (nobody writes through it).
	return &d
}

// gzipped compresses an answer once, at the best level: it is sent many
// times.
func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil
	}
	if _, err := w.Write(b); err != nil {
		return nil
	}
	if err := w.Close(); err != nil {
		return nil
	}
	return buf.Bytes()
}

// ManifestAnswer returns the prepared manifest of version for platform p
// and the download size of each entry, when the snapshot holds the
// release's manifest (channels serve it); ok is false otherwise. Its links
// may be past their renew time (presigned URLs): for sizes only.
func (a *AppView) ManifestAnswer(version string, p Platform) (entries []ota.ManifestEntry, sizes []int64, ok bool) {
	if a == nil {
		return nil, nil, false
	}
	d := a.deltas[version]
	if d == nil {
		return nil, nil, false
	}
	return d[p].resp.Manifest, d[p].sizes, true
}

// FileLink is the download link of a stored file form of the app (zero
// when the snapshot was built without file links), for other answers built
// from Manifests.
func (a *AppView) FileLink(blob string) download.Link {
	if a == nil || a.opts.fileURL == nil {
		return download.Link{}
	}
	return a.opts.fileURL(a.App.ID, blob)
}

// prepareDeltas builds the manifest answers of the view's delta releases
// (see deltaAnswers) with the links url and the file links give now.
// Answers whose links never expire come from, and go to, the options'
// DeltaCache; expiring ones (presigned URLs) are built each time.
func (a *AppView) prepareDeltas(url URLFunc) {
	o := a.opts
	if o.fileURL == nil || len(a.Manifests) == 0 {
		o.cache.keep(a.App.ID, nil)
		return
	}
	used := map[deltaKey]*deltaAnswers{}
	defer func() { o.cache.keep(a.App.ID, used) }()
	a.deltas = make(map[string]*deltaAnswers, len(a.Manifests))
	for v, files := range a.Manifests {
		b := a.Bundles[v]
		if b == nil {
			continue
		}
		link := url(b)
		build := func() *deltaAnswers {
			var sessionKey string
			zip := zipAnswer(b, link.URL, &sessionKey)
			return newDeltaAnswers(&zip, link.Renew, a.App.ID, files, o.fileURL)
		}
		var d *deltaAnswers
		if link.Renew.IsZero() {
			key := deltaKey{version: v, sha: b.SHA256, url: link.URL, files: len(files)}
			for i := range files {
				if files[i].Known {
					key.known++
				}
			}
			d = o.cache.answers(a.App.ID, key, used, build)
		} else {
			d = build()
		}
		if d != nil {
			a.deltas[v] = d
		}
	}
}
