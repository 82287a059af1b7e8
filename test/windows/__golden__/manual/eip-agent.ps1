# Managed by eip-agent: generated from instance metadata, local edits are replaced.
# Windows target, powershell flavor: static IPv4 on every NIC, changed with the NetTCPIP and DnsClient cmdlets.
# Adapters are found by MAC at run time and handled by ifIndex; adapter names (localized, and renamed
# on detach/attach) are never used. Safe to run every few minutes: it exits at once when all is in sync.
#
# Exit codes: 0 in sync (nothing done), 10 changed and verified, 20 adapter not found or ambiguous (nothing done),
# 21 another run holds the lock, 22 DHCP lease differs from the metadata (nothing done),
# 30 a step or the verification failed and the snapshot was restored, 31 the rollback failed too,
# 40 not as desired (-Mode Verify), 1 error before any change.
# stdout: one line of JSON (exitCode, status, changes, checks, errors). Log: %ProgramData%\eip-agent\eip-agent.log
[CmdletBinding()]
param(
    [ValidateSet('Apply', 'Verify')]
    [string]$Mode = 'Apply'
)

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

# ---- Desired state: validated values from the metadata, as single-quoted literals and integers ----
$Agent = @{
    InstanceId  = 'ins-lab00001'
    MetadataUrl = 'http://169.254.0.23/latest/meta-data/'
    Flavor      = 'powershell'
}
$Nics = @(
    @{
        Mac          = '52:54:00:8A:7A:64'
        Role         = 'primary'
        PrefixLength = 24
        Gateway      = '10.0.0.1'
        Primary      = '10.0.0.2'
        Secondary    = @(
            @{ IP = '10.0.0.3'; PrefixLength = 24 }
        )
        RouteMetric  = 0
        Dns          = @()
    }
    @{
        Mac          = '20:90:6F:F7:93:2E'
        Role         = 'secondary'
        PrefixLength = 24
        Gateway      = '10.0.0.1'
        Primary      = '10.0.0.7'
        Secondary    = @(
            @{ IP = '10.0.0.8'; PrefixLength = 24 }
        )
        RouteMetric  = 100
        Dns          = @()
    }
)
$Exit = @{
    InSync         = 0
    Error          = 1
    Changed        = 10
    NotFound       = 20
    Busy           = 21
    Refused        = 22
    RolledBack     = 30
    RollbackFailed = 31
    NotAsDesired   = 40
}

# ---- Fixed logic below: no metadata value is interpolated past this line ----
$StateDir = Join-Path $env:ProgramData 'eip-agent'
$LogPath = Join-Path $StateDir 'eip-agent.log'
$Changes = New-Object System.Collections.Generic.List[string]
$Checks = New-Object System.Collections.Generic.List[object]
$Errors = New-Object System.Collections.Generic.List[string]
$Undo = New-Object System.Collections.Generic.List[object]
$LockTaken = $false

function Initialize-StateDir {
    if (-not (Test-Path -LiteralPath $StateDir)) {
        $null = New-Item -ItemType Directory -Path $StateDir -Force
    }
}

function Write-Log {
    param([string]$Message)
    try {
        Initialize-StateDir
        $line = '{0} [{1}] {2}' -f (Get-Date).ToString('s'), $Mode, $Message
        Add-Content -LiteralPath $LogPath -Value $line -Encoding UTF8
    } catch {
        # The log is best effort: failing to write it must not change what the script does.
        $null = $_
    }
}

function Complete-Run {
    param([int]$Code, [string]$Status)
    $result = [ordered]@{
        agent    = 'eip-agent'
        flavor   = $Agent.Flavor
        mode     = $Mode
        exitCode = $Code
        status   = $Status
        # ToArray, not @(): PowerShell 7.6 fails on @() of an empty List[object].
        changes  = $Changes.ToArray()
        checks   = $Checks.ToArray()
        errors   = $Errors.ToArray()
        log      = $LogPath
    }
    Write-Log ('exit {0} ({1}): {2} change(s), {3} error(s)' -f $Code, $Status, $Changes.Count, $Errors.Count)
    foreach ($message in $Errors) {
        Write-Log ('error: ' + $message)
    }
    # Non-ASCII (localized error text) as \uXXXX: the console writes stdout in the OEM code page, the agent reads UTF-8.
    $json = ConvertTo-Json -InputObject $result -Depth 5 -Compress
    [Console]::Out.WriteLine([regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value }))
    if ($LockTaken) {
        $lock.ReleaseMutex()
    }
    exit $Code
}

function Add-Check {
    param([string]$Kind, [string]$Subject, [bool]$Ok, [string]$Detail)
    $Checks.Add([ordered]@{ kind = $Kind; subject = $Subject; ok = $Ok; detail = $Detail })
}

function Add-Change {
    param([string]$Summary)
    $Changes.Add($Summary)
    Write-Log $Summary
}

# Metadata writes 52:54:00:BF:B3:51, Get-NetAdapter shows 52-54-00-BF-B3-51: compare hex digits only.
function ConvertTo-MacKey {
    param([string]$Mac)
    return ($Mac -replace '[^0-9A-Fa-f]', '').ToUpperInvariant()
}

