# Managed by eip-agent: removes the scheduled task. Addresses the agent configured stay as they are.
# Idempotent: a task that is not there is not an error. Exit codes: 0 removed or absent, 1 error. stdout: one line of JSON.
[CmdletBinding()]
param()

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'

$TaskName = 'eip-agent'

try {
    $existing = Get-ScheduledTask -TaskName $TaskName -TaskPath '\' -ErrorAction SilentlyContinue
    $status = 'absent'
    if ($null -ne $existing) {
        Unregister-ScheduledTask -TaskName $TaskName -TaskPath '\' -Confirm:$false
        $status = 'removed'
    }
    [Console]::Out.WriteLine((ConvertTo-Json -InputObject ([ordered]@{ task = $TaskName; status = $status }) -Compress))
    exit 0
} catch {
    [Console]::Out.WriteLine((ConvertTo-Json -InputObject ([ordered]@{ task = $TaskName; status = 'error'; error = $_.Exception.Message }) -Compress))
    exit 1
}
