package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/baton-sync/baton/internal/control"
	"github.com/baton-sync/baton/peer"
)

// TestStatusWait: 'status --wait master' asks again while the daemon is a
// candidate and prints the status it answers once it is master.
func TestStatusWait(t *testing.T) {
	c := newCLI(t)
	d := newFakeDaemon(t, "s1")
	serveFake(t, c.home, d)

	d.set(func(f *fakeDaemon) { f.elect = 3 })
	out := c.ok("status", "--wait", "master")
	for _, want := range []string{"name:        s1", "role:        master", "master:      s1 (" + id("s1") + ", this host)", "epoch:       3"} {
		if !strings.Contains(out, want) {
			t.Errorf("status --wait master printed\n%s\nwant it to contain %q", out, want)
		}
	}
	d.set(func(f *fakeDaemon) {
		if f.elect != 0 {
			t.Errorf("status --wait master returned with %d candidate answers left; want it to ask until the daemon is master", f.elect)
		}
	})

	d.set(func(f *fakeDaemon) { f.elect = 2 })
	var st peer.Status
	if err := json.Unmarshal([]byte(c.ok("status", "--wait", "master", "--json", "--timeout", "10s")), &st); err != nil {
		t.Fatalf("status --wait master --json: %v", err)
	}
	if st.Role != "master" || st.Master != id("s1") || st.Epoch != 3 {
		t.Errorf("status --wait master --json = role %s, master %s, epoch %d; want master, s1, 3", st.Role, st.Master, st.Epoch)
	}

	// A role the daemon already has answers at once.
	d.as("s2")
	if out := c.ok("status", "--wait", "slave"); !strings.Contains(out, "role:        slave") {
		t.Errorf("status --wait slave at a slave printed\n%s\nwant role slave", out)
	}
}

func TestStatusWaitUsage(t *testing.T) {
	c := newCLI(t)
	c.fail(2, []string{"status", "--wait", "boss"}, `status: --wait "boss"`, "master, slave, candidate or agent")
	c.fail(2, []string{"status", "--wait", ""}, `status: --wait ""`, "master, slave, candidate or agent")
	c.fail(2, []string{"status", "--wait", "Master"}, `--wait "Master"`)
	c.fail(2, []string{"status", "--timeout", "5s"}, "--timeout goes with --wait")
	c.fail(2, []string{"status", "--wait", "master", "--timeout", "0s"}, "--timeout 0s")
	c.fail(2, []string{"status", "--wait"}, "--wait")
}

// TestStatusWaitTimeout: the wait gives up after --timeout, naming the role
// it waited for and the one the daemon last answered, or saying that no
// daemon ever answered.
func TestStatusWaitTimeout(t *testing.T) {
	c := newCLI(t)
	// No daemon yet: the wait goes on until the timeout.
	c.fail(1, []string{"status", "--wait", "master", "--timeout", "300ms"},
		"waited 300ms for the daemon in "+c.home+" to be master; it never answered (start it with 'baton run --home "+c.home+"')")

	// A socket left by a daemon that died is no answer either.
	if err := makeHome(c.home); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", control.SocketPath(c.home))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	c.fail(1, []string{"status", "--wait", "slave", "--timeout", "300ms"}, "to be slave; it never answered")

	d := newFakeDaemon(t, "s1")
	d.set(func(f *fakeDaemon) { f.elect = 1 << 30 })
	serveFake(t, c.home, d)
	start := time.Now()
	c.fail(1, []string{"status", "--wait", "master", "--timeout", "300ms"},
		"waited 300ms for the daemon in "+c.home+" to be master; its last answer was candidate")
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("status --wait master --timeout 300ms took %s; want it to give up after about 300ms", took)
	}
	c.fail(1, []string{"status", "--wait", "agent", "--json", "--timeout", "300ms"}, "to be agent; its last answer was candidate")
}
