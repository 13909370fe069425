// Package lab is everything about a Windows guest seen from the host: the WinRM session
// (masterzen/winrm), file upload, guest operations, reboot handling, the netio.sys
// verdict and the providers that need no simulator. Real and simulated guests go
// through the same code: a provider hands back a contract.Target and nothing here asks
// which kind it is.
package lab
