// Package contract holds what every part of wfplab agrees on and nothing else: the OS
// catalog, a brought-up guest (Target: WinRM endpoint, credentials, traffic addresses),
// the Provider interface that brings guests up, the guest tools, and the agent's sample
// types. It imports nothing of wfplab's and no WinRM client, so scenarios, bench, plots
// and the simulated guest depend on it without dragging the lab's client in, as
// database/sql/driver is to database/sql.
package contract
