// A powershell.exe stand-in for the tests: the real PowerShell engine (Microsoft.PowerShell.SDK) with the emulated
// Windows network stack (EIP_EMULATION_MODULE) imported before the script runs. The command line is powershell.exe's
// (-NoProfile -NonInteractive -ExecutionPolicy Bypass -File SCRIPT ARGS), and so are the exit code and stdout.
// EIP_EMULATION_CODEPAGE makes stdout use that code page, as a Windows console does (936 on a zh-CN guest).
using System.Management.Automation.Runspaces;
using System.Text;

Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
var codePage = Environment.GetEnvironmentVariable("EIP_EMULATION_CODEPAGE");
if (!string.IsNullOrEmpty(codePage))
{
    var encoding = Encoding.GetEncoding(int.Parse(codePage));
    Console.OutputEncoding = encoding;
}
var state = InitialSessionState.CreateDefault2();
var module = Environment.GetEnvironmentVariable("EIP_EMULATION_MODULE");
if (!string.IsNullOrEmpty(module)) state.ImportPSModule(new[] { module });
return Microsoft.PowerShell.ConsoleShell.Start(state, string.Empty, string.Empty, args);
