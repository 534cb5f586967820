package ota

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// SetRollout changes the staged rollout of a channel's active version.
func (c *Client) SetRollout(ctx context.Context, app, channel string, req RolloutRequest) (Channel, error) {
	var out Channel
	err := c.doJSON(ctx, http.MethodPost, appPath(app, "channels", channel, "rollout"), nil, req, &out)
	return out, err
}

// Explain asks which bundle a device described by req would get, and why.
func (c *Client) Explain(ctx context.Context, app string, req UpdateRequest) (ExplainResponse, error) {
	var out ExplainResponse
	err := c.doJSON(ctx, http.MethodPost, appPath(app, "explain"), nil, req, &out)
	return out, err
}

// Health summarizes device health per version over the last window (0:
// the server's default), for one channel's releases when channel is set.
func (c *Client) Health(ctx context.Context, app, channel string, window time.Duration) (StatsSummary, error) {
	q := url.Values{}
	if channel != "" {
		q.Set("channel", channel)
	}
	if window > 0 {
		q.Set("window", window.String())
	}
	var out StatsSummary
	err := c.doJSON(ctx, http.MethodGet, appPath(app, "health"), q, nil, &out)
	return out, err
}

// HealthSeries is Health with the window cut into steps (Series), for
// charts; the server rounds the window's start down to a multiple of step.
func (c *Client) HealthSeries(ctx context.Context, app, channel string, window, step time.Duration) (StatsSummary, error) {
	q := url.Values{}
	if channel != "" {
		q.Set("channel", channel)
	}
	if window > 0 {
		q.Set("window", window.String())
	}
	q.Set("step", step.String())
	var out StatsSummary
	err := c.doJSON(ctx, http.MethodGet, appPath(app, "health"), q, nil, &out)
	return out, err
}

// ExplainPinned is Explain for a device pinned to channel, whatever the
// request's defaultChannel and the device's own override say.
func (c *Client) ExplainPinned(ctx context.Context, app, channel string, req UpdateRequest) (ExplainResponse, error) {
	var out ExplainResponse
	q := url.Values{"channel": {channel}}
	err := c.doJSON(ctx, http.MethodPost, appPath(app, "explain"), q, req, &out)
	return out, err
}