function Test-Ipv4 {
    param([string]$Text)
    $parsed = $null
    return ($Text -match '^\d{1,3}(\.\d{1,3}){3}$') -and [System.Net.IPAddress]::TryParse($Text, [ref]$parsed)
}

function Test-Administrator {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object -TypeName Security.Principal.WindowsPrincipal -ArgumentList $identity
    return $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
}

# The addresses this agent added to a NIC, one per line; only these are ever removed.
function Get-OwnedPath {
    param([string]$MacKey)
    return (Join-Path $StateDir ('owned-' + $MacKey + '.txt'))
}

function Get-OwnedAddresses {
    param([string]$MacKey)
    $path = Get-OwnedPath $MacKey
    if (-not (Test-Path -LiteralPath $path)) {
        return @()
    }
    return @(Get-Content -LiteralPath $path | Where-Object { Test-Ipv4 $_ })
}

function Save-OwnedAddresses {
    param([string]$MacKey, [string[]]$Addresses)
    Initialize-StateDir
    $unique = @($Addresses | Where-Object { Test-Ipv4 $_ } | Sort-Object -Unique)
    Set-Content -LiteralPath (Get-OwnedPath $MacKey) -Value $unique -Encoding ASCII
}

function Set-Owned {
    param([string]$MacKey, [string]$IP, [bool]$Owned)
    $current = @(Get-OwnedAddresses $MacKey | Where-Object { $_ -ne $IP })
    if ($Owned) {
        $current += $IP
    }
    Save-OwnedAddresses $MacKey $current
}

function Get-AdapterState {
    param([int]$IfIndex)
    $ipInterface = Get-NetIPInterface -InterfaceIndex $IfIndex -AddressFamily IPv4
    $addresses = @(Get-NetIPAddress -InterfaceIndex $IfIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue | ForEach-Object {
            [ordered]@{
                ip           = [string]$_.IPAddress
                prefixLength = [int]$_.PrefixLength
                origin       = [string]$_.PrefixOrigin
                skipAsSource = [bool]$_.SkipAsSource
                state        = [string]$_.AddressState
            }
        })
    $routes = @(Get-NetRoute -InterfaceIndex $IfIndex -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -PolicyStore ActiveStore -ErrorAction SilentlyContinue | ForEach-Object {
            [ordered]@{ nextHop = [string]$_.NextHop; metric = [int]$_.RouteMetric; protocol = [string]$_.Protocol }
        })
    $dns = @((Get-DnsClientServerAddress -InterfaceIndex $IfIndex -AddressFamily IPv4).ServerAddresses | Where-Object { Test-Ipv4 $_ })
    return [ordered]@{
        ifIndex       = $IfIndex
        dhcp          = [string]$ipInterface.Dhcp
        addresses     = $addresses
        defaultRoutes = $routes
        dns           = $dns
        dnsStatic     = (Test-DnsStatic $IfIndex)
    }
}

# A NameServer value in the registry means the DNS servers are static (kept at boot) rather than DHCP's.
function Test-DnsStatic {
    param([int]$IfIndex)
    $guid = [string](Get-NetAdapter -InterfaceIndex $IfIndex).InterfaceGuid
    $key = 'HKLM:\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces\' + $guid
    $item = Get-ItemProperty -LiteralPath $key -Name NameServer -ErrorAction SilentlyContinue
    return (($null -ne $item) -and ([string]$item.NameServer -ne ''))
}

# The NIC's addresses: the primary is the source address, the secondaries (and direct EIPs) never are.
function Get-WantedAddresses {
    param([hashtable]$Nic)
    $list = New-Object System.Collections.Generic.List[object]
    $list.Add(@{ IP = $Nic.Primary; PrefixLength = $Nic.PrefixLength; SkipAsSource = $false })
    foreach ($address in $Nic.Secondary) {
        $list.Add(@{ IP = $address.IP; PrefixLength = $address.PrefixLength; SkipAsSource = $true })
    }
    return $list.ToArray()
}

function Find-Address {
    param($State, [string]$IP)
    return @($State.addresses | Where-Object { $_.ip -eq $IP })
}

function Test-AddressPresent {
    param([int]$IfIndex, [string]$IP)
    $found = @(Get-NetIPAddress -InterfaceIndex $IfIndex -AddressFamily IPv4 -IPAddress $IP -ErrorAction SilentlyContinue)
    return ($found.Count -gt 0)
}

