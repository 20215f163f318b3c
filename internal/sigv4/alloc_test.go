// The race detector makes sync.Pool drop items at random, so allocation counts mean nothing
// under it.
//go:build !race

package sigv4

import "testing"

// TestSignAllocations holds the signer to its budget for an ordinary call: the strings and
// slices it leaves on the request, and one for an escaped path. Allocation counts are
// deterministic; this asserts no timing.
func TestSignAllocations(t *testing.T) {
	const budget = 8
	var s Signer
	creds := testCreds
	creds.SessionToken = "session-token"
	for _, c := range []signCase{signCases()[7], signCases()[11], signCases()[3]} {
		r := c.request(t)
		s.Sign(r, creds, c.service, "us-east-1", c.payload, signTime) // warm the key cache and the pool
		n := testing.AllocsPerRun(200, func() {
			delete(r.Header, "Authorization")
			delete(r.Header, "X-Amz-Date")
			delete(r.Header, "X-Amz-Security-Token")
			s.Sign(r, creds, c.service, "us-east-1", c.payload, signTime)
		})
		t.Logf("%s: %.0f allocations", c.name, n)
		if n > budget {
			t.Errorf("%s: %.0f allocations per signature, budget %d", c.name, n, budget)
		}
	}
}
