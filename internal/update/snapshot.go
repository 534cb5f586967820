// Package update decides what a device polling /updates is offered. The
// decision is a pure function over an in-memory Snapshot of the release
// state, so the device endpoints never read the disk and the same code
// explains a decision to an operator.
package update

import (
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Snapshot is an immutable view of what devices need. Writers build a new
// one and swap it in; readers never lock.
type Snapshot struct {
	Apps map[string]*AppView
}

// AppView is one app's device-facing state.
type AppView struct {
	App ota.App
	// Channels by name.
	Channels map[string]*ChannelView
	// Overrides maps a lowercase device id to a channel name.
	Overrides map[string]string
}

// ChannelView is one channel with its active bundle resolved.
type ChannelView struct {
	Channel ota.Channel
	// Active is the active bundle, nil when the channel is empty or points at
	// builtin.
	Active *ota.Bundle
}

// URLFunc builds the absolute download URL of a bundle.
type URLFunc func(b *ota.Bundle) string

// Build makes a snapshot from stored state. TODO(update): implemented by the
// update package owner.
func Build(st store.State, url URLFunc) *Snapshot {
	return &Snapshot{Apps: map[string]*AppView{}}
}

// WithApp returns a copy of s in which the apps present in st replace their
// old views. Other apps are shared, not copied.
func (s *Snapshot) WithApp(appID string, st store.State, url URLFunc) *Snapshot {
	return s
}
