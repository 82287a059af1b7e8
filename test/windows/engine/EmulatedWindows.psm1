# An emulated Windows network stack for running the agent's scripts in a real PowerShell engine on Linux.
# It defines the NetAdapter, NetTCPIP, DnsClient and ScheduledTasks cmdlets the scripts call, with the parameter names,
# types and parameter sets of Microsoft's documentation (a parameter the real cmdlet lacks fails here too), plus
# ping.exe, icacls.exe, Invoke-WebRequest, Start-Sleep (emulated seconds), the registry key DNS is read from and the
# Windows identity types. State lives in the JSON file $env:EIP_EMULATION_STATE; the tests build, read and reboot it.
# Documented behaviours emulated: disabling DHCP removes the leased address and its routes (the DHCP DNS servers stay
# reported until the next boot); a new address is Tentative for a second (duplicate address detection), then
# Preferred; New-NetIPAddress on a DHCP-enabled interface and "already exists" are terminating CIM errors; Get-*
# that finds nothing is a non-terminating ObjectNotFound error; Remove-* ask for confirmation (ConfirmImpact High);
# New-NetRoute without -PolicyStore writes both stores and fails when either has the route; messages follow the
# guest's culture (en-US, zh-CN). Nothing here touches the real network.

Set-StrictMode -Version 3.0

$Messages = @{
    'en-US' = @{
        Exists       = 'The object already exists.'
        RouteExists  = 'Instance MSFT_NetRoute already exists'
        NotFound     = 'No matching {0} objects found by CIM query for instances of the ROOT/StandardCimv2/{0} class on the  CIM server: {1}'
        DhcpEnabled  = 'Inconsistent parameters PolicyStore PersistentStore and Dhcp Enabled'
        NoConnection = 'Unable to connect to the remote server'
        NoAdapter    = 'No MSFT_NetAdapter objects found with property ''InterfaceIndex'' equal to ''{0}''.  Verify the value of the property and retry.'
        Access       = 'Access denied'
    }
    'zh-CN' = @{
        Exists       = '对象已存在。'
        RouteExists  = '实例 MSFT_NetRoute 已存在'
        NotFound     = '在 CIM 服务器上找不到与 CIM 查询匹配的 ROOT/StandardCimv2/{0} 类的 {0} 对象: {1}'
        DhcpEnabled  = '参数 PolicyStore PersistentStore 与 Dhcp Enabled 不一致'
        NoConnection = '无法连接到远程服务器'
        NoAdapter    = '找不到属性“InterfaceIndex”等于“{0}”的 MSFT_NetAdapter 对象。请验证该属性的值，然后重试。'
        Access       = '拒绝访问。'
    }
}

function Read-EmuState {
    return (Get-Content -LiteralPath $env:EIP_EMULATION_STATE -Raw -Encoding utf8 | ConvertFrom-Json -AsHashtable)
}

function Save-EmuState {
    param([hashtable]$State)
    $json = ConvertTo-Json -InputObject $State -Depth 12
    [System.IO.File]::WriteAllText($env:EIP_EMULATION_STATE, $json, [System.Text.UTF8Encoding]::new($false))
}

function Get-EmuMessage {
    param([hashtable]$State, [string]$Key)
    $culture = [string]$State.culture
    if (-not $Messages.ContainsKey($culture)) { $culture = 'en-US' }
    return $Messages[$culture][$Key]
}

function Add-EmuCall {
    param([hashtable]$State, [string]$Name, [hashtable]$Bound)
    $parts = @($Name)
    foreach ($key in @($Bound.Keys | Sort-Object)) {
        if ($key -in @('Confirm', 'ErrorAction', 'WhatIf', 'Verbose')) { continue }
        $value = $Bound[$key]
        if ($value -is [switch]) { $parts += "-$key"; continue }
        $parts += ('-{0} {1}' -f $key, (@($value) -join ','))
    }
    $State.calls = @($State.calls) + @($parts -join ' ')
}

function New-EmuErrorRecord {
    param([string]$Message, [string]$Id, [System.Management.Automation.ErrorCategory]$Category, [string]$Cmdlet)
    $exception = [Microsoft.Management.Infrastructure.CimException]::new($Message)
    return [System.Management.Automation.ErrorRecord]::new($exception, ('{0},{1}' -f $Id, $Cmdlet), $Category, $null)
}

# A terminating error, after the state (with the call recorded) is saved.
function Stop-Emu {
    param([hashtable]$State, $Cmdlet, [System.Management.Automation.ErrorRecord]$Record)
    Save-EmuState $State
    $Cmdlet.ThrowTerminatingError($Record)
}

# A configured fault: the call fails with the given message (terminating, as a CIM error) when its parameters match.
function Invoke-EmuFault {
    param([hashtable]$State, [string]$Name, [hashtable]$Bound, $Cmdlet)
    foreach ($fault in @($State.faults)) {
        if ($fault.cmdlet -ne $Name) { continue }
        $match = $true
        foreach ($key in @($fault.match.Keys)) {
            if ((@($Bound[$key]) -join ',') -ne [string]$fault.match[$key]) { $match = $false }
        }
        if (-not $match) { continue }
        if ($fault.ContainsKey('skip') -and [int]$fault.skip -gt 0) {
            $fault.skip = [int]$fault.skip - 1
            continue
        }
        # One failure per fault: the rollback's own calls go through unless another fault names them.
        $State.faults = @(@($State.faults) | Where-Object { -not [object]::ReferenceEquals($_, $fault) })
        Stop-Emu $State $Cmdlet (New-EmuErrorRecord ([string]$fault.message) 'Windows System Error 87' InvalidOperation $Name)
    }
}

# The start of every changing call: recorded, failed when a fault names it, refused without Administrator.
function Enter-EmuChange {
    param([hashtable]$State, [string]$Name, [hashtable]$Bound, $Cmdlet)
    Add-EmuCall $State $Name $Bound
    Invoke-EmuFault $State $Name $Bound $Cmdlet
    Assert-EmuAdmin $State $Cmdlet
    return $State
}

# Get-* that finds nothing: ObjectNotFound, handled by the caller's error preference as a real cmdlet's would be.
function Write-EmuNotFound {
    param($Cmdlet, [hashtable]$Bound, [hashtable]$State, [string]$Class, [string]$Query)
    $record = New-EmuErrorRecord ((Get-EmuMessage $State 'NotFound') -f $Class, $Query) ('CmdletizationQuery_NotFound') ObjectNotFound $Cmdlet.MyInvocation.MyCommand.Name
    $preference = if ($Bound.ContainsKey('ErrorAction')) { [string]$Bound['ErrorAction'] } else { [string]$Cmdlet.SessionState.PSVariable.GetValue('ErrorActionPreference') }
    switch ($preference) {
        'SilentlyContinue' { return }
        'Ignore' { return }
        'Stop' { $Cmdlet.ThrowTerminatingError($record) }
        default { $Cmdlet.WriteError($record) }
    }
}

function Assert-EmuAdmin {
    param([hashtable]$State, $Cmdlet)
    if (-not [bool]$State.admin) {
        Stop-Emu $State $Cmdlet (New-EmuErrorRecord (Get-EmuMessage $State 'Access') 'Windows System Error 5' PermissionDenied $Cmdlet.MyInvocation.MyCommand.Name)
    }
}

