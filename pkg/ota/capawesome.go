package ota

import "encoding/json"

// The wire shapes of @capawesome/capacitor-live-update, the other live-update
// plugin otad serves (docs/protocol-capawesome.md). Field names are the
// plugin's and must never change.

// Artifact types of a latest-bundle answer (§3.2).
const (
	ArtifactZip      = "zip"
	ArtifactManifest = "manifest"
)

// CapawesomeManifestFile is the name of the manifest a manifest bundle's
// files are listed in, fetched as ?href=<this> (§4).
const CapawesomeManifestFile = "capawesome-live-update-manifest.json"

// LatestBundle is the 2xx answer to GET /v1/apps/{appId}/bundles/latest
// (§3.2). Absent optional fields are left out, never sent as "": the plugin
// would verify against an empty checksum or signature and fail. Any
// "no bundle for this device" is a non-2xx status, never this shape.
type LatestBundle struct {
	ArtifactType string `json:"artifactType"`
	BundleID     string `json:"bundleId"`
	ChannelName  string `json:"channelName,omitempty"`
	// Checksum is the lowercase hex SHA-256 of the zip.
	Checksum string `json:"checksum,omitempty"`
	// CustomProperties must hold strings only: iOS decodes [String: String].
	CustomProperties map[string]string `json:"customProperties,omitempty"`
	// Signature is the base64 SHA256withRSA signature of the zip.
	Signature string `json:"signature,omitempty"`
	URL       string `json:"url"`
}

// CapawesomeChannel is one element of the bare array GET
// /v1/apps/{appId}/channels answers (§6). ID is a JSON string: iOS decodes
// String and fails on a number.
type CapawesomeChannel struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ManifestItem is one file of a manifest bundle's manifest (§4).
type ManifestItem struct {
	Href        string `json:"href"`
	Checksum    string `json:"checksum"`
	SizeInBytes int64  `json:"sizeInBytes"`
}

// CapawesomeItems lists the files of a delta release as its manifest file
// describes them, in manifest order: every file but one at
// CapawesomeManifestFile, which the manifest file itself replaces (a web
// dir may hold one made for the app's built-in bundle, which cannot list
// its own checksum).
func CapawesomeItems(files []ManifestFile) []ManifestItem {
	items := make([]ManifestItem, 0, len(files))
	for i := range files {
		f := &files[i]
		if f.Path == CapawesomeManifestFile {
			continue
		}
		items = append(items, ManifestItem{Href: f.Path, Checksum: f.SHA256, SizeInBytes: f.Size})
	}
	return items
}

// MarshalCapawesomeManifest is the manifest file of items, byte for byte
// what otad serves as ?href=capawesome-live-update-manifest.json and a
// device keeps beside the bundle: a JSON array of {href, checksum,
// sizeInBytes}. A signed manifest bundle signs exactly these bytes, so
// otactl, which signs, and otad, which serves, both use this function.
func MarshalCapawesomeManifest(items []ManifestItem) []byte {
	if items == nil {
		items = []ManifestItem{}
	}
	b, err := json.Marshal(items)
	if err != nil {
		panic(err) // strings and numbers always encode
	}
	return b
}

// CapawesomeManifest is MarshalCapawesomeManifest(CapawesomeItems(files)):
// the manifest file of a delta release, the bytes its ManifestSignature
// signs.
func CapawesomeManifest(files []ManifestFile) []byte {
	return MarshalCapawesomeManifest(CapawesomeItems(files))
}
