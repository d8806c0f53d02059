package chain

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// TestNextStep: the configuration moves toward the chain's one change at a
// time, and a new voter first joins as a learner and votes only once it
// holds the log.
func TestNextStep(t *testing.T) {
	type step struct {
		typ raftpb.ConfChangeType
		id  uint64
	}
	cs := func(voters, learners []uint64) *raftpb.ConfState {
		return &raftpb.ConfState{Voters: voters, Learners: learners}
	}
	for _, tc := range []struct {
		name       string
		have, want *raftpb.ConfState
		caughtUp   bool
		want1      *step
	}{
		{"same", cs([]uint64{1, 2, 3}, nil), cs([]uint64{1, 2, 3}, nil), true, nil},
		{"new voter joins as a learner", cs([]uint64{1, 2, 3}, nil), cs([]uint64{1, 2, 3, 4}, nil), true, &step{raftpb.ConfChangeAddLearnerNode, 4}},
		{"a learner behind is not promoted", cs([]uint64{1, 2, 3}, []uint64{4}), cs([]uint64{1, 2, 3, 4}, nil), false, nil},
		{"a learner caught up is promoted", cs([]uint64{1, 2, 3}, []uint64{4}), cs([]uint64{1, 2, 3, 4}, nil), true, &step{raftpb.ConfChangeAddNode, 4}},
		{"a removed voter goes", cs([]uint64{1, 2, 3}, nil), cs([]uint64{1, 2}, nil), true, &step{raftpb.ConfChangeRemoveNode, 3}},
		{"a voter past the fifth becomes a learner", cs([]uint64{1, 2, 3, 4, 5, 6}, nil), cs([]uint64{1, 2, 3, 4, 5}, []uint64{6}), true, &step{raftpb.ConfChangeAddLearnerNode, 6}},
		{"self is never removed", cs([]uint64{1, 2, 3}, nil), cs([]uint64{2, 3}, nil), true, nil},
		{"a removed learner goes", cs([]uint64{1, 2, 3}, []uint64{7}), cs([]uint64{1, 2, 3}, nil), true, &step{raftpb.ConfChangeRemoveNode, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, ok := nextStep(tc.have, tc.want, 1, func(uint64) bool { return tc.caughtUp })
			if tc.want1 == nil {
				if ok {
					t.Fatalf("nextStep = %v; want no change", cc)
				}
				return
			}
			if !ok || len(cc.GetChanges()) != 1 {
				t.Fatalf("nextStep = %v, %v; want one change %v", cc, ok, *tc.want1)
			}
			got := step{cc.GetChanges()[0].GetType(), cc.GetChanges()[0].GetNodeId()}
			if got != *tc.want1 {
				t.Errorf("nextStep = %v; want %v", got, *tc.want1)
			}
		})
	}
}
