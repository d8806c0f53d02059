// Package multiprocess holds tests that build the baton command once and
// run real daemons ('baton run') on loopback addresses (127.0.0.1, and
// 127.0.0.2 to .4 where the network between servers is cut), each with its
// own temporary home and a free port, driving them only through the CLI:
// init, keys export, domain create/export/join, status --json and the user,
// server, folder and report commands. They kill -9 and restart daemons for
// the failover scenarios of the design (an agent, a slave, the master fails;
// the old master returns), freeze the master (SIGSTOP, with requests sent
// during the freeze) and cut it off with iptables (as root: the test fails
// if it cannot), add and remove servers of the chain, run a witness, tamper
// with data files, and let hosts outside the domain try to connect. The folder-sync tests log two agents in and sync a shared
// folder between them: both ways, deletes, renames, a conflict, read-only
// members and revert, a large file and 10,000 small files, and a git
// repository checked out at many commits in a row on one device while the
// other edits files of its own (one run per seed of -churn.seeds): every
// copy must end identical, pass 'git fsck', and hold no temporary file.
//
// Every scenario ends with the same checks: every update a command
// acknowledged ("ok: ...") is listed on every live server, all live servers
// have equal collection digests, and no host ever reported a master epoch
// (in 'status', or in the "committed at term T" of a change) lower than
// one it reported before. The fault tests also check the history of user
// adds per name for linearizability (porcupine).
//
// The package has no non-test code. The tests take about three minutes on a
// two-core machine; 'go test -short' skips them.
package multiprocess
