@rem Managed by eip-agent: generated from instance metadata, local edits are replaced.
@echo off
rem Windows target, netsh flavor: netsh makes every change, always by ifIndex. Every question (which
rem adapter has this MAC, is this address there, what DNS servers are set) is answered by a one-line
rem PowerShell/CIM query, because netsh, ipconfig and wmic print localized text that must not be parsed
rem (and wmic is gone from current Windows). Adapter names are never used.
rem Usage: eip-agent.netsh.cmd [apply or verify]. Exit codes: 0 in sync, 10 changed and verified,
rem 20 adapter not found or ambiguous, 21 another run holds the lock, 22 DHCP lease differs from the metadata, 30 rolled back,
rem 31 rollback failed, 40 not as desired in verify mode, 1 error before any change.
rem stdout: the JSON result, one short line per change, check and error (cmd cannot echo a line longer than 8191
rem characters). Log: %ProgramData%\eip-agent\eip-agent.log
setlocal EnableExtensions DisableDelayedExpansion
set "STATE=%ProgramData%\eip-agent"
if not exist "%STATE%\" mkdir "%STATE%"
set "LOG=%STATE%\eip-agent.log"
set "UNDO=%STATE%\undo-netsh.txt"
set "RESULT=%STATE%\result-netsh"
set "MODE=%~1"
if "%MODE%"=="" set "MODE=apply"
if /i "%MODE%"=="apply" goto :mode_known
if /i "%MODE%"=="verify" goto :mode_known
set "MODE=invalid"
:mode_known
rem One run at a time: handle 9 holds the lock file open for writing until :main returns; a second run cannot open it.
set "LOCKED="
call :main 9>"%STATE%\lock-netsh"
if defined LOCKED exit /b %CODE%
>>"%LOG%" echo %date% %time% [%MODE%] exit 21 busy: another run holds %STATE%\lock-netsh
echo {"agent":"eip-agent","flavor":"netsh","mode":"%MODE%","exitCode":21,"status":"busy","changes":[],"checks":[],"errors":["another eip-agent run is in progress"],"log":"%LOG:\=\\%"}
exit /b 21

:main
set "LOCKED=1"
for %%f in (changes checks errors) do if exist "%RESULT%-%%f.txt" del /q "%RESULT%-%%f.txt"
if not "%MODE%"=="invalid" goto :mode_ok
call :error "the argument must be apply or verify"
set "CODE=1"
set "STATUS=error"
goto :finish

:mode_ok
set "PS=powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command"
set "METADATA_URL=http://169.254.0.23/latest/meta-data/"
set "FAILED=0"
set "ANYDIFF=0"
set "NOTFOUND=0"
set "REFUSED=0"
set "STEP=1000"
if exist "%UNDO%" del /q "%UNDO%"
if /i "%MODE%"=="verify" goto :resolve_all
fltmc >nul 2>&1 && goto :resolve_all
call :error "changing adapters needs Administrator or SYSTEM"
set "CODE=1"
set "STATUS=error"
goto :finish

rem ---- 1. MAC to ifIndex for every NIC; nothing is touched unless each MAC matches exactly one adapter ----
:resolve_all
call :resolve IDX0 525400123456 52:54:00:12:34:56
call :resolve IDX1 525400ABCD01 52:54:00:AB:CD:01
call :resolve IDX2 525400ABCD02 52:54:00:AB:CD:02
if "%NOTFOUND%"=="0" goto :inspect_all
set "CODE=20"
set "STATUS=adapter-not-found"
goto :finish

