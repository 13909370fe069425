package sim

import "testing"

// The programs vagrant/prepare-guest.cmd runs, in their Windows output layouts, on a fresh
// Windows 7 guest; each line runs after the ones before it.
func TestPrepareGuestPrograms(t *testing.T) {
	tg := startGuest(t, "win7-x64", testConfig())
	table := "\r\nIdx     Met         MTU          State                Name\r\n" +
		"---  ----------  ----------  ------------  ---------------------------\r\n" +
		"  1          50  4294967295  connected     Loopback Pseudo-Interface 1\r\n" +
		" 11          10        1500  connected     Local Area Connection\r\n\r\n"
	rule := "\r\nRule Name:                            a b\r\n" + "----------------------------------------------------------------------\r\n" +
		"Enabled:                              Yes\r\nDirection:                            In\r\nProfiles:                             Domain,Private,Public\r\n" +
		"Grouping:                             \r\nLocalIP:                              Any\r\nRemoteIP:                             Any\r\n" +
		"Protocol:                             UDP\r\nLocalPort:                            7\r\nRemotePort:                           Any\r\n" +
		"Edge traversal:                       No\r\nAction:                               Allow\r\n"
	for _, c := range []struct {
		line string
		want answer
	}{
		{`net session`, answer{"There are no entries in the list.\r\n\r\n", "", 0}},
		{`net start WinRM`, answer{"", "The requested service has already been started.\r\n\r\nMore help is available by typing NET HELPMSG 2182.\r\n\r\n", 2}},
		{`net start nosuch`, answer{"", "The service name is invalid.\r\n\r\nMore help is available by typing NET HELPMSG 2185.\r\n\r\n", 2}},
		{`netsh advfirewall firewall delete rule name="a b"`, answer{"No rules match the specified criteria.\r\n\r\n", "", 1}},
		{`netsh advfirewall firewall add rule name="a b" dir=in action=allow protocol=UDP localport=7`, answer{"Ok.\r\n\r\n", "", 0}},
		{`netsh advfirewall firewall add rule name="a b" dir=in action=allow protocol=UDP localport=7`, answer{"Ok.\r\n\r\n", "", 0}},
		{`netsh advfirewall firewall show rule name="a b"`, answer{rule + rule + "Ok.\r\n\r\n", "", 0}},
		{`netsh advfirewall firewall delete rule name="a b"`, answer{"\r\nDeleted 2 rule(s).\r\nOk.\r\n\r\n", "", 0}},
		{`netsh advfirewall firewall add rule name="a b" dir=sideways action=allow`, answer{"\r\nUsage: add rule name=<string> ...\r\n\r\n", "", 1}},
		{`netsh interface ipv4 show interfaces`, answer{table, "", 0}},
		{`netsh interface ipv4 show interfaces | findstr /r /c:"^ *[0-9]"`, answer{
			"  1          50  4294967295  connected     Loopback Pseudo-Interface 1\r\n 11          10        1500  connected     Local Area Connection\r\n", "", 0}},
		{`netsh interface ipv4 set interface 11 forwarding=enabled`, answer{"Ok.\r\n\r\n", "", 0}},
		{`netsh interface ipv4 set interface 12 forwarding=enabled`, answer{"Element not found.\r\n\r\n", "", 1}},
		{`echo a b| find "b"`, answer{"a b\r\n", "", 0}},
		{`echo a b| find /i "B"`, answer{"a b\r\n", "", 0}},
		{`echo a b| find "c"`, answer{"", "", 1}},
		{`echo a b| find b`, answer{"", "FIND: Parameter format not correct\r\n", 2}},
		{`echo x.y| findstr /l /c:"x.y"`, answer{"x.y\r\n", "", 0}},
		{`echo xzy| findstr "x.y q"`, answer{"xzy\r\n", "", 0}},
		{`echo xzy| findstr /l "x.y"`, answer{"", "", 1}},
		{`sc qc WinRM`, answer{"[SC] QueryServiceConfig SUCCESS\r\n\r\nSERVICE_NAME: WinRM\r\n        TYPE               : 20  WIN32_SHARE_PROCESS  \r\n" +
			"        START_TYPE         : 3   DEMAND_START\r\n        ERROR_CONTROL      : 1   NORMAL\r\n" +
			"        BINARY_PATH_NAME   : C:\\Windows\\System32\\svchost.exe -k NetworkService\r\n        LOAD_ORDER_GROUP   : \r\n        TAG                : 0\r\n" +
			"        DISPLAY_NAME       : Windows Remote Management (WS-Management)\r\n        DEPENDENCIES       : \r\n        SERVICE_START_NAME : \r\n", "", 0}},
		{`sc config WinRM start= auto`, answer{"[SC] ChangeServiceConfig SUCCESS\r\n", "", 0}},
		{`sc config nosuch start= auto`, answer{"[SC] OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n\r\n", "", 1060}},
		{`reg query HKLM\SYSTEM\CurrentControlSet\Services\WinRM /v Start`, answer{"\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\WinRM\r\n    Start    REG_DWORD    0x2\r\n\r\n", "", 0}},
		{`winrm enumerate winrm/config/Listener`, answer{"Listener\r\n    Address = *\r\n    Transport = HTTP\r\n    Port = 5985\r\n    Hostname\r\n    Enabled = true\r\n" +
			"    URLPrefix = wsman\r\n    CertificateThumbprint\r\n    ListeningOn = 127.0.0.1\r\n\r\n", "", 0}},
		{`winrm create winrm/config/Listener?Address=*+Transport=HTTP`, answer{"", "WSManFault\r\n    Message = Cannot create a file when that file already exists.\r\n\r\n" +
			"Error number:  -2147024713 0x800700B7\r\nCannot create a file when that file already exists.\r\n", 1}},
		{`winrm set winrm/config/winrs @{MaxMemoryPerShellMB="800"}`, answer{"Winrs\r\n    AllowRemoteShellAccess = true\r\n    IdleTimeout = 180000\r\n    MaxConcurrentUsers = 5\r\n" +
			"    MaxShellRunTime = 2147483647\r\n    MaxProcessesPerShell = 15\r\n    MaxMemoryPerShellMB = 800\r\n    MaxShellsPerUser = 5\r\n", "", 0}},
		{`winrm set winrm/config @{MaxTimeoutms="soon"}`, answer{"", "WSManFault\r\n    Message = The parameter is incorrect.\r\n\r\n" +
			"Error number:  -2147024809 0x80070057\r\nThe parameter is incorrect.\r\n", 1}},
		{`winrm get winrm/config/service/auth`, answer{"Auth\r\n    Basic = true\r\n    Kerberos = true\r\n    Negotiate = true\r\n    Certificate = false\r\n" +
			"    CredSSP = false\r\n    CbtHardeningLevel = Relaxed\r\n", "", 0}},
		{`cd C:\Windows & set WFPLAB_X=5 & cmd /c "cd & set WFPLAB_X"`, answer{"C:\\Windows\r\nWFPLAB_X=5 \r\n", "", 0}},
		{`cscript //nologo C:\wfplab\none.vbs`, answer{"Input Error: Can not find script file \"C:\\wfplab\\none.vbs\".\r\n", "", 1}},
	} {
		check(t, tg.run(c.line), c.want)
	}
	if !tg.g.NICs()[0].Forwarding {
		t.Error("netsh set interface 11 forwarding=enabled left the first adapter's forwarding off")
	}
}

