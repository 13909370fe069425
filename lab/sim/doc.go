// Package sim is the simulated Windows guest: a WinRM server on loopback (package wsman)
// whose commands a cmd.exe model (package cmdexe) runs against a simulated machine: disk,
// registry, services, boot configuration, installed updates, reboots, and a kernel model
// (package kernel) that follows KB979223. It answers the command lines of COMMANDS.md as
// Windows does, and says it is a model wherever it cannot be Windows.
package sim
