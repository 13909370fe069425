// Package kernel is the simulated guest's kernel model: WFP indicating NBL chains to the
// test callout driver, the driver blocking and counting them, netio.sys leaking the last NBL
// of a blocked multi-NBL chain when unpatched (KB979223), and nonpaged pool with its tags,
// baseline, background noise and CPU time. Traffic reaches it through real loopback
// sockets (NetStack), and inside the appliance VM the forward path's Ethernet frames reach
// it through AF_PACKET sockets (StartFrameForwarder). It is a model: every number
// in params.go is a parameter, and where a default is a guess and not a measured Windows
// figure the table says so.
package kernel
