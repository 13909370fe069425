package lab

// Every command line the lab sends to a guest, in one place. Numbers refer to the table
// in lab/COMMANDS.md (the contract with lab/sim). Each line is sent whole as the rsp:Command
// text of a cmd shell, so cmd.exe semantics apply; none of them is ever built from a secret.
const (
	// #1 OS version: "Microsoft Windows [Version 6.1.7600]".
	cmdVer = `ver`
	// #2 OS architecture: AMD64 or x86. (A constant, not a format: it holds % signs.)
	cmdArch = `echo %PROCESSOR_ARCHITECTURE%`
	// #3 boot time: "LastBootUpTime=20261128063012.500000+000".
	cmdBootTime = `wmic os get LastBootUpTime /value`
	// #4 make a folder (the upload's parent folder; GuestDir in practice): dir, dir.
	fmtMkdir = `if not exist %s mkdir %s`
	// #5 clear a stale upload: b64 path, b64 path.
	fmtClearStale = `if exist %s del /f /q %s`
	// #6 append one base64 chunk: chunk, b64 path. cmd writes "CHUNK \r\n".
	fmtAppendChunk = `echo %s >> %s`
	// #7 decode: b64 path, target path.
	fmtDecode = `certutil -f -decode %s %s`
	// #8 remove the .b64: b64 path.
	fmtDelete = `del /f /q %s`
	// #9 check an upload: path. Answers the SHA-1.
	fmtHashFile = `certutil -hashfile %s`
	// #10 test signing, in force from the next boot.
	cmdTestSigningOn = `bcdedit /set testsigning on`
	// #11 trust the test certificate: store (Root, TrustedPublisher), cert path.
	fmtAddStore = `certutil -addstore %s %s`
	// #12 reboot now.
	cmdReboot = `shutdown /r /f /t 0`
	// #13 inventory: one V1 line.
	cmdInventory = AgentPath + ` versions`
	// #14 create the driver service.
	cmdCreateService = `sc create ` + DriverService + ` type= kernel start= demand binPath= ` + DriverPath
	// #15 driver parameters: value name, number / value name, text.
	fmtRegDword = `reg add ` + DriverParamsKey + ` /v %s /t REG_DWORD /d %d /f`
	fmtRegSz    = `reg add ` + DriverParamsKey + ` /v %s /t REG_SZ /d %s /f`
	// #16 start the driver.
	cmdStartDriver = `sc start ` + DriverService
	// #17 driver state.
	cmdQueryDriver = `sc query ` + DriverService
	// #18 stop the driver.
	cmdStopDriver = `sc stop ` + DriverService
	// #19 remove the driver.
	cmdDeleteDriver = `sc delete ` + DriverService
	// #20 install the hotfix: msu path.
	fmtWusa = `wusa %s /quiet /norestart`
	// #21 sample stream: interval in milliseconds.
	fmtSample = AgentPath + ` sample --interval-ms %d`
	// #22 driver counters, and counters-then-reset.
	cmdCounters      = AgentPath + ` counters`
	cmdCountersReset = AgentPath + ` reset`
	// #28 the driver's mode: block or permit (permit-and-count, for throughput).
	fmtDriverMode = AgentPath + ` mode %s`
	// #24 network adapters: one CSV line per adapter, "Connection Name","Network Adapter",
	// "Physical Address","Transport Name".
	cmdGetmac = `getmac /fo csv /nh /v`
	// #25 a routed link's static address: connection name, address, mask. Positional
	// "static ADDR MASK" is the form Vista's netsh takes as well as 7's.
	fmtNetshAddress = `netsh interface ipv4 set address name="%s" static %s %s`
	// #26 forwarding on a link: connection name.
	fmtNetshForwarding = `netsh interface ipv4 set interface "%s" forwarding=enabled`
	// #33 fragment grouping on the forward path: without it WFP indicates each forwarded
	// fragment alone and never a fragment group, the multi-NBL chain fragment-forward needs.
	cmdGroupFragments = `netsh interface ipv4 set global groupforwardedfragments=enabled`
	// #27 IP routing for every interface, from the next boot.
	cmdIPEnableRouter = `reg add HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters /v IPEnableRouter /t REG_DWORD /d 1 /f`
)

// Registry value names under DriverParamsKey (#15).
const (
	regStreamPort    = "StreamPort"
	regControlPort   = "ControlPort"
	regForwardPrefix = "ForwardPrefix"
)

// Certificate stores the test certificate goes into (#11).
var certStores = []string{"Root", "TrustedPublisher"}

// Exit codes the lab tells apart (COMMANDS.md, docs/windows.md).
const (
	exitServiceExists      = 1073        // sc create: ERROR_SERVICE_EXISTS
	exitServiceRunning     = 1056        // sc start: ERROR_SERVICE_ALREADY_RUNNING
	exitServiceNotStarted  = 1062        // sc stop: ERROR_SERVICE_NOT_ACTIVE
	exitNoService          = 1060        // ERROR_SERVICE_DOES_NOT_EXIST
	exitInvalidImageHash   = 577         // sc start: signature not accepted
	exitBadExeFormat       = 193         // sc start: machine type is not the OS's
	exitShutdownInProgress = 1115        // shutdown: ERROR_SHUTDOWN_IN_PROGRESS
	exitShutdownScheduled  = 1190        // shutdown: ERROR_SHUTDOWN_IS_SCHEDULED
	exitWusaRebootNeeded   = 3010        // ERROR_SUCCESS_REBOOT_REQUIRED
	exitWusaAlready        = 2359302     // 0x240006 WU_S_ALREADY_INSTALLED
	exitWusaNotApplicable  = -2145124329 // 0x80240017 WU_E_NOT_APPLICABLE
	exitWusaAmbiguous60    = 1           // 6.0 before KB949545: already installed or not applicable
	exitWusaMissingFile    = 2           // ERROR_FILE_NOT_FOUND
	exitModeNotSet         = 2           // agent mode: driver absent or refused (FORMAT.md)
)

// maxCommandLine is cmd.exe's limit; maxChunk is the base64 run the lab puts in one echo.
const (
	maxCommandLine = 8191
	maxChunk       = 7600
)
