// Package device simulates a @capawesome/capacitor-live-update device for
// tests: the plugin's sync() as docs/protocol-capawesome.md describes it
// (query, compare, download, verify, unpack, set as next bundle), over
// real HTTP, with a directory standing for the app's storage. It follows
// each platform where they differ: how the query string is written, how
// the answer is decoded, how a manifest file's URL is built, which
// Content-Encodings its HTTP stack asks for and undoes before the plugin
// hashes a download. Manifest files are fetched in parallel, the first
// failure stopping the rest, as both platforms do.
package device

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/pkg/ota"
)

// Platform is the device's operating system.
type Platform int

// The platforms, which the plugin sends as 0 and 1.
const (
	Android Platform = iota
	IOS
)

func (p Platform) String() string {
	if p == IOS {
		return "ios"
	}
	return "android"
}

// Errors of a sync, after the plugin's own.
var (
	ErrDownloadFailed   = errors.New("bundle could not be downloaded")
	ErrChecksumMismatch = errors.New("checksum mismatch")
	ErrSignatureMissing = errors.New("bundle does not contain a signature")
	ErrSignatureFailed  = errors.New("signature verification failed")
	ErrIndexHTMLMissing = errors.New("the bundle does not contain an index.html file")
	// ErrBundlesDirAsNext: a 2xx answer without a bundleId, which the
	// plugin takes for the bundles directory itself and sets as the next
	// bundle (the app would start blank).
	ErrBundlesDirAsNext = errors.New("a 2xx answer with an empty bundleId made the bundles directory the next bundle")
	errBadJSONObject    = errors.New("a 2xx answer that is not a JSON object (org.json throws)")
)

// Device is one simulated device. Set the fields, then call Sync.
type Device struct {
	// Base is https:// and the plugin's serverDomain. The plugin allows a
	// host only (port 443); tests add the port of their server.
	Base   string
	Client *http.Client
	Platform
	AppID    string
	DeviceID string
	// AppVersionName is the native version (versionName,
	// CFBundleShortVersionString); AppVersionCode the build number.
	AppVersionName, AppVersionCode string
	OSVersion, PluginVersion       string
	// Channel is what the plugin's getChannel() gives (setChannel, else the
	// native setting, else defaultChannel); "" when none.
	Channel  string
	CustomID string
	// PublicKey is the plugin's publicKey setting; with it every bundle
	// must carry a valid signature.
	PublicKey *rsa.PublicKey
	// Dir is the app's storage: one directory per downloaded bundle, named
	// by its bundle id.
	Dir string
	// Builtin is the built-in bundle's files (path → bytes); a manifest
	// update from the built-in bundle copies what it can from them.
	Builtin map[string][]byte
	// Blocked are bundle ids the device refuses (autoBlockRolledBackBundles).
	Blocked []string

	current, next string
	mu            sync.Mutex // guards requests and wire: downloads run in parallel
	requests      []string
	wire          int64
}

// Result is what one sync did.
type Result struct {
	// Status is the HTTP status of the latest-bundle check.
	Status int
	// Latest is the answer as this platform decoded it; nil for "no update".
	Latest *ota.LatestBundle
	// Next is the bundle set as next, "" when none was.
	Next string
	// Downloaded is true when a bundle was downloaded (not found on disk).
	Downloaded bool
	// Fetched and Copied count the files of a manifest bundle that were
	// downloaded and copied from the current bundle.
	Fetched, Copied int
	// WireBytes is what the downloads of this sync took on the wire (the
	// bodies as sent, before the HTTP stack undid a Content-Encoding).
	WireBytes int64
}

// Current is the running bundle, "" for the built-in one.
func (d *Device) Current() string { return d.current }

// Next is the bundle the next start runs, "" for the built-in one.
func (d *Device) NextBundle() string { return d.next }

// Restart applies the next bundle, as a reload or a cold start does.
func (d *Device) Restart() { d.current = d.next }

// Rollback is the plugin's rollback to the built-in bundle when the app
// does not call ready() in time.
func (d *Device) Rollback() { d.current, d.next = "", "" }

// Requests are the URLs the device asked for, oldest first.
func (d *Device) Requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.requests)
}

