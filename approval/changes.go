package approval

import "context"

// Changes returns a channel that receives a wake-up whenever request id may have changed
// (an approval added, approved, denied, expired; or the store subscription was re-established
// and messages may have been lost), on any replica, and a function that stops the wake-ups.
// Several changes may coalesce into one wake-up: readers re-read the request with Get. Unlike
// Wait it also reports changes that leave the request pending, which live pages show.
func (w *Workflow) Changes(ctx context.Context, id string) (<-chan struct{}, func(), error) {
	return w.addWaiter(ctx, id)
}
