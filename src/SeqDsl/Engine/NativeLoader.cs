using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using System.Security.Cryptography;
using TorchSharp;

namespace SeqDsl.Engine;

/// <summary>
/// Makes TorchSharp's native library load on Linux systems whose libstdc++ lacks GLIBCXX_3.4.32 (Debian 12,
/// Ubuntu 22.04) when nothing patched it at build time: F# Interactive's <c>#r "nuget: SeqDsl"</c> loads it
/// straight from the NuGet cache, and a ProjectReference from another repository copies it unpatched (builds
/// inside this repository and PackageReference consumers are patched by SeqDsl.NativeFix.targets instead).
/// </summary>
/// <remarks>
/// Where TorchSharp.dll runs from the NuGet cache, the libtorch package's libraries are loaded by full path when
/// SeqDsl.dll is first used, before TorchSharp searches (<see cref="PreloadFromPackageCache"/>). The patch: only when
/// the regular load of <c>LibTorchSharp</c> has failed, and only when that library needs the missing version: a copy
/// with that one need marked weak (build/WeakenVersionNeed.cs) is written to
/// <c>$SEQDSL_NATIVE_CACHE</c>, else <c>$XDG_CACHE_HOME/seqdsl/native</c>, else <c>~/.cache/seqdsl/native</c>,
/// in a folder named by the original's SHA-256, replaced atomically and checked when read back; the libtorch
/// libraries it needs are loaded from where they are first, so the copy links against them. The NuGet cache
/// and the build output are never written to. Registered when SeqDsl.dll is first used.
/// </remarks>
public static class NativeLoader
{
    const string Library = "libstdc++.so.6";
    const string Version = "GLIBCXX_3.4.32";
    const string FileName = "libLibTorchSharp.so";
    static readonly object Gate = new();
    static string Rid => RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64";
    static IntPtr _loaded;

    /// <summary>Where the patched copy was loaded from, or null when the regular load worked.</summary>
    public static string? PatchedCopy { get; private set; }

    /// <summary>Why the last attempt to patch did not help, or null.</summary>
    public static string? LastFailure { get; private set; }

#pragma warning disable CA2255 // a module initializer is the point: it must run before TorchSharp loads its library
    [ModuleInitializer]
    internal static void Register()
#pragma warning restore CA2255
    {
        if (!OperatingSystem.IsLinux()) return;
        ShortenOpenMpSpin();
        var torchAssembly = typeof(torch).Assembly;
        PreloadFromPackageCache(torchAssembly);
        var context = AssemblyLoadContext.GetLoadContext(torchAssembly) ?? AssemblyLoadContext.Default;
        context.ResolvingUnmanagedDll += (assembly, name) =>
            assembly == torchAssembly && (name == "LibTorchSharp" || name == FileName) ? Resolve(torchAssembly) : IntPtr.Zero;
    }

    /// <summary>The spin count SeqDsl gives libgomp when the user set neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT.</summary>
    public const string SpinCount = "3000";

    /// <summary>How long libtorch's OpenMP threads spin after a parallel region, as this process started: SeqDsl's
    /// <see cref="SpinCount"/>, or the user's setting, or null (libgomp's own default).</summary>
    public static string? OpenMpSpin { get; private set; }

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr NativeGetEnv(string name);

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int NativeSetEnv(string name, string value, int overwrite);

    /// <summary>
    /// libtorch's OpenMP worker threads spin for a while after every parallel region before they sleep (libgomp's
    /// default, when OMP_WAIT_POLICY is unset, is 300,000 spins). On a small machine they then take the cores
    /// SeqDsl's SIMD kernel splits its rows over: with two threads its blocks ran at about half speed while a worker
    /// spun (E7's LSTM layer 16.2 + 16.3 ms forward + backward at 2 threads, 8.2 + 10.4 ms with 3,000 spins; libtorch's
    /// own LSTM 16.6 + 27.7 → 9.4 + 14.0 ms; AMD EPYC, AVX2, `bench simd`, docs/BENCHMARKS.md). So before libtorch (and libgomp) load,
    /// unless the user chose (OMP_WAIT_POLICY or GOMP_SPINCOUNT set), SeqDsl sets GOMP_SPINCOUNT=3000 in the
    /// process's native environment; libgomp reads it when it loads.
    /// </summary>
    private static void ShortenOpenMpSpin()
    {
        try
        {
            var own = NativeGetEnv("GOMP_SPINCOUNT");
            if (own != IntPtr.Zero) { OpenMpSpin = Marshal.PtrToStringUTF8(own); return; }
            if (NativeGetEnv("OMP_WAIT_POLICY") != IntPtr.Zero) return;
            // libgomp reads its settings once, when it loads: if something loaded it already, setting it now would be a claim
            if (File.Exists("/proc/self/maps") && File.ReadLines("/proc/self/maps").Any(l => l.Contains("libgomp"))) return;
            if (NativeSetEnv("GOMP_SPINCOUNT", SpinCount, 0) == 0) OpenMpSpin = SpinCount;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or IOException)
        {
            // no libc by that name, or /proc unreadable: leave libgomp's default
        }
    }