function Get-EmuAdapter {
    param([hashtable]$State, [int]$IfIndex, $Cmdlet)
    $adapter = @($State.adapters | Where-Object { [int]$_.ifIndex -eq $IfIndex })
    if ($adapter.Count -eq 0) {
        Stop-Emu $State $Cmdlet (New-EmuErrorRecord ((Get-EmuMessage $State 'NoAdapter') -f $IfIndex) 'CmdletizationQuery_NotFound_InterfaceIndex' ObjectNotFound $Cmdlet.MyInvocation.MyCommand.Name)
    }
    return $adapter[0]
}

function ConvertTo-EmuUInt32 {
    param([string]$IP)
    $bytes = [System.Net.IPAddress]::Parse($IP).GetAddressBytes()
    return ([uint32]$bytes[0] -shl 24) -bor ([uint32]$bytes[1] -shl 16) -bor ([uint32]$bytes[2] -shl 8) -bor [uint32]$bytes[3]
}

function Test-EmuSameSubnet {
    param([string]$A, [string]$B, [int]$PrefixLength)
    if ($PrefixLength -eq 0) { return $true }
    $mask = [uint32]((([uint64]4294967295) -shl (32 - $PrefixLength)) -band 4294967295)
    return (((ConvertTo-EmuUInt32 $A) -band $mask) -eq ((ConvertTo-EmuUInt32 $B) -band $mask))
}

function Get-EmuAddressState {
    param([hashtable]$State, [hashtable]$Address)
    if (@($State.duplicates) -contains $Address.ip) { return 'Duplicate' }
    if ([double]$State.clock -lt ([double]$Address.createdAt + 1)) { return 'Tentative' }
    return 'Preferred'
}

function New-EmuAddressObject {
    param([hashtable]$State, [hashtable]$Address, [string]$Store)
    $adapter = @($State.adapters | Where-Object { [int]$_.ifIndex -eq [int]$Address.ifIndex })[0]
    return [pscustomobject]@{
        PSTypeName     = 'Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetIPAddress'
        IPAddress      = [string]$Address.ip
        InterfaceIndex = [uint32]$Address.ifIndex
        InterfaceAlias = [string]$adapter.name
        AddressFamily  = 'IPv4'
        Type           = 'Unicast'
        PrefixLength   = [byte]$Address.prefixLength
        PrefixOrigin   = [string]$Address.origin
        SuffixOrigin   = $(if ($Address.origin -eq 'Dhcp') { 'Dhcp' } else { 'Manual' })
        AddressState   = (Get-EmuAddressState $State $Address)
        SkipAsSource   = [bool]$Address.skipAsSource
        PolicyStore    = $Store
    }
}

function New-EmuRouteObject {
    param([hashtable]$Route, [string]$Store)
    return [pscustomobject]@{
        PSTypeName        = 'Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetRoute'
        DestinationPrefix = [string]$Route.prefix
        NextHop           = [string]$Route.nextHop
        InterfaceIndex    = [uint32]$Route.ifIndex
        ifIndex           = [uint32]$Route.ifIndex
        RouteMetric       = [uint16]$Route.metric
        Protocol          = [string]$Route.protocol
        AddressFamily     = 'IPv4'
        Store             = $Store
    }
}

function Test-EmuFilter {
    param($Value, $Wanted)
    if ($null -eq $Wanted) { return $true }
    return (@($Wanted | ForEach-Object { [string]$_ }) -contains [string]$Value)
}

# ---- NetAdapter ----

function Get-NetAdapter {
    [CmdletBinding(DefaultParameterSetName = 'ByName')]
    param(
        [Parameter(ParameterSetName = 'ByName', Position = 0)][string[]]$Name,
        [Parameter(ParameterSetName = 'ByInstanceID')][string[]]$InterfaceDescription,
        [Parameter(ParameterSetName = 'ByIfIndex', Mandatory)][uint32[]]$InterfaceIndex,
        [switch]$IncludeHidden,
        [switch]$Physical
    )
    $state = Read-EmuState
    $found = @($state.adapters | Where-Object {
            (Test-EmuFilter $_.ifIndex $InterfaceIndex) -and (Test-EmuFilter $_.name $Name)
        })
    if ($found.Count -eq 0 -and $PSCmdlet.ParameterSetName -ne 'ByName') {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $state 'MSFT_NetAdapter' ('InterfaceIndex = {0}' -f ($InterfaceIndex -join ','))
        return
    }
    foreach ($adapter in $found) {
        [pscustomobject]@{
            PSTypeName           = 'Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetAdapter'
            Name                 = [string]$adapter.name
            InterfaceDescription = [string]$adapter.description
            ifIndex              = [uint32]$adapter.ifIndex
            InterfaceIndex       = [uint32]$adapter.ifIndex
            MacAddress           = [string]$adapter.mac
            InterfaceGuid        = [string]$adapter.guid
            Status               = [string]$adapter.status
        }
    }
}

# ---- NetTCPIP: interfaces ----

function Get-NetIPInterface {
    [CmdletBinding(DefaultParameterSetName = 'ByName')]
    param(
        [Parameter(ParameterSetName = 'ByName', Position = 0)][string[]]$InterfaceAlias,
        [Parameter(ParameterSetName = 'ByName')][uint32[]]$InterfaceIndex,
        [Parameter(ParameterSetName = 'ByName')][ValidateSet('IPv4', 'IPv6')][string[]]$AddressFamily,
        [Parameter(ParameterSetName = 'ByName')][ValidateSet('Enabled', 'Disabled')][string[]]$Dhcp,
        [Parameter(ParameterSetName = 'ByName')][string]$PolicyStore
    )
    $state = Read-EmuState
    foreach ($adapter in @($state.adapters | Where-Object { Test-EmuFilter $_.ifIndex $InterfaceIndex })) {
        [pscustomobject]@{
            PSTypeName      = 'Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetIPInterface'
            ifIndex         = [uint32]$adapter.ifIndex
            InterfaceIndex  = [uint32]$adapter.ifIndex
            InterfaceAlias  = [string]$adapter.name
            AddressFamily   = 'IPv4'
            Dhcp            = [string]$adapter.dhcp
            InterfaceMetric = [uint32]15
            ConnectionState = 'Connected'
        }
    }
}

function Add-EmuLease {
    param([hashtable]$State, [hashtable]$Adapter)
    $lease = $Adapter.lease
    if ($null -eq $lease) { return }
    $index = [int]$Adapter.ifIndex
    if (@($State.addresses | Where-Object { [int]$_.ifIndex -eq $index -and $_.ip -eq $lease.ip }).Count -eq 0) {
        $State.addresses = @($State.addresses) + @(@{ ifIndex = $index; ip = $lease.ip; prefixLength = [int]$lease.prefixLength; origin = 'Dhcp'; skipAsSource = $false; createdAt = [double]$State.clock })
    }
    if (@($State.routes | Where-Object { [int]$_.ifIndex -eq $index -and $_.nextHop -eq $lease.gateway }).Count -eq 0) {
        $State.routes = @($State.routes) + @(@{ ifIndex = $index; prefix = '0.0.0.0/0'; nextHop = $lease.gateway; metric = 0; protocol = 'Dhcp'; stores = @('ActiveStore') })
    }
    $Adapter.dnsDhcp = @($lease.dns)
}

