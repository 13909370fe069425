// Package agentfmt reads the lines wfplab-agent.exe prints (H1 header, S1 sample, V1
// inventory, C1 counters, E1 error), as guest/agent/FORMAT.md defines them, into the
// sample types of lab/contract. The real agent (guest/agent), the simulated agent
// (lab/sim) and this parser all follow that file, and a test holds each of them to it.
package agentfmt
