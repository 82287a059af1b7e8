# Installs eip-agent from this unpacked zip, as Administrator (Windows PowerShell 5.1 or later):
#   powershell -NoProfile -ExecutionPolicy Bypass -File .\install.ps1
# Copies node.exe and the agent into %ProgramData%\eip-agent, limits that directory to SYSTEM and Administrators,
# keeps an existing config.json, and registers the scheduled task (eip-agent install --windows-task).
$ErrorActionPreference = 'Stop'
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
  Write-Error 'eip-agent: run install.ps1 as Administrator'
  exit 1
}
$source = Split-Path -Parent $MyInvocation.MyCommand.Path
$target = Join-Path $env:ProgramData 'eip-agent'
New-Item -ItemType Directory -Force -Path $target, (Join-Path $target 'bin'), (Join-Path $target 'dist') | Out-Null
# Only SYSTEM and Administrators may write here: the task runs what is in this directory as SYSTEM.
& icacls.exe $target /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' | Out-Null
if ($LASTEXITCODE -ne 0) {
  Write-Error "eip-agent: icacls failed on $target (exit $LASTEXITCODE)"
  exit 1
}
Copy-Item -Force -Path (Join-Path $source 'node.exe'), (Join-Path $source 'package.json') -Destination $target
Copy-Item -Force -Path (Join-Path $source 'bin\eip-agent.js') -Destination (Join-Path $target 'bin')
Copy-Item -Force -Path (Join-Path $source 'dist\eip-agent.js') -Destination (Join-Path $target 'dist')
$config = Join-Path $target 'config.json'
if (-not (Test-Path -LiteralPath $config)) {
  Copy-Item -Path (Join-Path $source 'config.json') -Destination $config
}
$node = Join-Path $target 'node.exe'
$bin = Join-Path $target 'bin\eip-agent.js'
& $node $bin install --windows-task --node $node --bin $bin
exit $LASTEXITCODE
