package clientip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
)

func TestParsePrefixes(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{name: "cidrs", in: []string{"10.0.0.0/8", "2001:db8::/32"}, want: []string{"10.0.0.0/8", "2001:db8::/32"}},
		{name: "bare addresses are single hosts", in: []string{"192.0.2.7", "2001:db8::1"}, want: []string{"192.0.2.7/32", "2001:db8::1/128"}},
		{name: "host bits are cleared", in: []string{"10.1.2.3/8"}, want: []string{"10.0.0.0/8"}},
		{name: "blank entries and spaces are ignored", in: []string{" 10.0.0.1 ", "", "  "}, want: []string{"10.0.0.1/32"}},
		{name: "mapped address becomes IPv4", in: []string{"::ffff:192.0.2.7"}, want: []string{"192.0.2.7/32"}},
		{name: "mapped prefix becomes IPv4", in: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{name: "zone is dropped", in: []string{"fe80::1%eth0"}, want: []string{"fe80::1/128"}},
		{name: "nil list", in: nil, want: []string{}},
		{name: "hostname", in: []string{"proxy.internal"}, wantErr: true},
		{name: "bad prefix length", in: []string{"10.0.0.0/33"}, wantErr: true},
		{name: "mapped prefix shorter than the mapping", in: []string{"::ffff:0:0/80"}, wantErr: true},
		{name: "one bad entry fails the list", in: []string{"10.0.0.0/8", "nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrefixes(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParsePrefixes(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePrefixes(%q): %v", tt.in, err)
			}
			gotStrings := make([]string, len(got))
			for i, p := range got {
				gotStrings[i] = p.String()
			}
			if !slices.Equal(gotStrings, tt.want) {
				t.Errorf("ParsePrefixes(%q) = %q, want %q", tt.in, gotStrings, tt.want)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	r := Resolver{TrustedProxies: trusted}

	tests := []struct {
		name       string
		resolver   Resolver
		remoteAddr string
		xff        []string // one X-Forwarded-For header per element
		want       string   // "" means the zero Addr
	}{
		{name: "no proxy", resolver: r, remoteAddr: "198.51.100.7:5000", want: "198.51.100.7"},
		{name: "spoofed header from untrusted peer is ignored", resolver: r, remoteAddr: "198.51.100.7:5000",
			xff: []string{"203.0.113.9"}, want: "198.51.100.7"},
		{name: "zero resolver ignores the header", resolver: Resolver{}, remoteAddr: "10.0.0.1:5000",
			xff: []string{"203.0.113.9"}, want: "10.0.0.1"},
		{name: "one trusted proxy", resolver: r, remoteAddr: "10.0.0.1:5000",
			xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "client-forged entries left of the real client are ignored", resolver: r, remoteAddr: "10.0.0.1:5000",
			xff: []string{"1.1.1.1, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "chain of trusted proxies", resolver: r, remoteAddr: "10.0.0.1:5000",
			xff: []string{"203.0.113.9, 192.0.2.1, 10.0.0.2"}, want: "203.0.113.9"},
		{name: "several headers form one list", resolver: r, remoteAddr: "10.0.0.1:5000",
			xff: []string{"1.1.1.1, 203.0.113.9", "10.0.0.3", "10.0.0.2"}, want: "203.0.113.9"},
		{name: "trusted proxy without header", resolver: r, remoteAddr: "10.0.0.1:5000", want: "10.0.0.1"},
		{name: "all hops trusted returns the leftmost", resolver: r, remoteAddr: "10.0.0.1:5000",
			xff: []string{"10.0.0.9, 10.0.0.8"}, want: "10.0.0.9"},
		{name: "malformed entry stops at the last trusted hop", resolver: r, remoteAddr: "10.0.0.1:5000",
			xff: []string{"203.0.113.9, garbage, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "malformed rightmost entry returns the peer", resolver: r, remoteAddr: "10.0.0.1:5000",
			xff: []string{"203.0.113.9, unknown"}, want: "10.0.0.1"},
		{name: "empty entries are skipped", resolver: r, remoteAddr: "10.0.0.1:5000",
			xff: []string{"203.0.113.9, , 10.0.0.2,"}, want: "203.0.113.9"},
		{name: "entries with ports", resolver: r, remoteAddr: "10.0.0.1:5000",
			xff: []string{"[2001:db8::7]:443, 10.0.0.2:80"}, want: "2001:db8::7"},
		{name: "ipv6 proxy and client", resolver: r, remoteAddr: "[2001:db8:ffff::1]:5000",
			xff: []string{"2001:db8:1::5"}, want: "2001:db8:1::5"},
		{name: "mapped peer matches an IPv4 trusted prefix", resolver: r, remoteAddr: "[::ffff:10.0.0.1]:5000",
			xff: []string{"::ffff:203.0.113.9"}, want: "203.0.113.9"},
		{name: "zone is dropped", resolver: r, remoteAddr: "[fe80::1%eth0]:5000", want: "fe80::1"},
		{name: "remote addr without port", resolver: r, remoteAddr: "198.51.100.7", want: "198.51.100.7"},
		{name: "unusable remote addr", resolver: r, remoteAddr: "@", xff: []string{"203.0.113.9"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.remoteAddr
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			got := tt.resolver.ClientIP(req)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("ClientIP() = %v, want %v", got, want)
			}
		})
	}
}

func TestRateLimitKey(t *testing.T) {
	tests := []struct {
		name string
		addr netip.Addr
		want string
	}{
		{name: "ipv4 as is", addr: netip.MustParseAddr("203.0.113.9"), want: "203.0.113.9"},
		{name: "mapped ipv4 as ipv4", addr: netip.MustParseAddr("::ffff:203.0.113.9"), want: "203.0.113.9"},
		{name: "ipv6 masked to /64", addr: netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), want: "2001:db8:1:2::/64"},
		{name: "same /64 same key", addr: netip.MustParseAddr("2001:db8:1:2:ffff::1"), want: "2001:db8:1:2::/64"},
		{name: "zone ignored", addr: netip.MustParseAddr("fe80::1%eth0"), want: "fe80::/64"},
		{name: "zero addr", addr: netip.Addr{}, want: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RateLimitKey(tt.addr); got != tt.want {
				t.Errorf("RateLimitKey(%v) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:5000", "203.0.113.9, 10.0.0.2")
	f.Add("198.51.100.7:1", "1.1.1.1")
	f.Add("[::ffff:10.0.0.1]:1", "[2001:db8::1]:80, , garbage")
	f.Add("@", ",,,")
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		f.Fatal(err)
	}
	r := Resolver{TrustedProxies: trusted}
	f.Fuzz(func(t *testing.T, remoteAddr, xff string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remoteAddr
		req.Header.Set("X-Forwarded-For", xff)
		got := r.ClientIP(req)
		if got.IsValid() && (got.Is4In6() || got.Zone() != "") {
			t.Fatalf("ClientIP() = %v, want an unmapped address without zone", got)
		}
		peer, ok := parseHop(remoteAddr)
		if ok && !r.trusted(peer) && got != peer {
			t.Fatalf("untrusted peer %v let the header choose %v", peer, got)
		}
		_ = RateLimitKey(got)
	})
}
