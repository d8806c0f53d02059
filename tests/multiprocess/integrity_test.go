package multiprocess

// What must change nothing: a Domain change at a slave, data files
// tampered with behind a daemon's back, hosts outside the domain.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A Domain change made at a slave fails with one line naming the master
// and exit status 1, and changes nothing anywhere.
func TestSlaveRefusesDomainChange(t *testing.T) {
	c, s, _ := newDomain(t, domainOptions{servers: 3})
	s1, s2, s3 := s[0], s[1], s[2]
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	before := c.converge(s...)[0].digests()

	wantErr := fmt.Sprintf("baton: domain changes are made at the master: run this on s1 (%s)\n", s1.id)
	for _, tc := range []struct {
		at   *node
		args []string
	}{
		{s2, []string{"user", "add", "bob", "--home-server", "s2"}},
		{s3, []string{"user", "add", "bob", "--home-server", "s3"}},
		{s2, []string{"user", "remove", "ann"}},
		{s3, []string{"server", "remove", "s2"}},
		{s2, []string{"server", "add", s3.record}},
	} {
		r := c.cli(tc.at, tc.args...)
		if r.code != 1 || r.stdout != "" || r.stderr != wantErr {
			t.Errorf("on %s: %v; want exit 1 and stderr %q", tc.at.name, r, wantErr)
		}
	}
	c.absent = append(c.absent, want{"user", "bob", "refused at s2 and s3"})
	if after := c.converge(s...)[0].digests(); after != before {
		t.Errorf("digests after the refused changes: %s; want them unchanged: %s", after, before)
	}
	for _, n := range s {
		if out := c.mustCLI(n, "server", "list"); !strings.Contains(out, "3. s3 ") {
			t.Errorf("server list on %s after the refused changes:\n%s\nwant s1, s2, s3", n.name, out)
		}
	}
	// The same change at the master is acknowledged.
	c.write(s1, "user", "add", "bob", "--home-server", "s2")
	c.absent = nil
	c.converge(s...)
}

// dataFile is a collection's data file in n's home.
func dataFile(n *node, collection string) string {
	return filepath.Join(n.home, "data", "data", collection+".dat")
}

// Data files truncated, edited, deleted or replaced by an older valid copy
// behind a running daemon's back are quarantined and rewritten from the
// verified state within a few seconds; the rewritten files load again after
// a kill -9 and restart, and all servers still agree.
func TestTamperedDataFileRestored(t *testing.T) {
	c, s, _ := newDomain(t, domainOptions{servers: 3})
	s1, s2, s3 := s[0], s[1], s[2]
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	c.write(s1, "user", "add", "cid", "--home-server", "s3")
	c.write(s2, "folder", "create", "Photos", "--owner", "ann")
	c.converge(s...)
	older, err := os.ReadFile(dataFile(s3, "catalog")) // one folder
	if err != nil {
		t.Fatal(err)
	}
	c.write(s3, "folder", "create", "Docs", "--owner", "cid")
	c.write(s2, "report", "generate")
	c.converge(s...)

	tamper := []struct {
		at         *node
		collection string
		how        string
		do         func(path string) error
	}{
		{s2, "domain", "truncated to half", func(path string) error {
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			return os.Truncate(path, fi.Size()/2)
		}},
		{s1, "domain", "a byte in the middle changed", func(path string) error {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			data[len(data)/2] ^= 0xff
			return os.WriteFile(path, data, 0o600)
		}},
		{s1, "report", "deleted", os.Remove},
		{s3, "catalog", "replaced by an older valid copy", func(path string) error {
			tmp := path + ".tmp"
			if err := os.WriteFile(tmp, older, 0o600); err != nil {
				return err
			}
			return os.Rename(tmp, path)
		}},
	}
	for _, tc := range tamper {
		path := dataFile(tc.at, tc.collection)
		n := len(c.mustStatus(tc.at).Quarantined)
		start := time.Now()
		if err := tc.do(path); err != nil {
			t.Fatalf("tampering with %s: %v", path, err)
		}
		c.waitFor(5*time.Second, fmt.Sprintf("%s to quarantine its %s file (%s)", tc.at.name, tc.collection, tc.how), func() (bool, string) {
			st, err := c.status(tc.at)
			if err != nil {
				return false, err.Error()
			}
			if len(st.Quarantined) <= n {
				return false, fmt.Sprintf("%v, quarantined %v", st, st.Quarantined)
			}
			q := st.Quarantined[len(st.Quarantined)-1]
			if q.Collection != tc.collection || q.File != path {
				t.Fatalf("%s quarantined %s (%s); want %s", tc.at.name, q.File, q.Collection, path)
			}
			if q.MovedTo != "" {
				if _, err := os.Stat(q.MovedTo); err != nil {
					t.Errorf("the quarantined copy: %v", err)
				}
			}
			fi, err := os.Stat(path)
			if err != nil {
				return false, fmt.Sprintf("quarantined as %+v, but the file is not back: %v", q, err)
			}
			return fi.Size() > 0, fmt.Sprintf("quarantined as %+v, file of %d bytes", q, fi.Size())
		})
		t.Logf("%s: %s file %s: quarantined and rewritten in %v", tc.at.name, tc.collection, tc.how, time.Since(start).Round(time.Millisecond))
	}
	c.converge(s...)

	// The rewritten files are what the daemons load after a crash.
	for _, n := range []*node{s3, s2, s1} {
		c.kill(n)
		c.start(n)
	}
	c.waitMaster(s1, s, 0)
	sts := c.converge(s...)
	for _, st := range sts {
		if len(st.Quarantined) != 0 {
			t.Errorf("%s after its restart: quarantined %+v; want none (the rewritten files verify)", st.Name, st.Quarantined)
		}
	}
	c.write(s1, "user", "add", "bob", "--home-server", "s3")
	c.converge(s...)
}

