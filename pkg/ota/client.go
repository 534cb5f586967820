package ota

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to otad's admin API and, for diagnostics, its device
// endpoint. The zero value is not usable: build one with NewClient. A Client
// is safe for concurrent use as long as its fields are not changed.
type Client struct {
	// BaseURL is otad's root URL, e.g. https://ota.example.com.
	BaseURL string
	// Token is the bearer token sent with admin requests; empty sends none.
	Token string
	// HTTP performs the requests; nil means a client with no overall
	// timeout (uploads of large APKs may take minutes).
	HTTP *http.Client
	// UserAgent is sent as the User-Agent header when set.
	UserAgent string
}

// ClientOption configures a Client in NewClient.
type ClientOption func(*Client)

// WithToken sets the bearer token.
func WithToken(token string) ClientOption { return func(c *Client) { c.Token = token } }

// WithHTTPClient sets the HTTP client that performs requests.
func WithHTTPClient(h *http.Client) ClientOption { return func(c *Client) { c.HTTP = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) ClientOption { return func(c *Client) { c.UserAgent = ua } }

// NewClient returns a client for the otad at baseURL, which must be an
// absolute http or https URL.
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q must be an absolute http(s) URL such as https://ota.example.com", baseURL)
	}
	c := &Client{BaseURL: strings.TrimRight(baseURL, "/")}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// UploadRequest describes one bundle upload. File is streamed: it is read
// once, never held in memory.
type UploadRequest struct {
	AppID     string
	Channel   string // empty: the server's default for Kind
	Version   string
	Kind      string // KindWeb (default) or KindAPK
	Checksum  string // lowercase hex SHA-256 of File; the server verifies it
	Notes     string
	MinNative string
	MaxNative string
	// UploadedAt, when set, is recorded as the upload time instead of the
	// server's clock (importing history). Only user logins may set it.
	UploadedAt time.Time
	// Rollout, from 1 to 99, stages the release to that percent of devices.
	Rollout int
	// Native is the bundle's native fingerprint; Forced, when set, says why
	// a failed native compatibility check was overridden (kept in the
	// history).
	Native *NativeFingerprint
	Forced string
	// Encryption, when set, says File is an encrypted zip and carries what
	// devices need to decrypt it; Checksum is then that of the encrypted
	// bytes.
	Encryption *BundleEncryption
	// Signature, when set, is the base64 SHA256withRSA signature of File's
	// bytes for @capawesome/capacitor-live-update devices (Bundle.Signature).
	Signature string
	// ManifestSignature, with Signature and a Manifest whose every file
	// has its Signature, is the signature of CapawesomeManifest(Manifest)
	// (Bundle.ManifestSignature).
	ManifestSignature string
	// Manifest, when set, makes the bundle a delta release: its files,
	// which must be stored already (see MissingFiles and PutFile).
	Manifest []ManifestFile
	File     io.Reader
	// Size is File's length in bytes. When > 0 the request carries a
	// Content-Length (servers reject oversized uploads before reading);
	// otherwise it is sent chunked.
	Size int64
	// FileName is the multipart file name; empty means "bundle.zip" or
	// "app.apk" by Kind.
	FileName string
	// Progress, when set, is called with the number of file bytes sent so
	// far as the upload goes on.
	Progress func(sent int64)
}

// Login exchanges a user name and password for a bearer token. It does not
// store the token in c.
func (c *Client) Login(ctx context.Context, username, password string) (LoginResponse, error) {
	var out LoginResponse
	err := c.doJSON(ctx, http.MethodPost, "/api/v1/auth/login", nil, LoginRequest{Username: username, Password: password}, &out)
	return out, err
}

