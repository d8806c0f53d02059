// Command failover runs a three-server baton domain in one program and
// passes the master role around it: s1, s2 and s3 start on 127.0.0.1 with
// OS-chosen ports, s1 becomes master and a user is added there; s1 is then
// stopped, s2 is elected (raft's term is the epoch) and accepts another
// user; s1 is started again from its data directory, catches up through the
// consensus log and is handed the role back with a higher epoch. At the end
// every server lists the same users and the same collection digests.
//
// Run it with:
//
//	go run ./examples/failover
//
// It uses only the public packages identity, collections and peer, so it
// can be copied to run baton nodes inside another program: making a
// genesis, starting and stopping nodes, and waiting on their status are
// all in this file. (The project's tests, 'baton demo' and the
// benchmark use internal/sandbox for the same, with more to it: public and
// private addresses, users, logged-in agents, folders.)
//
// The keys are generated fresh on each run and the data directories are
// temporary and removed at the end. Timings depend on the machine; with the
// default failover settings (an election after 0.75 to 1.5 s without the
// master) the baton usually passes within two seconds and comes back within
// a second of the old master having caught up.
package main