# Why the adapter differs from the desired state; in sync when the list is empty.
function Get-Differences {
    param([hashtable]$Nic, $State, [string[]]$Owned)
    $reasons = New-Object System.Collections.Generic.List[string]
    if ($State.dhcp -ne 'Disabled') {
        $reasons.Add('DHCP is enabled')
    }
    $wanted = @(Get-WantedAddresses $Nic)
    $wantedIps = @($wanted | ForEach-Object { $_.IP })
    foreach ($address in $wanted) {
        $have = @(Find-Address $State $address.IP)
        if ($have.Count -eq 0) {
            $reasons.Add(('{0}/{1} is missing' -f $address.IP, $address.PrefixLength))
            continue
        }
        if ($have[0].prefixLength -ne $address.PrefixLength) {
            # Not the agent's to fix: re-adding would drop the address. Reported, left as it is.
            Write-Log ('warning: {0} is /{1}, the metadata says /{2}; left as it is' -f $address.IP, $have[0].prefixLength, $address.PrefixLength)
        }
        if ($have[0].skipAsSource -ne $address.SkipAsSource) {
            if ($UseNetsh) {
                # netsh cannot change it on an address that is there: reported, left as it is.
                Write-Log ('warning: {0} has SkipAsSource {1}, expected {2}; netsh cannot change it, left as it is' -f $address.IP, $have[0].skipAsSource, $address.SkipAsSource)
            } else {
                $reasons.Add(('{0} has SkipAsSource {1}, expected {2}' -f $address.IP, $have[0].skipAsSource, $address.SkipAsSource))
            }
        }
    }
    foreach ($ip in $Owned) {
        if (($wantedIps -notcontains $ip) -and (@(Find-Address $State $ip).Count -gt 0)) {
            $reasons.Add(('{0} was added by eip-agent and is no longer in the metadata' -f $ip))
        }
    }
    $route = @($State.defaultRoutes | Where-Object { $_.nextHop -eq $Nic.Gateway })
    if ($route.Count -eq 0) {
        $reasons.Add(('no default route via {0}' -f $Nic.Gateway))
    } elseif ($route[0].metric -ne $Nic.RouteMetric) {
        $reasons.Add(('default route via {0} has metric {1}, expected {2}' -f $Nic.Gateway, $route[0].metric, $Nic.RouteMetric))
    }
    $wantDns = @($Nic.Dns)
    if (($wantDns.Count -gt 0) -and ((@($State.dns) -join ',') -ne ($wantDns -join ','))) {
        $reasons.Add(('DNS servers are {0}, expected {1}' -f (@($State.dns) -join ','), ($wantDns -join ',')))
    }
    if (($State.dhcp -eq 'Disabled') -and (@($State.dns).Count -gt 0) -and -not $State.dnsStatic) {
        # Left over from DHCP: shown until the next boot, then gone.
        $reasons.Add(('DNS servers {0} are not static' -f (@($State.dns) -join ',')))
    }
    return @($reasons)
}

# ---- Change steps: one change each, by ifIndex, made with the flavor's tool ----
# The PowerShell flavor calls the NetTCPIP and DnsClient cmdlets; the netsh flavor runs `netsh interface ipv4`, whose
# localized output goes to the log only. Everything else (finding, comparing, verifying, rolling back) is shared.
$UseNetsh = ($Agent.Flavor -eq 'netsh')

function ConvertTo-Netmask {
    param([int]$PrefixLength)
    $bits = [uint64]0
    if ($PrefixLength -gt 0) {
        $bits = ([uint64]4294967295 -shl (32 - $PrefixLength)) -band [uint64]4294967295
    }
    return ((24, 16, 8, 0) | ForEach-Object { [string](($bits -shr $_) -band 255) }) -join '.'
}

function Invoke-Netsh {
    param([string[]]$Arguments)
    $line = 'netsh interface ipv4 ' + ($Arguments -join ' ')
    Write-Log $line
    # netsh reports failure by its exit code; its text (localized, OEM code page) is for people, so only logged.
    $ErrorActionPreference = 'Continue'
    $output = @(& netsh.exe interface ipv4 @Arguments 2>&1 | ForEach-Object { ([string]$_).Trim() } | Where-Object { $_ -ne '' })
    $code = $LASTEXITCODE
    foreach ($text in $output) {
        Write-Log ('netsh: ' + $text)
    }
    if ($code -ne 0) {
        throw ('{0} exited {1}: {2}' -f $line, $code, ($output -join ' '))
    }
}

function Add-Address {
    param([int]$IfIndex, [string]$IP, [int]$PrefixLength, [bool]$SkipAsSource)
    if ($UseNetsh) {
        Invoke-Netsh @('add', 'address', ('name={0}' -f $IfIndex), ('address={0}' -f $IP), ('mask={0}' -f (ConvertTo-Netmask $PrefixLength)), ('skipassource={0}' -f $SkipAsSource.ToString().ToLowerInvariant()))
    } else {
        $null = New-NetIPAddress -InterfaceIndex $IfIndex -AddressFamily IPv4 -IPAddress $IP -PrefixLength $PrefixLength -SkipAsSource $SkipAsSource
    }
}

function Remove-Address {
    param([int]$IfIndex, [string]$IP)
    if ($UseNetsh) {
        Invoke-Netsh @('delete', 'address', ('name={0}' -f $IfIndex), ('address={0}' -f $IP))
    } else {
        Remove-NetIPAddress -InterfaceIndex $IfIndex -AddressFamily IPv4 -IPAddress $IP -Confirm:$false
    }
}

# netsh cannot change an address's SkipAsSource; only the PowerShell flavor calls this.
function Set-SkipAsSource {
    param([int]$IfIndex, [string]$IP, [bool]$Value)
    Set-NetIPAddress -InterfaceIndex $IfIndex -AddressFamily IPv4 -IPAddress $IP -SkipAsSource $Value
}

