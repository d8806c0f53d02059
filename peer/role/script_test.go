package role

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestScripts runs the scenarios in testdata/*.txt. The script language:
//
//	# comment
//	nodes N [plain|majority]      start s1..sN (DefaultConfig; mode override)
//	tick N                        N lockstep ticks, delivering all messages
//	crash ID...                   stop ID: no ticks, no messages
//	restart ID                    New from ID's durable epoch
//	partition A B | C             cut every link between the groups;
//	                              servers in no group form one more group
//	cut A B                       drop everything A sends to B
//	heal                          restore every link
//	pause ID / resume ID          freeze ID with its state (SIGSTOP), thaw it
//	autocatchup on|off            the driver pulls from the master at once
//	                              (default) or only on caughtup
//	caughtup ID                   ID's pull from its master completed
//	repeat N ... end              run the enclosed lines N times
//	status                        log every server's status
//	expect master ID epoch E      exactly one running server accepts
//	                              writes: ID, at epoch E
//	expect master none            no running server accepts writes
//	expect writers ID...          exactly these running servers accept writes
//	expect ID ROLE                ID's applied role (slave|candidate|master)
//	expect ID follows ID2|none [epoch E]
//	expect ID catchup ID2|none
//	expect ID epoch E             ID's durable epoch is E
//	expect maxepoch E             no server's durable epoch exceeds E
//	expect settled ID             every running server follows ID, caught up
//
// The cluster's invariants (one writer per epoch, epochs never decrease,
// persist before acting) are checked after every tick.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts in testdata")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			s := &script{t: t, file: file}
			for i, line := range strings.Split(string(data), "\n") {
				if j := strings.IndexByte(line, '#'); j >= 0 {
					line = line[:j]
				}
				if f := strings.Fields(line); len(f) > 0 {
					s.lines = append(s.lines, scriptLine{no: i + 1, args: f})
				}
			}
			s.run(s.lines)
		})
	}
}

type scriptLine struct {
	no   int
	args []string
}

type script struct {
	t     *testing.T
	file  string
	lines []scriptLine
	c     *cluster
	at    scriptLine
}

func (s *script) failf(format string, args ...any) {
	s.t.Helper()
	msg := fmt.Sprintf("%s:%d: %s: %s", s.file, s.at.no, strings.Join(s.at.args, " "), fmt.Sprintf(format, args...))
	if s.c != nil {
		s.c.fatalf("%s", msg)
	}
	s.t.Fatal(msg)
}

func (s *script) run(lines []scriptLine) {
	for i := 0; i < len(lines); i++ {
		s.at = lines[i]
		f := s.at.args
		if f[0] == "repeat" {
			n := s.atoi(f, 1)
			depth, j := 1, i+1
			for ; j < len(lines) && depth > 0; j++ {
				switch lines[j].args[0] {
				case "repeat":
					depth++
				case "end":
					depth--
				}
			}
			if depth != 0 {
				s.failf("repeat without end")
			}
			body := lines[i+1 : j-1]
			for range n {
				s.run(body)
			}
			i = j - 1
			continue
		}
		s.exec(f)
	}
}

func (s *script) atoi(f []string, i int) int {
	s.t.Helper()
	if i >= len(f) {
		s.failf("missing argument %d", i)
	}
	n, err := strconv.Atoi(f[i])
	if err != nil {
		s.failf("argument %d: %v", i, err)
	}
	return n
}

func (s *script) exec(f []string) {
	s.t.Helper()
	if f[0] != "nodes" && s.c == nil {
		s.failf("no nodes yet")
	}
	c := s.c
	switch f[0] {
	case "nodes":
		var mode *bool
		if len(f) > 2 {
			b := f[2] == "majority"
			if !b && f[2] != "plain" {
				s.failf("mode %q: want plain or majority", f[2])
			}
			mode = &b
		}
		s.c = newCluster(s.t, s.atoi(f, 1), mode)
	case "tick":
		for range s.atoi(f, 1) {
			c.tick()
		}
	case "crash":
		for _, id := range f[1:] {
			c.crash(id)
		}
	case "restart":
		c.restart(f[1])
	case "partition":
		var groups [][]string
		var g []string
		for _, a := range f[1:] {
			if a == "|" {
				groups, g = append(groups, g), nil
				continue
			}
			g = append(g, a)
		}
		c.partition(append(groups, g))
	case "heal":
		c.heal()
	case "cut":
		c.mustKnow(f[1])
		c.mustKnow(f[2])
		c.cut[[2]string{f[1], f[2]}] = true
		c.logf("cut %s->%s", f[1], f[2])
	case "pause":
		c.pause(f[1])
	case "resume":
		c.resume(f[1])
	case "autocatchup":
		c.autoCatchUp = f[1] == "on"
	case "caughtup":
		if !c.caughtUp(f[1]) {
			s.failf("%s has nothing to catch up from", f[1])
		}
		c.stabilize()
	case "status":
		s.t.Logf("%s:%d: t%d\n%s", s.file, s.at.no, c.now, c.statusText())
	case "expect":
		s.expect(f[1:])
	default:
		s.failf("unknown command")
	}
}

func (s *script) expect(f []string) {
	s.t.Helper()
	c := s.c
	if len(f) == 0 {
		s.failf("expect what?")
	}
	switch f[0] {
	case "master":
		w := c.writers()
		if f[1] == "none" {
			if len(w) != 0 {
				s.failf("writers %v; want none", w)
			}
			return
		}
		if len(w) != 1 || w[0] != f[1] {
			s.failf("writers %v; want [%s]", w, f[1])
		}
		if e := uint64(s.atoi(f, 3)); c.state[f[1]].Epoch != e {
			s.failf("master %s at epoch %d; want %d", f[1], c.state[f[1]].Epoch, e)
		}
		return
	case "writers":
		if w := c.writers(); !slices.Equal(w, f[1:]) {
			s.failf("writers %v; want %v", w, f[1:])
		}
		return
	case "maxepoch":
		if e := c.maxEpoch(); e > uint64(s.atoi(f, 1)) {
			s.failf("max epoch %d; want at most %s", e, f[1])
		}
		return
	case "settled":
		if m, ok := c.settled(); !ok || m != f[1] {
			s.failf("settled on %q (%t); want %s", m, ok, f[1])
		}
		return
	}
	id := f[0]
	c.mustKnow(id)
	if len(f) < 2 {
		s.failf("expect %s what?", id)
	}
	st := c.state[id]
	if c.nodes[id] == nil {
		s.failf("%s is down", id)
	}
	switch f[1] {
	case "slave", "candidate", "master":
		if st.Role.String() != f[1] {
			s.failf("%s is %s; want %s", id, st.Role, f[1])
		}
	case "follows":
		want := f[2]
		if want == "none" {
			want = ""
		}
		if st.Master != want {
			s.failf("%s follows %q; want %q", id, st.Master, want)
		}
		if len(f) > 3 && f[3] == "epoch" {
			if e := uint64(s.atoi(f, 4)); st.Epoch != e {
				s.failf("%s follows at epoch %d; want %d", id, st.Epoch, e)
			}
		}
	case "catchup":
		want := f[2]
		if want == "none" {
			want = ""
		}
		if st.CatchUpFrom != want {
			s.failf("%s catches up from %q; want %q", id, st.CatchUpFrom, want)
		}
	case "epoch":
		if e := uint64(s.atoi(f, 2)); c.disk[id] != e {
			s.failf("%s durable epoch %d; want %d", id, c.disk[id], e)
		}
	default:
		s.failf("unknown expectation")
	}
}