rem ---- 2. Snapshot and compare; the snapshot is logged, and netsh's own dump is kept for people ----
:inspect_all
netsh interface ipv4 dump >"%STATE%\netsh-dump-before.txt" 2>&1
rem NIC 0: 52:54:00:12:34:56 (primary) 10.1.3.4/20 + 10.1.15.200/20, gateway 10.1.0.1, route metric 0
set "IDX=%IDX0%"
set "DIFF=0"
call :ask DHCP "[string](Get-NetIPInterface -InterfaceIndex %IDX% -AddressFamily IPv4).Dhcp"
if /i not "%DHCP%"=="Enabled" if /i not "%DHCP%"=="Disabled" goto :query_failed
call :ask LEASE "@(Get-NetIPAddress -InterfaceIndex %IDX% -AddressFamily IPv4 -PrefixOrigin Dhcp -ErrorAction SilentlyContinue | Where-Object { $_.IPAddress -match '\A[0-9.]+\z' } | ForEach-Object { $_.IPAddress }) -join ' '"
call :ask DNSBEFORE "@((Get-DnsClientServerAddress -InterfaceIndex %IDX% -AddressFamily IPv4).ServerAddresses | Where-Object { $_ -match '\A[0-9.]+\z' }) -join ' '"
call :dnsstatic %IDX%
>>"%LOG%" echo %date% %time% [%MODE%] snapshot 52:54:00:12:34:56 ifIndex %IDX%: dhcp %DHCP%, lease %LEASE%, dns %DNSBEFORE%, static dns %DNSSTATIC%
if /i not "%DHCP%"=="Disabled" call :diff "ifIndex %IDX%: DHCP is enabled"
if /i "%DHCP%"=="Disabled" if not "%DNSBEFORE%"=="" if "%DNSSTATIC%"=="0" call :diff "ifIndex %IDX%: DNS servers %DNSBEFORE% are not static"
call :has %IDX% 10.1.3.4 || call :diff "ifIndex %IDX%: 10.1.3.4/20 is missing"
call :has %IDX% 10.1.15.200 || call :diff "ifIndex %IDX%: 10.1.15.200/20 is missing"
call :ownedextra %IDX% 525400123456 "10.1.3.4 10.1.15.200" || call :diff "ifIndex %IDX%: an address added by eip-agent is no longer in the metadata"
call :routemetric %IDX% 10.1.0.1
if not "%ROUTEMETRIC%"=="0" call :diff "ifIndex %IDX%: no default route via 10.1.0.1 with metric 0"
if /i "%DHCP%"=="Disabled" goto :inspect0_done
if "%LEASE%"=="" goto :inspect0_done
if "%LEASE%"=="10.1.3.4" goto :inspect0_done
set "REFUSED=1"
call :error "ifIndex %IDX%: DHCP lease %LEASE% is not the metadata primary 10.1.3.4, not switching it to static"
:inspect0_done
set "DIFF0=%DIFF%"
set "DHCP0=%DHCP%"
set "DNSBEFORE0=%DNSBEFORE%"
set "DNSSTATIC0=%DNSSTATIC%"

rem NIC 1: 52:54:00:AB:CD:01 (secondary) 10.1.16.5/24 + 203.0.113.21/32, gateway 10.1.16.1, route metric 100
set "IDX=%IDX1%"
set "DIFF=0"
call :ask DHCP "[string](Get-NetIPInterface -InterfaceIndex %IDX% -AddressFamily IPv4).Dhcp"
if /i not "%DHCP%"=="Enabled" if /i not "%DHCP%"=="Disabled" goto :query_failed
call :ask LEASE "@(Get-NetIPAddress -InterfaceIndex %IDX% -AddressFamily IPv4 -PrefixOrigin Dhcp -ErrorAction SilentlyContinue | Where-Object { $_.IPAddress -match '\A[0-9.]+\z' } | ForEach-Object { $_.IPAddress }) -join ' '"
call :ask DNSBEFORE "@((Get-DnsClientServerAddress -InterfaceIndex %IDX% -AddressFamily IPv4).ServerAddresses | Where-Object { $_ -match '\A[0-9.]+\z' }) -join ' '"
call :dnsstatic %IDX%
>>"%LOG%" echo %date% %time% [%MODE%] snapshot 52:54:00:AB:CD:01 ifIndex %IDX%: dhcp %DHCP%, lease %LEASE%, dns %DNSBEFORE%, static dns %DNSSTATIC%
if /i not "%DHCP%"=="Disabled" call :diff "ifIndex %IDX%: DHCP is enabled"
if /i "%DHCP%"=="Disabled" if not "%DNSBEFORE%"=="" if "%DNSSTATIC%"=="0" call :diff "ifIndex %IDX%: DNS servers %DNSBEFORE% are not static"
call :has %IDX% 10.1.16.5 || call :diff "ifIndex %IDX%: 10.1.16.5/24 is missing"
call :has %IDX% 203.0.113.21 || call :diff "ifIndex %IDX%: 203.0.113.21/32 is missing"
call :ownedextra %IDX% 525400ABCD01 "10.1.16.5 203.0.113.21" || call :diff "ifIndex %IDX%: an address added by eip-agent is no longer in the metadata"
call :routemetric %IDX% 10.1.16.1
if not "%ROUTEMETRIC%"=="100" call :diff "ifIndex %IDX%: no default route via 10.1.16.1 with metric 100"
if /i "%DHCP%"=="Disabled" goto :inspect1_done
if "%LEASE%"=="" goto :inspect1_done
if "%LEASE%"=="10.1.16.5" goto :inspect1_done
set "REFUSED=1"
call :error "ifIndex %IDX%: DHCP lease %LEASE% is not the metadata primary 10.1.16.5, not switching it to static"
:inspect1_done
set "DIFF1=%DIFF%"
set "DHCP1=%DHCP%"
set "DNSBEFORE1=%DNSBEFORE%"
set "DNSSTATIC1=%DNSSTATIC%"