// LatestURL is the URL of the latest-bundle check, written as the platform
// writes it (§3.1).
func (d *Device) LatestURL() string {
	params := [][2]string{
		{"appVersionCode", d.AppVersionCode},
		{"appVersionName", d.AppVersionName},
		{"bundleId", d.current},
		{"channelName", d.Channel},
		{"customId", d.CustomID},
		{"deviceId", d.DeviceID},
		{"osVersion", d.OSVersion},
		{"platform", map[Platform]string{Android: "0", IOS: "1"}[d.Platform]},
		{"pluginVersion", d.PluginVersion},
	}
	return d.Base + "/v1/apps/" + escapePath(d.AppID) + "/bundles/latest?" + d.query(params)
}

// query writes parameters as OkHttp (Android) or URLComponents (iOS)
// does. An unset value ("") is a bare key on Android and left out on iOS,
// where the order is a dictionary's: none in particular.
func (d *Device) query(params [][2]string) string {
	var parts []string
	for _, p := range params {
		switch {
		case d.Platform == Android && p[1] == "":
			parts = append(parts, escapeOkHttp(p[0]))
		case d.Platform == Android:
			parts = append(parts, escapeOkHttp(p[0])+"="+escapeOkHttp(p[1]))
		case p[1] != "":
			parts = append(parts, escapeApple(p[0])+"="+escapeApple(p[1]))
		}
	}
	if d.Platform == IOS {
		rand.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	}
	return strings.Join(parts, "&")
}