# $Store '' writes both stores (kept at boot); 'ActiveStore' only the running one.
function Add-DefaultRoute {
    param([int]$IfIndex, [string]$NextHop, [int]$Metric, [string]$Store)
    if ($UseNetsh) {
        $arguments = @('add', 'route', 'prefix=0.0.0.0/0', ('interface={0}' -f $IfIndex), ('nexthop={0}' -f $NextHop), ('metric={0}' -f $Metric))
        if ($Store -eq 'ActiveStore') {
            $arguments += 'store=active'
        }
        Invoke-Netsh $arguments
    } else {
        $policy = @{}
        if ($Store -ne '') {
            $policy.PolicyStore = $Store
        }
        $null = New-NetRoute -InterfaceIndex $IfIndex -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -NextHop $NextHop -RouteMetric $Metric @policy
    }
}

function Set-DefaultRouteMetric {
    param([int]$IfIndex, [string]$NextHop, [int]$Metric)
    if ($UseNetsh) {
        Invoke-Netsh @('set', 'route', 'prefix=0.0.0.0/0', ('interface={0}' -f $IfIndex), ('nexthop={0}' -f $NextHop), ('metric={0}' -f $Metric))
    } else {
        Set-NetRoute -InterfaceIndex $IfIndex -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -NextHop $NextHop -RouteMetric $Metric
    }
}

# $Store '' removes the route from both stores; 'ActiveStore' from the running one only.
function Remove-DefaultRoute {
    param([int]$IfIndex, [string]$NextHop, [string]$Store)
    if ($UseNetsh) {
        $arguments = @('delete', 'route', 'prefix=0.0.0.0/0', ('interface={0}' -f $IfIndex), ('nexthop={0}' -f $NextHop))
        if ($Store -eq 'ActiveStore') {
            $arguments += 'store=active'
        }
        Invoke-Netsh $arguments
    } else {
        $policy = @{}
        if ($Store -ne '') {
            $policy.PolicyStore = $Store
        }
        Remove-NetRoute -InterfaceIndex $IfIndex -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -NextHop $NextHop -Confirm:$false @policy
    }
}

# Static DNS servers, in order.
function Set-DnsServers {
    param([int]$IfIndex, [string[]]$Servers)
    if (-not $UseNetsh) {
        Set-DnsClientServerAddress -InterfaceIndex $IfIndex -ServerAddresses $Servers
        return
    }
    # The first server replaces the list, the others are added after it.
    Invoke-Netsh @('set', 'dnsservers', ('name={0}' -f $IfIndex), 'source=static', ('address={0}' -f $Servers[0]), 'register=primary', 'validate=no')
    for ($i = 1; $i -lt $Servers.Count; $i++) {
        Invoke-Netsh @('add', 'dnsservers', ('name={0}' -f $IfIndex), ('address={0}' -f $Servers[$i]), ('index={0}' -f ($i + 1)), 'validate=no')
    }
}

# Back to the DNS servers DHCP gives.
function Reset-DnsServers {
    param([int]$IfIndex)
    if ($UseNetsh) {
        Invoke-Netsh @('set', 'dnsservers', ('name={0}' -f $IfIndex), 'source=dhcp')
    } else {
        Set-DnsClientServerAddress -InterfaceIndex $IfIndex -ResetServerAddresses
    }
}

function Enable-Dhcp {
    param([int]$IfIndex)
    if ($UseNetsh) {
        Invoke-Netsh @('set', 'address', ('name={0}' -f $IfIndex), 'source=dhcp')
    } else {
        Set-NetIPInterface -InterfaceIndex $IfIndex -AddressFamily IPv4 -Dhcp Enabled
    }
}

# The NIC's default route via its gateway with its metric, added (or its metric set) when it differs.
function Set-DefaultRoute {
    param([hashtable]$Nic, [int]$IfIndex, [string]$Where)
    $routes = @(Get-NetRoute -InterfaceIndex $IfIndex -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -PolicyStore ActiveStore -ErrorAction SilentlyContinue | Where-Object { $_.NextHop -eq $Nic.Gateway })
    try {
        if ($routes.Count -eq 0) {
            try {
                Add-DefaultRoute -IfIndex $IfIndex -NextHop $Nic.Gateway -Metric $Nic.RouteMetric -Store ''
                $Undo.Add(@{ Kind = 'RemoveRoute'; IfIndex = $IfIndex; NextHop = $Nic.Gateway; Store = '' })
            } catch {
                # "Already exists" in the persistent store only (kept from an earlier boot): the active store needs it now.
                $stored = @(Get-NetRoute -InterfaceIndex $IfIndex -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -NextHop $Nic.Gateway -PolicyStore PersistentStore -ErrorAction SilentlyContinue)
                if ($stored.Count -eq 0) {
                    throw
                }
                Add-DefaultRoute -IfIndex $IfIndex -NextHop $Nic.Gateway -Metric $Nic.RouteMetric -Store 'ActiveStore'
                $Undo.Add(@{ Kind = 'RemoveRoute'; IfIndex = $IfIndex; NextHop = $Nic.Gateway; Store = 'ActiveStore' })
            }
            Add-Change ('{0}: add default route via {1} metric {2}' -f $Where, $Nic.Gateway, $Nic.RouteMetric)
        } elseif ([int]$routes[0].RouteMetric -ne $Nic.RouteMetric) {
            $old = [int]$routes[0].RouteMetric
            Set-DefaultRouteMetric -IfIndex $IfIndex -NextHop $Nic.Gateway -Metric $Nic.RouteMetric
            $Undo.Add(@{ Kind = 'SetRouteMetric'; IfIndex = $IfIndex; NextHop = $Nic.Gateway; Metric = $old })
            Add-Change ('{0}: default route via {1} metric {2} -> {3}' -f $Where, $Nic.Gateway, $old, $Nic.RouteMetric)
        }
    } catch {
        throw ('{0}: default route via {1} failed: {2}' -f $Where, $Nic.Gateway, $_.Exception.Message)
    }
}

