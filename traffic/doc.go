// Package traffic generates the traffic shapes that make Windows indicate NBL chains:
// TCP bursts into a stream-layer callout, fragmented datagrams forwarded through the guest,
// and small single-NBL datagrams as the control.
//
// Fragment-forward has two transports. Without frame links it sends UDP datagrams larger
// than the MTU to Target.Forward and lets the host's stack fragment them. With frame links
// (Target.ForwardIn/ForwardOut: a guest routing between two NICs whose backends are UDP
// sockets on loopback, as QEMU's dgram netdev), it builds the Ethernet frames of each IPv4
// fragment group itself (github.com/google/gopacket's layers), writes them into the in
// link, plays the neighbours on both links (ARP), and counts what the guest forwards out of
// the out link (Counters.Forwarded*): a blocked forward path shows as zero forwarded.
package traffic
