// Command wfplab reproduces and benchmarks KB979223 (the WFP multi-NBL nonpaged pool leak)
// on Windows guests reached over WinRM, real or simulated.
package main
