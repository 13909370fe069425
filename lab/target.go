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
