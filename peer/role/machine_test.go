package role

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var chain3 = []string{"s1", "s2", "s3"}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig("s2", chain3)
	tests := []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; "" for nil
	}{
		{"default", func(*Config) {}, ""},
		{"plain", func(c *Config) { c.Majority = false }, ""},
		{"single", func(c *Config) { c.Self, c.Chain = "a", []string{"a"} }, ""},
		{"no self", func(c *Config) { c.Self = "" }, "empty Self"},
		{"no chain", func(c *Config) { c.Chain = nil }, "empty Chain"},
		{"empty id", func(c *Config) { c.Chain = []string{"s1", "", "s2"} }, "empty ID"},
		{"duplicate", func(c *Config) { c.Chain = []string{"s1", "s2", "s1"} }, "twice"},
		{"self missing", func(c *Config) { c.Self = "s9" }, "not in Chain"},
		{"no heartbeat", func(c *Config) { c.HeartbeatTicks = 0 }, "HeartbeatTicks"},
		{"fail too soon", func(c *Config) { c.FailAfterTicks = 2 * c.HeartbeatTicks }, "FailAfterTicks"},
		{"grace too short", func(c *Config) { c.StartupGraceTicks = c.FailAfterTicks - 1 }, "StartupGraceTicks"},
	}
	for _, tt := range tests {
		cfg := good
		cfg.Chain = append([]string(nil), good.Chain...)
		tt.change(&cfg)
		err := cfg.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Validate() = %v; want error containing %q", tt.name, err, tt.want)
		}
		if _, nerr := New(cfg, Persisted{}); (nerr == nil) != (err == nil) {
			t.Errorf("%s: New error %v, Validate error %v", tt.name, nerr, err)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	for n, majority := range map[int]bool{1: false, 2: false, 3: true, 5: true} {
		chain := []string{"a", "b", "c", "d", "e"}[:n]
		cfg := DefaultConfig("a", chain)
		if err := cfg.Validate(); err != nil {
			t.Errorf("DefaultConfig(%d servers).Validate() = %v", n, err)
		}
		if cfg.Majority != majority {
			t.Errorf("DefaultConfig(%d servers).Majority = %t; want %t", n, cfg.Majority, majority)
		}
	}
	cfg := DefaultConfig("a", []string{"a"})
	// Failure detection plus one heartbeat of phase must stay well under
	// the 3 s failover target.
	if d := time.Duration(cfg.FailAfterTicks+cfg.HeartbeatTicks) * DefaultTickInterval; d > 1500*time.Millisecond {
		t.Errorf("default failure detection %v; want at most 1.5s", d)
	}
}

// feed is a machine under test with a driver that persists at once and
// keeps what it would have sent.
type feed struct {
	t    *testing.T
	m    *Machine
	sent []Message
	st   State
}