// Hosts outside the domain cannot connect to its servers: one with a
// domain of its own whose chain names a member (so it dials the member's
// address), and one that joined the domain's genesis but was never added
// by the master. Neither learns the domain's users, and the members never
// list them as peers.
func TestOutsiderCannotConnect(t *testing.T) {
	c, s, _ := newDomain(t, domainOptions{servers: 2})
	s1, s2 := s[0], s[1]
	c.write(s1, "user", "add", "ann", "--home-server", "s2")
	before := c.converge(s...)[0].digests()

	x1 := c.addHost("x1", "--server")
	c.mustCLI(x1, "domain", "create", "--name", "other", "--chain", x1.record, "--chain", s2.record)
	x2 := c.addHost("x2", "--server")
	if r := c.cli(x2, "domain", "join", filepath.Join(c.dir, "test.genesis")); r.code != 0 {
		t.Fatalf("domain join of a host outside the genesis: %v; want it to join with a warning", r)
	}
	outsiders := []*node{x1, x2}
	for _, x := range outsiders {
		x.runArgs = []string{"--log-level", "debug"} // logs its failed dials
		c.start(x)
	}

	// The outsiders dial at once and retry with backoff: watch for a while.
	// Only the members' view counts: a dialer sees its own handshake
	// complete a moment before the member's gater closes the connection
	// (libp2p reports the dial as a success), so an outsider may list a
	// member for a few milliseconds; a member never lists an outsider.
	end := time.Now().Add(2 * observe)
	for time.Now().Before(end) {
		for _, n := range s {
			st := c.mustStatus(n)
			for _, x := range outsiders {
				if st.hasPeer(x.id) {
					t.Fatalf("%s lists %s as a connected peer: %v", n.name, x.name, st.Peers)
				}
			}
		}
		time.Sleep(pollInterval)
	}
	for _, x := range outsiders {
		if out := c.mustCLI(x, "user", "list"); strings.Contains(out, "ann") {
			t.Errorf("outsider %s learned the domain's users:\n%s", x.name, out)
		}
	}
	// They did try: each logged failed dials, pulls or raft messages
	// ("failed to negotiate protocol: ... connection reset by peer") of the
	// members it knows. A host outside the chain retries with backoff and
	// its pulls space out, so on a busy machine a try may come after the
	// window above: wait for it.
	for _, d := range []struct{ from, to *node }{{x1, s2}, {x2, s1}, {x2, s2}} {
		c.waitFor(30*time.Second, d.from.name+" trying to connect to "+d.to.name, func() (bool, string) {
			return logContains(d.from, `failed" peer=`+d.to.id) || logContains(d.from, `raft message not sent" to=`+d.to.id),
				"no failed dial, pull or raft message in its log"
		})
	}
	if after := c.converge(s...)[0].digests(); after != before {
		t.Errorf("the members' digests changed while outsiders knocked: %s, was %s", after, before)
	}
}
