package ratelimit

import (
	"sync"
	"time"
)

// LoginGuard decides which login attempts get their password checked. It
// is an interface so that several otad replicas can later share one
// (backed by the shared store) without the login handler changing.
type LoginGuard interface {
	// AllowAddress is asked first, before the request body is read:
	// whether a client address may try at all.
	AllowAddress(addr string) (ok bool, retry time.Duration)
	// AllowUser is asked once the user name is known. by names the limit
	// that refused ("pair" or "user"), for the log.
	AllowUser(user, addr string) (ok bool, retry time.Duration, by string)
	// Done reports the outcome of an attempt AllowUser admitted.
	Done(user, addr string, success bool)
}

// Login limits. Every attempt counts against its address; only failed
// ones against the user. A failed attempt for a user counts twice: for
// the (user, address) pair, so that one address cannot guess quickly, and
// against a per-user ceiling ten times as high, so that many addresses
// cannot either. The ceiling refills faster than one pair may spend, so
// one other address can never lock a user out; and addresses a user has
// logged in from in the last 30 days are not held to it at all, so even
// a distributed attack does not lock the user out of them.
const (
	LoginAddressBurst = 10
	LoginAddressRate  = 10.0 / 60 // per second: 10 a minute
	LoginPairBurst    = 5
	LoginPairRate     = 5.0 / 60 // 5 failures a minute
	LoginUserBurst    = 100
	LoginUserRate     = 10.0 / 60 // 10 failures a minute
	loginKnownFor     = 30 * 24 * time.Hour
	loginKnownMax     = 10_000
)

// Login is the in-memory LoginGuard of one otad.
type Login struct {
	byAddr, byPair, byUser *Limiter
	now                    func() time.Time

	mu    sync.Mutex
	known map[string]time.Time // pair key → last successful login
	order []string             // known keys, oldest first (FIFO bound)
}

var _ LoginGuard = (*Login)(nil)

// NewLogin returns the guard with the limits above; now may be nil.
func NewLogin(now func() time.Time) *Login {
	if now == nil {
		now = time.Now
	}
	return &Login{
		byAddr: New(LoginAddressRate, LoginAddressBurst, WithClock(now)),
		byPair: New(LoginPairRate, LoginPairBurst, WithClock(now)),
		byUser: New(LoginUserRate, LoginUserBurst, WithClock(now)),
		now:    now,
		known:  map[string]time.Time{},
	}
}

// pairKey cannot be confused between users and addresses: a NUL is in
// neither.
func pairKey(user, addr string) string { return user + "\x00" + addr }

// AllowAddress implements LoginGuard.
func (l *Login) AllowAddress(addr string) (bool, time.Duration) {
	return l.byAddr.Allow(addr)
}

// AllowUser implements LoginGuard. It takes a token from the pair's
// bucket and, for an address the user has not logged in from, from the
// user's; Done gives them back when the password was right.
func (l *Login) AllowUser(user, addr string) (bool, time.Duration, string) {
	pk := pairKey(user, addr)
	if ok, retry := l.byPair.Allow(pk); !ok {
		return false, retry, "pair"
	}
	if l.isKnown(pk) {
		return true, 0, ""
	}
	if ok, retry := l.byUser.Allow(user); !ok {
		l.byPair.Refund(pk) // not checked, so not a failure of the pair
		return false, retry, "user"
	}
	return true, 0, ""
}

// Done implements LoginGuard.
func (l *Login) Done(user, addr string, success bool) {
	if !success {
		return
	}
	pk := pairKey(user, addr)
	known := l.isKnown(pk)
	l.byPair.Refund(pk)
	if !known {
		l.byUser.Refund(user)
	}
	l.remember(pk)
}

func (l *Login) isKnown(pk string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.known[pk]
	return ok && l.now().Sub(at) < loginKnownFor
}

// remember marks a pair as known, forgetting the oldest beyond
// loginKnownMax pairs.
func (l *Login) remember(pk string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.known[pk]; !ok {
		l.order = append(l.order, pk)
	}
	l.known[pk] = l.now()
	for len(l.order) > loginKnownMax {
		delete(l.known, l.order[0])
		l.order = l.order[1:]
	}
}