// Upload streams a bundle to POST /api/v1/apps/{app}/bundles as multipart
// form data.
func (c *Client) Upload(ctx context.Context, r UploadRequest) (UploadResult, error) {
	var out UploadResult
	if r.File == nil {
		return out, errors.New("upload: no file to send")
	}
	if r.Kind == "" {
		r.Kind = KindWeb
	}
	if r.FileName == "" {
		r.FileName = "bundle.zip"
		if r.Kind == KindAPK {
			r.FileName = "app.apk"
		}
	}
	fields := [][2]string{
		{"version", r.Version}, {"kind", r.Kind}, {"channel", r.Channel}, {"checksum", r.Checksum},
		{"notes", r.Notes}, {"min_native", r.MinNative}, {"max_native", r.MaxNative},
	}
	if !r.UploadedAt.IsZero() {
		fields = append(fields, [2]string{"uploaded_at", r.UploadedAt.UTC().Format(time.RFC3339Nano)})
	}
	if r.Rollout > 0 {
		fields = append(fields, [2]string{"rollout", strconv.Itoa(r.Rollout)})
	}
	if r.Native != nil {
		b, err := json.Marshal(r.Native)
		if err != nil {
			return out, fmt.Errorf("upload: encode native fingerprint: %w", err)
		}
		fields = append(fields, [2]string{"native", string(b)})
	}
	fields = append(fields, [2]string{"forced", r.Forced})
	if e := r.Encryption; e != nil {
		fields = append(fields, [2]string{"session_key", e.SessionKey},
			[2]string{"encrypted_checksum", e.EncryptedChecksum}, [2]string{"key_id", e.KeyID})
	}
	fields = append(fields, [2]string{"signature", r.Signature}, [2]string{"manifest_signature", r.ManifestSignature})

	// The form fields come first so the server knows what it receives
	// before the bytes arrive; the file part follows and streams.
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	for _, f := range fields {
		if f[1] == "" {
			continue
		}
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return out, fmt.Errorf("upload: encode field %s: %w", f[0], err)
		}
	}
	if r.Manifest != nil {
		// Before the zip: the server checks the manifest's files first.
		m, err := json.Marshal(r.Manifest)
		if err != nil {
			return out, fmt.Errorf("upload: encode manifest: %w", err)
		}
		part, err := mw.CreateFormFile("manifest", "manifest.json")
		if err != nil {
			return out, fmt.Errorf("upload: encode manifest part: %w", err)
		}
		if _, err := part.Write(m); err != nil {
			return out, fmt.Errorf("upload: encode manifest part: %w", err)
		}
	}
	if _, err := mw.CreateFormFile("file", r.FileName); err != nil {
		return out, fmt.Errorf("upload: encode file part: %w", err)
	}
	prefix := append([]byte(nil), head.Bytes()...)
	head.Reset()
	if err := mw.Close(); err != nil {
		return out, fmt.Errorf("upload: encode form end: %w", err)
	}
	suffix := head.Bytes()

	file := &progressReader{r: r.File, fn: r.Progress, total: r.Size}
	var body io.Reader
	length := int64(-1)
	if r.Size > 0 {
		// Everything but the file is known up front, so the length is too.
		body = io.MultiReader(bytes.NewReader(prefix), io.LimitReader(file, r.Size), bytes.NewReader(suffix))
		length = int64(len(prefix)) + r.Size + int64(len(suffix))
	} else {
		pr, pw := io.Pipe()
		go func() {
			_, err := io.Copy(pw, io.MultiReader(bytes.NewReader(prefix), file, bytes.NewReader(suffix)))
			pw.CloseWithError(err)
		}()
		defer pr.Close()
		body = pr
	}

	path := "/api/v1/apps/" + url.PathEscape(r.AppID) + "/bundles"
	req, err := c.newRequest(ctx, http.MethodPost, path, nil, body)
	if err != nil {
		return out, err
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", mw.FormDataContentType())
	err = c.do(req, &out)
	if err == nil && r.Size > 0 && file.n != r.Size {
		return out, fmt.Errorf("upload: sent %d bytes but the file has %d", file.n, r.Size)
	}
	return out, err
}

// MissingFiles returns those of sums (SHA-256 of files' original bytes)
// otad does not hold for app, which a delta release must upload first;
// needBrotli (a subset of sums) are also missing while otad lacks their
// Brotli form.
func (c *Client) MissingFiles(ctx context.Context, app string, sums, needBrotli []string) ([]string, error) {
	var out FilesMissingResponse
	err := c.doJSON(ctx, http.MethodPost, appPath(app, "files", "missing"), nil, FilesMissingRequest{SHA256: sums, NeedBrotli: needBrotli}, &out)
	return out.Missing, err
}

// PutFile stores one form of a delta release's file: body holds size
// bytes in encoding (EncodingRaw, EncodingBrotli or EncodingEncrypted),
// and sum is the SHA-256 of the original bytes (for EncodingEncrypted, of
// the bytes sent). otad verifies it before it records anything.
func (c *Client) PutFile(ctx context.Context, app, sum, encoding string, body io.Reader, size int64) (StoredFile, error) {
	var out StoredFile
	q := url.Values{}
	if encoding != "" && encoding != EncodingRaw {
		q.Set("encoding", encoding)
	}
	req, err := c.newRequest(ctx, http.MethodPut, appPath(app, "files", sum), q, body)
	if err != nil {
		return out, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	err = c.do(req, &out)
	return out, err
}

// Rollback points channel back at the release before the active one, or
// at version to when it is not empty.
func (c *Client) Rollback(ctx context.Context, app, channel, to string) (ChannelChange, error) {
	var out ChannelChange
	err := c.doJSON(ctx, http.MethodPost, appPath(app, "channels", channel, "rollback"), nil, RollbackRequest{To: to}, &out)
	return out, err
}

// Promote makes req.Version, or what channel req.From serves, active on
// channel to.
func (c *Client) Promote(ctx context.Context, app, to string, req PromoteRequest) (ChannelChange, error) {
	var out ChannelChange
	err := c.doJSON(ctx, http.MethodPost, appPath(app, "channels", to, "promote"), nil, req, &out)
	return out, err
}

// DeleteRelease removes version from channel; when it was active, the
// release before it takes over.
func (c *Client) DeleteRelease(ctx context.Context, app, channel, version string) (ChannelChange, error) {
	var out ChannelChange
	err := c.doJSON(ctx, http.MethodDelete, appPath(app, "channels", channel, "releases", version), nil, nil, &out)
	return out, err
}

// Apps lists every app the server knows.
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	var out []App
	err := c.doJSON(ctx, http.MethodGet, "/api/v1/apps", nil, nil, &out)
	return out, err
}