rem NIC 2: 52:54:00:AB:CD:02 (secondary) 172.16.5.10/24, gateway 172.16.5.1, route metric 200
set "IDX=%IDX2%"
set "DIFF=0"
call :ask DHCP "[string](Get-NetIPInterface -InterfaceIndex %IDX% -AddressFamily IPv4).Dhcp"
if /i not "%DHCP%"=="Enabled" if /i not "%DHCP%"=="Disabled" goto :query_failed
call :ask LEASE "@(Get-NetIPAddress -InterfaceIndex %IDX% -AddressFamily IPv4 -PrefixOrigin Dhcp -ErrorAction SilentlyContinue | Where-Object { $_.IPAddress -match '\A[0-9.]+\z' } | ForEach-Object { $_.IPAddress }) -join ' '"
call :ask DNSBEFORE "@((Get-DnsClientServerAddress -InterfaceIndex %IDX% -AddressFamily IPv4).ServerAddresses | Where-Object { $_ -match '\A[0-9.]+\z' }) -join ' '"
call :dnsstatic %IDX%
>>"%LOG%" echo %date% %time% [%MODE%] snapshot 52:54:00:AB:CD:02 ifIndex %IDX%: dhcp %DHCP%, lease %LEASE%, dns %DNSBEFORE%, static dns %DNSSTATIC%
if /i not "%DHCP%"=="Disabled" call :diff "ifIndex %IDX%: DHCP is enabled"
if /i "%DHCP%"=="Disabled" if not "%DNSBEFORE%"=="" if "%DNSSTATIC%"=="0" call :diff "ifIndex %IDX%: DNS servers %DNSBEFORE% are not static"
call :has %IDX% 172.16.5.10 || call :diff "ifIndex %IDX%: 172.16.5.10/24 is missing"
call :ownedextra %IDX% 525400ABCD02 "172.16.5.10" || call :diff "ifIndex %IDX%: an address added by eip-agent is no longer in the metadata"
call :routemetric %IDX% 172.16.5.1
if not "%ROUTEMETRIC%"=="200" call :diff "ifIndex %IDX%: no default route via 172.16.5.1 with metric 200"
if /i "%DHCP%"=="Disabled" goto :inspect2_done
if "%LEASE%"=="" goto :inspect2_done
if "%LEASE%"=="172.16.5.10" goto :inspect2_done
set "REFUSED=1"
call :error "ifIndex %IDX%: DHCP lease %LEASE% is not the metadata primary 172.16.5.10, not switching it to static"
:inspect2_done
set "DIFF2=%DIFF%"
set "DHCP2=%DHCP%"
set "DNSBEFORE2=%DNSBEFORE%"
set "DNSSTATIC2=%DNSSTATIC%"

if /i "%MODE%"=="verify" goto :verify_all
if "%ANYDIFF%"=="0" goto :in_sync
if "%REFUSED%"=="0" goto :apply_all
set "CODE=22"
set "STATUS=refused"
goto :finish