# DHCP -> static without dropping RDP: the lease equals the metadata primary (checked before any change), so the same
# address comes straight back as a static one. Each change is recorded in $Undo as it is made.
function Switch-ToStatic {
    param([hashtable]$Nic, [int]$IfIndex, $Before)
    # Recorded first: whatever fails from here on, the rollback turns DHCP back on, with its lease and default route.
    $Undo.Add(@{ Kind = 'EnableDhcp'; IfIndex = $IfIndex; DnsStatic = $Before.dnsStatic; Dns = @($Before.dns) })
    if ($UseNetsh) {
        # One call: the static address and the default route via the gateway replace the lease together, so the guest
        # is never without a default route.
        Invoke-Netsh @('set', 'address', ('name={0}' -f $IfIndex), 'source=static', ('address={0}' -f $Nic.Primary), ('mask={0}' -f (ConvertTo-Netmask $Nic.PrefixLength)), ('gateway={0}' -f $Nic.Gateway), ('gwmetric={0}' -f $Nic.RouteMetric))
        $Undo.Add(@{ Kind = 'RemoveAddress'; IfIndex = $IfIndex; IP = $Nic.Primary; MacKey = '' })
        $Undo.Add(@{ Kind = 'RemoveRoute'; IfIndex = $IfIndex; NextHop = $Nic.Gateway; Store = '' })
        return
    }
    foreach ($route in @(Get-NetRoute -InterfaceIndex $IfIndex -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -PolicyStore ActiveStore -ErrorAction SilentlyContinue)) {
        Remove-DefaultRoute -IfIndex $IfIndex -NextHop ([string]$route.NextHop) -Store 'ActiveStore'
        $Undo.Add(@{ Kind = 'AddRoute'; IfIndex = $IfIndex; NextHop = [string]$route.NextHop; Metric = [int]$route.RouteMetric })
    }
    Set-NetIPInterface -InterfaceIndex $IfIndex -AddressFamily IPv4 -Dhcp Disabled
    try {
        Add-Address -IfIndex $IfIndex -IP $Nic.Primary -PrefixLength $Nic.PrefixLength -SkipAsSource $false
        $Undo.Add(@{ Kind = 'RemoveAddress'; IfIndex = $IfIndex; IP = $Nic.Primary; MacKey = '' })
    } catch {
        # Checked, not fatal, when the primary is already there as a manual (static) address.
        $manual = @(Get-NetIPAddress -InterfaceIndex $IfIndex -AddressFamily IPv4 -IPAddress $Nic.Primary -PrefixOrigin Manual -ErrorAction SilentlyContinue)
        if ($manual.Count -eq 0) {
            throw
        }
    }
}

