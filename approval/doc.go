// Package approval owns the decision on every named call: the policy engine (rules from the
// config with optional CEL conditions, and risk tiers), the held requests that wait for
// approvers, and the grants an approval creates. All shared state lives in a store.Store, so
// any replica can hold a call and any other can release it.
//
// The proxy uses it in this order for one call:
//
//	d := engine.Decide(in)                      // allow, hold or deny
//	if d.Effect == approval.Hold {
//		g, ok, err := workflow.UseGrant(ctx, in) // a live grant from an earlier approval?
//		if !ok {
//			r, err := workflow.Hold(ctx, in, d)   // pending request (deduplicated)
//			r, err = workflow.Wait(ctx, r.ID, wait)
//			if r.State == approval.StateApproved {
//				g, ok, err = workflow.UseGrant(ctx, in) // the held call spends one use
//			}
//		}
//	}
package approval
