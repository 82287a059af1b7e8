# Managed by eip-agent: removes the scheduled task. Addresses the agent configured stay as they are.
# Idempotent: a task that is not there is not an error. Exit codes: 0 removed or absent, 1 error. stdout: one line of JSON.
[CmdletBinding()]
param()

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'

function Write-Result {
    param($Result)
    # Non-ASCII (localized error text) as \uXXXX: the console writes stdout in the OEM code page, the agent reads UTF-8.
    $json = ConvertTo-Json -InputObject $Result -Compress
    [Console]::Out.WriteLine([regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value }))
}

$TaskName = 'eip-agent'

try {
    $existing = Get-ScheduledTask -TaskName $TaskName -TaskPath '\' -ErrorAction SilentlyContinue
    $status = 'absent'
    if ($null -ne $existing) {
        Unregister-ScheduledTask -TaskName $TaskName -TaskPath '\' -Confirm:$false
        $status = 'removed'
    }
    Write-Result ([ordered]@{ task = $TaskName; status = $status })
    exit 0
} catch {
    Write-Result ([ordered]@{ task = $TaskName; status = 'error'; error = $_.Exception.Message })
    exit 1
}