function Set-NetIPInterface {
    [CmdletBinding(DefaultParameterSetName = 'ByName', SupportsShouldProcess)]
    param(
        [Parameter(ParameterSetName = 'ByName', Position = 0)][string[]]$InterfaceAlias,
        [Parameter(ParameterSetName = 'ByName')][uint32[]]$InterfaceIndex,
        [Parameter(ParameterSetName = 'ByName')][ValidateSet('IPv4', 'IPv6')][string[]]$AddressFamily,
        [ValidateSet('Enabled', 'Disabled')][string]$Dhcp,
        [uint32]$InterfaceMetric,
        [string]$PolicyStore
    )
    $state = Enter-EmuChange (Read-EmuState) 'Set-NetIPInterface' $PSBoundParameters $PSCmdlet
    foreach ($index in @($InterfaceIndex)) {
        $adapter = Get-EmuAdapter $state $index $PSCmdlet
        if (-not $PSBoundParameters.ContainsKey('Dhcp') -or $adapter.dhcp -eq $Dhcp) { continue }
        $adapter.dhcp = $Dhcp
        if ($Dhcp -eq 'Disabled') {
            # The lease goes, with the routes DHCP gave; the DHCP DNS servers stay reported until the next boot.
            $state.addresses = @($state.addresses | Where-Object { -not ([int]$_.ifIndex -eq $index -and $_.origin -eq 'Dhcp') })
            $state.routes = @($state.routes | Where-Object { -not ([int]$_.ifIndex -eq $index -and $_.protocol -eq 'Dhcp') })
        } else {
            Add-EmuLease $state $adapter
        }
    }
    Save-EmuState $state
}

# ---- NetTCPIP: addresses ----

function Get-NetIPAddress {
    [CmdletBinding(DefaultParameterSetName = 'Query')]
    param(
        [Parameter(Position = 0)][string[]]$IPAddress,
        [Alias('ifIndex')][uint32[]]$InterfaceIndex,
        [Alias('ifAlias')][string[]]$InterfaceAlias,
        [ValidateSet('IPv4', 'IPv6')][string[]]$AddressFamily,
        [ValidateSet('Unicast', 'Anycast')][string[]]$Type,
        [byte[]]$PrefixLength,
        [ValidateSet('Other', 'Manual', 'WellKnown', 'Dhcp', 'RouterAdvertisement')][string[]]$PrefixOrigin,
        [ValidateSet('Other', 'Manual', 'WellKnown', 'Dhcp', 'Link', 'Random')][string[]]$SuffixOrigin,
        [ValidateSet('Invalid', 'Tentative', 'Duplicate', 'Deprecated', 'Preferred')][string[]]$AddressState,
        [bool[]]$SkipAsSource,
        [string]$PolicyStore
    )
    $state = Read-EmuState
    $found = @($state.addresses | Where-Object {
            (Test-EmuFilter $_.ip $IPAddress) -and (Test-EmuFilter $_.ifIndex $InterfaceIndex) -and (Test-EmuFilter $_.origin $PrefixOrigin) -and (Test-EmuFilter $_.prefixLength $PrefixLength)
        })
    if ($found.Count -eq 0) {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $state 'MSFT_NetIPAddress' ("SELECT * FROM MSFT_NetIPAddress WHERE ((IPAddress LIKE '{0}')) AND ((InterfaceIndex = {1}))" -f ($IPAddress -join ','), ($InterfaceIndex -join ','))
        return
    }
    foreach ($address in $found) { New-EmuAddressObject $state $address 'ActiveStore' }
}

function New-NetIPAddress {
    [CmdletBinding(DefaultParameterSetName = 'ByInterfaceAlias', SupportsShouldProcess)]
    param(
        [Parameter(Mandatory, Position = 0)][string]$IPAddress,
        [Parameter(ParameterSetName = 'ByInterfaceAlias', Mandatory)][Alias('ifAlias')][string]$InterfaceAlias,
        [Parameter(ParameterSetName = 'ByInterfaceIndex', Mandatory)][Alias('ifIndex')][uint32]$InterfaceIndex,
        [string]$DefaultGateway,
        [ValidateSet('IPv4', 'IPv6')][string]$AddressFamily,
        [ValidateSet('Unicast', 'Anycast')][string]$Type,
        [byte]$PrefixLength,
        [timespan]$ValidLifetime,
        [timespan]$PreferredLifetime,
        [bool]$SkipAsSource,
        [string]$PolicyStore
    )
    $state = Enter-EmuChange (Read-EmuState) 'New-NetIPAddress' $PSBoundParameters $PSCmdlet
    $adapter = Get-EmuAdapter $state $InterfaceIndex $PSCmdlet
    if ($adapter.dhcp -eq 'Enabled') {
        Stop-Emu $state $PSCmdlet (New-EmuErrorRecord (Get-EmuMessage $state 'DhcpEnabled') 'Windows System Error 87' InvalidArgument 'New-NetIPAddress')
    }
    if (@($state.addresses | Where-Object { [int]$_.ifIndex -eq [int]$InterfaceIndex -and $_.ip -eq $IPAddress }).Count -gt 0) {
        Stop-Emu $state $PSCmdlet (New-EmuErrorRecord (Get-EmuMessage $state 'Exists') 'Windows System Error 5010' ResourceExists 'New-NetIPAddress')
    }
    $prefix = if ($PSBoundParameters.ContainsKey('PrefixLength')) { [int]$PrefixLength } else { 32 }
    $address = @{ ifIndex = [int]$InterfaceIndex; ip = $IPAddress; prefixLength = $prefix; origin = 'Manual'; skipAsSource = [bool]$SkipAsSource; createdAt = [double]$state.clock }
    $state.addresses = @($state.addresses) + @($address)
    Save-EmuState $state
    New-EmuAddressObject $state $address 'ActiveStore'
    New-EmuAddressObject $state $address 'PersistentStore'
}

function Set-NetIPAddress {
    [CmdletBinding(DefaultParameterSetName = 'Query', SupportsShouldProcess)]
    param(
        [Parameter(Position = 0)][string[]]$IPAddress,
        [Alias('ifIndex')][uint32[]]$InterfaceIndex,
        [Alias('ifAlias')][string[]]$InterfaceAlias,
        [ValidateSet('IPv4', 'IPv6')][string[]]$AddressFamily,
        [byte]$PrefixLength,
        [bool]$SkipAsSource,
        [string]$PolicyStore
    )
    $state = Enter-EmuChange (Read-EmuState) 'Set-NetIPAddress' $PSBoundParameters $PSCmdlet
    $found = @($state.addresses | Where-Object { (Test-EmuFilter $_.ip $IPAddress) -and (Test-EmuFilter $_.ifIndex $InterfaceIndex) })
    if ($found.Count -eq 0) {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $state 'MSFT_NetIPAddress' ($IPAddress -join ',')
        return
    }
    foreach ($address in $found) {
        if ($PSBoundParameters.ContainsKey('SkipAsSource')) { $address.skipAsSource = $SkipAsSource }
        if ($PSBoundParameters.ContainsKey('PrefixLength')) { $address.prefixLength = [int]$PrefixLength }
    }
    Save-EmuState $state
}

function Remove-NetIPAddress {
    [CmdletBinding(DefaultParameterSetName = 'Query', SupportsShouldProcess, ConfirmImpact = 'High')]
    param(
        [Parameter(Position = 0)][string[]]$IPAddress,
        [Alias('ifIndex')][uint32[]]$InterfaceIndex,
        [Alias('ifAlias')][string[]]$InterfaceAlias,
        [ValidateSet('IPv4', 'IPv6')][string[]]$AddressFamily,
        [byte[]]$PrefixLength,
        [string]$DefaultGateway,
        [string]$PolicyStore,
        [switch]$PassThru
    )
    $state = Read-EmuState
    $found = @($state.addresses | Where-Object { (Test-EmuFilter $_.ip $IPAddress) -and (Test-EmuFilter $_.ifIndex $InterfaceIndex) })
    if ($found.Count -eq 0) {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $state 'MSFT_NetIPAddress' ($IPAddress -join ',')
        return
    }
    if (-not $PSCmdlet.ShouldProcess(($IPAddress -join ','), 'Remove')) { return }
    $null = Enter-EmuChange $state 'Remove-NetIPAddress' $PSBoundParameters $PSCmdlet
    $state.addresses = @($state.addresses | Where-Object { -not ((Test-EmuFilter $_.ip $IPAddress) -and (Test-EmuFilter $_.ifIndex $InterfaceIndex)) })
    Save-EmuState $state
}

