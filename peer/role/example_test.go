package role_test

import (
	"fmt"

	"github.com/baton-sync/baton/peer/role"
)

// Two servers in one process, each with the driver loop of the package
// documentation run in lockstep: the chain's head becomes master once the
// startup grace is over, the other follows it after pulling its data.
func Example() {
	chain := []string{"s1", "s2"}
	nodes := map[string]*role.Machine{}
	durable := map[string]uint64{} // stands in for a file that is fsynced
	for _, id := range chain {
		m, err := role.New(role.DefaultConfig(id, chain), role.Persisted{Epoch: durable[id]})
		if err != nil {
			panic(err)
		}
		nodes[id] = m
	}
	for range 20 { // 2 s at role.DefaultTickInterval
		for _, id := range chain {
			nodes[id].Tick()
		}
		for _, id := range chain {
			m := nodes[id]
			if !m.HasReady() {
				continue
			}
			rd := m.Ready()
			if rd.PersistEpoch != 0 {
				durable[id] = rd.PersistEpoch // 1. persist
			}
			for _, msg := range rd.Messages { // 2. send
				for _, to := range chain {
					if to != id && (msg.To == "" || msg.To == to) {
						_ = nodes[to].Step(msg)
					}
				}
			}
			if st := rd.State; rd.StateChanged { // 3. act
				fmt.Printf("%s: %s, master %s at epoch %d, accepts writes: %t, catch up from: %q\n",
					id, st.Role, st.Master, st.Epoch, st.AcceptWrites(), st.CatchUpFrom)
				if st.CatchUpFrom != "" {
					m.CaughtUp(st.CatchUpEpoch) // once the pull from st.CatchUpFrom is done
				}
			}
			m.Advance(rd)
		}
	}
	fmt.Println("durable epochs:", durable)
	// Output:
	// s1: master, master s1 at epoch 1, accepts writes: true, catch up from: ""
	// s2: slave, master s1 at epoch 1, accepts writes: false, catch up from: "s1"
	// s2: slave, master s1 at epoch 1, accepts writes: false, catch up from: ""
	// durable epochs: map[s1:1 s2:1]
}
