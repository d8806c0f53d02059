package peer

import (
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/collections/collectionstest"
	"github.com/baton-sync/baton/identity"
)

// A heartbeat is accepted when signed by the server of the chain it says
// it is from; this server's own, as pubsub validates it while publishing,
// is accepted without opening it again, but not the same claim relayed by
// another host.
func TestValidateHeartbeat(t *testing.T) {
	s1, s2, out := collectionstest.Key("s1"), collectionstest.Key("s2"), collectionstest.Key("outsider")
	e := &edge{self: s1.ID(), sh: &shared{}}
	e.sh.setServers([]lpeer.ID{s1.ID(), s2.ID()})
	msg := func(from lpeer.ID, data []byte) *pubsub.Message {
		return &pubsub.Message{Message: &pb.Message{From: []byte(from), Data: data}, ReceivedFrom: from}
	}
	beat := func(t *testing.T, by *identity.PrivateKey, hb heartbeat) []byte {
		t.Helper()
		b, err := encodeHeartbeat(by, hb)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := beat(t, s2, heartbeat{From: s2.ID().String(), Epoch: 3, Master: true})
	forged := beat(t, out, heartbeat{From: s2.ID().String(), Epoch: 9, Master: true})
	for _, tc := range []struct {
		name string
		src  lpeer.ID // the host it came from
		m    *pubsub.Message
		want pubsub.ValidationResult
	}{
		{"s2's heartbeat", s2.ID(), msg(s2.ID(), good), pubsub.ValidationAccept},
		{"s2's heartbeat signed by another key", s2.ID(), msg(s2.ID(), forged), pubsub.ValidationReject},
		{"garbage from s2", s2.ID(), msg(s2.ID(), []byte("not a heartbeat")), pubsub.ValidationReject},
		{"a heartbeat from a host outside the chain", out.ID(), msg(out.ID(), good), pubsub.ValidationIgnore},
		{"this server's own, as it publishes", s1.ID(), msg(s1.ID(), []byte("sealed here")), pubsub.ValidationAccept},
		{"this server's own claimed, relayed by s2", s2.ID(), msg(s1.ID(), []byte("not a heartbeat")), pubsub.ValidationReject},
	} {
		if got := e.validateHeartbeat(t.Context(), tc.src, tc.m); got != tc.want {
			t.Errorf("%s: %v; want %v", tc.name, got, tc.want)
		}
	}
}
