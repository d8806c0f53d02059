package peer

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestEndpointMatches(t *testing.T) {
	tests := []struct {
		listen, local string
		want          bool
	}{
		{"/ip4/0.0.0.0/tcp/4001", "/ip4/192.0.2.7/tcp/4001", true},
		{"/ip4/0.0.0.0/tcp/4001", "/ip4/192.0.2.7/tcp/4002", false},
		{"/ip4/0.0.0.0/tcp/4001", "/ip4/192.0.2.7/udp/4001/quic-v1", false},
		{"/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.1/tcp/4001", true},
		{"/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.2/tcp/4001", false},
		{"/ip6/::/udp/4001/quic-v1", "/ip6/2001:db8::1/udp/4001/quic-v1", true},
		{"/ip6/::1/tcp/4001", "/ip6/0:0:0:0:0:0:0:1/tcp/4001", true},
	}
	for _, tc := range tests {
		l, ok := listenEndpoint(ma.StringCast(tc.listen))
		if !ok {
			t.Fatalf("listenEndpoint(%s) failed", tc.listen)
		}
		c, ok := endpointOf(ma.StringCast(tc.local))
		if !ok {
			t.Fatalf("endpointOf(%s) failed", tc.local)
		}
		if got := l.matches(c); got != tc.want {
			t.Errorf("listener %s matches local %s = %v; want %v", tc.listen, tc.local, got, tc.want)
		}
	}
	if _, ok := endpointOf(ma.StringCast("/dns4/example.com/tcp/4001")); ok {
		t.Errorf("endpointOf(dns address) succeeded; a connection's local address always has an IP")
	}
}
