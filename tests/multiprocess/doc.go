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
// The browser test opens the web consoles of a running domain in headless
// Chromium (chromedp): it logs in with each home's token, creates and
// shares a folder through an agent's forms, sees a file written on the
// other agent show on the open page without a reload (the event stream),
// reads the server's chain, users, devices and folders, checks that no
// page scrolls sideways at a phone's width, and takes screenshots (into
// $BATON_SCREENSHOTS when set: the README's). Without a Chromium on PATH
// it skips, unless BATON_REQUIRE_BROWSER is set (.ci/run sets it).
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
