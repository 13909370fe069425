// Package traffic generates the traffic shapes that make Windows indicate NBL chains:
// TCP bursts into a stream-layer callout, fragmented datagrams forwarded through the guest,
// and small single-NBL datagrams as the control.
package traffic