# ---- NetTCPIP: routes ----

function Get-NetRoute {
    [CmdletBinding(DefaultParameterSetName = 'ByName')]
    param(
        [Parameter(ParameterSetName = 'ByName', Position = 0)][string[]]$DestinationPrefix,
        [Alias('ifIndex')][uint32[]]$InterfaceIndex,
        [Alias('ifAlias')][string[]]$InterfaceAlias,
        [string[]]$NextHop,
        [ValidateSet('IPv4', 'IPv6')][string[]]$AddressFamily,
        [uint16[]]$RouteMetric,
        [ValidateSet('ActiveStore', 'PersistentStore')][string]$PolicyStore
    )
    $state = Read-EmuState
    $store = if ($PolicyStore) { $PolicyStore } else { 'ActiveStore' }
    $found = @($state.routes | Where-Object {
            (@($_.stores) -contains $store) -and (Test-EmuFilter $_.prefix $DestinationPrefix) -and (Test-EmuFilter $_.ifIndex $InterfaceIndex) -and (Test-EmuFilter $_.nextHop $NextHop)
        })
    if ($found.Count -eq 0) {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $state 'MSFT_NetRoute' ($DestinationPrefix -join ',')
        return
    }
    foreach ($route in $found) { New-EmuRouteObject $route $store }
}

# Adds a route to $Stores, into the entry of the same route in the other store if there is one; $null when one of
# $Stores already has it (the caller reports "already exists" its own way).
function Add-EmuRoute {
    param([hashtable]$State, [int]$IfIndex, [string]$Prefix, [string]$NextHop, [int]$Metric, [string[]]$Stores)
    $same = @($State.routes | Where-Object { [int]$_.ifIndex -eq $IfIndex -and $_.prefix -eq $Prefix -and $_.nextHop -eq $NextHop })
    foreach ($route in $same) {
        if (@($route.stores | Where-Object { $Stores -contains $_ }).Count -gt 0) { return $null }
    }
    if ($same.Count -gt 0) {
        $same[0].stores = @(@($same[0].stores) + $Stores)
        return $same[0]
    }
    $route = @{ ifIndex = $IfIndex; prefix = $Prefix; nextHop = $NextHop; metric = $Metric; protocol = 'NetMgmt'; stores = $Stores }
    $State.routes = @($State.routes) + @($route)
    return $route
}

function New-NetRoute {
    [CmdletBinding(DefaultParameterSetName = 'ByInterfaceIndex', SupportsShouldProcess)]
    param(
        [Parameter(Mandatory)][string]$DestinationPrefix,
        [Parameter(ParameterSetName = 'ByInterfaceAlias', Mandatory)][Alias('ifAlias')][string]$InterfaceAlias,
        [Parameter(ParameterSetName = 'ByInterfaceIndex', Mandatory)][Alias('ifIndex')][uint32]$InterfaceIndex,
        [string]$NextHop,
        [ValidateSet('IPv4', 'IPv6')][string]$AddressFamily,
        [uint16]$RouteMetric,
        [ValidateSet('ActiveStore', 'PersistentStore')][string]$PolicyStore,
        [ValidateSet('No', 'Age', 'Yes')][string]$Publish
    )
    $state = Enter-EmuChange (Read-EmuState) 'New-NetRoute' $PSBoundParameters $PSCmdlet
    $null = Get-EmuAdapter $state $InterfaceIndex $PSCmdlet
    $stores = @(if ($PolicyStore) { $PolicyStore } else { 'ActiveStore'; 'PersistentStore' })
    $route = Add-EmuRoute $state ([int]$InterfaceIndex) $DestinationPrefix $NextHop ([int]$RouteMetric) $stores
    if ($null -eq $route) {
        Stop-Emu $state $PSCmdlet (New-EmuErrorRecord (Get-EmuMessage $state 'RouteExists') 'Windows System Error 5010' ResourceExists 'New-NetRoute')
    }
    Save-EmuState $state
    foreach ($store in $stores) { New-EmuRouteObject $route $store }
}

function Set-NetRoute {
    [CmdletBinding(DefaultParameterSetName = 'ByName', SupportsShouldProcess)]
    param(
        [Parameter(Position = 0)][string[]]$DestinationPrefix,
        [Alias('ifIndex')][uint32[]]$InterfaceIndex,
        [string[]]$NextHop,
        [ValidateSet('IPv4', 'IPv6')][string[]]$AddressFamily,
        [uint16]$RouteMetric,
        [ValidateSet('ActiveStore', 'PersistentStore')][string]$PolicyStore
    )
    $state = Enter-EmuChange (Read-EmuState) 'Set-NetRoute' $PSBoundParameters $PSCmdlet
    $found = @($state.routes | Where-Object { (Test-EmuFilter $_.prefix $DestinationPrefix) -and (Test-EmuFilter $_.ifIndex $InterfaceIndex) -and (Test-EmuFilter $_.nextHop $NextHop) })
    if ($found.Count -eq 0) {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $state 'MSFT_NetRoute' ($DestinationPrefix -join ',')
        return
    }
    foreach ($route in $found) { $route.metric = [int]$RouteMetric }
    Save-EmuState $state
}

function Remove-NetRoute {
    [CmdletBinding(DefaultParameterSetName = 'ByName', SupportsShouldProcess, ConfirmImpact = 'High')]
    param(
        [Parameter(Position = 0)][string[]]$DestinationPrefix,
        [Alias('ifIndex')][uint32[]]$InterfaceIndex,
        [Alias('ifAlias')][string[]]$InterfaceAlias,
        [string[]]$NextHop,
        [ValidateSet('IPv4', 'IPv6')][string[]]$AddressFamily,
        [ValidateSet('ActiveStore', 'PersistentStore')][string]$PolicyStore,
        [switch]$PassThru
    )
    $state = Read-EmuState
    $found = @($state.routes | Where-Object { (Test-EmuFilter $_.prefix $DestinationPrefix) -and (Test-EmuFilter $_.ifIndex $InterfaceIndex) -and (Test-EmuFilter $_.nextHop $NextHop) })
    if ($PolicyStore) { $found = @($found | Where-Object { @($_.stores) -contains $PolicyStore }) }
    if ($found.Count -eq 0) {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $state 'MSFT_NetRoute' ($DestinationPrefix -join ',')
        return
    }
    if (-not $PSCmdlet.ShouldProcess(($DestinationPrefix -join ','), 'Remove')) { return }
    $null = Enter-EmuChange $state 'Remove-NetRoute' $PSBoundParameters $PSCmdlet
    foreach ($route in $found) {
        $route.stores = @(@($route.stores) | Where-Object { $PolicyStore -and $_ -ne $PolicyStore })
    }
    $state.routes = @($state.routes | Where-Object { @($_.stores).Count -gt 0 })
    Save-EmuState $state
}

