# Managed by eip-agent: registers the scheduled task that runs the agent as SYSTEM.
# Idempotent: registering again replaces the task with the same definition (Register-ScheduledTask -Force).
# Triggers: at startup, and every 5 minutes (an at-startup trigger cannot repeat, so a daily trigger
# repeats for one day, every day: no infinite repetition duration). One instance at a time, 10 minutes at most.
# Exit codes: 0 registered, 1 error. stdout: one line of JSON.
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

$Task = @{
    Name             = 'eip-agent'
    Node             = 'C:\Program Files\nodejs\node.exe'
    Agent            = 'C:\ProgramData\eip-agent\eip-agent.js'
    Arguments        = 'apply --target windows --windows-flavor powershell --skip-failed'
    WorkingDirectory = 'C:\ProgramData\eip-agent\'
    IntervalMinutes  = 5
    TimeLimitMinutes = 10
}

try {
    # Only SYSTEM and Administrators may write where the task's scripts, state and log live (SIDs: no localized names).
    $stateDir = Join-Path $env:ProgramData 'eip-agent'
    $null = New-Item -ItemType Directory -Path $stateDir -Force
    & icacls.exe $stateDir /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' '*S-1-5-32-545:(OI)(CI)RX' | Out-Null
    if ($LASTEXITCODE -ne 0) {
        throw ('icacls {0} failed with exit code {1}' -f $stateDir, $LASTEXITCODE)
    }
    $action = New-ScheduledTaskAction -Execute $Task.Node -Argument ('"{0}" {1}' -f $Task.Agent, $Task.Arguments) -WorkingDirectory $Task.WorkingDirectory
    $atStartup = New-ScheduledTaskTrigger -AtStartup
    $repeat = New-ScheduledTaskTrigger -Once -At ([datetime]::Today) -RepetitionInterval (New-TimeSpan -Minutes $Task.IntervalMinutes) -RepetitionDuration (New-TimeSpan -Days 1)
    $everyFewMinutes = New-ScheduledTaskTrigger -Daily -At ([datetime]::Today)
    $everyFewMinutes.Repetition = $repeat.Repetition
    # S-1-5-18 is LocalSystem; its SID does not depend on the display language.
    $principal = New-ScheduledTaskPrincipal -UserId 'S-1-5-18' -LogonType ServiceAccount -RunLevel Highest
    $settings = New-ScheduledTaskSettingsSet -MultipleInstances IgnoreNew -ExecutionTimeLimit (New-TimeSpan -Minutes $Task.TimeLimitMinutes) -StartWhenAvailable -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
    $existing = Get-ScheduledTask -TaskName $Task.Name -TaskPath '\' -ErrorAction SilentlyContinue
    $null = Register-ScheduledTask -TaskName $Task.Name -TaskPath '\' -Action $action -Trigger @($atStartup, $everyFewMinutes) -Principal $principal -Settings $settings -Description 'eip-agent: configures ENIs, secondary private IPs and EIPs from the instance metadata' -Force
    $status = 'registered'
    if ($null -ne $existing) {
        $status = 'updated'
    }
    Write-Result ([ordered]@{ task = $Task.Name; status = $status; intervalMinutes = $Task.IntervalMinutes })
    exit 0
} catch {
    Write-Result ([ordered]@{ task = $Task.Name; status = 'error'; error = $_.Exception.Message })
    exit 1
}