    static IntPtr Resolve(Assembly torchAssembly)
    {
        lock (Gate)
        {
            if (_loaded != IntPtr.Zero) return _loaded;
            try
            {
                string? original = FindOriginal(torchAssembly);
                if (original == null) { LastFailure = $"{FileName} not found beside {torchAssembly.Location}"; return IntPtr.Zero; }
                if (ElfVersionNeed.SystemDefines(Library, Version)) { LastFailure = $"the system {Library} defines {Version}; the load failed for another reason"; return IntPtr.Zero; }
                byte[] bytes = File.ReadAllBytes(original);
                byte[]? patched = ElfVersionNeed.Weakened(bytes, Library, Version);
                if (patched == null) { LastFailure = $"{original} does not need {Version} (or is patched already); the load failed for another reason"; return IntPtr.Zero; }

                string copy = WriteCopy(original, bytes, patched);
                PreloadNeeds(torchAssembly, Path.GetDirectoryName(original)!, Rid);
                if (!NativeLibrary.TryLoad(copy, out var handle)) { LastFailure = $"the patched copy {copy} did not load either"; return IntPtr.Zero; }
                PatchedCopy = copy;
                _loaded = handle;
                return handle;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or IndexOutOfRangeException)
            {
                LastFailure = e.Message;
                return IntPtr.Zero;
            }
        }
    }

    /// <summary>The unpatched library the runtime would have loaded: beside TorchSharp.dll, in its runtimes
    /// folder, in the application's native search folders, or in the TorchSharp package it came from.</summary>
    static string? FindOriginal(Assembly torchAssembly)
    {
        string rid = Rid;
        string dir = Path.GetDirectoryName(torchAssembly.Location) ?? "";
        var candidates = new List<string> { dir, Path.Combine(dir, "runtimes", rid, "native") };
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string search)
            candidates.AddRange(search.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        // …/torchsharp/<version>/lib/<tfm>/TorchSharp.dll → …/torchsharp/<version>/runtimes/<rid>/native
        candidates.Add(Path.Combine(dir, "..", "..", "runtimes", rid, "native"));
        return candidates.Select(d => Path.GetFullPath(Path.Combine(d, FileName))).FirstOrDefault(File.Exists);
    }

