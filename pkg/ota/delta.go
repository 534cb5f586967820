package ota

// Delta (manifest) releases: besides its zip, a web bundle may carry the
// list of its files, each stored on its own under its content address, so
// that devices download only the files they lack (protocol §2.6). These
// are the admin API's shapes for uploading them and the stored form otad
// serves devices from.

// ManifestFile is one file of a delta release as otad stores it.
//
// Path is where the file lands in the bundle (a relative POSIX path, never
// with ".br"); SHA256 and Size describe its original bytes. Every file has
// a raw form (Raw, RawSize) and may have a Brotli-compressed one (Br,
// BrSize); both are keys of the blob store (the SHA-256 of the stored
// bytes). In a plain release Raw equals SHA256. In an encrypted release
// both forms are AES-encrypted with the release's session key and FileHash
// is the RSA-encrypted SHA-256 devices get as file_hash.
//
// On upload otactl sends Path, SHA256 and Size (and, encrypted, the forms
// and FileHash); otad fills in the rest.
type ManifestFile struct {
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	Raw      string `json:"raw,omitempty"`
	RawSize  int64  `json:"raw_size,omitempty"`
	Br       string `json:"br,omitempty"`
	BrSize   int64  `json:"br_size,omitempty"`
	FileHash string `json:"file_hash,omitempty"`
	// Signature is the base64 SHA256withRSA signature of the original
	// bytes, for @capawesome/capacitor-live-update devices with a
	// publicKey, which verify every file of a manifest bundle
	// (docs/protocol-capawesome.md §5.3). otactl deploy web --delta
	// --sign-key signs every file of a plain release or none.
	Signature string `json:"signature,omitempty"`
	// Known is set by otad when an earlier release of the app had a file
	// with the same SHA-256: a device may then have it built in or
	// cached. iOS plugins only reuse a built-in file listed without ".br",
	// so such files are offered raw to them (see docs/delta.md).
	Known bool `json:"known,omitempty"`
}

// FilesMissingRequest is the body of POST .../files/missing: the SHA-256 of
// files (the original bytes) a client is about to name in a manifest.
type FilesMissingRequest struct {
	SHA256 []string `json:"sha256"`
	// NeedBrotli lists those whose Brotli form the release needs: a file
	// named *.br is only sent to devices Brotli-compressed (as name.br.br).
	// They count as missing until otad holds that form.
	NeedBrotli []string `json:"need_brotli,omitempty"`
}

// FilesMissingResponse lists those of the request otad does not hold for
// the app; the client uploads them before the release.
type FilesMissingResponse struct {
	Missing []string `json:"missing"`
}

// Encodings of an uploaded file form (the encoding query parameter of
// PUT .../files/{sha256}).
const (
	EncodingRaw    = "raw"
	EncodingBrotli = "br"
	// EncodingEncrypted is an AES-encrypted form of an encrypted
	// release, which otad cannot look into; the path names the SHA-256 of
	// the bytes sent.
	EncodingEncrypted = "encrypted"
)

// StoredFile is the answer to PUT .../files/{sha256}: what otad now holds
// under that SHA-256 for the app. For a plain file Size is the original
// size and Br/BrSize the Brotli form when one was sent; for an encrypted
// form SHA256 and Size are those of the bytes sent.
type StoredFile struct {
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	Br        string `json:"br,omitempty"`
	BrSize    int64  `json:"br_size,omitempty"`
	Encrypted bool   `json:"encrypted,omitempty"`
	// Created is false when otad held the file already.
	Created bool `json:"created"`
}

// MaxManifestFiles bounds the files of one delta release: as many as a
// bundle zip may hold entries.
const MaxManifestFiles = 20000