// App returns one app.
func (c *Client) App(ctx context.Context, app string) (App, error) {
	var out App
	err := c.doJSON(ctx, http.MethodGet, appPath(app), nil, nil, &out)
	return out, err
}

// Channels lists an app's channels with their active bundles.
func (c *Client) Channels(ctx context.Context, app string) ([]Channel, error) {
	var out []Channel
	err := c.doJSON(ctx, http.MethodGet, appPath(app, "channels"), nil, nil, &out)
	return out, err
}

// Channel returns one channel of an app.
func (c *Client) Channel(ctx context.Context, app, channel string) (Channel, error) {
	var out Channel
	err := c.doJSON(ctx, http.MethodGet, appPath(app, "channels", channel), nil, nil, &out)
	return out, err
}

// PatchChannel changes some of a channel's policy fields.
func (c *Client) PatchChannel(ctx context.Context, app, channel string, patch ChannelPolicyPatch) (Channel, error) {
	var out Channel
	err := c.doJSON(ctx, http.MethodPatch, appPath(app, "channels", channel), nil, patch, &out)
	return out, err
}

// Bundles lists an app's bundles.
func (c *Client) Bundles(ctx context.Context, app string) ([]Bundle, error) {
	var out []Bundle
	err := c.doJSON(ctx, http.MethodGet, appPath(app, "bundles"), nil, nil, &out)
	return out, err
}

// History returns a page of events, newest first. An empty app means every
// app, an empty channel every channel; before 0 starts at the newest event
// and limit 0 lets the server choose.
func (c *Client) History(ctx context.Context, app, channel string, before uint64, limit int) (HistoryPage, error) {
	q := url.Values{}
	if channel != "" {
		q.Set("channel", channel)
	}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/api/v1/history"
	if app != "" {
		path = appPath(app, "history")
	}
	var out HistoryPage
	err := c.doJSON(ctx, http.MethodGet, path, q, nil, &out)
	return out, err
}

// SetOverride pins a device of an app to a channel.
func (c *Client) SetOverride(ctx context.Context, app, device, channel string) error {
	return c.doJSON(ctx, http.MethodPut, appPath(app, "devices", device, "channel"), nil, DeviceOverrideRequest{Channel: channel}, nil)
}

// DeleteOverride removes a device's channel pin.
func (c *Client) DeleteOverride(ctx context.Context, app, device string) error {
	return c.doJSON(ctx, http.MethodDelete, appPath(app, "devices", device, "channel"), nil, nil, nil)
}

// Me returns what the server knows about the token's user, as the JSON
// object the server sends. It is mostly useful to check that a token works.
func (c *Client) Me(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	err := c.doJSON(ctx, http.MethodGet, "/api/v1/me", nil, nil, &out)
	return out, err
}

// Version returns the server's build information. It needs no token.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var out VersionInfo
	err := c.doJSON(ctx, http.MethodGet, "/version", nil, nil, &out)
	return out, err
}

// CheckUpdate asks the device endpoint what a device like req would be
// offered, exactly as the updater plugin does. A "no update" answer is not
// an error: it comes back with Error and Kind set.
func (c *Client) CheckUpdate(ctx context.Context, req UpdateRequest) (UpdateResponse, error) {
	var out UpdateResponse
	err := c.doJSON(ctx, http.MethodPost, "/updates", nil, req, &out)
	return out, err
}

// appPath builds /api/v1/apps/{app}/... with every segment escaped, so a
// name can never change the route.
func appPath(app string, segs ...string) string {
	var b strings.Builder
	b.WriteString("/api/v1/apps/")
	b.WriteString(url.PathEscape(app))
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

func (c *Client) doJSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.do(req, out)
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	u := c.BaseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

func (c *Client) do(req *http.Request, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// *url.Error already names the method and URL.
		return fmt.Errorf("reach otad: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeAPIError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// decodeAPIError reads the JSON error envelope; an answer that is not one
// (a proxy's HTML page, say) keeps a short excerpt as the message.
func decodeAPIError(resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Status: resp.StatusCode}
	var env ErrorResponse
	if err := json.Unmarshal(b, &env); err == nil && (env.Code != "" || env.Message != "") {
		e.Code, e.Message = env.Code, env.Message
		return e
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg != "" {
		e.Message = fmt.Sprintf("server answered %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), msg)
	}
	return e
}

// progressReader counts bytes read and reports them, at most every 50 ms
// and once at EOF, so a callback that redraws a bar is not called per read.
type progressReader struct {
	r     io.Reader
	fn    func(int64)
	total int64 // > 0: also report on reaching it (a LimitReader hides EOF)
	n     int64
	last  time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.fn != nil && (err != nil || p.n == p.total || time.Since(p.last) >= 50*time.Millisecond) {
		p.last = time.Now()
		p.fn(p.n)
	}
	return n, err
}