# Makes one adapter match its NIC. Every change is recorded in $Undo before the next one starts.
function Invoke-AdapterChange {
    param([hashtable]$Nic, [int]$IfIndex, $Before, [string]$MacKey)
    $where = 'ifIndex {0} ({1})' -f $IfIndex, $Nic.Mac
    # Read before switching: DHCP-provided DNS servers disappear with DHCP.
    $dnsBefore = @($Before.dns)

    if ($Before.dhcp -ne 'Disabled') {
        try {
            Switch-ToStatic $Nic $IfIndex $Before
            Add-Change ('{0}: DHCP -> static {1}/{2}' -f $where, $Nic.Primary, $Nic.PrefixLength)
        } catch {
            throw ('{0}: switching DHCP to static {1}/{2} failed: {3}' -f $where, $Nic.Primary, $Nic.PrefixLength, $_.Exception.Message)
        }
        # The default route straight after the address: without one the guest is unreachable (RDP drops after ~20 s).
        Set-DefaultRoute $Nic $IfIndex $where
    } elseif (-not (Test-AddressPresent $IfIndex $Nic.Primary)) {
        try {
            Add-Address -IfIndex $IfIndex -IP $Nic.Primary -PrefixLength $Nic.PrefixLength -SkipAsSource $false
            $Undo.Add(@{ Kind = 'RemoveAddress'; IfIndex = $IfIndex; IP = $Nic.Primary; MacKey = '' })
            Add-Change ('{0}: add primary {1}/{2}' -f $where, $Nic.Primary, $Nic.PrefixLength)
        } catch {
            throw ('{0}: adding primary {1}/{2} failed: {3}' -f $where, $Nic.Primary, $Nic.PrefixLength, $_.Exception.Message)
        }
        Set-DefaultRoute $Nic $IfIndex $where
    } else {
        Set-DefaultRoute $Nic $IfIndex $where
    }

    foreach ($address in $Nic.Secondary) {
        $have = @(Get-NetIPAddress -InterfaceIndex $IfIndex -AddressFamily IPv4 -IPAddress $address.IP -ErrorAction SilentlyContinue)
        if ($have.Count -gt 0) {
            if ((-not [bool]$have[0].SkipAsSource) -and -not $UseNetsh) {
                try {
                    Set-SkipAsSource -IfIndex $IfIndex -IP $address.IP -Value $true
                    $Undo.Add(@{ Kind = 'SetSkipAsSource'; IfIndex = $IfIndex; IP = $address.IP; Value = $false })
                    Add-Change ('{0}: mark {1} SkipAsSource' -f $where, $address.IP)
                } catch {
                    throw ('{0}: marking {1} SkipAsSource failed: {2}' -f $where, $address.IP, $_.Exception.Message)
                }
            }
            continue
        }
        try {
            Add-Address -IfIndex $IfIndex -IP $address.IP -PrefixLength $address.PrefixLength -SkipAsSource $true
        } catch {
            # "Already exists" is checked, not fatal: what matters is that the address is there now.
            if (-not (Test-AddressPresent $IfIndex $address.IP)) {
                throw ('{0}: adding {1}/{2} failed: {3}' -f $where, $address.IP, $address.PrefixLength, $_.Exception.Message)
            }
            continue
        }
        $Undo.Add(@{ Kind = 'RemoveAddress'; IfIndex = $IfIndex; IP = $address.IP; MacKey = $MacKey })
        Set-Owned $MacKey $address.IP $true
        Add-Change ('{0}: add {1}/{2} (SkipAsSource)' -f $where, $address.IP, $address.PrefixLength)
    }

    # Only addresses this agent added are removed, and never the primary.
    $wantedIps = @(Get-WantedAddresses $Nic | ForEach-Object { $_.IP })
    foreach ($ip in @(Get-OwnedAddresses $MacKey)) {
        if (($wantedIps -contains $ip) -or ($ip -eq $Nic.Primary)) {
            continue
        }
        $have = @(Get-NetIPAddress -InterfaceIndex $IfIndex -AddressFamily IPv4 -IPAddress $ip -ErrorAction SilentlyContinue)
        if ($have.Count -gt 0) {
            try {
                Remove-Address -IfIndex $IfIndex -IP $ip
                $Undo.Add(@{ Kind = 'AddAddress'; IfIndex = $IfIndex; IP = $ip; PrefixLength = [int]$have[0].PrefixLength; MacKey = $MacKey })
                Add-Change ('{0}: remove {1} (added by eip-agent, no longer in the metadata)' -f $where, $ip)
            } catch {
                throw ('{0}: removing {1} failed: {2}' -f $where, $ip, $_.Exception.Message)
            }
        }
        Set-Owned $MacKey $ip $false
    }

    # DNS: the configured servers, else the ones the adapter had before this run, written as static servers: after
    # DHCP is disabled Windows still shows DHCP's servers, and loses them at the next boot unless they are written.
    $wantDns = @($Nic.Dns)
    if ($wantDns.Count -eq 0) {
        $wantDns = $dnsBefore
    }
    if ($wantDns.Count -gt 0) {
        $nowDns = @((Get-DnsClientServerAddress -InterfaceIndex $IfIndex -AddressFamily IPv4).ServerAddresses)
        if ((($nowDns -join ',') -ne ($wantDns -join ',')) -or -not (Test-DnsStatic $IfIndex)) {
            try {
                # Recorded first: with netsh the list is set one server at a time, so a failure can leave it half set.
                $Undo.Add(@{ Kind = 'RestoreDns'; IfIndex = $IfIndex; Dns = $dnsBefore; DnsStatic = $Before.dnsStatic })
                Set-DnsServers -IfIndex $IfIndex -Servers $wantDns
                Add-Change ('{0}: DNS servers {1}' -f $where, ($wantDns -join ','))
            } catch {
                throw ('{0}: setting DNS servers failed: {1}' -f $where, $_.Exception.Message)
            }
        }
    }
}

# Puts back what this run changed, newest first; returns $false when any step failed.
function Invoke-Rollback {
    $ok = $true
    for ($i = $Undo.Count - 1; $i -ge 0; $i--) {
        $step = $Undo[$i]
        try {
            switch ($step.Kind) {
                'RemoveAddress' {
                    if (Test-AddressPresent $step.IfIndex $step.IP) {
                        Remove-Address -IfIndex $step.IfIndex -IP $step.IP
                    }
                    if ($step.MacKey -ne '') {
                        Set-Owned $step.MacKey $step.IP $false
                    }
                }
                'AddAddress' {
                    if (-not (Test-AddressPresent $step.IfIndex $step.IP)) {
                        Add-Address -IfIndex $step.IfIndex -IP $step.IP -PrefixLength $step.PrefixLength -SkipAsSource $true
                    }
                    Set-Owned $step.MacKey $step.IP $true
                }
                'SetSkipAsSource' {
                    Set-SkipAsSource -IfIndex $step.IfIndex -IP $step.IP -Value $step.Value
                }
                'RemoveRoute' {
                    Remove-DefaultRoute -IfIndex $step.IfIndex -NextHop $step.NextHop -Store $step.Store
                }
                'AddRoute' {
                    $present = @(Get-NetRoute -InterfaceIndex $step.IfIndex -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -NextHop $step.NextHop -PolicyStore ActiveStore -ErrorAction SilentlyContinue)
                    if ($present.Count -eq 0) {
                        Add-DefaultRoute -IfIndex $step.IfIndex -NextHop $step.NextHop -Metric $step.Metric -Store 'ActiveStore'
                    }
                }
                'SetRouteMetric' {
                    Set-DefaultRouteMetric -IfIndex $step.IfIndex -NextHop $step.NextHop -Metric $step.Metric
                }
                'RestoreDns' {
                    if ($step.DnsStatic -and (@($step.Dns).Count -gt 0)) {
                        Set-DnsServers -IfIndex $step.IfIndex -Servers $step.Dns
                    } else {
                        Reset-DnsServers -IfIndex $step.IfIndex
                    }
                }
                'EnableDhcp' {
                    Enable-Dhcp -IfIndex $step.IfIndex
                    if (-not $step.DnsStatic) {
                        Reset-DnsServers -IfIndex $step.IfIndex
                    }
                }
            }
            Write-Log ('rollback: {0} on ifIndex {1}' -f $step.Kind, $step.IfIndex)
        } catch {
            $ok = $false
            $Errors.Add(('rollback {0} on ifIndex {1} failed: {2}' -f $step.Kind, $step.IfIndex, $_.Exception.Message))
        }
    }
    return $ok
}