func newFeed(t *testing.T, cfg Config, p Persisted) *feed {
	t.Helper()
	m, err := New(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	return &feed{t: t, m: m}
}

func (f *feed) drain() {
	for f.m.HasReady() {
		rd := f.m.Ready()
		f.sent = append(f.sent, rd.Messages...)
		f.st = rd.State
		f.m.Advance(rd)
	}
}

func (f *feed) step(msg Message) error {
	err := f.m.Step(msg)
	f.drain()
	return err
}

func (f *feed) tick(n int) {
	for range n {
		f.m.Tick()
		f.drain()
	}
}

func (f *feed) take(typ MessageType) []Message {
	var out, rest []Message
	for _, m := range f.sent {
		if m.Type == typ {
			out = append(out, m)
		} else {
			rest = append(rest, m)
		}
	}
	f.sent = rest
	return out
}

func hb(from string, epoch uint64, isMaster bool, caught uint64) Message {
	m := Message{Type: MsgHeartbeat, From: from, Epoch: epoch, MasterEpoch: epoch, IsMaster: isMaster, CaughtUp: caught}
	if isMaster {
		m.Master = from
	}
	return m
}

// Seed scenario 1: desktop agents are not in the chain. Nothing they send
// changes the role machine.
func TestStepRefuses(t *testing.T) {
	f := newFeed(t, DefaultConfig("s2", chain3), Persisted{Epoch: 3})
	before := f.m.Status()
	for _, msg := range []Message{
		{Type: MsgHeartbeat, From: "agent-1", Epoch: 99, IsMaster: true},
		{Type: MsgCampaign, From: "agent-1", Epoch: 99},
		{Type: MsgHeartbeat, From: "s2", Epoch: 99, IsMaster: true},
		{Type: MsgGrant, From: "s1", To: "s3", Epoch: 4},
	} {
		if err := f.step(msg); !errors.Is(err, ErrUnknownPeer) {
			t.Errorf("Step(%v) = %v; want ErrUnknownPeer", msg, err)
		}
	}
	if diff := cmp.Diff(before, f.m.Status()); diff != "" {
		t.Errorf("refused messages changed the status (-before +after):\n%s", diff)
	}
	if err := f.step(Message{Type: 42, From: "s1"}); err == nil {
		t.Errorf("Step(type 42) = nil; want an error")
	}
}

func TestStaleMasterFenced(t *testing.T) {
	f := newFeed(t, DefaultConfig("s3", chain3), Persisted{Epoch: 3})
	err := f.step(hb("s1", 2, true, 2))
	if !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("Step(master heartbeat at epoch 2 < 3) = %v; want ErrStaleEpoch", err)
	}
	if st := f.m.Status(); st.Master != "" || !strings.Contains(strings.Join(st.Live, " "), "s1") {
		t.Errorf("after a stale master heartbeat: master %q, live %v; want no master, s1 live", st.Master, st.Live)
	}
	if err := f.m.Fence(2); !errors.Is(err, ErrStaleEpoch) {
		t.Errorf("Fence(2) = %v; want ErrStaleEpoch", err)
	}
	for _, e := range []uint64{3, 4} {
		if err := f.m.Fence(e); err != nil {
			t.Errorf("Fence(%d) = %v; want nil", e, err)
		}
	}
	// A master at a higher epoch is followed, and fences the lower one.
	if err := f.step(hb("s2", 5, true, 5)); err != nil {
		t.Fatalf("Step(master heartbeat at epoch 5) = %v", err)
	}
	if f.st.Master != "s2" || f.st.Epoch != 5 || f.st.CatchUpFrom != "s2" {
		t.Errorf("State = %+v; want following s2 at 5, catching up from it", f.st)
	}
	if err := f.m.Fence(3); !errors.Is(err, ErrStaleEpoch) {
		t.Errorf("Fence(3) after epoch 5 = %v; want ErrStaleEpoch", err)
	}
}

// A server grants each epoch once, even when it later sees another
// candidate for it as rightful.
func TestGrantOncePerEpoch(t *testing.T) {
	f := newFeed(t, DefaultConfig("s3", chain3), Persisted{})
	for range 10 {
		f.step(hb("s2", 0, false, 0))
		f.tick(2)
	}
	f.sent = nil
	f.step(Message{Type: MsgCampaign, From: "s2", Epoch: 1})
	if g := f.take(MsgGrant); len(g) != 1 || g[0].To != "s2" || g[0].Epoch != 1 {
		t.Fatalf("campaign of s2 for epoch 1: grants %v; want one to s2", g)
	}
	if st := f.m.Status(); st.Persisted != 1 {
		t.Errorf("persisted %d after granting epoch 1; want 1", st.Persisted)
	}
	// s1 appears, and would be rightful, but epoch 1 is taken.
	f.step(hb("s1", 0, false, 0))
	f.step(Message{Type: MsgPreCampaign, From: "s1", Epoch: 1})
	f.step(Message{Type: MsgCampaign, From: "s1", Epoch: 1})
	if g := append(f.take(MsgGrant), f.take(MsgPreGrant)...); len(g) != 0 {
		t.Errorf("epoch 1 granted again: %v", g)
	}
	// A higher epoch is fine.
	f.step(Message{Type: MsgCampaign, From: "s1", Epoch: 2})
	if g := f.take(MsgGrant); len(g) != 1 || g[0].To != "s1" {
		t.Errorf("campaign of s1 for epoch 2: grants %v; want one to s1", g)
	}
	// A lower-priority candidate is refused while s1 is live and caught up.
	f.step(hb("s1", 2, true, 2))
	f.step(Message{Type: MsgCampaign, From: "s2", Epoch: 3, CaughtUp: 2})
	if g := f.take(MsgGrant); len(g) != 0 {
		t.Errorf("lower-priority s2 granted epoch 3 over live master s1: %v", g)
	}
}

