package peer_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// node a test starts must have stopped, with everything its Run started.
//
// Ignored: go-flow-metrics' package-global sweeper, which libp2p's
// bandwidth counter (Config.Bandwidth, used by the benchmarks) starts on
// first use and which by design lives for the rest of the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"))
}