rem ---- 3. Change what differs, primary NIC first; any failure restores what this run changed ----
:apply_all
if "%DIFF0%"=="0" goto :apply0_done
set "IDX=%IDX0%"
if /i "%DHCP0%"=="Disabled" goto :apply0_static
rem DHCP to static in one netsh call, the default route included: the lease is the metadata primary, so the address
rem stays, and the guest is never without a default route.
call :run netsh interface ipv4 set address name=%IDX% source=static address=10.1.3.4 mask=255.255.240.0 gateway=10.1.0.1 gwmetric=0 || goto :change_failed
call :undo dhcp %IDX% %DNSSTATIC0%
call :change "ifIndex %IDX%: DHCP to static 10.1.3.4/20"
goto :apply0_secondary
:apply0_static
call :has %IDX% 10.1.3.4 && goto :apply0_secondary
call :run netsh interface ipv4 add address name=%IDX% address=10.1.3.4 mask=255.255.240.0 || goto :change_failed
call :undo deladdr %IDX% 10.1.3.4 -
call :change "ifIndex %IDX%: add primary 10.1.3.4/20"
:apply0_secondary
call :addsecondary %IDX% 525400123456 10.1.15.200 20 255.255.240.0 || goto :change_failed
call :prune %IDX% 525400123456 10.1.3.4 "10.1.3.4 10.1.15.200" || goto :change_failed
call :ensureroute %IDX% 10.1.0.1 0 || goto :change_failed
call :ensuredns %IDX% "%DNSBEFORE0%" "%DNSBEFORE0%" %DNSSTATIC0% || goto :change_failed
:apply0_done
if "%DIFF1%"=="0" goto :apply1_done
set "IDX=%IDX1%"
if /i "%DHCP1%"=="Disabled" goto :apply1_static
rem DHCP to static in one netsh call, the default route included: the lease is the metadata primary, so the address
rem stays, and the guest is never without a default route.
call :run netsh interface ipv4 set address name=%IDX% source=static address=10.1.16.5 mask=255.255.255.0 gateway=10.1.16.1 gwmetric=100 || goto :change_failed
call :undo dhcp %IDX% %DNSSTATIC1%
call :change "ifIndex %IDX%: DHCP to static 10.1.16.5/24"
goto :apply1_secondary
:apply1_static
call :has %IDX% 10.1.16.5 && goto :apply1_secondary
call :run netsh interface ipv4 add address name=%IDX% address=10.1.16.5 mask=255.255.255.0 || goto :change_failed
call :undo deladdr %IDX% 10.1.16.5 -
call :change "ifIndex %IDX%: add primary 10.1.16.5/24"
:apply1_secondary
call :addsecondary %IDX% 525400ABCD01 203.0.113.21 32 255.255.255.255 || goto :change_failed
call :prune %IDX% 525400ABCD01 10.1.16.5 "10.1.16.5 203.0.113.21" || goto :change_failed
call :ensureroute %IDX% 10.1.16.1 100 || goto :change_failed
call :ensuredns %IDX% "%DNSBEFORE1%" "%DNSBEFORE1%" %DNSSTATIC1% || goto :change_failed
:apply1_done
if "%DIFF2%"=="0" goto :apply2_done
set "IDX=%IDX2%"
if /i "%DHCP2%"=="Disabled" goto :apply2_static
rem DHCP to static in one netsh call, the default route included: the lease is the metadata primary, so the address
rem stays, and the guest is never without a default route.
call :run netsh interface ipv4 set address name=%IDX% source=static address=172.16.5.10 mask=255.255.255.0 gateway=172.16.5.1 gwmetric=200 || goto :change_failed
call :undo dhcp %IDX% %DNSSTATIC2%
call :change "ifIndex %IDX%: DHCP to static 172.16.5.10/24"
goto :apply2_secondary
:apply2_static
call :has %IDX% 172.16.5.10 && goto :apply2_secondary
call :run netsh interface ipv4 add address name=%IDX% address=172.16.5.10 mask=255.255.255.0 || goto :change_failed
call :undo deladdr %IDX% 172.16.5.10 -
call :change "ifIndex %IDX%: add primary 172.16.5.10/24"
:apply2_secondary
call :prune %IDX% 525400ABCD02 172.16.5.10 "172.16.5.10" || goto :change_failed
call :ensureroute %IDX% 172.16.5.1 200 || goto :change_failed
call :ensuredns %IDX% "%DNSBEFORE2%" "%DNSBEFORE2%" %DNSSTATIC2% || goto :change_failed
:apply2_done

rem ---- 4. Verify: addresses, default routes, gateways, the metadata endpoint ----
:verify_all
set "IDX=%IDX0%"
call :verifyaddr %IDX% 10.1.3.4 20
call :verifyaddr %IDX% 10.1.15.200 20
call :routemetric %IDX% 10.1.0.1
if defined ROUTEMETRIC (call :check route "default via 10.1.0.1 on ifIndex %IDX%" true "metric %ROUTEMETRIC%") else (call :check route "default via 10.1.0.1 on ifIndex %IDX%" false "missing")
call :verifyping %IDX% 10.1.0.1
set "IDX=%IDX1%"
call :verifyaddr %IDX% 10.1.16.5 24
call :verifyaddr %IDX% 203.0.113.21 32
call :routemetric %IDX% 10.1.16.1
if defined ROUTEMETRIC (call :check route "default via 10.1.16.1 on ifIndex %IDX%" true "metric %ROUTEMETRIC%") else (call :check route "default via 10.1.16.1 on ifIndex %IDX%" false "missing")
call :verifyping %IDX% 10.1.16.1
set "IDX=%IDX2%"
call :verifyaddr %IDX% 172.16.5.10 24
call :routemetric %IDX% 172.16.5.1
if defined ROUTEMETRIC (call :check route "default via 172.16.5.1 on ifIndex %IDX%" true "metric %ROUTEMETRIC%") else (call :check route "default via 172.16.5.1 on ifIndex %IDX%" false "missing")
call :verifyping %IDX% 172.16.5.1
call :verifymetadata
if /i "%MODE%"=="verify" goto :verify_done
if "%FAILED%"=="0" goto :changed
goto :rollback_all