    static string CacheRoot()
    {
        string? own = Environment.GetEnvironmentVariable("SEQDSL_NATIVE_CACHE");
        if (!string.IsNullOrEmpty(own)) return own;
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "seqdsl", "native");
    }

    /// <summary>The patched copy, written once per original (by SHA-256) and verified byte for byte.</summary>
    static string WriteCopy(string original, byte[] bytes, byte[] patched)
    {
        string key = Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant();
        string folder = Path.Combine(CacheRoot(), key);
        string copy = Path.Combine(folder, FileName);
        if (File.Exists(copy) && File.ReadAllBytes(copy).AsSpan().SequenceEqual(patched)) return copy;
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "SOURCE"), original + Environment.NewLine);
        ElfVersionNeed.ReplaceFile(copy, patched);
        if (!File.ReadAllBytes(copy).AsSpan().SequenceEqual(patched))
            throw new IOException($"the patched copy {copy} did not read back as written");
        return copy;
    }

    static readonly string[] TorchLibraries = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    /// <summary>The folders of the libtorch package beside a TorchSharp package:
    /// <paramref name="packages"/>/libtorch-cpu-&lt;rid&gt;/&lt;version&gt;/runtimes/&lt;rid&gt;/native — the version TorchSharp-cpu
    /// of the loaded TorchSharp's version depends on first (its .nuspec in the cache), then the others newest first.</summary>
    static IEnumerable<string> LibtorchPackageDirs(string packages, string rid, string? torchSharpVersion)
    {
        string libtorchPackage = Path.Combine(packages, "libtorch-cpu-" + rid);
        if (!Directory.Exists(libtorchPackage)) return [];
        var expected = torchSharpVersion is null ? null : ExpectedLibtorchVersion(packages, torchSharpVersion);
        return Directory.GetDirectories(libtorchPackage)
                        .OrderByDescending(d => string.Equals(Path.GetFileName(d), expected, StringComparison.OrdinalIgnoreCase))
                        .ThenByDescending(d => System.Version.TryParse(Path.GetFileName(d).Split('-')[0], out var v) ? v : new System.Version(0, 0))
                        .Select(d => Path.Combine(d, "runtimes", rid, "native"));
    }

    /// <summary>The folder name two levels above TorchSharp.dll: its package version when it runs from the NuGet cache
    /// (…/torchsharp/&lt;version&gt;/lib/&lt;tfm&gt;/TorchSharp.dll); something else in other layouts, which no .nuspec
    /// matches.</summary>
    static string PackageVersion(Assembly torchAssembly) =>
        Path.GetFileName(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(torchAssembly.Location) ?? "", "..", "..")));

    /// <summary>The libtorch-cpu version TorchSharp-cpu <paramref name="torchSharpVersion"/> depends on, from its .nuspec in
    /// the package folder; null when that package is not there.</summary>
    static string? ExpectedLibtorchVersion(string packages, string torchSharpVersion)
    {
        var nuspec = Path.Combine(packages, "torchsharp-cpu", torchSharpVersion.ToLowerInvariant(), "torchsharp-cpu.nuspec");
        if (!File.Exists(nuspec)) return null;
        var m = System.Text.RegularExpressions.Regex.Match(File.ReadAllText(nuspec), @"<dependency\s+id=""libtorch-cpu""\s+version=""\[?([0-9][^"",\]\)]*)");
        return m.Success ? m.Groups[1].Value.Trim() : null;
    }

    /// <summary>Loads each of libtorch's libraries (unless mapped already) by full path from the first of
    /// <paramref name="dirs"/> that has it; returns the names none of them had.</summary>
    static List<string> LoadByPath(IReadOnlyList<string> dirs)
    {
        var mapped = File.Exists("/proc/self/maps")
            ? File.ReadLines("/proc/self/maps").Select(l => Path.GetFileName(l.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "")).ToHashSet()
            : new HashSet<string>();
        var missing = new List<string>();
        foreach (var lib in TorchLibraries)
            if (!mapped.Contains(lib) && !dirs.Any(d => File.Exists(Path.Combine(d, lib)) && NativeLibrary.TryLoad(Path.Combine(d, lib), out _)))
                missing.Add(lib);
        return missing;
    }

    /// <summary>
    /// When TorchSharp.dll runs from the NuGet cache (F# Interactive's <c>#r "nuget: …"</c>), libtorch is not beside it,
    /// and TorchSharp's first attempt to load it searches the system: where Debian's libtorch-dev is installed (it comes
    /// with python3-torch's recommended packages), that finds PyTorch 1.13's libtorch_cpu.so and libc10.so in /usr/lib,
    /// and once loaded under those names they, not the libtorch package's, satisfy every later need of "libc10.so" in
    /// the process — TorchSharp's own fallback and SeqDsl's patched copy then failed on undefined symbols (measured:
    /// an F# script on such a machine). So in that layout the libtorch package's libraries are loaded by full path
    /// first, before TorchSharp looks; an application with libtorch in its output folder is left alone.
    /// </summary>
    static void PreloadFromPackageCache(Assembly torchAssembly)
    {
        try
        {
            // …/packages/torchsharp/<version>/lib/<tfm>/TorchSharp.dll
            string dir = Path.GetDirectoryName(torchAssembly.Location) ?? "";
            if (dir.Length == 0 || File.Exists(Path.Combine(dir, "libtorch_cpu.so"))
                || File.Exists(Path.Combine(dir, "runtimes", Rid, "native", "libtorch_cpu.so"))) return;
            var version = PackageVersion(torchAssembly);
            var layout = Path.GetFullPath(Path.Combine(dir, "..", "..", ".."));
            if (!string.Equals(Path.GetFileName(layout), "torchsharp", StringComparison.OrdinalIgnoreCase)) return;
            var packages = Path.GetDirectoryName(layout)!;
            // a CUDA TorchSharp of this version in the cache too: which libtorch the script uses is not known here
            if (Directory.Exists(Path.Combine(packages, "torchsharp-cuda-linux", version))) return;
            LoadByPath(LibtorchPackageDirs(packages, Rid, version).ToList());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // nothing loaded early: TorchSharp's own search, as before
        }
    }

    /// <summary>Loads the libtorch libraries the copy links against (unless already loaded): by full path from beside
    /// the original or from the libtorch package next to the TorchSharp package, and by the regular search relative to
    /// TorchSharp only when neither has them (that search may find a system libtorch the copy cannot link against,
    /// see <see cref="PreloadFromPackageCache"/>); the copy, whose own folder holds nothing else, then resolves them by
    /// soname.</summary>
    static void PreloadNeeds(Assembly torchAssembly, string originalDir, string rid)
    {
        // …/packages/torchsharp/<v>/runtimes/<rid>/native → …/packages
        string packages = Path.GetFullPath(Path.Combine(originalDir, "..", "..", "..", "..", ".."));
        foreach (var lib in LoadByPath([originalDir, .. LibtorchPackageDirs(packages, rid, PackageVersion(torchAssembly))]))
            NativeLibrary.TryLoad(lib[3..^3], torchAssembly, null, out _);
    }
}