function Get-NetNeighbor {
    [CmdletBinding(DefaultParameterSetName = 'ByName')]
    param(
        [Parameter(Position = 0)][string[]]$IPAddress,
        [Alias('ifIndex')][uint32[]]$InterfaceIndex,
        [Alias('ifAlias')][string[]]$InterfaceAlias,
        [ValidateSet('IPv4', 'IPv6')][string[]]$AddressFamily,
        [ValidateSet('Unreachable', 'Incomplete', 'Probe', 'Delay', 'Stale', 'Reachable', 'Permanent')][string[]]$State,
        [string]$PolicyStore
    )
    $emu = Read-EmuState
    $found = @($emu.neighbors | Where-Object { (Test-EmuFilter $_.ip $IPAddress) -and (Test-EmuFilter $_.ifIndex $InterfaceIndex) -and (Test-EmuFilter $_.state $State) })
    if ($found.Count -eq 0) {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $emu 'MSFT_NetNeighbor' ($IPAddress -join ',')
        return
    }
    foreach ($entry in $found) {
        [pscustomobject]@{
            PSTypeName       = 'Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_NetNeighbor'
            IPAddress        = [string]$entry.ip
            InterfaceIndex   = [uint32]$entry.ifIndex
            ifIndex          = [uint32]$entry.ifIndex
            LinkLayerAddress = [string]$entry.mac
            State            = [string]$entry.state
            AddressFamily    = 'IPv4'
        }
    }
}

# ---- DnsClient ----

function Get-DnsClientServerAddress {
    [CmdletBinding(DefaultParameterSetName = 'ByName')]
    param(
        [Parameter(ParameterSetName = 'ByName', Position = 0)][string[]]$InterfaceAlias,
        [Parameter(ParameterSetName = 'ByName')][uint32[]]$InterfaceIndex,
        [Parameter(ParameterSetName = 'ByName')][ValidateSet('IPv4', 'IPv6')][string[]]$AddressFamily
    )
    $state = Read-EmuState
    foreach ($adapter in @($state.adapters | Where-Object { Test-EmuFilter $_.ifIndex $InterfaceIndex })) {
        $servers = if (@($adapter.dnsStatic).Count -gt 0) { @($adapter.dnsStatic) } else { @($adapter.dnsDhcp) }
        [pscustomobject]@{
            PSTypeName      = 'Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_DNSClientServerAddress'
            InterfaceIndex  = [uint32]$adapter.ifIndex
            InterfaceAlias  = [string]$adapter.name
            AddressFamily   = 2
            ServerAddresses = [string[]]@($servers | Where-Object { $_ })
        }
    }
}

function Set-DnsClientServerAddress {
    [CmdletBinding(DefaultParameterSetName = 'ByName', SupportsShouldProcess)]
    param(
        [Parameter(ParameterSetName = 'ByName', Mandatory, Position = 0)][string[]]$InterfaceAlias,
        [Parameter(ParameterSetName = 'ByIndex', Mandatory)][uint32[]]$InterfaceIndex,
        [string[]]$ServerAddresses,
        [switch]$Validate,
        [switch]$ResetServerAddresses
    )
    $state = Enter-EmuChange (Read-EmuState) 'Set-DnsClientServerAddress' $PSBoundParameters $PSCmdlet
    foreach ($index in @($InterfaceIndex)) {
        $adapter = Get-EmuAdapter $state $index $PSCmdlet
        if ($ResetServerAddresses) { $adapter.dnsStatic = @() } else { $adapter.dnsStatic = @($ServerAddresses) }
    }
    Save-EmuState $state
}

# The registry key the scripts read to tell static DNS servers (NameServer) from DHCP ones; other paths are real.
function Get-ItemProperty {
    [CmdletBinding(DefaultParameterSetName = 'Path')]
    param(
        [Parameter(ParameterSetName = 'Path', Mandatory, Position = 0)][string[]]$Path,
        [Parameter(ParameterSetName = 'LiteralPath', Mandatory)][Alias('PSPath', 'LP')][string[]]$LiteralPath,
        [Parameter(Position = 1)][string[]]$Name
    )
    $prefix = 'HKLM:\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces\'
    $key = @($Path + $LiteralPath | Where-Object { $_ })[0]
    if (-not $key.StartsWith($prefix, [System.StringComparison]::OrdinalIgnoreCase)) {
        return Microsoft.PowerShell.Management\Get-ItemProperty @PSBoundParameters
    }
    $state = Read-EmuState
    $adapter = @($state.adapters | Where-Object { $_.guid -eq $key.Substring($prefix.Length) })
    if ($adapter.Count -eq 0) {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $state 'Registry' $key
        return
    }
    [pscustomobject]@{ NameServer = (@($adapter[0].dnsStatic) -join ','); DhcpNameServer = (@($adapter[0].dnsDhcp) -join ' ') }
}

# ---- Security: Get-Acl of the paths in the state's acls (owner and rules by SID) ----

function Get-Acl {
    [CmdletBinding(DefaultParameterSetName = 'ByPath')]
    param(
        [Parameter(ParameterSetName = 'ByPath', Position = 0)][string[]]$Path,
        [Parameter(ParameterSetName = 'ByLiteralPath', Mandatory)][Alias('PSPath', 'LP')][string[]]$LiteralPath,
        [switch]$Audit
    )
    $state = Read-EmuState
    $key = @($Path + $LiteralPath | Where-Object { $_ })[0]
    if (-not $state.acls.ContainsKey($key)) {
        $PSCmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new([System.Management.Automation.ItemNotFoundException]::new("Cannot find path '$key' because it does not exist."), 'PathNotFound,Microsoft.PowerShell.Commands.GetAclCommand', 'ObjectNotFound', $key))
    }
    $entry = $state.acls[$key]
    $acl = [pscustomobject]@{ Path = $key; OwnerSid = [string]$entry.owner; Rules = @($entry.rules) }
    $acl | Add-Member -MemberType ScriptMethod -Name GetOwner -Value { param($Type) [pscustomobject]@{ Value = $this.OwnerSid } }
    $acl | Add-Member -MemberType ScriptMethod -Name GetAccessRules -Value {
        param($IncludeExplicit, $IncludeInherited, $Type)
        foreach ($rule in $this.Rules) {
            [pscustomobject]@{
                IdentityReference = [pscustomobject]@{ Value = [string]$rule.sid }
                FileSystemRights  = [System.Security.AccessControl.FileSystemRights][string]$rule.rights
                AccessControlType = [System.Security.AccessControl.AccessControlType][string]$rule.type
                PropagationFlags  = [System.Security.AccessControl.PropagationFlags][string]$rule.propagation
            }
        }
    }
    return $acl
}

# ---- Processes and network probes ----

