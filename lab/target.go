// Package lab is everything about a Windows guest seen from the host: the WinRM session
// (masterzen/winrm), file upload, guest operations, reboot handling, the netio.sys
// verdict and the providers that need no simulator. Real and simulated guests go
// through the same code: a provider hands back a contract.Target and nothing here asks
// which kind it is.
package lab

// Tools are the guest binaries for one architecture.
type Tools struct {
	Agent  []byte // wfplab-agent.exe
	Driver []byte // wfplabcallout.sys
	Cert   []byte // DER .cer of the test-signing certificate; optional
}

// Guest paths and names the lab uses inside Windows.
const (
	GuestDir        = `C:\wfplab`
	AgentPath       = GuestDir + `\wfplab-agent.exe`
	DriverPath      = GuestDir + `\wfplabcallout.sys`
	CertPath        = GuestDir + `\wfplab-test.cer`
	DriverService   = "wfplabcallout"
	DriverParamsKey = `HKLM\SYSTEM\CurrentControlSet\Services\wfplabcallout\Parameters`
)