// A guest whose WinRM user is not elevated refuses what needs an administrator.
func TestUnelevatedGuestRefuses(t *testing.T) {
	cfg := testConfig()
	cfg.Unelevated = true
	tg := startGuest(t, "win7-x86", cfg)
	for _, c := range []struct {
		line string
		want answer
	}{
		{`net session`, answer{"", "System error 5 has occurred.\r\n\r\nAccess is denied.\r\n\r\n", 2}},
		{`reg add HKLM\SOFTWARE\wfplab /v X /t REG_DWORD /d 1 /f`, answer{"", "ERROR: Access is denied.\r\n", 1}},
		{`reg add HKCU\Software\wfplab /v X /t REG_DWORD /d 1 /f`, answer{"The operation completed successfully.\r\n\r\n", "", 0}},
		{`sc config WinRM start= auto`, answer{"[SC] OpenSCManager FAILED 5:\r\n\r\nAccess is denied.\r\n\r\n", "", 5}},
		{`netsh advfirewall firewall add rule name=x dir=in action=allow`, answer{"The requested operation requires elevation (Run as administrator).\r\n\r\n", "", 1}},
		{`winrm quickconfig -q`, answer{"", "WSManFault\r\n    Message = Access is denied.\r\n\r\nError number:  -2147024891 0x80070005\r\nAccess is denied.\r\n", 1}},
	} {
		check(t, tg.run(c.line), c.want)
	}
}
