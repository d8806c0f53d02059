package collections

import (
	"fmt"
	"slices"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
)

// OptionsPatch is a change of a folder's options as its owner or the
// administrator of its home server asks for it: the options given (not
// nil) are set, the others stay as they are. Keep is the canonical text
// of the retention policy, "" for the default (the caller checks the
// text: the policy's syntax is the folder store's). Replicas is how many
// servers beside the home server host the folder; when a new folder is
// made without it, DefaultReplicas. The server path (the control socket)
// and the agent path (an agent's request to the home server) both build
// their change with it (State.CreateFolderWith, State.SetFolderOptions).
type OptionsPatch struct {
	OutsideSymlinks *bool
	Keep            *string
	Replicas        *int
}

// Empty reports whether p sets no option.
func (p OptionsPatch) Empty() bool {
	return p.OutsideSymlinks == nil && p.Keep == nil && p.Replicas == nil
}

// Apply returns o with the options p gives set.
func (p OptionsPatch) Apply(o FolderOptions) FolderOptions {
	if p.OutsideSymlinks != nil {
		o.OutsideSymlinks = *p.OutsideSymlinks
	}
	if p.Keep != nil {
		o.Keep = *p.Keep
	}
	if p.Replicas != nil {
		o.Replicas = *p.Replicas
	}
	return o
}

// CappedNote is "" unless p asked f for more replicas than it got because
// the chain has too few other servers (the builders cap the number): then
// it says so, for the person who asked.
func (p OptionsPatch) CappedNote(f Folder) string {
	if p.Replicas == nil || *p.Replicas <= f.Replicas {
		return ""
	}
	return fmt.Sprintf("%d replicas asked, but the chain has only %d servers besides the home server: the folder has %d", *p.Replicas, f.Replicas, f.Replicas)
}

// maxReplicas is how many replicas a folder homed at home can have: the
// other servers of the chain.
func maxReplicas(c Chain, home lpeer.ID) int {
	n := len(c.Servers)
	if c.Contains(home) {
		n--
	}
	return n
}

// withOptions is f with the options opts, its replicas capped by the
// chain (when asked explicitly) and its hosting set chosen: the hosts it
// has now (FolderHosts) kept first, then the next servers of the chain
// after the home server, up to opts.Replicas.
func withOptions(c Chain, f Folder, opts FolderOptions, asked bool) (Folder, error) {
	if opts.Replicas < 0 {
		return Folder{}, fmt.Errorf("%w: %d replicas: want 0 or more", ErrMalformed, opts.Replicas)
	}
	home, err := lpeer.Decode(f.Server)
	if err != nil {
		return Folder{}, fmt.Errorf("%w: folder %s home server: %v", ErrMalformed, f.ID, err)
	}
	if m := maxReplicas(c, home); asked && opts.Replicas > m {
		opts.Replicas = m
	}
	cur := f
	cur.Replicas = opts.Replicas
	if cur.Hosts == nil {
		cur.Hosts = []string{f.Server}
		// A record without a hosting set is hosted by DefaultReplicas
		// servers now: keep those first.
		for _, id := range FolderHosts(c, f) {
			if s := id.String(); !slices.Contains(cur.Hosts, s) {
				cur.Hosts = append(cur.Hosts, s)
			}
		}
		if len(cur.Hosts) > cur.Replicas+1 {
			cur.Hosts = cur.Hosts[:cur.Replicas+1]
		}
	}
	f.FolderOptions = opts
	f.Hosts = f.Hosts[:0:0]
	for _, id := range FolderHosts(c, cur) {
		f.Hosts = append(f.Hosts, id.String())
	}
	return f, nil
}
