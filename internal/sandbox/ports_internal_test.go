package sandbox

import "testing"

// TestPortSetDistinct: the ports of one sandbox are all different, however
// many it hands out (a port found free and let go at once can be found
// free again by the next host's search).
func TestPortSetDistinct(t *testing.T) {
	var p portSet
	defer p.release()
	seen := map[string]bool{}
	for range 500 {
		a, err := p.addr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[a] {
			t.Fatalf("%s handed out twice in %d addresses", a, len(seen)+1)
		}
		seen[a] = true
	}
}
