<#
.SYNOPSIS
  LoRA Studio installer for Windows: a private Python environment with the PyTorch build that suits
  this computer's GPU, the studio itself, a `lora-studio` command and a Start-menu shortcut.
  No administrator rights are needed; everything goes under your own profile.

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File packaging\install.ps1              # install, or upgrade in place
  powershell -ExecutionPolicy Bypass -File packaging\install.ps1 -Cpu         # CPU build of PyTorch
  powershell -ExecutionPolicy Bypass -File packaging\install.ps1 -Uninstall   # remove it (runs and settings stay)
  powershell -ExecutionPolicy Bypass -File packaging\install.ps1 -Detect      # only say which GPU and build

.NOTES
  Same steps and choices as packaging/install.sh (Linux); see packaging/README.md. Your runs
  (%LOCALAPPDATA%\lora-studio\runs), settings and downloaded models are never touched.
#>
[CmdletBinding()]
param(
    [string]$Prefix = (Join-Path $env:LOCALAPPDATA "lora-studio\app"),
    [string]$From = (Split-Path -Parent $PSScriptRoot),
    [string]$Python = "",
    [switch]$Cpu,
    [string]$TorchIndex = $env:LORA_STUDIO_TORCH_INDEX,
    [switch]$NoShortcut,
    [switch]$Detect,
    [switch]$Uninstall
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

# Keep in step with install.sh and the README.
$TorchVersion = "2.13.0"
$BnbRequirement = "bitsandbytes>=0.45"
$PytorchIndexBase = "https://download.pytorch.org/whl"
$Marker = ".lora-studio-install"
$Manifest = "install-manifest.txt"

$DataRoot = Join-Path $env:LOCALAPPDATA "lora-studio"       # platformdirs' user_data_dir on Windows
$RunsDir = Join-Path $DataRoot "runs"
$Prefix = [System.IO.Path]::GetFullPath($Prefix).TrimEnd("\")
$Venv = Join-Path $Prefix "venv"
$VenvPython = Join-Path $Venv "Scripts\python.exe"
$Launcher = Join-Path $Prefix "bin\lora-studio.cmd"
$WindowLauncher = Join-Path $Venv "Scripts\pythonw.exe"
$StartMenu = Join-Path $env:APPDATA "Microsoft\Windows\Start Menu\Programs"
$Shortcut = Join-Path $StartMenu "LoRA Studio.lnk"

function Say([string]$Text) { Write-Host "==> $Text" }
function Note([string]$Text) { Write-Host "    $Text" }
function Die([string]$Problem, [string]$Advice = "") {
    Write-Host "error: $Problem" -ForegroundColor Red
    if ($Advice) { Write-Host "what to do: $Advice" }
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Safety: the prefix must never hold the user's runs, because -Uninstall deletes it.
# ---------------------------------------------------------------------------------------------

function Test-Prefix {
    foreach ($p in @($env:USERPROFILE, $env:LOCALAPPDATA, $env:APPDATA, $DataRoot, "$env:SystemDrive\")) {
        if ($p -and ($Prefix -ieq $p.TrimEnd("\"))) {
            Die "the prefix $Prefix would hold your own files (runs, settings)." "Choose a folder of its own, e.g. -Prefix $DataRoot\app (the default)."
        }
    }
    if (($RunsDir + "\").StartsWith($Prefix + "\", [System.StringComparison]::OrdinalIgnoreCase)) {
        Die "the prefix $Prefix contains the runs folder $RunsDir." "Choose a folder of its own, e.g. -Prefix $DataRoot\app (the default)."
    }
    if ((Test-Path $Prefix) -and -not (Test-Path (Join-Path $Prefix $Marker)) -and (Get-ChildItem $Prefix -Force | Select-Object -First 1)) {
        Die "$Prefix already holds files that this installer did not put there." "Choose an empty or new folder with -Prefix."
    }
}

# ---------------------------------------------------------------------------------------------
# The GPU, and the PyTorch build that suits it
# ---------------------------------------------------------------------------------------------

$script:GpuLines = @()
$script:CudaVersion = ""
$script:TorchTags = @("cpu")
$script:GpuAdvice = ""

function Get-TagsForCuda([string]$Version) {
    $parts = $Version.Split(".")
    $major = 0; $minor = 0
    if ($parts.Count -lt 2 -or -not [int]::TryParse($parts[0], [ref]$major) -or -not [int]::TryParse($parts[1], [ref]$minor)) { return @() }
    $n = $major * 10 + $minor
    if ($n -ge 130) { return @("cu130", "cu128", "cu126") }
    if ($n -ge 128) { return @("cu128", "cu126") }
    if ($n -ge 120) { return @("cu126") }
    return @()
}

function Find-Gpu {
    if ($Cpu) {
        $script:GpuAdvice = "-Cpu was given: the CPU build of PyTorch (training runs on the processor, slowly)."
        return
    }
    $smi = Get-Command nvidia-smi -ErrorAction SilentlyContinue
    if (-not $smi) {
        $cards = @(Get-CimInstance Win32_VideoController -ErrorAction SilentlyContinue | Where-Object { $_.Name -match "NVIDIA" })
        if ($cards.Count -gt 0) {
            $script:GpuAdvice = "An NVIDIA card ($($cards[0].Name)) is in this computer but its driver is not installed (no nvidia-smi). Install the driver from nvidia.com/drivers, restart, and run this installer again. Until then: the CPU build."
        } else {
            $script:GpuAdvice = "No NVIDIA GPU found: the CPU build of PyTorch. Training works on the processor, slowly: fine for the demo model, not for real models."
        }
        return
    }
    $script:GpuLines = @(& $smi.Source --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>$null)
    if ($script:GpuLines.Count -eq 0 -or -not $script:GpuLines[0]) {
        $script:GpuAdvice = "nvidia-smi is installed but found no working GPU (restart after a driver update; run 'nvidia-smi' to see its message). Until then: the CPU build."
        $script:GpuLines = @()
        return
    }
    $header = (& $smi.Source 2>$null) -join "`n"
    if ($header -match "CUDA Version:\s*([0-9][0-9.]*)") { $script:CudaVersion = $Matches[1] }
    $tags = @(Get-TagsForCuda $script:CudaVersion)
    if ($tags.Count -eq 0) {
        $script:GpuAdvice = "The NVIDIA driver supports only CUDA $($script:CudaVersion); PyTorch $TorchVersion needs CUDA 12 (driver 528 or newer on Windows). Update the driver and run this installer again. Until then: the CPU build."
        return
    }
    $script:TorchTags = $tags
    $script:GpuAdvice = "NVIDIA driver with CUDA $($script:CudaVersion): the CUDA build of PyTorch ($($tags[0])) and bitsandbytes for 4-bit training on the GPU."
}

function Get-TorchIndex([string]$Tag) {
    if ($TorchIndex) { return $TorchIndex }
    return "$PytorchIndexBase/$Tag"
}

function Show-Detection {
    if ($script:GpuLines.Count -gt 0) {
        foreach ($line in $script:GpuLines) { Note "GPU: $line" }
        Note "CUDA (driver): $($script:CudaVersion)"
    } else {
        Note "GPU: none found"
    }
    Note "PyTorch build: $($script:TorchTags[0]) (torch==$TorchVersion from $(Get-TorchIndex $script:TorchTags[0]))"
    Note $script:GpuAdvice
}

# ---------------------------------------------------------------------------------------------
# Python
# ---------------------------------------------------------------------------------------------

function Test-PythonOk([string[]]$Command) {
    $exe = $Command[0]; $rest = @($Command | Select-Object -Skip 1)
    & $exe @rest -c "import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 10) else 1)" 2>$null | Out-Null
    return $LASTEXITCODE -eq 0
}

function Find-Python {
    if ($Python) {
        if (-not (Test-PythonOk @($Python))) { Die "$Python is missing, older than 3.10, or cannot make virtual environments." "Install Python 3.11 from python.org (tick 'Add to PATH') and pass -Python C:\path\to\python.exe." }
        return @($Python)
    }
    # The py launcher that python.org's installer adds, newest suitable first
    if (Get-Command py -ErrorAction SilentlyContinue) {
        foreach ($v in @("3.11", "3.12", "3.13", "3.10")) {
            if (Test-PythonOk @("py", "-$v")) { return @("py", "-$v") }
        }
    }
    $python = Get-Command python -ErrorAction SilentlyContinue
    # The Microsoft Store's python.exe stub opens the Store instead of running: Test-PythonOk fails on it
    if ($python -and (Test-PythonOk @($python.Source))) { return @($python.Source) }
    Die "no Python 3.10 or newer was found." "Install Python 3.11 from https://www.python.org/downloads/windows/ (tick 'Add python.exe to PATH'), then run this installer again."
}

function Invoke-Pip([string[]]$PipArgs) {
    & $VenvPython -m pip --disable-pip-version-check @PipArgs
    return $LASTEXITCODE -eq 0
}

function Test-IndexReachable([string]$Url) {
    try {
        $r = Invoke-WebRequest -Uri ($Url.TrimEnd("/") + "/torch/") -Method Head -UseBasicParsing -TimeoutSec 15
        return $r.StatusCode -eq 200
    } catch { return $false }
}

function Install-Torch {
    $variantFile = Join-Path $Prefix "torch-variant"
    $previous = if (Test-Path $variantFile) { (Get-Content $variantFile -Raw).Trim() } else { "" }
    $constraints = Join-Path $Prefix "constraints.txt"
    foreach ($tag in $script:TorchTags) {
        $index = Get-TorchIndex $tag
        $pipArgs = @("install", "--upgrade", "-c", $constraints, "torch==$TorchVersion")
        if ($previous -and $previous -ne $tag) {
            $pipArgs += "--force-reinstall"
            Note "switching PyTorch from the $previous build to the $tag build"
        }
        if ($index -ne "pip" -and (Test-IndexReachable $index)) {
            Say "Installing PyTorch $TorchVersion, $tag build, from $index"
            if ($tag -ne "cpu") { Note "(a CUDA build is a download of about 2-3 GB: this can take a while)" }
            $pipArgs += @("--index-url", $index)
        } else {
            if ($index -ne "pip") { Write-Warning "the PyTorch index $index cannot be reached from here; trying pip's configured index instead (on Windows, PyPI's torch is the CPU build)." }
            Say "Installing PyTorch $TorchVersion (from pip's configured index)"
        }
        if (Invoke-Pip $pipArgs) { Set-Content -Path $variantFile -Value $tag; return }
        Write-Warning "PyTorch $TorchVersion is not available as a $tag build; trying the next one."
    }
    Die "PyTorch $TorchVersion could not be installed." "Check the internet connection; if your Python is very new, install Python 3.11 and pass -Python."
}

function Write-Launcher {
    New-Item -ItemType Directory -Force -Path (Split-Path $Launcher) | Out-Null
    $text = @"
@echo off
rem LoRA Studio, installed by packaging\install.ps1. No arguments: the window.
rem With arguments: the studio command (lora-studio plan demo --gpu 8GB, lora-studio doctor, ...).
if not defined STUDIO_RESOURCES set "STUDIO_RESOURCES=$Prefix\resources"
"$Venv\Scripts\studio.exe" %*
"@
    Set-Content -Path $Launcher -Value $text -Encoding ASCII
}

function Copy-Resources {
    $tmp = Join-Path $Prefix "resources.new"
    if (Test-Path $tmp) { Remove-Item -Recurse -Force $tmp }
    New-Item -ItemType Directory -Force -Path $tmp | Out-Null
    foreach ($sub in @("demo-model", "demo-data", "catalog", "icons")) {
        $src = Join-Path $From "resources\$sub"
        if (-not (Test-Path $src)) { Die "$src is missing." "Use -From with a complete source checkout." }
        Copy-Item -Recurse -Path $src -Destination (Join-Path $tmp $sub)
    }
    $corpus = Join-Path $tmp "demo-model\corpus"   # only for rebuilding the demo model
    if (Test-Path $corpus) { Remove-Item -Recurse -Force $corpus }
    $final = Join-Path $Prefix "resources"
    if (Test-Path $final) { Remove-Item -Recurse -Force $final }
    Move-Item $tmp $final
}

function New-Shortcut {
    New-Item -ItemType Directory -Force -Path $StartMenu | Out-Null
    $shell = New-Object -ComObject WScript.Shell
    $link = $shell.CreateShortcut($Shortcut)
    # pythonw: the window without a console beside it; STUDIO_RESOURCES comes from the user environment below
    $link.TargetPath = $WindowLauncher
    $link.Arguments = "-m studio"
    $link.WorkingDirectory = $env:USERPROFILE
    $link.IconLocation = (Join-Path $Prefix "resources\icons\lora-studio.ico")
    $link.Description = "Fine-tune an open language model with QLoRA on your own GPU"
    $link.Save()
}

function Install-Studio {
    $started = Get-Date
    Test-Prefix
    if (-not (Test-Path (Join-Path $From "pyproject.toml")) -or -not (Test-Path (Join-Path $From "studio"))) {
        Die "$From is not a LoRA Studio source checkout." "Run the installer from the checkout (packaging\install.ps1) or pass -From."
    }
    $upgrading = Test-Path (Join-Path $Prefix $Marker)
    $py = @(Find-Python)
    Say ("LoRA Studio installer: " + $(if ($upgrading) { "upgrading $Prefix" } else { "installing into $Prefix" }))
    Note "Python: $($py -join ' ')"
    Note "from: $From"
    Find-Gpu
    Show-Detection

    New-Item -ItemType Directory -Force -Path $Prefix | Out-Null
    New-Item -ItemType File -Force -Path (Join-Path $Prefix $Marker) | Out-Null
    if ((Test-Path $VenvPython) -and -not (& $VenvPython -c "import sys" 2>$null; $LASTEXITCODE -eq 0)) {
        Write-Warning "the environment in $Venv no longer runs (was its Python removed?): making it again."
        Remove-Item -Recurse -Force $Venv
    }
    if (-not (Test-Path $VenvPython)) {
        Say "Creating a private Python environment in $Venv"
        $exe = $py[0]; $rest = @($py | Select-Object -Skip 1)
        & $exe @rest -m venv $Venv
        if ($LASTEXITCODE -ne 0) { Die "the environment could not be made in $Venv." "Check that the disk has space, or choose another folder with -Prefix." }
    }
    Say "Updating pip"
    if (-not (Invoke-Pip @("install", "--upgrade", "--quiet", "pip"))) { Write-Warning "pip could not be updated; going on." }
    Set-Content -Path (Join-Path $Prefix "constraints.txt") -Value "torch==$TorchVersion"

    Install-Torch
    Say "Installing bitsandbytes (4-bit and 8-bit)"
    if (-not (Invoke-Pip @("install", "--upgrade", "-c", (Join-Path $Prefix "constraints.txt"), $BnbRequirement))) { Die "bitsandbytes could not be installed." "Check the internet connection and run the installer again." }
    Say "Installing LoRA Studio from $From"
    if (-not (Invoke-Pip @("install", "--upgrade", "-c", (Join-Path $Prefix "constraints.txt"), $From))) { Die "LoRA Studio could not be installed (see pip's message above)." "Check the internet connection and run the installer again." }
    Copy-Resources
    Write-Launcher
    # The Start-menu shortcut starts pythonw directly, so the resources folder is set for this user
    [Environment]::SetEnvironmentVariable("STUDIO_RESOURCES", (Join-Path $Prefix "resources"), "User")
    $entries = @()
    if (-not $NoShortcut) {
        Say "Adding LoRA Studio to the Start menu"
        New-Shortcut
        $entries += "file $Shortcut"
    }
    # `lora-studio` in new terminals: the launcher's folder on the user's PATH
    $binDir = Split-Path $Launcher
    $userPath = [Environment]::GetEnvironmentVariable("Path", "User")
    if (-not $userPath) { $userPath = "" }
    if (-not ($userPath.Split(";") -contains $binDir)) {
        [Environment]::SetEnvironmentVariable("Path", (($userPath.TrimEnd(";") + ";" + $binDir).TrimStart(";")), "User")
        $entries += "path $binDir"
    }
    $entries += "env STUDIO_RESOURCES"
    $previousManifest = Join-Path $Prefix $Manifest
    if (Test-Path $previousManifest) {  # an upgrade keeps what an earlier run added (e.g. the PATH entry)
        $entries = @((Get-Content $previousManifest | Where-Object { $_ -and -not $_.StartsWith("#") -and -not $_.StartsWith("prefix ") }) + $entries | Select-Object -Unique)
    }
    Set-Content -Path $previousManifest -Value (@("# Written by packaging\install.ps1 on $(Get-Date -Format s). -Uninstall removes these and the prefix.", "prefix $Prefix") + $entries)

    Say "Checking the installation (lora-studio doctor)"
    $env:STUDIO_RESOURCES = Join-Path $Prefix "resources"
    & $Launcher doctor
    $took = (Get-Date) - $started
    Write-Host ""
    Say ("Done in {0} min {1} s. LoRA Studio is installed." -f [int][Math]::Floor($took.TotalMinutes), $took.Seconds)
    Note "Start it from the Start menu (LoRA Studio), or in a new terminal: lora-studio"
    Note "Commands: lora-studio plan demo --gpu 8GB, lora-studio train ..., lora-studio doctor"
    Note "Your runs go to $RunsDir."
    Note "Upgrade: run this installer again.  Remove: packaging\install.ps1 -Uninstall"
}

function Uninstall-Studio {
    Test-Prefix
    if (-not (Test-Path (Join-Path $Prefix $Marker))) { Say "Nothing to remove: no LoRA Studio installation in $Prefix."; return }
    Say "Removing LoRA Studio from $Prefix"
    $manifestFile = Join-Path $Prefix $Manifest
    if (Test-Path $manifestFile) {
        foreach ($line in Get-Content $manifestFile) {
            if ($line.StartsWith("file ")) {
                $path = $line.Substring(5)
                if (Test-Path $path) { Remove-Item -Force $path; Note "removed $path" }
            } elseif ($line.StartsWith("path ")) {
                $dir = $line.Substring(5)
                $userPath = [Environment]::GetEnvironmentVariable("Path", "User")
                if ($userPath) {
                    [Environment]::SetEnvironmentVariable("Path", (($userPath.Split(";") | Where-Object { $_ -and $_ -ne $dir }) -join ";"), "User")
                    Note "removed $dir from your PATH"
                }
            } elseif ($line -eq "env STUDIO_RESOURCES") {
                [Environment]::SetEnvironmentVariable("STUDIO_RESOURCES", $null, "User")
            }
        }
    }
    Remove-Item -Recurse -Force $Prefix
    Note "removed $Prefix"
    if (Test-Path $RunsDir) { Say "Done. Your runs are still in $RunsDir." } else { Say "Done." }
}

if ($Detect) { Find-Gpu; Say "GPU detection"; Show-Detection }
elseif ($Uninstall) { Uninstall-Studio }
else { Install-Studio }
