package server

import (
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/ratelimit"
	"github.com/otaship/ota/pkg/ota"
)

// deviceBurstFactor sets a device limiter's burst from its rate: a phone
// behind a carrier's NAT shares its address with many others, and an app
// launch sends an update check, a stats flush and maybe a channel call at
// once, so the bucket holds several seconds' worth of requests.
const deviceBurstFactor = 5

// deviceLimits are the per-address limiters of the device endpoints. Each
// endpoint group has its own buckets, so a device's stats flushes cannot
// use up its update checks. A nil *ratelimit.Limiter allows everything.
type deviceLimits struct {
	updates, stats, channel *ratelimit.Limiter
}

// newDeviceLimits builds the limiters for perSecond requests per second per
// address; perSecond <= 0 turns device rate limiting off.
func newDeviceLimits(perSecond float64, now func() time.Time) *deviceLimits {
	if perSecond <= 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) {
		return &deviceLimits{}
	}
	burst := int(math.Ceil(perSecond * deviceBurstFactor))
	mk := func() *ratelimit.Limiter {
		return ratelimit.New(perSecond, burst, ratelimit.WithClock(now))
	}
	return &deviceLimits{updates: mk(), stats: mk(), channel: mk()}
}

// limitDevices refuses requests from an address that exceeded l's rate
// with the answer the updater plugin understands (protocol.md §2.4): 429,
// Retry-After in seconds and error "too_many_requests". The plugin then
// pauses all its traffic until the deadline, which is what relieves the
// server. The refusal is counted and logged by observe like any answer.
func (s *Server) limitDevices(l *ratelimit.Limiter) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if l == nil {
			return next
		}
		return func(c echo.Context) error {
			var kb [40]byte // the key stays on the stack
			if ok, retry := l.AllowBytes(s.clientKey(kb[:0], c)); !ok {
				return deviceTooManyRequests(retry)
			}
			return next(c)
		}
	}
}

// deviceTooManyRequests is the device endpoints' 429. Its message is
// Capgo's word for word, since the plugin may show or match it.
func deviceTooManyRequests(retry time.Duration) error {
	e := newError(http.StatusTooManyRequests, ota.ErrCodeTooManyRequests, "Too many requests")
	e.RetryAfter = max(1, int(math.Ceil(retry.Seconds())))
	return e
}
