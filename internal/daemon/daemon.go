// Package daemon is otad's command line: serve, user management, version.
// It wires configuration, the stores and the HTTP server together.
package daemon

// Main runs otad and returns its exit code. TODO(daemon owner).
func Main() int { return 0 }
