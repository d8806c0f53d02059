// Package sandbox runs a whole baton domain in one process, on 127.0.0.1,
// in temporary directories: a chain of servers (each with a private address
// the servers use between them and a public one agents dial), the users of
// the domain, and desktop agents that logged in as those users and sync
// folders. It is what 'baton demo' shows, what the benchmark measures, and
// what the tests' peertest wraps: the one place that builds a domain,
// starts and stops its nodes (Proc) and waits for them (Wait, Settled,
// Converged).
//
// Every port is chosen by the OS and every wait polls the nodes' status
// with a deadline. Indexes of hosts count from 0: server i is named
// s(i+1), and s1 is the first of the chain; genesis agents (for tests)
// follow the servers.
//
// # Usage
//
//	sb, err := sandbox.New(ctx, sandbox.Options{Servers: 3})
//	if err != nil { ... }
//	defer sb.Close()                                   // stops everything, removes the directories
//	sb.AddUser(ctx, "alice", 0, "alice's password")    // at the master; password at s1
//	sb.AddUser(ctx, "bob", 1, "bob's password")        // home server s2
//	alice, _ := sb.AddAgent(ctx, "alice-laptop", "alice", "alice's password")
//	bob, _ := sb.AddAgent(ctx, "bob-laptop", "bob", "bob's password")
//	id, dir, _ := alice.CreateFolder(ctx, "Projects")
//	alice.Share(ctx, id, "bob", collections.RightReadWrite)
//	bobDir, _ := bob.Accept(ctx, id)
//	os.WriteFile(filepath.Join(dir, "a.txt"), data, 0o644)
//	sandbox.WaitFile(ctx, filepath.Join(bobDir, "a.txt"), data)
//
// Make builds the same domain without starting it, for callers that start
// and stop hosts themselves. Close may be called at any point, more than
// once, also after New or AddAgent failed half way.
package sandbox
