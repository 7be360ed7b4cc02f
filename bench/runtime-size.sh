#!/usr/bin/env bash
# The installed size of a program that predicts with SeqDsl.Runtime (ONNX Runtime, no libtorch): a fresh console
# project referencing src/SeqDsl.Runtime, published framework-dependent for linux-x64; prints the published folder's
# size, the largest files, and whether any libtorch or TorchSharp file came along. Compare: the seqdsl tool's own
# folder (libtorch included).
#   bash bench/runtime-size.sh [model.onnx]   (with a model: the program also loads it and prints its interface)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/app"
cat > "$work/app/app.csproj" <<PROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable>
    <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup>
  <ItemGroup><ProjectReference Include="$repo/src/SeqDsl.Runtime/SeqDsl.Runtime.csproj" /></ItemGroup>
</Project>
PROJ
cat > "$work/app/Program.cs" <<'CS'
if (args.Length == 0) { System.Console.WriteLine("usage: app model.onnx"); return; }
using var m = SeqDsl.Runtime.OnnxModel.Load(args[0]);
System.Console.WriteLine($"{m.Model}: {m.Info.Kind}, input {m.Interface.InputKind} width {m.Interface.InputWidth}");
CS
# outside the repository: its Directory.Build/Packages files do not apply; the repo's package versions are named here
cp "$repo/Directory.Packages.props" "$work/Directory.Packages.props"
cat > "$work/Directory.Build.props" <<'PROPS'
<Project><PropertyGroup><ManagePackageVersionsCentrally>true</ManagePackageVersionsCentrally></PropertyGroup></Project>
PROPS
sed -i 's|<ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>||' "$work/app/app.csproj"
dotnet publish "$work/app" -c Release -r linux-x64 --self-contained false -o "$work/out" -v q -nologo > "$work/publish.log" 2>&1 || { cat "$work/publish.log"; exit 1; }
echo "published (framework-dependent, linux-x64): $(du -sh "$work/out" | cut -f1) in $(find "$work/out" -type f | wc -l) files"
echo "largest files:"
find "$work/out" -type f -printf '%s %P\n' | sort -rn | head -5 | awk '{ printf "  %6.1f MiB  %s\n", $1 / 1048576, $2 }'
if find "$work/out" -iname '*torch*' | grep -q .; then echo "libtorch or TorchSharp files found:"; find "$work/out" -iname '*torch*'; exit 1; fi
echo "no libtorch or TorchSharp file"
if [ $# -gt 0 ]; then dotnet "$work/out/app.dll" "$1"; fi
tool="$repo/src/SeqDsl.Cli/bin/Release/net10.0"
[ -d "$tool" ] && echo "for comparison, the seqdsl tool's Release folder (libtorch included): $(du -sh "$tool" | cut -f1)"
exit 0