# ping.exe -n COUNT -w MS [-S SOURCE] TARGET: resolves the target's neighbour entry on the interface the packet
# leaves by (the source address's, as the strong host model sends; else the lowest-metric on-link interface).
function ping.exe {
    $source = $null
    $target = $args[$args.Count - 1]
    for ($i = 0; $i -lt $args.Count - 1; $i++) {
        if ($args[$i] -eq '-S') { $source = $args[$i + 1] }
    }
    $state = Read-EmuState
    $state.calls = @($state.calls) + @('ping.exe ' + ($args -join ' '))
    $candidates = @($state.addresses | Where-Object { (Get-EmuAddressState $state $_) -eq 'Preferred' -and (Test-EmuSameSubnet $_.ip $target ([int]$_.prefixLength)) })
    if ($source) { $candidates = @($candidates | Where-Object { $_.ip -eq $source }) }
    $gateway = $state.gateways[$target]
    $global:LASTEXITCODE = 1
    if ($candidates.Count -gt 0) {
        $index = [int]$candidates[0].ifIndex
        $link = @($state.adapters | Where-Object { [int]$_.ifIndex -eq $index })[0]
        $resolved = ($null -ne $gateway) -and [bool]$gateway.arp -and ($link.status -eq 'Up')
        $entry = @{ ifIndex = $index; ip = $target; mac = $(if ($resolved) { [string]$gateway.mac } else { '' }); state = $(if ($resolved) { 'Reachable' } else { 'Unreachable' }) }
        $state.neighbors = @(@($state.neighbors) | Where-Object { -not ([int]$_.ifIndex -eq $index -and $_.ip -eq $target) }) + @($entry)
        if ($resolved -and [bool]$gateway.icmp) {
            $global:LASTEXITCODE = 0
            'Reply from {0}: bytes=32 time<1ms TTL=64' -f $target
        } else {
            'Request timed out.'
        }
    } else {
        'PING: transmit failed. General failure.'
    }
    Save-EmuState $state
}

# netsh.exe interface ipv4 VERB OBJECT key=value...: the commands the netsh flavor runs, with the parameter names of
# Microsoft's netsh interface ipv4 reference (a name the real command lacks fails, as netsh says "The parameter is
# incorrect"), on the same state as the cmdlets. Interfaces are named by index (name= or interface=). Exit code 0 and
# "Ok." on success, 1 and a message in the guest's culture on failure; it needs Administrator. The default store,
# persistent, means both stores for a route. Faults: a fault whose cmdlet is 'netsh' fails the first call whose
# command line contains its match.line.
function netsh.exe {
    $state = Read-EmuState
    $line = 'netsh.exe ' + ($args -join ' ')
    $state.calls = @($state.calls) + @($line)
    $global:LASTEXITCODE = 1
    $fail = {
        param([string]$Key)
        Save-EmuState $state
        $text = switch ($Key) {
            'Exists' { Get-EmuMessage $state 'Exists' }
            'Access' { Get-EmuMessage $state 'Access' }
            'NotFound' { if ($state.culture -eq 'zh-CN') { '找不到元素。' } else { 'Element not found.' } }
            'Parameter' { if ($state.culture -eq 'zh-CN') { '参数错误。' } else { 'The parameter is incorrect.' } }
            default { $Key }
        }
        $global:LASTEXITCODE = 1
        return $text
    }
    $allowed = @{
        'set address'    = @('name', 'source', 'address', 'mask', 'gateway', 'gwmetric', 'type', 'subinterface', 'store')
        'add address'    = @('name', 'address', 'mask', 'gateway', 'gwmetric', 'type', 'subinterface', 'store', 'skipassource')
        'delete address' = @('name', 'address', 'gateway', 'store')
        'add route'      = @('prefix', 'interface', 'nexthop', 'siteprefixlength', 'metric', 'publish', 'validlifetime', 'preferredlifetime', 'store')
        'set route'      = @('prefix', 'interface', 'nexthop', 'siteprefixlength', 'metric', 'publish', 'validlifetime', 'preferredlifetime', 'store')
        'delete route'   = @('prefix', 'interface', 'nexthop', 'store')
        'set dnsservers' = @('name', 'source', 'address', 'register', 'validate')
        'add dnsservers' = @('name', 'address', 'index', 'validate')
    }
    if ($args.Count -lt 4 -or $args[0] -ne 'interface' -or $args[1] -ne 'ipv4') { return (& $fail 'Parameter') }
    $command = '{0} {1}' -f $args[2], $args[3]
    if (-not $allowed.ContainsKey($command)) { return (& $fail 'Parameter') }
    $p = @{}
    foreach ($pair in @($args | Select-Object -Skip 4)) {
        $key, $value = ([string]$pair).Split('=', 2)
        if ($null -eq $value -or $allowed[$command] -notcontains $key -or $p.ContainsKey($key)) { return (& $fail 'Parameter') }
        $p[$key] = $value
    }
    foreach ($fault in @($state.faults)) {
        if ($fault.cmdlet -eq 'netsh' -and $line.Contains([string]$fault.match.line)) {
            $state.faults = @(@($state.faults) | Where-Object { -not [object]::ReferenceEquals($_, $fault) })
            return (& $fail ([string]$fault.message))
        }
    }
    if (-not [bool]$state.admin) { return (& $fail 'Access') }
    $index = [int]$(if ($p.ContainsKey('name')) { $p['name'] } else { $p['interface'] })
    $adapter = @($state.adapters | Where-Object { [int]$_.ifIndex -eq $index })
    if ($adapter.Count -eq 0) { return (& $fail 'NotFound') }
    $adapter = $adapter[0]
    $prefixOf = {
        param([string]$Mask)
        $bits = ConvertTo-EmuUInt32 $Mask
        $count = 0
        while ($count -lt 32 -and (($bits -shl $count) -band [uint32]2147483648)) { $count++ }
        return $count
    }
    $stores = @(if ($p['store'] -eq 'active') { 'ActiveStore' } else { 'ActiveStore'; 'PersistentStore' })
    switch ($command) {
        'set address' {
            if ($p['source'] -eq 'dhcp') {
                # Back to DHCP: the static addresses and gateways go, the lease comes back.
                $adapter.dhcp = 'Enabled'
                $state.addresses = @($state.addresses | Where-Object { [int]$_.ifIndex -ne $index })
                $state.routes = @($state.routes | Where-Object { -not ([int]$_.ifIndex -eq $index -and $_.prefix -eq '0.0.0.0/0') })
                Add-EmuLease $state $adapter
            } elseif ($p['source'] -eq 'static' -and $p['address'] -and $p['mask']) {
                # Static: the address replaces every address of the interface (the lease with it), the gateway its
                # default routes.
                $adapter.dhcp = 'Disabled'
                $state.addresses = @(@($state.addresses | Where-Object { [int]$_.ifIndex -ne $index }) + @(@{ ifIndex = $index; ip = $p['address']; prefixLength = (& $prefixOf $p['mask']); origin = 'Manual'; skipAsSource = $false; createdAt = [double]$state.clock }))
                if ($p['gateway']) {
                    $state.routes = @(@($state.routes | Where-Object { -not ([int]$_.ifIndex -eq $index -and $_.prefix -eq '0.0.0.0/0') }) + @(@{ ifIndex = $index; prefix = '0.0.0.0/0'; nextHop = $p['gateway']; metric = [int]$p['gwmetric']; protocol = 'NetMgmt'; stores = @('ActiveStore', 'PersistentStore') }))
                } else {
                    $state.routes = @($state.routes | Where-Object { -not ([int]$_.ifIndex -eq $index -and $_.protocol -eq 'Dhcp') })
                }
            } else {
                return (& $fail 'Parameter')
            }
        }
        'add address' {
            if ($adapter.dhcp -eq 'Enabled') { return (& $fail (Get-EmuMessage $state 'DhcpEnabled')) }
            if (@($state.addresses | Where-Object { [int]$_.ifIndex -eq $index -and $_.ip -eq $p['address'] }).Count -gt 0) { return (& $fail 'Exists') }
            $state.addresses = @($state.addresses) + @(@{ ifIndex = $index; ip = $p['address']; prefixLength = (& $prefixOf $p['mask']); origin = 'Manual'; skipAsSource = ($p['skipassource'] -eq 'true'); createdAt = [double]$state.clock })
        }
        'delete address' {
            if (@($state.addresses | Where-Object { [int]$_.ifIndex -eq $index -and $_.ip -eq $p['address'] }).Count -eq 0) { return (& $fail 'NotFound') }
            $state.addresses = @($state.addresses | Where-Object { -not ([int]$_.ifIndex -eq $index -and $_.ip -eq $p['address']) })
        }
        'add route' {
            if ($null -eq (Add-EmuRoute $state $index $p['prefix'] $p['nexthop'] ([int]$p['metric']) $stores)) { return (& $fail 'Exists') }
        }
        'set route' {
            $found = @($state.routes | Where-Object { [int]$_.ifIndex -eq $index -and $_.prefix -eq $p['prefix'] -and $_.nextHop -eq $p['nexthop'] })
            if ($found.Count -eq 0) { return (& $fail 'NotFound') }
            foreach ($route in $found) { $route.metric = [int]$p['metric'] }
        }
        'delete route' {
            $found = @($state.routes | Where-Object { [int]$_.ifIndex -eq $index -and $_.prefix -eq $p['prefix'] -and $_.nextHop -eq $p['nexthop'] -and @(@($_.stores) | Where-Object { $stores -contains $_ }).Count -gt 0 })
            if ($found.Count -eq 0) { return (& $fail 'NotFound') }
            foreach ($route in $found) { $route.stores = @(@($route.stores) | Where-Object { $stores -notcontains $_ }) }
            $state.routes = @($state.routes | Where-Object { @($_.stores).Count -gt 0 })
        }
        'set dnsservers' {
            if ($p['source'] -eq 'dhcp') {
                $adapter.dnsStatic = @()
            } elseif ($p['source'] -eq 'static' -and $p['address']) {
                $adapter.dnsStatic = @($p['address'])
            } else {
                return (& $fail 'Parameter')
            }
        }
        'add dnsservers' {
            $list = [System.Collections.Generic.List[string]]::new([string[]]@($adapter.dnsStatic))
            if ($list.Contains($p['address'])) { return (& $fail 'Exists') }
            $at = if ($p['index']) { [Math]::Min([int]$p['index'] - 1, $list.Count) } else { $list.Count }
            $list.Insert($at, $p['address'])
            $adapter.dnsStatic = $list.ToArray()
        }
    }
    Save-EmuState $state
    $global:LASTEXITCODE = 0
    'Ok.'
}

