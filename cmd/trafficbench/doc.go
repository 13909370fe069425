// Command trafficbench measures the traffic generator on loopback, against iperf3 where it is
// installed: the maximum 64-byte datagram rate of one sending goroutine, pacing accuracy,
// CPU at 50k datagrams/s, and how much of 200k datagrams/s the simulated guest classifies.
// run.sh beside it installs iperf3 and runs it.
//
//	go run ./cmd/trafficbench [-quick]
package main