// escapeOkHttp escapes a query component as OkHttp's addQueryParameter
// does for the characters that matter here: unreserved ones stay, the rest
// (space as %20, '+' as %2B) are percent-encoded.
func escapeOkHttp(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || strings.IndexByte("!$()*,/:;@?'", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// escapeApple escapes a query item as URLComponents does for the
// characters that matter here: it leaves '+' alone (servers that read '+'
// as a space get it wrong) and escapes space, '&', '=' and '#'.
func escapeApple(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || strings.IndexByte("!$()*+,/:;@?'", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func escapePath(s string) string { return url.PathEscape(s) }

func unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// Sync is the plugin's sync(): check, and unless there is no update, the
// bundle is blocked or already on disk, download it, verify it, unpack it
// and set it as the next bundle.
func (d *Device) Sync(ctx context.Context) (res Result, err error) {
	d.mu.Lock()
	d.wire = 0
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		res.WireBytes = d.wire
		d.mu.Unlock()
	}()
	latest, status, err := d.fetchLatest(ctx)
	res.Status = status
	if err != nil || latest == nil {
		return res, err
	}
	res.Latest = &latest.LatestBundle
	id := latest.BundleID
	if slices.Contains(d.Blocked, id) {
		return res, nil
	}
	if d.hasBundle(id) {
		if id == "" {
			// The plugin would point the next start at the bundles
			// directory, which has no index.html.
			return res, ErrBundlesDirAsNext
		}
		if id != d.current {
			d.next, res.Next = id, id
		}
		return res, nil
	}
	if latest.ArtifactType == ota.ArtifactManifest {
		res.Fetched, res.Copied, err = d.downloadManifest(ctx, id, latest.URL)
	} else {
		err = d.downloadZip(ctx, id, latest)
	}
	if err != nil {
		return res, err
	}
	res.Downloaded = true
	d.next, res.Next = id, id
	return res, nil
}

// fetchLatest asks for the latest bundle. Any non-2xx is "no update"
// (nil, no error) on both platforms; a 2xx is decoded as the platform
// decodes it.
func (d *Device) fetchLatest(ctx context.Context) (*answer, int, error) {
	resp, body, err := d.get(ctx, d.LatestURL())
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, resp.StatusCode, nil
	}
	if d.Platform == IOS {
		return decodeIOS(body), resp.StatusCode, nil
	}
	l, err := decodeAndroid(body)
	return l, resp.StatusCode, err
}

// answer is a decoded latest-bundle answer. The plugin keeps an absent
// checksum or signature (nil: take the download's header) apart from ""
// (compared, and failing).
type answer struct {
	ota.LatestBundle
	checksum, signature *string
}

// decodeIOS decodes as Swift's Codable does into the plugin's struct:
// artifactType must be "zip" or "manifest", bundleId and url strings,
// customProperties strings only. Anything else is "no update".
func decodeIOS(body []byte) *answer {
	var v struct {
		ArtifactType     *string            `json:"artifactType"`
		BundleID         *string            `json:"bundleId"`
		ChannelName      *string            `json:"channelName"`
		Checksum         *string            `json:"checksum"`
		CustomProperties *map[string]string `json:"customProperties"`
		Signature        *string            `json:"signature"`
		URL              *string            `json:"url"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.ArtifactType == nil || v.BundleID == nil || v.URL == nil {
		return nil
	}
	if *v.ArtifactType != ota.ArtifactZip && *v.ArtifactType != ota.ArtifactManifest {
		return nil
	}
	a := &answer{LatestBundle: ota.LatestBundle{ArtifactType: *v.ArtifactType, BundleID: *v.BundleID, URL: *v.URL},
		checksum: v.Checksum, signature: v.Signature}
	a.ChannelName, a.Checksum, a.Signature = deref(v.ChannelName), deref(v.Checksum), deref(v.Signature)
	if v.CustomProperties != nil {
		a.CustomProperties = *v.CustomProperties
	}
	return a
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// decodeAndroid decodes as the plugin's org.json code does: artifactType
// "manifest" or else zip, bundleId and url with optString (absent: ""),
// channelName, checksum and signature nil when absent or JSON null.
func decodeAndroid(body []byte) (*answer, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, errBadJSONObject
	}
	optString := func(k string) string {
		raw, ok := m[k]
		if !ok {
			return ""
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return string(raw) // org.json turns other values (null too) into their text
	}
	nullable := func(k string) *string {
		raw, ok := m[k]
		if !ok || string(raw) == "null" {
			return nil
		}
		s := optString(k)
		return &s
	}
	a := &answer{LatestBundle: ota.LatestBundle{ArtifactType: ota.ArtifactZip, BundleID: optString("bundleId"), URL: optString("url")}}
	if optString("artifactType") == ota.ArtifactManifest {
		a.ArtifactType = ota.ArtifactManifest
	}
	a.checksum, a.signature = nullable("checksum"), nullable("signature")
	a.ChannelName, a.Checksum, a.Signature = deref(nullable("channelName")), deref(a.checksum), deref(a.signature)
	return a, nil
}

// The app's storage: downloaded bundles and a scratch directory.
func (d *Device) bundlesDir() string         { return filepath.Join(d.Dir, "bundles") }
func (d *Device) bundleDir(id string) string { return filepath.Join(d.bundlesDir(), id) }

func (d *Device) tempDir() (string, error) {
	t := filepath.Join(d.Dir, "cache")
	if err := os.MkdirAll(t, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(t, "download-")
}

// hasBundle is the plugin's check for a bundle on disk: whether its
// directory exists. For an empty id that is the bundles directory itself.
func (d *Device) hasBundle(id string) bool {
	_, err := os.Stat(d.bundleDir(id))
	return err == nil
}

// get sends a GET as the plugin does, with the device-id header, and
// gives the body as the plugin sees it: after its HTTP stack undid the
// Content-Encodings it asked for (AcceptEncoding).
func (d *Device) get(ctx context.Context, u string) (*http.Response, []byte, error) {
	d.mu.Lock()
	d.requests = append(d.requests, u)
	d.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	if d.DeviceID != "" {
		req.Header.Set("X-Capawesome-Device-Id", d.DeviceID)
	}
	// Set by hand, so Go's transport leaves the body as sent.
	req.Header.Set("Accept-Encoding", d.AcceptEncoding())
	resp, err := d.client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	d.wire += int64(len(raw))
	d.mu.Unlock()
	body, err := d.decode(resp.Header.Get("Content-Encoding"), raw)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return resp, body, nil
}

// AcceptEncoding is what the platform's HTTP stack asks for.
//   - Android from 8.4.0 adds OkHttp's BrotliInterceptor, which sends
//     "br,gzip" and decodes both (LiveUpdateHttpClient.java L61-62, #826);
//     before, OkHttp's own transparent gzip sends "gzip".
//   - iOS goes through Alamofire's session, whose default headers ask for
//     br, gzip and deflate; URLSession decodes them.
func (d *Device) AcceptEncoding() string {
	if d.Platform == IOS {
		return "br;q=1.0, gzip;q=0.9, deflate;q=0.8"
	}
	if v, ok := pluginVersion(d.PluginVersion); ok && slices.Compare(v[:], []int{8, 4, 0}) >= 0 {
		return "br,gzip"
	}
	return "gzip"
}

// decode undoes a Content-Encoding the way the platform's HTTP stack
// does before the plugin sees the bytes; an encoding it did not ask for
// reaches the plugin as it is (and fails its checksum).
func (d *Device) decode(encoding string, raw []byte) ([]byte, error) {
	enc := strings.ToLower(strings.TrimSpace(encoding))
	if enc == "" || enc == "identity" || !strings.Contains(d.AcceptEncoding(), enc) {
		return raw, nil
	}
	var r io.Reader
	switch enc {
	case "br":
		r = brotli.NewReader(bytes.NewReader(raw))
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrDownloadFailed, err)
		}
		r = zr
	default:
		return raw, nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s body: %v", ErrDownloadFailed, enc, err)
	}
	return b, nil
}

// pluginVersion reads major.minor.patch.
func pluginVersion(s string) ([3]int, bool) {
	var v [3]int
	parts := strings.SplitN(s, ".", 3)
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func (d *Device) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	return http.DefaultClient
}

// download fetches a file and verifies it (§5): the checksum and signature
// given, else those of the response headers (nil: neither).
func (d *Device) download(ctx context.Context, u string, checksum, signature *string) ([]byte, error) {
	resp, body, err := d.get(ctx, u)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%w (HTTP %d from %s)", ErrDownloadFailed, resp.StatusCode, u)
	}
	if checksum == nil {
		checksum = header(resp, "X-Checksum")
	}
	if signature == nil {
		signature = header(resp, "X-Signature")
	}
	return body, d.verify(body, checksum, signature)
}

// header reads a header as the platforms do, nil when missing.
func header(resp *http.Response, name string) *string {
	if v, ok := resp.Header[http.CanonicalHeaderKey(name)]; ok && len(v) > 0 {
		return &v[0]
	}
	return nil
}

// verify is the plugin's verifyFile: with a public key a valid signature
// is required and the checksum is not looked at; without one a checksum
// is compared when there is one.
func (d *Device) verify(body []byte, checksum, signature *string) error {
	if d.PublicKey != nil {
		if signature == nil {
			return ErrSignatureMissing
		}
		if err := bundle.Verify(bytes.NewReader(body), d.PublicKey, *signature); err != nil {
			return fmt.Errorf("%w: %v", ErrSignatureFailed, err)
		}
		return nil
	}
	if checksum == nil {
		return nil
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != *checksum {
		return fmt.Errorf("%w: got %x, the answer says %q", ErrChecksumMismatch, sum, *checksum)
	}
	return nil
}

func (d *Device) downloadZip(ctx context.Context, id string, a *answer) error {
	body, err := d.download(ctx, a.URL, a.checksum, a.signature)
	if err != nil {
		return err
	}
	tmp, err := d.tempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := unzip(body, tmp); err != nil {
		return err
	}
	return d.addBundle(id, tmp)
}

// unzip extracts a zip into dir, refusing entries that escape it.
func unzip(data []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("unzip: %w", err)
	}
	for _, f := range zr.File {
		if !filepath.IsLocal(f.Name) {
			return fmt.Errorf("unzip: entry %q escapes the bundle", f.Name)
		}
		p := filepath.Join(dir, f.Name)
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("unzip %s: %w", f.Name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("unzip %s: %w", f.Name, err)
		}
		if err := writeFile(p, b); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// addBundle moves the directory holding index.html (the first found, the
// top level before subdirectories) to the bundle's place.
func (d *Device) addBundle(id, dir string) error {
	root := findIndexHTML(dir)
	if root == "" {
		return ErrIndexHTMLMissing
	}
	if err := os.MkdirAll(d.bundlesDir(), 0o755); err != nil {
		return err
	}
	return os.Rename(root, d.bundleDir(id))
}

func findIndexHTML(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return ""
	}
	for _, e := range entries {
		if e.Name() == "index.html" {
			return dir
		}
	}
	for _, e := range entries {
		if e.IsDir() {
			if r := findIndexHTML(filepath.Join(dir, e.Name())); r != "" {
				return r
			}
		}
	}
	return ""
}

// withHref is the URL of one file of a manifest bundle: Android adds href
// to the URL's query, iOS replaces the query with it.
func (d *Device) withHref(base, href string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if d.Platform == IOS {
		u.RawQuery = "href=" + escapeApple(href)
	} else if u.RawQuery == "" {
		u.RawQuery = "href=" + escapeOkHttp(href)
	} else {
		u.RawQuery += "&href=" + escapeOkHttp(href)
	}
	return u.String(), nil
}

// downloadManifest is the plugin's manifest download (§4): the manifest,
// then each file the current bundle lacks by checksum, copying the others
// from it.
func (d *Device) downloadManifest(ctx context.Context, id, base string) (fetched, copied int, err error) {
	tmp, err := d.tempDir()
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmp)
	mu, err := d.withHref(base, ota.CapawesomeManifestFile)
	if err != nil {
		return 0, 0, err
	}
	raw, err := d.download(ctx, mu, nil, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("manifest: %w", err)
	}
	var latest []ota.ManifestItem
	if err := json.Unmarshal(raw, &latest); err != nil {
		return 0, 0, fmt.Errorf("manifest is not a JSON array of items: %w", err)
	}
	if err := writeFile(filepath.Join(tmp, ota.CapawesomeManifestFile), raw); err != nil {
		return 0, 0, err
	}
	have := map[string]bool{}
	for _, it := range d.currentManifest() {
		have[it.Checksum] = true
	}
	var missing []ota.ManifestItem
	for _, it := range latest {
		if !filepath.IsLocal(it.Href) {
			return 0, 0, fmt.Errorf("manifest lists %q, which escapes the bundle (the plugin would write it there)", it.Href)
		}
		if have[it.Checksum] {
			if b, ok := d.currentFile(it.Href); ok {
				if err := writeFile(filepath.Join(tmp, it.Href), b); err != nil {
					return 0, 0, err
				}
				copied++
				continue
			}
		}
		missing = append(missing, it)
	}
	if err := d.fetchAll(ctx, base, tmp, missing); err != nil {
		return 0, 0, err
	}
	return len(missing), copied, d.addBundle(id, tmp)
}

// maxParallel is how many files the device fetches at once: Android's
// OkHttp dispatcher allows 30 per host (LiveUpdateHttpClient.java L57-59);
// iOS starts every download of its task group at once, which URLSession
// spreads over its connections.
const maxParallel = 30

// fetchAll fetches the files of a manifest bundle in parallel into tmp,
// verifying each from its headers; the first failure stops the others
// (Android cancels the calls still queued, iOS's task group throws).
func (d *Device) fetchAll(ctx context.Context, base, tmp string, items []ota.ManifestItem) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, maxParallel)
	for _, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			err := d.fetchOne(ctx, base, tmp, it)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func (d *Device) fetchOne(ctx context.Context, base, tmp string, it ota.ManifestItem) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fu, err := d.withHref(base, it.Href)
	if err != nil {
		return err
	}
	b, err := d.download(ctx, fu, nil, nil)
	if err != nil {
		return fmt.Errorf("file %s: %w", it.Href, err)
	}
	return writeFile(filepath.Join(tmp, it.Href), b)
}

// currentManifest is the manifest beside the running bundle (for the
// built-in one, in its files); nil when it has none.
func (d *Device) currentManifest() []ota.ManifestItem {
	b, ok := d.currentFile(ota.CapawesomeManifestFile)
	if !ok {
		return nil
	}
	var items []ota.ManifestItem
	if json.Unmarshal(b, &items) != nil {
		return nil
	}
	return items
}

func (d *Device) currentFile(path string) ([]byte, bool) {
	if d.current == "" {
		b, ok := d.Builtin[path]
		return b, ok
	}
	b, err := os.ReadFile(filepath.Join(d.bundleDir(d.current), filepath.FromSlash(path)))
	return b, err == nil
}

// ReadFile reads a file of the bundle the device runs.
func (d *Device) ReadFile(path string) ([]byte, error) {
	if b, ok := d.currentFile(path); ok {
		return b, nil
	}
	return nil, fmt.Errorf("bundle %q has no file %s", d.current, path)
}