# Every address on the right ifIndex (out of duplicate address detection), the default route, the gateway answering.
function Test-Adapter {
    param([hashtable]$Nic, [int]$IfIndex)
    $where = 'ifIndex {0} ({1})' -f $IfIndex, $Nic.Mac
    foreach ($address in @(Get-WantedAddresses $Nic)) {
        $state = 'missing'
        $detail = ''
        for ($try = 0; $try -lt 10; $try++) {
            $found = @(Get-NetIPAddress -InterfaceIndex $IfIndex -AddressFamily IPv4 -IPAddress $address.IP -ErrorAction SilentlyContinue)
            if ($found.Count -gt 0) {
                $state = [string]$found[0].AddressState
                if ($found[0].PrefixLength -ne $address.PrefixLength) {
                    $detail = ' (as /{0}, left as it is)' -f $found[0].PrefixLength
                }
            }
            if (($state -eq 'Preferred') -or ($state -eq 'Duplicate')) {
                break
            }
            Start-Sleep -Seconds 1
        }
        Add-Check 'address' ('{0}/{1} on {2}' -f $address.IP, $address.PrefixLength, $where) ($state -eq 'Preferred') ($state + $detail)
    }
    $routes = @(Get-NetRoute -InterfaceIndex $IfIndex -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0' -PolicyStore ActiveStore -ErrorAction SilentlyContinue | Where-Object { $_.NextHop -eq $Nic.Gateway })
    Add-Check 'route' ('default via {0} on {1}' -f $Nic.Gateway, $where) ($routes.Count -gt 0) ('{0} route(s)' -f $routes.Count)
    # ping.exe -S sends from this NIC's primary, so the packet leaves by this NIC (Windows' strong host model) even when
    # another NIC shares the subnet; the gateway's neighbour entry on this ifIndex proves it answered here. ICMP may be
    # filtered: the echo reply is reported, the neighbour entry decides.
    $neighbour = 'none'
    $reply = $false
    for ($try = 0; $try -lt 3; $try++) {
        $null = & ping.exe -n 1 -w 1000 -S $Nic.Primary $Nic.Gateway
        $reply = ($LASTEXITCODE -eq 0)
        $entry = @(Get-NetNeighbor -InterfaceIndex $IfIndex -AddressFamily IPv4 -IPAddress $Nic.Gateway -ErrorAction SilentlyContinue)
        if ($entry.Count -gt 0) {
            $neighbour = [string]$entry[0].State
        }
        if (($neighbour -eq 'Reachable') -or ($neighbour -eq 'Permanent')) {
            break
        }
        Start-Sleep -Seconds 1
    }
    $answered = ($neighbour -eq 'Reachable') -or ($neighbour -eq 'Permanent')
    Add-Check 'ping' ('gateway {0} from {1}' -f $Nic.Gateway, $where) $answered ('neighbour {0}, echo reply {1}' -f $neighbour, $(if ($reply) { 'yes' } else { 'no' }))
}

function Test-MetadataEndpoint {
    $detail = 'no answer'
    $ok = $false
    for ($try = 0; $try -lt 3; $try++) {
        try {
            $response = Invoke-WebRequest -Uri $Agent.MetadataUrl -UseBasicParsing -TimeoutSec 5
            $detail = 'HTTP {0}' -f [int]$response.StatusCode
            $ok = ([int]$response.StatusCode -eq 200)
        } catch {
            $detail = $_.Exception.Message
        }
        if ($ok) {
            break
        }
        Start-Sleep -Seconds 1
    }
    Add-Check 'metadata' $Agent.MetadataUrl $ok $detail
}

# ---- Main ----
try {
    $lock = New-Object -TypeName System.Threading.Mutex -ArgumentList $false, 'Global\eip-agent'
    try {
        $LockTaken = $lock.WaitOne(0)
    } catch {
        # A run that died holding the lock abandoned it; the lock is ours now.
        $abandoned = [System.Threading.AbandonedMutexException]
        if (-not (($_.Exception -is $abandoned) -or ($_.Exception.InnerException -is $abandoned))) {
            throw
        }
        $LockTaken = $true
    }
} catch {
    $Errors.Add(('cannot take the eip-agent lock: {0}' -f $_.Exception.Message))
    Complete-Run $Exit.Error 'error'
}
if (-not $LockTaken) {
    $Errors.Add('another eip-agent run is in progress')
    Complete-Run $Exit.Busy 'busy'
}

try {
    if (($Mode -eq 'Apply') -and -not (Test-Administrator)) {
        $Errors.Add('changing adapters needs Administrator or SYSTEM')
        Complete-Run $Exit.Error 'error'
    }

    # 1. Resolve MAC -> ifIndex for every NIC; touch nothing unless each MAC matches exactly one adapter.
    $work = New-Object System.Collections.Generic.List[object]
    foreach ($entry in $Nics) {
        $macKey = ConvertTo-MacKey $entry.Mac
        $adapters = @(Get-NetAdapter | Where-Object { (ConvertTo-MacKey ([string]$_.MacAddress)) -eq $macKey })
        if ($adapters.Count -ne 1) {
            $Errors.Add(('{0} adapter(s) have MAC {1}; expected exactly one' -f $adapters.Count, $entry.Mac))
            Add-Check 'link' $entry.Mac $false ('{0} adapter(s) match' -f $adapters.Count)
            continue
        }
        $work.Add(@{ Nic = $entry; IfIndex = [int]$adapters[0].ifIndex; MacKey = $macKey })
    }
    if ($Errors.Count -gt 0) {
        Complete-Run $Exit.NotFound 'adapter-not-found'
    }

    # 2. Snapshot the current state of every adapter before anything changes.
    $snapshot = New-Object System.Collections.Generic.List[object]
    foreach ($item in $work) {
        $item.Before = Get-AdapterState $item.IfIndex
        $item.Differences = @(Get-Differences $item.Nic $item.Before @(Get-OwnedAddresses $item.MacKey))
        $snapshot.Add([ordered]@{ mac = $item.Nic.Mac; state = $item.Before })
        Add-Check 'link' ('{0} is ifIndex {1}' -f $item.Nic.Mac, $item.IfIndex) $true ('{0} difference(s)' -f $item.Differences.Count)
    }
    $pending = @($work | Where-Object { $_.Differences.Count -gt 0 })

    if ($Mode -eq 'Verify') {
        foreach ($item in $work) {
            foreach ($reason in $item.Differences) {
                Add-Check 'script' ('ifIndex {0} ({1})' -f $item.IfIndex, $item.Nic.Mac) $false $reason
            }
            Test-Adapter $item.Nic $item.IfIndex
        }
        Test-MetadataEndpoint
        if (@($Checks | Where-Object { -not $_.ok }).Count -gt 0) {
            Complete-Run $Exit.NotAsDesired 'not-as-desired'
        }
        Complete-Run $Exit.InSync 'in-sync'
    }
    if ($pending.Count -eq 0) {
        Complete-Run $Exit.InSync 'in-sync'
    }

    # A DHCP lease that is not the metadata primary would be lost by going static: refuse before any change.
    foreach ($item in $pending) {
        if ($item.Before.dhcp -eq 'Disabled') {
            continue
        }
        $lease = @($item.Before.addresses | Where-Object { $_.origin -eq 'Dhcp' } | ForEach-Object { $_.ip })
        if (($lease.Count -gt 0) -and ($lease -notcontains $item.Nic.Primary)) {
            $Errors.Add(('ifIndex {0} ({1}) holds DHCP lease {2}, but the metadata primary is {3}; not switching it to static' -f $item.IfIndex, $item.Nic.Mac, ($lease -join ','), $item.Nic.Primary))
        }
    }
    if ($Errors.Count -gt 0) {
        Complete-Run $Exit.Refused 'refused'
    }

    Initialize-StateDir
    Set-Content -LiteralPath (Join-Path $StateDir 'snapshot.json') -Value (ConvertTo-Json -InputObject $snapshot.ToArray() -Depth 6) -Encoding ASCII
    foreach ($item in $pending) {
        Write-Log ('ifIndex {0} ({1}): {2}' -f $item.IfIndex, $item.Nic.Mac, ($item.Differences -join '; '))
    }
} catch {
    $Errors.Add(('before any change: {0}' -f $_.Exception.Message))
    Complete-Run $Exit.Error 'error'
}

# 3. Change what differs, primary NIC first; any failure restores the snapshot.
$failed = $false
try {
    foreach ($item in $pending) {
        Invoke-AdapterChange $item.Nic $item.IfIndex $item.Before $item.MacKey
    }
} catch {
    $Errors.Add($_.Exception.Message)
    $failed = $true
}

# 4. Verify: addresses, default routes, gateways, the metadata endpoint.
if (-not $failed) {
    try {
        foreach ($item in $work) {
            Test-Adapter $item.Nic $item.IfIndex
        }
        Test-MetadataEndpoint
        $failed = (@($Checks | Where-Object { -not $_.ok }).Count -gt 0)
    } catch {
        $Errors.Add(('verification: {0}' -f $_.Exception.Message))
        $failed = $true
    }
}
if (-not $failed) {
    Complete-Run $Exit.Changed 'changed'
}
if (Invoke-Rollback) {
    Complete-Run $Exit.RolledBack 'rolled-back'
}
Complete-Run $Exit.RollbackFailed 'rollback-failed'
