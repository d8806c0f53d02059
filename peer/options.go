package peer

import (
	"fmt"
	"strings"

	"github.com/baton-sync/baton/collections"
)

// ParseOptions is the change of a folder's options given as text by a
// person (the control socket's requests, an agent's request to the home
// server): outside and replicas nil, and keep "", leave them as they are;
// keep is checked with ParseKeep. The collections' builders apply it
// (collections.OptionsPatch).
func ParseOptions(outside *bool, keep string, replicas *int) (collections.OptionsPatch, error) {
	p := collections.OptionsPatch{OutsideSymlinks: outside, Replicas: replicas}
	if strings.TrimSpace(keep) != "" {
		k, err := ParseKeep(keep)
		if err != nil {
			return collections.OptionsPatch{}, err
		}
		p.Keep = &k
	}
	if replicas != nil && *replicas < 0 {
		return collections.OptionsPatch{}, fmt.Errorf("%d replicas: want 0 (the home server alone) or more", *replicas)
	}
	return p, nil
}