// The epoch of a new term is durable before the server campaigns for it,
// let alone acts as master in it.
func TestPromotionPersistsFirst(t *testing.T) {
	m, err := New(DefaultConfig("s2", chain3), Persisted{Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	drive := func(persisted *uint64) {
		for m.HasReady() {
			rd := m.Ready()
			if again := m.Ready(); !cmp.Equal(rd, again) {
				t.Fatalf("Ready changed on a second call:\n%s", cmp.Diff(rd, again))
			}
			if rd.PersistEpoch != 0 {
				*persisted = rd.PersistEpoch
			}
			for _, msg := range rd.Messages {
				if msg.Type != MsgPreCampaign && msg.Epoch > *persisted {
					t.Fatalf("%v sent before epoch %d was persisted (durable %d)", msg, msg.Epoch, *persisted)
				}
			}
			if rd.State.Epoch > *persisted {
				t.Fatalf("State %+v before its epoch was persisted (durable %d)", rd.State, *persisted)
			}
			out = append(out, rd.Messages...)
			m.Advance(rd)
		}
	}
	durable := uint64(1)
	for range 10 {
		m.Step(hb("s1", 1, true, 1))
		m.Step(hb("s3", 1, false, 1))
		m.Tick()
		drive(&durable)
	}
	m.CaughtUp(1)
	// s1 goes silent; s3 keeps talking.
	for i := 0; m.Status().Role != Master; i++ {
		if i > 20 {
			t.Fatalf("s2 not master 20 ticks after s1 went silent: %+v", m.Status())
		}
		m.Tick()
		m.Step(hb("s3", 1, false, 1))
		drive(&durable)
		for _, msg := range out {
			switch msg.Type {
			case MsgPreCampaign:
				m.Step(Message{Type: MsgPreGrant, From: "s3", To: "s2", Epoch: msg.Epoch})
			case MsgCampaign:
				m.Step(Message{Type: MsgGrant, From: "s3", To: "s2", Epoch: msg.Epoch})
			}
		}
		out = nil
		drive(&durable)
	}
	if st := m.Status(); st.Epoch != 2 || durable != 2 {
		t.Errorf("master at epoch %d, durable %d; want 2 and 2", st.Epoch, durable)
	}
}

// Messages produced between Ready and Advance are kept for the next Ready.
func TestAdvanceKeepsNewMessages(t *testing.T) {
	m, err := New(DefaultConfig("s1", chain3), Persisted{})
	if err != nil {
		t.Fatal(err)
	}
	m.Tick() // first heartbeat
	rd := m.Ready()
	if len(rd.Messages) != 1 {
		t.Fatalf("Ready after the first tick: %v; want one heartbeat", rd.Messages)
	}
	m.Tick()
	m.Tick() // second heartbeat, before Advance
	m.Advance(rd)
	if rd2 := m.Ready(); len(rd2.Messages) != 1 || rd2.Messages[0].Type != MsgHeartbeat {
		t.Errorf("Ready after Advance: %v; want the second heartbeat", rd2.Messages)
	}
}

// Failover and handback times with the default settings, whatever the
// phase of the crash relative to the heartbeats.
func TestFailoverTime(t *testing.T) {
	cfg := DefaultConfig("s1", chain3)
	for phase := range 2 * cfg.HeartbeatTicks {
		c := newCluster(t, 3, nil)
		for range 20 + phase {
			c.tick()
		}
		c.crash("s1")
		failover := 0
		for ; len(c.writers()) == 0; failover++ {
			if failover > 100 {
				c.fatalf("no failover")
			}
			c.tick()
		}
		if limit := cfg.FailAfterTicks + cfg.HeartbeatTicks; failover > limit {
			t.Errorf("phase %d: failover took %d ticks; want at most %d", phase, failover, limit)
		}
		if d := time.Duration(failover) * DefaultTickInterval; d >= 3*time.Second {
			t.Errorf("phase %d: failover %v; want under 3s", phase, d)
		}
		for range 10 {
			c.tick()
		}
		c.restart("s1")
		handback := 0
		for ; c.state["s1"].Role != Master; handback++ {
			if handback > 100 {
				c.fatalf("no handback")
			}
			c.tick()
		}
		// With an instant pull, handback takes the restarted server's
		// listening period: FailAfter.
		if d := time.Duration(handback) * DefaultTickInterval; handback > cfg.FailAfterTicks+1 || d >= 5*time.Second {
			t.Errorf("phase %d: handback took %d ticks (%v); want at most %d", phase, handback, d, cfg.FailAfterTicks+1)
		}
	}
}
