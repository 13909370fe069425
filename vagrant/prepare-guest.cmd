@echo off
rem prepare-guest.cmd - make a Windows Vista / 7 / Server 2008 / 2008 R2 guest ready for wfplab.
rem
rem Run once, as Administrator, inside the guest (before packaging a Vagrant box, or on a VM
rem you use with the static provider):
rem
rem   prepare-guest.cmd [winrm-port] [stream-port] [control-port]
rem
rem   winrm-port    WinRM HTTP port to open in the firewall (default 5985; 80 for Vista / 2008
rem                 with the stock WinRM 1.1, i.e. without WMF 2.0)
rem   stream-port   TCP port of the stream-burst traffic (default 49152, as static-lab.yaml;
rem                 Vagrant boxes use 5001 and 5002, vagrant/README.md)
rem   control-port  UDP port of the single-nbl traffic (default 49153)
rem
rem Uses only tools present on all four systems (cmd, winrm, sc, netsh, reg), no PowerShell.
rem Safe to run again. IP forwarding through the registry takes effect at the next boot.
rem WinRM is left on HTTP with Basic auth and unencrypted traffic allowed: for an isolated
rem lab network only.

setlocal EnableExtensions
set WINRM_PORT=5985
set STREAM_PORT=49152
set CONTROL_PORT=49153
if not "%~1"=="" set WINRM_PORT=%~1
if not "%~2"=="" set STREAM_PORT=%~2
if not "%~3"=="" set CONTROL_PORT=%~3
set FAILED=0

rem "net session" needs an elevated token: without one every change below would fail.
net session >nul 2>&1
if errorlevel 1 (
  echo prepare-guest: run this from an elevated command prompt ^(Run as administrator^). 1>&2
  exit /b 1
)

echo == WinRM service and HTTP listener
rem winrm is winrm.cmd: without "call" this script would end when it returns.
call winrm quickconfig -q
if errorlevel 1 (
  rem quickconfig refuses when a network is "Public"; do its two steps by hand.
  echo prepare-guest: quickconfig failed, creating the listener directly
  sc config WinRM start= auto >nul
  net start WinRM >nul 2>&1
  call winrm create winrm/config/Listener?Address=*+Transport=HTTP >nul 2>&1
  call winrm enumerate winrm/config/Listener | find "Transport = HTTP" >nul
  if errorlevel 1 call :fail "no WinRM HTTP listener"
)
sc config WinRM start= auto >nul
if errorlevel 1 call :fail "sc config WinRM start= auto"

echo == WinRM settings wfplab needs
rem Long-running commands (the streaming sampler, wusa) and the base64 uploads.
call winrm set winrm/config @{MaxTimeoutms="1800000"} >nul
if errorlevel 1 call :fail "MaxTimeoutms"
call winrm set winrm/config/winrs @{MaxMemoryPerShellMB="800"} >nul
if errorlevel 1 call :fail "MaxMemoryPerShellMB"
call winrm set winrm/config/service @{AllowUnencrypted="true"} >nul
if errorlevel 1 call :fail "AllowUnencrypted"
call winrm set winrm/config/service/auth @{Basic="true"} >nul
if errorlevel 1 call :fail "Basic auth"

echo == Firewall: WinRM on TCP %WINRM_PORT%, traffic on TCP %STREAM_PORT% and UDP %CONTROL_PORT%
netsh advfirewall firewall delete rule name="wfplab WinRM" >nul 2>&1
netsh advfirewall firewall add rule name="wfplab WinRM" dir=in action=allow protocol=TCP localport=%WINRM_PORT% >nul
if errorlevel 1 call :fail "firewall rule for WinRM"
netsh advfirewall firewall delete rule name="wfplab stream" >nul 2>&1
netsh advfirewall firewall add rule name="wfplab stream" dir=in action=allow protocol=TCP localport=%STREAM_PORT% >nul
if errorlevel 1 call :fail "firewall rule for the stream port"
netsh advfirewall firewall delete rule name="wfplab control" >nul 2>&1
netsh advfirewall firewall add rule name="wfplab control" dir=in action=allow protocol=UDP localport=%CONTROL_PORT% >nul
if errorlevel 1 call :fail "firewall rule for the control port"

echo == Remote administration with a local account
rem Without this, UAC filters a local administrator's token over the network and
rem sc, bcdedit and wusa fail with "Access is denied".
reg add HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System /v LocalAccountTokenFilterPolicy /t REG_DWORD /d 1 /f >nul
if errorlevel 1 call :fail "LocalAccountTokenFilterPolicy"

echo == IP forwarding, for the fragment-forward path
rem IPEnableRouter is read at boot; the per-interface setting applies now (best effort).
reg add HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters /v IPEnableRouter /t REG_DWORD /d 1 /f >nul
if errorlevel 1 call :fail "IPEnableRouter"
rem Fragment grouping is off by default: forwarded fragments would reach the callout one by one,
rem never as the fragment group (a chain of NBLs) the fragment-forward profile needs. In force at
rem once; wfplab run sets it too.
netsh interface ipv4 set global groupforwardedfragments=enabled >nul
if errorlevel 1 call :fail "groupforwardedfragments"
for /f "tokens=1" %%i in ('netsh interface ipv4 show interfaces ^| findstr /r /c:"^ *[0-9]"') do (
  netsh interface ipv4 set interface %%i forwarding=enabled >nul 2>&1
)

echo.
if %FAILED% neq 0 (
  echo prepare-guest: %FAILED% step^(s^) failed, see above. 1>&2
  exit /b 1
)
echo prepare-guest: done. Reboot once so that IPEnableRouter takes effect.
exit /b 0

:fail
echo prepare-guest: FAILED: %~1 1>&2
set /a FAILED+=1
exit /b 0