function icacls.exe {
    $state = Read-EmuState
    $state.icacls = @($state.icacls) + @(, @($args | ForEach-Object { [string]$_ }))
    Save-EmuState $state
    $global:LASTEXITCODE = [int]$state.icaclsExitCode
}

function Invoke-WebRequest {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)][uri]$Uri,
        [switch]$UseBasicParsing,
        [int]$TimeoutSec,
        [ValidateSet('Default', 'Get', 'Head', 'Post', 'Put', 'Delete')][string]$Method
    )
    $state = Read-EmuState
    $state.calls = @($state.calls) + @('Invoke-WebRequest ' + $Uri)
    Save-EmuState $state
    if (-not [bool]$state.metadata.up) {
        $PSCmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new([System.Net.WebException]::new((Get-EmuMessage $state 'NoConnection')), 'WebCmdletWebResponseException,Microsoft.PowerShell.Commands.InvokeWebRequestCommand', 'InvalidOperation', $null))
    }
    [pscustomobject]@{ StatusCode = 200; Content = 'ins-emulated' }
}

# Emulated seconds: scripts wait for duplicate address detection and retries without slowing the tests.
function Start-Sleep {
    [CmdletBinding(DefaultParameterSetName = 'Seconds')]
    param(
        [Parameter(ParameterSetName = 'Seconds', Mandatory, Position = 0)][double]$Seconds,
        [Parameter(ParameterSetName = 'Milliseconds', Mandatory)][int]$Milliseconds
    )
    $state = Read-EmuState
    $state.clock = [double]$state.clock + $(if ($PSCmdlet.ParameterSetName -eq 'Seconds') { $Seconds } else { $Milliseconds / 1000 })
    Save-EmuState $state
}

# ---- ScheduledTasks ----

function New-ScheduledTaskAction {
    [CmdletBinding()]
    param([Parameter(Mandatory, Position = 0)][string]$Execute, [Parameter(Position = 1)][string]$Argument, [Parameter(Position = 2)][string]$WorkingDirectory, [string]$Id)
    [pscustomobject]@{ PSTypeName = 'Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/MSFT_TaskExecAction'; Execute = $Execute; Arguments = $Argument; WorkingDirectory = $WorkingDirectory; Id = $Id }
}

function ConvertTo-EmuDuration {
    param([timespan]$Span)
    return [System.Xml.XmlConvert]::ToString($Span)
}

function New-ScheduledTaskTrigger {
    [CmdletBinding(DefaultParameterSetName = 'Once')]
    param(
        [Parameter(ParameterSetName = 'Once', Mandatory)][switch]$Once,
        [Parameter(ParameterSetName = 'Daily', Mandatory)][switch]$Daily,
        [Parameter(ParameterSetName = 'AtStartup', Mandatory)][switch]$AtStartup,
        [Parameter(ParameterSetName = 'AtLogon', Mandatory)][switch]$AtLogOn,
        [Parameter(ParameterSetName = 'Once', Mandatory)][Parameter(ParameterSetName = 'Daily', Mandatory)][datetime]$At,
        [Parameter(ParameterSetName = 'Once')][timespan]$RepetitionInterval,
        [Parameter(ParameterSetName = 'Once')][timespan]$RepetitionDuration,
        [Parameter(ParameterSetName = 'Daily')][uint32]$DaysInterval,
        [Parameter(ParameterSetName = 'Once')][Parameter(ParameterSetName = 'Daily')][timespan]$RandomDelay,
        [Parameter(ParameterSetName = 'AtLogon')][string]$User
    )
    $repetition = [pscustomobject]@{ Interval = $null; Duration = $null; StopAtDurationEnd = $false }
    if ($PSBoundParameters.ContainsKey('RepetitionInterval')) { $repetition.Interval = ConvertTo-EmuDuration $RepetitionInterval }
    if ($PSBoundParameters.ContainsKey('RepetitionDuration')) { $repetition.Duration = ConvertTo-EmuDuration $RepetitionDuration }
    $kind = @{ Once = 'MSFT_TaskTimeTrigger'; Daily = 'MSFT_TaskDailyTrigger'; AtStartup = 'MSFT_TaskBootTrigger'; AtLogon = 'MSFT_TaskLogonTrigger' }[$PSCmdlet.ParameterSetName]
    [pscustomobject]@{
        PSTypeName    = 'Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/' + $kind
        Kind          = $kind
        StartBoundary = $(if ($PSBoundParameters.ContainsKey('At')) { $At.ToString('s') } else { $null })
        DaysInterval  = $(if ($PSCmdlet.ParameterSetName -eq 'Daily') { $(if ($DaysInterval) { $DaysInterval } else { 1 }) } else { $null })
        Repetition    = $repetition
        Enabled       = $true
    }
}

