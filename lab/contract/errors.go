package contract

import "errors"

// ErrNoAnswer marks a guest operation that failed because the guest did not answer at all
// (connection refused, the connection dropped, no reply in time), as a guest does while it
// restarts. A caller that can wait for the guest may try the operation again; a failure the
// guest answered (a refused password, wusa's exit code) never carries it.
var ErrNoAnswer = errors.New("the guest does not answer")