:verify_done
if "%FAILED%"=="0" goto :in_sync
set "CODE=40"
set "STATUS=not-as-desired"
goto :finish

:query_failed
call :error "ifIndex %IDX%: cannot read the adapter state with PowerShell"
set "CODE=1"
set "STATUS=error"
goto :finish

:change_failed
set "FAILED=1"

:rollback_all
call :rollback
if "%ROLLBACK_OK%"=="0" goto :rollback_failed
set "CODE=30"
set "STATUS=rolled-back"
goto :finish

:rollback_failed
set "CODE=31"
set "STATUS=rollback-failed"
goto :finish

:changed
set "CODE=10"
set "STATUS=changed"
goto :finish

:in_sync
set "CODE=0"
set "STATUS=in-sync"

:finish
if exist "%UNDO%" del /q "%UNDO%"
>>"%LOG%" echo %date% %time% [%MODE%] exit %CODE% %STATUS%
echo {"agent":"eip-agent","flavor":"netsh","mode":"%MODE%","exitCode":%CODE%,"status":"%STATUS%","log":"%LOG:\=\\%","changes":[
call :emit changes
echo ],"checks":[
call :emit checks
echo ],"errors":[
call :emit errors
echo ]}
exit /b %CODE%

rem :emit NAME - prints the JSON fragments collected in %RESULT%-NAME.txt, one per line, and removes the file
:emit
if not exist "%RESULT%-%~1.txt" exit /b 0
for /f "usebackq delims=" %%l in ("%RESULT%-%~1.txt") do echo(%%l
del /q "%RESULT%-%~1.txt"
exit /b 0

rem ==== Subroutines. Arguments are validated IPs, masks, hex MACs and integers; messages avoid cmd's special characters. ====

rem :ask VAR "PowerShell" - VAR = the first line the one-line query prints, undefined when none
:ask
set "%~1="
for /f "usebackq delims=" %%o in (`%PS% "%~2"`) do if not defined %~1 set "%~1=%%o"
exit /b 0

rem :resolve VAR MACKEY MAC - VAR = the ifIndex of the only adapter with that MAC (52-54-00-.. and 52:54:00:.. compare equal)
:resolve
set "RESOLVED="
for /f "usebackq delims=" %%o in (`%PS% "$m = @(Get-NetAdapter | Where-Object { ([string]$_.MacAddress -replace '[-:]', '').ToUpperInvariant() -eq '%~2' }); if ($m.Count -eq 1) { [string]$m[0].ifIndex } else { 'count ' + $m.Count }"`) do set "RESOLVED=%%o"
echo(%RESOLVED%| findstr /r /x "[1-9][0-9]*" >nul && goto :resolve_ok
set /a NOTFOUND+=1
call :error "no single adapter has MAC %~3"
call :check link "%~3" false "not exactly one adapter"
exit /b 1
:resolve_ok
set "%~1=%RESOLVED%"
call :check link "%~3 is ifIndex %RESOLVED%" true "resolved by MAC"
exit /b 0

rem :has IDX IP - succeeds when IP is on ifIndex IDX, whatever its prefix length (a different one is left as it is)
:has
call :ask HAS "@(Get-NetIPAddress -InterfaceIndex %~1 -AddressFamily IPv4 -IPAddress '%~2' -ErrorAction SilentlyContinue).Count"
if "%HAS%"=="1" exit /b 0
exit /b 1

rem :dnsstatic IDX - DNSSTATIC = 1 when the adapter's DNS servers are static (a NameServer value in the registry), else 0
:dnsstatic
call :ask DNSSTATIC "$g = [string](Get-NetAdapter -InterfaceIndex %~1).InterfaceGuid; $n = Get-ItemProperty -LiteralPath ('HKLM:\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces\' + $g) -Name NameServer -ErrorAction SilentlyContinue; if ($n -and [string]$n.NameServer) { '1' } else { '0' }"
if not "%DNSSTATIC%"=="1" set "DNSSTATIC=0"
exit /b 0

rem :routemetric IDX GW - ROUTEMETRIC = metric of the default route via GW on IDX, undefined when there is none
:routemetric
call :ask ROUTEMETRIC "@(Get-NetRoute -InterfaceIndex %~1 -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -PolicyStore ActiveStore -ErrorAction SilentlyContinue | Where-Object { $_.NextHop -eq '%~2' } | ForEach-Object { [string]$_.RouteMetric }) | Select-Object -First 1"
if not defined ROUTEMETRIC exit /b 0
echo(%ROUTEMETRIC%| findstr /r /x "[0-9][0-9]*" >nul || set "ROUTEMETRIC="
exit /b 0

rem :diff "why" - the adapter differs from the metadata
:diff
set "DIFF=1"
set "ANYDIFF=1"
>>"%LOG%" echo %date% %time% [%MODE%] %~1
if /i "%MODE%"=="verify" call :check script "%~1" false "differs from the metadata"
exit /b 0

rem :isip TEXT - succeeds for a dotted quad
:isip
echo(%~1| findstr /r /x "[0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*" >nul
exit /b %errorlevel%

rem :ownedextra IDX MACKEY "WANTED" - fails when an address the agent added and the metadata no longer lists is on the adapter
:ownedextra
set "EXTRA=0"
if not exist "%STATE%\owned-%~2.txt" exit /b 0
for /f "usebackq delims=" %%a in ("%STATE%\owned-%~2.txt") do call :ownedextra1 %~1 %%a "%~3"
if "%EXTRA%"=="0" exit /b 0
exit /b 1
:ownedextra1
call :isip %~2 || exit /b 0
echo( %~3 | findstr /l /c:" %~2 " >nul && exit /b 0
call :ask HAS "@(Get-NetIPAddress -InterfaceIndex %~1 -AddressFamily IPv4 -IPAddress '%~2' -ErrorAction SilentlyContinue).Count"
if defined HAS if not "%HAS%"=="0" set "EXTRA=1"
exit /b 0

rem :own MACKEY IP and :disown MACKEY IP - the ownership list: only addresses on it are ever removed
:own
call :disown %~1 %~2
>>"%STATE%\owned-%~1.txt" echo %~2
exit /b 0
:disown
if not exist "%STATE%\owned-%~1.txt" exit /b 0
findstr /v /x /l /c:"%~2" "%STATE%\owned-%~1.txt" >"%STATE%\owned-%~1.tmp"
move /y "%STATE%\owned-%~1.tmp" "%STATE%\owned-%~1.txt" >nul
exit /b 0

rem :addsecondary IDX MACKEY IP PREFIX MASK - adds a secondary address that is missing, never as a source address
:addsecondary
call :has %~1 %~3 && exit /b 0
call :run netsh interface ipv4 add address name=%~1 address=%~3 mask=%~5 skipassource=true && goto :addsecondary_added
rem Already exists is checked, not fatal: what matters is that the address is there now.
call :has %~1 %~3 && exit /b 0
call :error "ifIndex %~1: adding %~3/%~4 failed, see the log"
exit /b 1
:addsecondary_added
call :undo deladdr %~1 %~3 %~2
call :own %~2 %~3
call :change "ifIndex %~1: add %~3/%~4 skipassource"
exit /b 0

rem :prune IDX MACKEY PRIMARY "WANTED" - removes addresses the agent added that the metadata no longer lists, never the primary
:prune
set "PRUNEFAIL=0"
if not exist "%STATE%\owned-%~2.txt" exit /b 0
copy /y "%STATE%\owned-%~2.txt" "%STATE%\owned-%~2.read" >nul
for /f "usebackq delims=" %%a in ("%STATE%\owned-%~2.read") do call :prune1 %~1 %~2 %%a %~3 "%~4"
del /q "%STATE%\owned-%~2.read"
if "%PRUNEFAIL%"=="0" exit /b 0
exit /b 1
:prune1
call :isip %~3 || exit /b 0
if "%~3"=="%~4" exit /b 0
echo( %~5 | findstr /l /c:" %~3 " >nul && exit /b 0
call :ask PREFIX "@(Get-NetIPAddress -InterfaceIndex %~1 -AddressFamily IPv4 -IPAddress '%~3' -ErrorAction SilentlyContinue | ForEach-Object { [string]$_.PrefixLength }) | Select-Object -First 1"
if not defined PREFIX goto :prune1_gone
call :run netsh interface ipv4 delete address name=%~1 address=%~3 && goto :prune1_removed
set "PRUNEFAIL=1"
call :error "ifIndex %~1: removing %~3 failed, see the log"
exit /b 0
:prune1_removed
call :undo addaddr %~1 %~3 %PREFIX% %~2
call :change "ifIndex %~1: remove %~3, added by eip-agent and no longer in the metadata"
:prune1_gone
call :disown %~2 %~3
exit /b 0

rem :ensureroute IDX GW METRIC - the default route via GW with METRIC, added only when missing
:ensureroute
call :routemetric %~1 %~2
if not defined ROUTEMETRIC goto :ensureroute_add
if "%ROUTEMETRIC%"=="%~3" exit /b 0
set "OLDMETRIC=%ROUTEMETRIC%"
call :run netsh interface ipv4 set route prefix=0.0.0.0/0 interface=%~1 nexthop=%~2 metric=%~3 || exit /b 1
call :undo setroute %~1 %~2 %OLDMETRIC%
call :change "ifIndex %~1: default route via %~2 metric %OLDMETRIC% to %~3"
exit /b 0
:ensureroute_add
call :run netsh interface ipv4 add route prefix=0.0.0.0/0 interface=%~1 nexthop=%~2 metric=%~3 || exit /b 1
call :undo delroute %~1 %~2
call :change "ifIndex %~1: add default route via %~2 metric %~3"
exit /b 0

rem :ensuredns IDX "WANTED" "BEFORE" STATIC - sets the DNS servers when they differ or are not static: after DHCP is
rem disabled Windows still shows DHCP's servers, and loses them at the next boot unless they are written.
:ensuredns
if "%~2"=="" exit /b 0
call :ask DNSNOW "@((Get-DnsClientServerAddress -InterfaceIndex %~1 -AddressFamily IPv4).ServerAddresses) -join ' '"
call :dnsstatic %~1
if "%DNSNOW%"=="%~2" if "%DNSSTATIC%"=="1" exit /b 0
call :setdns %~1 %~2 || exit /b 1
call :undo dns %~1 %~4 %~3
call :change "ifIndex %~1: DNS servers %~2"
exit /b 0

rem :setdns IDX SERVER... - the first server replaces the list, the others are added in order
:setdns
call :run netsh interface ipv4 set dnsservers name=%~1 source=static address=%~2 register=primary validate=no || exit /b 1
set "DNSINDEX=1"
:setdns_next
shift /2
if "%~2"=="" exit /b 0
set /a DNSINDEX+=1
call :run netsh interface ipv4 add dnsservers name=%~1 address=%~2 index=%DNSINDEX% validate=no || exit /b 1
goto :setdns_next

rem :verifyaddr IDX IP PREFIX - the address is there (with any prefix length) and out of duplicate address detection
:verifyaddr
set "TRIES=0"
:verifyaddr_again
call :ask ADDRSTATE "@(Get-NetIPAddress -InterfaceIndex %~1 -AddressFamily IPv4 -IPAddress '%~2' -ErrorAction SilentlyContinue | ForEach-Object { [string]$_.AddressState }) | Select-Object -First 1"
if "%ADDRSTATE%"=="Preferred" goto :verifyaddr_done
if "%ADDRSTATE%"=="Duplicate" goto :verifyaddr_done
set /a TRIES+=1
if %TRIES% geq 10 goto :verifyaddr_done
ping -n 2 127.0.0.1 >nul
goto :verifyaddr_again
:verifyaddr_done
if not defined ADDRSTATE set "ADDRSTATE=missing"
if "%ADDRSTATE%"=="Preferred" (call :check address "%~2/%~3 on ifIndex %~1" true "Preferred") else (call :check address "%~2/%~3 on ifIndex %~1" false "%ADDRSTATE%")
exit /b 0

rem :verifyping IDX GW - the gateway answers
:verifyping
set "TRIES=0"
:verifyping_again
call :ask PINGSTATUS "try { [string](New-Object -TypeName System.Net.NetworkInformation.Ping).Send('%~2', 1000).Status } catch { 'Error' }"
if "%PINGSTATUS%"=="Success" goto :verifyping_done
set /a TRIES+=1
if %TRIES% geq 3 goto :verifyping_done
goto :verifyping_again
:verifyping_done
if "%PINGSTATUS%"=="Success" (call :check ping "gateway %~2 from ifIndex %~1" true "Success") else (call :check ping "gateway %~2 from ifIndex %~1" false "no reply")
exit /b 0

rem :verifymetadata - the metadata endpoint answers
:verifymetadata
set "TRIES=0"
:verifymetadata_again
call :ask HTTPSTATUS "try { [string][int](Invoke-WebRequest -Uri '%METADATA_URL%' -UseBasicParsing -TimeoutSec 5).StatusCode } catch { 'Error' }"
if "%HTTPSTATUS%"=="200" goto :verifymetadata_done
set /a TRIES+=1
if %TRIES% geq 3 goto :verifymetadata_done
goto :verifymetadata_again
:verifymetadata_done
if "%HTTPSTATUS%"=="200" (call :check metadata "%METADATA_URL%" true "HTTP 200") else (call :check metadata "%METADATA_URL%" false "no answer")
exit /b 0

rem :run COMMAND... - runs a netsh command; its localized output goes to the log only
:run
>>"%LOG%" echo %date% %time% [%MODE%] %*
%* >>"%LOG%" 2>&1
exit /b %errorlevel%

rem :undo KIND ARGS... - records how to undo one change, numbered so that the rollback runs newest first
:undo
set /a STEP+=1
>>"%UNDO%" echo %STEP% %*
exit /b 0

rem :rollback - undoes every recorded change, newest first; ROLLBACK_OK=0 when any step failed
:rollback
set "ROLLBACK_OK=1"
if not exist "%UNDO%" exit /b 0
sort /r "%UNDO%" /o "%UNDO%.rev"
for /f "usebackq tokens=1,*" %%a in ("%UNDO%.rev") do call :rollback1 %%b
del /q "%UNDO%.rev"
exit /b 0
:rollback1
call :undo_%~1 %2 %3 %4 %5 %6 %7 %8 %9 && exit /b 0
set "ROLLBACK_OK=0"
call :error "rollback %~1 on ifIndex %~2 failed, see the log"
exit /b 0
:undo_deladdr
call :run netsh interface ipv4 delete address name=%~1 address=%~2 || exit /b 1
if not "%~3"=="-" call :disown %~3 %~2
exit /b 0
:undo_addaddr
set /a "MASKBITS=-1 << (32 - %~3)", "O1=(MASKBITS >> 24) & 255", "O2=(MASKBITS >> 16) & 255", "O3=(MASKBITS >> 8) & 255", "O4=MASKBITS & 255"
call :run netsh interface ipv4 add address name=%~1 address=%~2 mask=%O1%.%O2%.%O3%.%O4% skipassource=true || exit /b 1
call :own %~4 %~2
exit /b 0
:undo_delroute
call :run netsh interface ipv4 delete route prefix=0.0.0.0/0 interface=%~1 nexthop=%~2
exit /b %errorlevel%
:undo_setroute
call :run netsh interface ipv4 set route prefix=0.0.0.0/0 interface=%~1 nexthop=%~2 metric=%~3
exit /b %errorlevel%
:undo_dhcp
call :run netsh interface ipv4 set address name=%~1 source=dhcp || exit /b 1
if "%~2"=="1" exit /b 0
call :run netsh interface ipv4 set dnsservers name=%~1 source=dhcp
exit /b %errorlevel%
:undo_dns
if not "%~2"=="1" goto :undo_dns_dhcp
if "%~3"=="" goto :undo_dns_dhcp
call :setdns %~1 %3 %4 %5 %6 %7 %8 %9
exit /b %errorlevel%
:undo_dns_dhcp
call :run netsh interface ipv4 set dnsservers name=%~1 source=dhcp
exit /b %errorlevel%

rem :change "what" / :error "what" / :check KIND "SUBJECT" true-or-false "DETAIL" - the JSON result, one fragment per
rem line in %RESULT%-NAME.txt as the run goes (a comma before every fragment but the first), printed by :finish
:change
call :separator changes
>>"%RESULT%-changes.txt" echo(%SEP%"%~1"
>>"%LOG%" echo %date% %time% [%MODE%] %~1
exit /b 0
:error
call :separator errors
>>"%RESULT%-errors.txt" echo(%SEP%"%~1"
>>"%LOG%" echo %date% %time% [%MODE%] error: %~1
exit /b 0
:check
call :separator checks
>>"%RESULT%-checks.txt" echo(%SEP%{"kind":"%~1","subject":"%~2","ok":%~3,"detail":"%~4"}
if "%~3"=="false" set "FAILED=1"
exit /b 0
:separator
set "SEP=,"
if not exist "%RESULT%-%~1.txt" set "SEP="
exit /b 0
