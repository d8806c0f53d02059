// Command failover runs a three-server baton domain in one program and
// passes the master role around it: s1, s2 and s3 start on 127.0.0.1 with
// OS-chosen ports, s1 becomes master and a user is added there; s1 is then
// stopped, s2 is promoted with a new epoch and accepts another user; s1 is
// started again from its data directory, catches up from s2 and takes the
// role back with a higher epoch. At the end every server lists the same
// users and the same collection digests.
//
// Run it with:
//
//	go run ./examples/failover
//
// The keys are generated fresh on each run and the data directories are
// temporary and removed at the end. Timings depend on the machine; with the
// default failover settings (a heartbeat every 250 ms, a master declared
// failed after 1.5 s) the baton usually passes in 1.5 to 3 seconds and comes
// back about 1.5 seconds after the old master restarts.
package main
