package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrPrivateTarget is returned for a webhook URL, or a connection of a
// delivery, whose address is not a public one (loopback, private,
// link-local, ...) while Options.AllowPrivate is off.
var ErrPrivateTarget = errors.New("webhook target is not a public address")

// lookupTimeout bounds the name resolution CheckTarget does.
const lookupTimeout = 3 * time.Second

// nonPublic are IPv4 ranges that reach no one on the internet, beyond what
// netip's Is* methods name: "this network", shared address space (CGNAT),
// IETF protocol assignments, benchmarking and the reserved 240/4.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("100::/64"), // IPv6 discard
}

// Public reports whether a is an address on the public internet: not
// loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 with the
// cloud metadata services, fe80::/10), multicast, unspecified or reserved.
// An IPv4 address inside IPv6 (mapped, NAT64, 6to4) is judged as IPv4.
func Public(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		b := a.As16()
		switch {
		case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
			return Public(netip.AddrFrom4([4]byte(b[12:])))
		case netip.MustParsePrefix("2002::/16").Contains(a):
			return Public(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// CheckTarget refuses, unless Options.AllowPrivate, a webhook URL whose
// host is not public: an IP literal, a name of the local host, or a name
// that resolves to such an address now. A name that does not resolve is
// accepted (the receiver may not exist yet); every delivery checks the
// address it connects to again, so a name that changes later is caught
// then.
func (d *Dispatcher) CheckTarget(ctx context.Context, raw string) error {
	if d.o.AllowPrivate {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("webhook URL is not a URL: %w", err)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	refuse := func(what string) error {
		return fmt.Errorf("%w: %s is %s; start otad with --webhook-allow-private to allow such receivers", ErrPrivateTarget, u.Hostname(), what)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return refuse("this machine")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !Public(a) {
			return refuse("not a public address")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	addrs, err := d.o.LookupIP(ctx, host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if !Public(a) {
			return refuse(fmt.Sprintf("resolving to %s, not a public address", a))
		}
	}
	return nil
}

// publicOnly is the dialer's Control: it runs on the address actually
// connected to, after name resolution, so a name that resolves to a
// private address at delivery time (DNS rebinding) is refused too.
func publicOnly(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read the address %q", ErrPrivateTarget, address)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrPrivateTarget, ap.Addr())
	}
	return nil
}

// defaultClient follows no redirects (a 3xx is a failed attempt: the
// receiver must be named exactly). Unless private targets are allowed, it
// connects only to public addresses and ignores proxies from the
// environment, since through a proxy the address check would see the
// proxy instead of the receiver.
func defaultClient(allowPrivate bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if !allowPrivate {
		t.Proxy = nil
		t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: publicOnly}).DialContext
	}
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// attemptError is what a failed attempt records in the delivery log, which
// the API and otactl show: which step failed, never the network's words
// for it. Whether a connection was refused, reset or timed out would tell
// whoever can add webhooks which ports are open behind otad; the detail
// is in the server log.
func attemptError(err error) string {
	switch {
	case errors.Is(err, ErrPrivateTarget):
		return "refused: the receiver's address is not public (otad --webhook-allow-private allows it)"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer from the receiver in time"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "the receiver's host name does not resolve"
	}
	return "could not reach the receiver (no connection, or it closed or failed before answering)"
}
