package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/collections"
	"github.com/baton-sync/baton/internal/sandbox"
)

func newDemoCmd(env *cliEnv) *cobra.Command {
	var keep, verbose bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole domain on this machine and narrate what it does",
		Long: `demo starts, on 127.0.0.1 and in a temporary directory, a domain of three
servers and two desktop agents (alice's and bob's laptops). alice shares a
folder with bob; files written on one side arrive on the other; the master
server is stopped and the domain carries on; it comes back and takes its role
back. Then everything is stopped and removed (also on Ctrl-C). With --keep
the domain runs on, each host serving its web console (the demo prints the
URLs and how to log in), until Ctrl-C; the directory stays.

Nothing outside the temporary directory is touched, and no home is needed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var log *slog.Logger
			if verbose {
				log = slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			}
			return runDemo(cmd.Context(), env.stdout, sandbox.Options{
				Servers: 3, Domain: "demo", Log: log, Keep: keep, Dir: env.getenv("TMPDIR"),
			})
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "after the story, keep the domain running with every host's web console until Ctrl-C, then keep the temporary directory (the servers' data and the synced folders) and print where it is")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "write the nodes' logs to stderr")
	return cmd
}

// demo is one run of 'baton demo': where it narrates, and the domain.
type demo struct {
	w     io.Writer
	sb    *sandbox.Sandbox
	start time.Time

	// What the story has made so far.
	master     int    // the first master (s1)
	stand      int    // the master while s1 is down
	epoch      uint64 // the master's epoch, last seen
	alice, bob *sandbox.Agent
	folder     string // the shared folder's ID
	aliceDir   string
	bobDir     string
	direct     bool // bob's change reached alice's laptop while s1 was down
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.w, format+"\n", args...) }

// step starts a numbered part of the story.
func (d *demo) step(n int, title string) { d.say("\n%d. %s", n, title) }

// runDemo tells the story; every node is stopped and the directory removed
// (unless o.Keep) before it returns, whatever happened.
func runDemo(ctx context.Context, w io.Writer, o sandbox.Options) (err error) {
	d := &demo{w: w, start: time.Now()}
	d.say("baton demo: a domain of three servers and two desktop agents, all on 127.0.0.1. Ctrl-C stops it and cleans up.")
	d.step(1, "Starting three servers, chain s1 -> s2 -> s3 (the first live one is master)")
	t := time.Now()
	sb, err := sandbox.New(ctx, o)
	if err != nil {
		return fmt.Errorf("starting the domain: %w", err)
	}
	d.sb = sb
	defer sb.Close() // a no-op after cleanUp; stops the nodes if run panics
	err = d.run(ctx, t)
	if err == nil && o.Keep {
		err = d.keepRunning(ctx, o.Log)
	}
	if cerr := d.cleanUp(o.Keep); cerr != nil && err == nil {
		err = cerr
	}
	if err == nil {
		d.say("\nDone in %v: every step worked.", since(d.start))
		if !o.Keep {
			d.say("'baton demo --keep' keeps the domain running after the story, each host with its web console to open.")
		}
	}
	return err
}

func (d *demo) cleanUp(keep bool) error {
	d.say("\nCleaning up")
	n := len(d.sb.Agents())
	err := d.sb.Close()
	if keep {
		d.say("   stopped %d agents and %d servers; kept %s:", n, len(d.sb.Servers()), d.sb.Root())
		d.say("     s1/ s2/ s3/                       the servers' data (collections, outbox, hosted folders)")
		d.say("     <agent>/data  <agent>/folders/    each laptop's data and synced folders")
		if _, err := os.Stat(filepath.Join(d.sb.Root(), consolesDir)); err == nil {
			d.say("     consoles/<host>/                  each host's console token (the consoles stopped with the domain)")
		}
	} else {
		d.say("   stopped %d agents and %d servers, removed %s", n, len(d.sb.Servers()), d.sb.Root())
	}
	if err != nil {
		return fmt.Errorf("cleaning up: %w", err)
	}
	return nil
}

// since is the time since t, rounded for people.
func since(t time.Time) time.Duration {
	d := time.Since(t)
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}

func (d *demo) run(ctx context.Context, started time.Time) error {
	for _, step := range []func(context.Context) error{
		func(ctx context.Context) error { return d.showServers(ctx, started) },
		d.addUsers,
		d.logIn,
		d.shareFolder,
		d.exchangeFiles,
		d.stopMaster,
		d.restartMaster,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// showServers ends step 1: the servers and the master they chose.
func (d *demo) showServers(ctx context.Context, started time.Time) error {
	sb := d.sb
	for _, s := range sb.Servers() {
		d.say("   %s  %s", s.Name, s.ID())
		d.say("       private %s (servers)   public %s (agents)", s.PrivateAddr, s.PublicAddr)
	}
	m, e1, err := sb.Master(ctx)
	if err != nil {
		return err
	}
	d.master, d.epoch = m, e1
	d.say("   %s is master at epoch %d; s2 and s3 are its slaves (%v)", sb.Server(m).Name, e1, since(started))
	return nil
}

// addUsers is step 2: alice and bob, at two home servers.
func (d *demo) addUsers(ctx context.Context) error {
	sb := d.sb
	d.step(2, "Users: alice (home server s1) and bob (home server s2)")
	for _, u := range []struct {
		name string
		home int
	}{{"alice", 0}, {"bob", 1}} {
		t := time.Now()
		r, err := sb.AddUser(ctx, u.name, u.home, demoPassword(u.name))
		if err != nil {
			return err
		}
		home := sb.Server(u.home).Name
		d.say("   %s added at the master %s (committed at term %d, index %d); password %q set at %s, which alone keeps its hash (%v)",
			u.name, sb.Server(d.master).Name, r.Certified.Epoch(), r.Certified.MasterSeq(), demoPassword(u.name), home, since(t))
	}
	return nil
}

// logIn is step 3: each user's laptop logs in.
func (d *demo) logIn(ctx context.Context) error {
	d.step(3, "Two desktop agents log in: alice's laptop and bob's laptop")
	var agents []*sandbox.Agent
	for _, u := range []string{"alice", "bob"} {
		t := time.Now()
		a, err := d.sb.AddAgent(ctx, u+"-laptop", u, demoPassword(u))
		if err != nil {
			return err
		}
		how := "at " + a.HomeServer
		if a.LoginServer != a.HomeServer {
			how = fmt.Sprintf("at %s, which sent it on to %s's home server %s", a.LoginServer, u, a.HomeServer)
		}
		d.say("   %s (device %s) logged in as %s %s: certificate signed by %s (%v)", a.Name, a.ID(), u, how, a.HomeServer, since(t))
		agents = append(agents, a)
	}
	d.alice, d.bob = agents[0], agents[1]
	return nil
}

// shareFolder is step 4: alice creates a folder and bob accepts her share.
func (d *demo) shareFolder(ctx context.Context) error {
	alice, bob := d.alice, d.bob
	d.step(4, `alice creates the folder "Projects" and shares it read-write with bob`)
	t := time.Now()
	id, aliceDir, err := alice.CreateFolder(ctx, "Projects")
	if err != nil {
		return err
	}
	d.folder, d.aliceDir = id, aliceDir
	d.say("   created Projects (id %s), hosted on %s, alice's home server (%v)", id, alice.HomeServer, since(t))
	d.say("   alice's copy: %s", aliceDir)
	t = time.Now()
	if err := alice.Share(ctx, id, "bob", collections.RightReadWrite); err != nil {
		return err
	}
	d.say("   shared with bob, read-write (%v)", since(t))
	t = time.Now()
	if d.bobDir, err = bob.Accept(ctx, id); err != nil {
		return err
	}
	if err := bob.WaitInSync(ctx, id); err != nil {
		return err
	}
	d.say("   bob accepted it; bob's copy: %s (in sync after %v)", d.bobDir, since(t))
	return nil
}

// exchangeFiles is steps 5 and 6: files written on one laptop arrive on
// the other, both ways.
func (d *demo) exchangeFiles(ctx context.Context) error {
	alice, bob, aliceDir, bobDir := d.alice, d.bob, d.aliceDir, d.bobDir
	d.step(5, "alice writes files; they arrive on bob's laptop")
	readme := []byte("Projects shared by alice with bob.\n")
	if err := d.write(ctx, alice, aliceDir, bob, bobDir, map[string][]byte{"README.txt": readme}); err != nil {
		return err
	}
	if err := d.write(ctx, alice, aliceDir, bob, bobDir, map[string][]byte{
		"plans/2026.txt":   []byte("Q1: ship the demo\nQ2: ship the rest\n"),
		"plans/budget.csv": []byte("item,amount\nlaptops,2\nservers,3\n"),
	}); err != nil {
		return err
	}

	d.step(6, "bob edits README.txt; the edit arrives on alice's laptop")
	edited := append(append([]byte(nil), readme...), "bob was here.\n"...)
	if err := d.write(ctx, bob, bobDir, alice, aliceDir, map[string][]byte{"README.txt": edited}); err != nil {
		return err
	}
	return d.waitInSync(ctx)
}

// waitInSync waits until both laptops are in sync with the folder.
func (d *demo) waitInSync(ctx context.Context) error {
	for _, a := range []*sandbox.Agent{d.alice, d.bob} {
		if err := a.WaitInSync(ctx, d.folder); err != nil {
			return err
		}
	}
	return nil
}

// stopMaster is step 7: the master stops, the next server takes over and
// the domain carries on; bob's change to s1's folder waits on his laptop.
func (d *demo) stopMaster(ctx context.Context) error {
	sb, m := d.sb, d.master
	d.step(7, "Stopping the master s1, as a crash would: no hand-over, its data stays on disk")
	t := time.Now()
	if err := sb.StopServer(m); err != nil {
		return err
	}
	m2, e2, err := sb.Master(ctx)
	if err != nil {
		return err
	}
	if e2 <= d.epoch {
		return fmt.Errorf("%s took over at epoch %d, not above %d", sb.Server(m2).Name, e2, d.epoch)
	}
	d.stand, d.epoch = m2, e2
	var others []string
	for _, i := range sb.Running() {
		if i != m2 {
			others = append(others, sb.Server(i).Name)
		}
	}
	how := "next in the chain"
	if m2 != m+1 {
		how = "the first in the chain known to hold all the data"
	}
	d.say("   %s, %s, is master at epoch %d (the baton passed in %v); %s follows it",
		sb.Server(m2).Name, how, e2, since(t), strings.Join(others, " and "))
	tu := time.Now()
	r, err := sb.AddUser(ctx, "carol", 2, demoPassword("carol"))
	if err != nil {
		return err
	}
	d.say("   the domain carries on: carol (home server s3) added at the new master %s (committed at term %d, %v)",
		sb.Server(m2).Name, r.Certified.Epoch(), since(tu))
	tw := time.Now()
	if err := os.WriteFile(filepath.Join(d.bobDir, "todo.txt"), demoTodo, 0o644); err != nil {
		return err
	}
	// Projects' replica (s2, the next server of the chain after s1) and,
	// when the laptops found each other on the local network (mDNS), the
	// laptops themselves carry the change while s1 is down.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	d.direct = sandbox.WaitFile(wctx, filepath.Join(d.aliceDir, "todo.txt"), demoTodo) == nil
	cancel()
	if d.direct {
		var via []string
		if st, err := d.alice.FolderStatus(ctx, d.folder); err == nil {
			for _, i := range sb.Running() {
				if slices.Contains(st.Servers, sb.Server(i).Key.ID().String()) {
					via = append(via, sb.Server(i).Name)
				}
			}
		}
		how := "directly between the laptops, which found each other on the local network"
		if len(via) > 0 {
			how = "through " + strings.Join(via, " and ") + ", Projects' replica, with no action from anyone"
		}
		d.say("   bob writes todo.txt: Projects' home server s1 is down, and the change reaches alice's laptop in %v, %s", since(tw), how)
	} else {
		d.say("   bob writes todo.txt: Projects is hosted on s1, and the laptops have not found each other on the local network, so bob's laptop keeps the change until s1 is back")
	}
	return nil
}

// demoTodo is what bob writes while s1 is down.
var demoTodo = []byte("written by bob while s1 was down\n")

// restartMaster is step 8: s1 comes back, catches up, takes its role back
// and passes on bob's change.
func (d *demo) restartMaster(ctx context.Context) error {
	sb, m, m2 := d.sb, d.master, d.stand
	d.step(8, "Restarting s1 with the same data")
	t := time.Now()
	if err := sb.StartServer(ctx, m); err != nil {
		return err
	}
	e3, err := sb.WaitMaster(ctx, m)
	if err != nil {
		return err
	}
	if e3 <= d.epoch {
		return fmt.Errorf("s1 took the role back at epoch %d, not above %d", e3, d.epoch)
	}
	st, err := sb.ServerState(ctx, m)
	if err != nil {
		return err
	}
	if _, ok := st.User("carol"); !ok {
		return errors.New("s1 took the master role back without carol, added while it was down")
	}
	d.say("   s1 caught up from %s (it has carol) and is master again at epoch %d (%v); %s is a slave again",
		sb.Server(m2).Name, e3, since(t), sb.Server(m2).Name)
	if err := sandbox.WaitFile(ctx, filepath.Join(d.aliceDir, "todo.txt"), demoTodo); err != nil {
		return err
	}
	if d.direct {
		d.say("   bob's todo.txt arrived on alice's laptop while s1 was down; s1 takes it from its replica and the laptops now that it is back")
	} else {
		d.say("   bob's todo.txt arrived on alice's laptop %v after s1 restarted", since(t))
	}
	if err := sb.WaitConverged(ctx); err != nil {
		return err
	}
	if err := d.waitInSync(ctx); err != nil {
		return err
	}
	d.say("   s1, s2 and s3 hold the same users (alice, bob, carol) and folders; both laptops are in sync")
	return nil
}

// write writes files (relative path -> content) into the folder at
// fromDir on agent from, and waits until every one arrived in toDir on
// agent to, saying how long that took.
func (d *demo) write(ctx context.Context, from *sandbox.Agent, fromDir string, to *sandbox.Agent, toDir string, files map[string][]byte) error {
	var names []string
	t := time.Now()
	for _, rel := range sortedKeys(files) {
		p := filepath.Join(fromDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[rel], 0o644); err != nil {
			return err
		}
		names = append(names, fmt.Sprintf("%s (%d bytes)", rel, len(files[rel])))
	}
	for _, rel := range sortedKeys(files) {
		if err := sandbox.WaitFile(ctx, filepath.Join(toDir, filepath.FromSlash(rel)), files[rel]); err != nil {
			return err
		}
	}
	d.say("   %s wrote %s: on %s %v later", from.User, strings.Join(names, ", "), to.Name, since(t))
	return nil
}

func sortedKeys(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }

// demoPassword is the password the demo gives user. The demo's domain
// lives for a minute on 127.0.0.1; real passwords come from 'baton user
// passwd'.
func demoPassword(user string) string { return user + "-demo-password" }