function New-ScheduledTaskPrincipal {
    [CmdletBinding(DefaultParameterSetName = 'User')]
    param(
        [Parameter(ParameterSetName = 'User', Mandatory, Position = 0)][string]$UserId,
        [Parameter(ParameterSetName = 'Group', Mandatory, Position = 0)][string]$GroupId,
        [Parameter(ParameterSetName = 'User')][ValidateSet('None', 'Password', 'S4U', 'Interactive', 'Group', 'ServiceAccount', 'InteractiveOrPassword')][string]$LogonType,
        [ValidateSet('Limited', 'Highest')][string]$RunLevel,
        [string]$Id
    )
    [pscustomobject]@{ PSTypeName = 'Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/MSFT_TaskPrincipal2'; UserId = $UserId; GroupId = $GroupId; LogonType = $LogonType; RunLevel = $RunLevel }
}

function New-ScheduledTaskSettingsSet {
    [CmdletBinding()]
    param(
        [ValidateSet('Parallel', 'Queue', 'IgnoreNew', 'StopExisting')][string]$MultipleInstances,
        [timespan]$ExecutionTimeLimit,
        [switch]$StartWhenAvailable,
        [switch]$AllowStartIfOnBatteries,
        [switch]$DontStopIfGoingOnBatteries,
        [switch]$RunOnlyIfNetworkAvailable,
        [switch]$Hidden,
        [switch]$DisallowDemandStart,
        [int]$RestartCount,
        [timespan]$RestartInterval,
        [int]$Priority
    )
    [pscustomobject]@{
        PSTypeName                 = 'Microsoft.Management.Infrastructure.CimInstance#Root/Microsoft/Windows/TaskScheduler/MSFT_TaskSettings3'
        MultipleInstances          = $(if ($MultipleInstances) { $MultipleInstances } else { 'IgnoreNew' })
        ExecutionTimeLimit         = $(if ($PSBoundParameters.ContainsKey('ExecutionTimeLimit')) { ConvertTo-EmuDuration $ExecutionTimeLimit } else { 'PT72H' })
        StartWhenAvailable         = [bool]$StartWhenAvailable
        DisallowStartIfOnBatteries = -not $AllowStartIfOnBatteries
        StopIfGoingOnBatteries     = -not $DontStopIfGoingOnBatteries
        RunOnlyIfNetworkAvailable  = [bool]$RunOnlyIfNetworkAvailable
    }
}

function Get-ScheduledTask {
    [CmdletBinding()]
    param([Parameter(Position = 0)][string[]]$TaskName, [Parameter(Position = 1)][string[]]$TaskPath)
    $state = Read-EmuState
    $found = @($state.tasks | Where-Object { (Test-EmuFilter $_.TaskName $TaskName) -and (Test-EmuFilter $_.TaskPath $TaskPath) })
    if ($found.Count -eq 0) {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $state 'MSFT_ScheduledTask' ($TaskName -join ',')
        return
    }
    foreach ($task in $found) { [pscustomobject]$task }
}

function Register-ScheduledTask {
    [CmdletBinding(DefaultParameterSetName = 'User')]
    param(
        [Parameter(Mandatory, Position = 0)][string]$TaskName,
        [Parameter(Position = 1)][string]$TaskPath,
        [Parameter(ParameterSetName = 'User', Mandatory)][Parameter(ParameterSetName = 'Principal', Mandatory)][object[]]$Action,
        [Parameter(ParameterSetName = 'User')][Parameter(ParameterSetName = 'Principal')][object[]]$Trigger,
        [Parameter(ParameterSetName = 'User')][Parameter(ParameterSetName = 'Principal')][object]$Settings,
        [Parameter(ParameterSetName = 'Principal', Mandatory)][object]$Principal,
        [Parameter(ParameterSetName = 'User')][string]$User,
        [Parameter(ParameterSetName = 'User')][ValidateSet('Limited', 'Highest')][string]$RunLevel,
        [string]$Description,
        [switch]$Force
    )
    $state = Read-EmuState
    Assert-EmuAdmin $state $PSCmdlet
    $path = if ($TaskPath) { $TaskPath } else { '\' }
    $existing = @($state.tasks | Where-Object { $_.TaskName -eq $TaskName -and $_.TaskPath -eq $path })
    if ($existing.Count -gt 0 -and -not $Force) {
        $PSCmdlet.ThrowTerminatingError((New-EmuErrorRecord 'Cannot create a file when that file already exists.' 'HRESULT 0x800700b7' ResourceExists 'Register-ScheduledTask'))
    }
    $task = [ordered]@{
        TaskName    = $TaskName
        TaskPath    = $path
        Description = $Description
        Actions     = @($Action)
        Triggers    = @($Trigger)
        Principal   = $Principal
        Settings    = $Settings
        State       = 'Ready'
    }
    $state.tasks = @(@($state.tasks) | Where-Object { -not ($_.TaskName -eq $TaskName -and $_.TaskPath -eq $path) }) + @($task)
    Save-EmuState $state
    [pscustomobject]$task
}

function Unregister-ScheduledTask {
    [CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'High')]
    param([Parameter(Position = 0)][string[]]$TaskName, [Parameter(Position = 1)][string[]]$TaskPath)
    $state = Read-EmuState
    $found = @($state.tasks | Where-Object { (Test-EmuFilter $_.TaskName $TaskName) -and (Test-EmuFilter $_.TaskPath $TaskPath) })
    if ($found.Count -eq 0) {
        Write-EmuNotFound $PSCmdlet $PSBoundParameters $state 'MSFT_ScheduledTask' ($TaskName -join ',')
        return
    }
    if (-not $PSCmdlet.ShouldProcess(($TaskName -join ','), 'Unregister')) { return }
    Assert-EmuAdmin $state $PSCmdlet
    $state.tasks = @(@($state.tasks) | Where-Object { -not ((Test-EmuFilter $_.TaskName $TaskName) -and (Test-EmuFilter $_.TaskPath $TaskPath)) })
    Save-EmuState $state
}

# ---- Windows identity: who runs the script (SYSTEM or an administrator, unless the state says otherwise) ----

class EmulatedWindowsIdentity {
    [string]$Name = 'NT AUTHORITY\SYSTEM'
    static [EmulatedWindowsIdentity] GetCurrent() { return [EmulatedWindowsIdentity]::new() }
}

class EmulatedWindowsPrincipal {
    EmulatedWindowsPrincipal([object]$Identity) {}
    [bool] IsInRole([object]$Role) {
        $state = Get-Content -LiteralPath $env:EIP_EMULATION_STATE -Raw | ConvertFrom-Json
        return [bool]$state.admin
    }
}

$accelerators = [psobject].Assembly.GetType('System.Management.Automation.TypeAccelerators')
$accelerators::Add('Security.Principal.WindowsIdentity', [EmulatedWindowsIdentity])
$accelerators::Add('Security.Principal.WindowsPrincipal', [EmulatedWindowsPrincipal])

Export-ModuleMember -Function @(
    'Get-NetAdapter', 'Get-NetIPInterface', 'Set-NetIPInterface', 'Get-NetIPAddress', 'New-NetIPAddress', 'Set-NetIPAddress',
    'Remove-NetIPAddress', 'Get-NetRoute', 'New-NetRoute', 'Set-NetRoute', 'Remove-NetRoute', 'Get-NetNeighbor',
    'Get-DnsClientServerAddress', 'Set-DnsClientServerAddress', 'Get-ItemProperty', 'Get-Acl', 'ping.exe', 'netsh.exe', 'icacls.exe',
    'Invoke-WebRequest', 'Start-Sleep', 'New-ScheduledTaskAction', 'New-ScheduledTaskTrigger', 'New-ScheduledTaskPrincipal',
    'New-ScheduledTaskSettingsSet', 'Get-ScheduledTask', 'Register-ScheduledTask', 'Unregister-ScheduledTask'
)
