package ratelimit

import (
	"net/netip"
)

// DefaultIPv6Prefix is how many leading bits of an IPv6 address name one
// client: a /64 is what one subscriber, phone or server usually gets, and
// choosing a new address inside it is free.
const DefaultIPv6Prefix = 64

// ClientKey appends to dst the limiter key of a client address: an IPv4
// address (also one mapped into IPv6) as its text, an IPv6 address cut to
// its first prefix bits (0: DefaultIPv6Prefix) as a zero byte and the 16
// bytes of the prefix, so keys of the two kinds never meet. Anything that
// does not parse as an address is its own key. Built in a stack buffer,
// the key costs no allocation (see Limiter.AllowBytes).
func ClientKey(dst []byte, host string, prefix int) []byte {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return append(dst, host...)
	}
	a = a.Unmap()
	if a.Is4() {
		return a.AppendTo(dst)
	}
	if prefix <= 0 || prefix > 128 {
		prefix = DefaultIPv6Prefix
	}
	p, err := a.WithZone("").Prefix(prefix)
	if err != nil {
		return append(dst, host...)
	}
	b := p.Addr().As16()
	dst = append(dst, 0)
	return append(dst, b[:]...)
}

// FormatKey is the text of a key ClientKey made, for logs: the address,
// or the IPv6 prefix in CIDR form.
func FormatKey(key []byte, prefix int) string {
	if len(key) == 17 && key[0] == 0 {
		if prefix <= 0 || prefix > 128 {
			prefix = DefaultIPv6Prefix
		}
		return netip.PrefixFrom(netip.AddrFrom16([16]byte(key[1:])), prefix).String()
	}
	return string(key)
}
