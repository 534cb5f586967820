package ota

import (
	"fmt"
	"net/http"
)

// ErrorResponse is the JSON body of every admin API error: a stable machine
// code and a message a person can act on. It has the same shape as the
// device protocol's refusals, so one decoder reads both.
type ErrorResponse struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

// Stable admin API error codes. Scripts may match on them; never rename one.
const (
	ErrCodeBadRequest      = "bad_request"
	ErrCodeInvalidJSON     = "invalid_json_body"
	ErrCodeInvalidVersion  = "invalid_version"
	ErrCodeInvalidName     = "invalid_name"
	ErrCodeMissingFile     = "missing_file"
	ErrCodeInvalidBundle   = "invalid_bundle"
	ErrCodeChecksum        = "checksum_mismatch"
	ErrCodeConflict        = "version_conflict"
	ErrCodeNotFound        = "not_found"
	ErrCodeAppNotFound     = "app_not_found"
	ErrCodeChannelNotFound = "channel_not_found"
	ErrCodeBundleNotFound  = "bundle_not_found"
	ErrCodeNothingToRoll   = "no_previous_release"
	ErrCodeUnauthorized    = "unauthorized"
	ErrCodeForbidden       = "forbidden"
	ErrCodeTooLarge        = "payload_too_large"
	ErrCodeTooManyRequests = "too_many_requests"
	ErrCodeInsufficient    = "insufficient_storage"
	ErrCodeInternal        = "internal_error"
	ErrCodeUnavailable     = "unavailable"
	ErrCodeMethod          = "method_not_allowed"
	// ErrCodeInvalidManifest: a delta release's manifest breaks the
	// plugin's rules (paths, index.html) or differs from its zip.
	ErrCodeInvalidManifest = "invalid_manifest"
	// ErrCodeMissingFiles: a delta release names files otad does not
	// hold for the app; upload them (PUT .../files/{sha256}) and retry.
	ErrCodeMissingFiles = "missing_files"
	// ErrCodeInvalidFile: an uploaded file form is not what it claims
	// (a Brotli form that does not decode, ciphertext that is not whole
	// AES blocks).
	ErrCodeInvalidFile = "invalid_file"
)

// APIError is an error answer from otad as the Go client sees it.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}
