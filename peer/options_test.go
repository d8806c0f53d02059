package peer_test

import (
	"testing"

	"github.com/baton-sync/baton/peer"
)

// TestParseOptions: the text of a folder options change becomes the patch
// the builders apply: what is not given stays nil (left as it is).
func TestParseOptions(t *testing.T) {
	yes, two, minus := true, 2, -1
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	for _, tc := range []struct {
		keep     string
		outside  *bool
		replicas *int
		wantKeep string // "<nil>": left as it is
		ok       bool
	}{
		{"", nil, nil, "<nil>", true},
		{"default", nil, nil, "", true},
		{" all:2d, daily:90d ", nil, nil, "all:2d,daily:90d", true},
		{"", &yes, &two, "<nil>", true},
		{"monthly:1y", nil, nil, "", false},
		{"", nil, &minus, "", false},
	} {
		p, err := peer.ParseOptions(tc.outside, tc.keep, tc.replicas)
		if (err == nil) != tc.ok {
			t.Errorf("ParseOptions(%q, %v, %v) error %v; want ok %v", tc.keep, tc.outside, tc.replicas, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if got := str(p.Keep); got != tc.wantKeep || p.OutsideSymlinks != tc.outside || p.Replicas != tc.replicas {
			t.Errorf("ParseOptions(%q, %v, %v) = keep %s, outside %v, replicas %v; want keep %s and the others as given", tc.keep, tc.outside, tc.replicas, got, p.OutsideSymlinks, p.Replicas, tc.wantKeep)
		}
	}
}
