// Package clientip owns deciding which IP address a request came from when
// Kavach runs behind reverse proxies, and the key that address is rate
// limited under.
//
// X-Forwarded-For is believed only as far as a chain of configured trusted
// proxies vouches for it; everything else in the header is client-supplied
// and may be forged. The package does not parse the RFC 7239 Forwarded or
// X-Real-IP headers, read configuration, or decide what to do with the
// address.
package clientip
