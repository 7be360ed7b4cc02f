#nullable enable
// The libstdc++ fix for TorchSharp on Debian 12 and Ubuntu 22.04, shared by two users:
// - the MSBuild task WeakenVersionNeed (compiled by RoslynCodeTaskFactory from this file; see
//   SeqDsl.NativeFix.targets, which this repository's build imports and the SeqDsl package ships
//   as buildTransitive/SeqDsl.targets), patching build and publish output;
// - SeqDsl.Engine.NativeLoader (this file compiled into SeqDsl.dll with SEQDSL_RUNTIME), patching
//   a copy in the user's cache when the library is loaded from somewhere no build patched
//   (F# Interactive's #r "nuget: …", a ProjectReference from another repository).
//
// Why: TorchSharp 0.107.0's libLibTorchSharp.so lists a need for GLIBCXX_3.4.32 (GCC 13's
// libstdc++) in .gnu.version_r, only because of a symbol reference without relocations
// (std::ios_base_library_init). Debian 12 ships GCC 12's libstdc++ (up to GLIBCXX_3.4.30),
// so the dynamic loader refuses the library. Setting VER_FLG_WEAK on that one Vernaux entry
// turns the hard requirement into a tolerated one; the library then loads and runs.
//
// What: when the system libstdc++ does not define the version, set the weak flag on the
// matching Vernaux entry. Idempotent. Files are patched through a temporary copy that replaces
// them, so a hard link into the NuGet cache is never written to.
using System;
using System.IO;
using System.Text;
#if !SEQDSL_RUNTIME
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class WeakenVersionNeed : Task
{
    /// <summary>ELF shared objects to patch.</summary>
    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();
    /// <summary>The version node to make weak, e.g. GLIBCXX_3.4.32.</summary>
    [Required] public string VersionName { get; set; } = "";
    /// <summary>Soname of the library that defines it, e.g. libstdc++.so.6.</summary>
    [Required] public string Library { get; set; } = "";

    public override bool Execute()
    {
        if (ElfVersionNeed.SystemDefines(Library, VersionName))
        {
            Log.LogMessage(MessageImportance.Low, $"The system {Library} defines {VersionName}; no patch needed.");
            return true;
        }
        foreach (var item in Files)
        {
            string path = item.ItemSpec;
            try
            {
                byte[]? patched = ElfVersionNeed.Weakened(File.ReadAllBytes(path), Library, VersionName);
                if (patched == null)
                {
                    Log.LogMessage(MessageImportance.Low, $"SeqDsl: {path} needs no patch (already weak, or no need for {VersionName}).");
                    continue;
                }
                ElfVersionNeed.ReplaceFile(path, patched);
                Log.LogMessage(MessageImportance.High,
                    $"SeqDsl: marked the {VersionName} need of {path} weak (system libstdc++ lacks it).");
            }
            catch (Exception e) when (e is InvalidDataException or IndexOutOfRangeException)
            {
                Log.LogError($"SeqDsl: cannot patch {path}: {e.Message}. The layout of the TorchSharp "
                    + "native library changed; update build/WeakenVersionNeed.cs.");
            }
        }
        return !Log.HasLoggedErrors;
    }
}
#else
namespace SeqDsl.Engine;
#endif

#if SEQDSL_RUNTIME
internal
#else
public
#endif
static class ElfVersionNeed
{
    const uint ShtGnuVerdef = 0x6ffffffd;
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    /// <summary>Whether the system copy of <paramref name="library"/> (searched as the dynamic loader
    /// does for a plain soname, LD_LIBRARY_PATH first) defines <paramref name="version"/>.</summary>
    public static bool SystemDefines(string library, string version)
    {
        string? system = FindSystemLibrary(library);
        return system != null && DefinesVersion(File.ReadAllBytes(system), version);
    }

    /// <summary>The bytes of <paramref name="elf"/> with the need for <paramref name="version"/> of
    /// <paramref name="library"/> marked weak; null when there is no such need or it is weak already.</summary>
    public static byte[]? Weakened(byte[] elf, string library, string version)
    {
        long flagsOffset = FindVernauxFlags(elf, library, version);
        if (flagsOffset < 0) return null;
        ushort flags = U16(elf, flagsOffset);
        if ((flags & VerFlgWeak) != 0) return null;
        var patched = (byte[])elf.Clone();
        ushort weak = (ushort)(flags | VerFlgWeak);
        patched[flagsOffset] = (byte)(weak & 0xff);
        patched[flagsOffset + 1] = (byte)(weak >> 8);
        return patched;
    }

    /// <summary>Writes <paramref name="bytes"/> to a temporary file beside <paramref name="path"/> with the
    /// original's mode, and renames it over the original (never writing through a hard link). The original's
    /// modification time is kept, so MSBuild's incremental copy sees the file unchanged and does not copy the
    /// unpatched library over it again on the next build.</summary>
    public static void ReplaceFile(string path, byte[] bytes)
    {
        // netstandard APIs only: RoslynCodeTaskFactory compiles this file against netstandard
        string tmp = path + ".seqdsl-tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            bool existed = File.Exists(path);
            DateTime modified = existed ? File.GetLastWriteTimeUtc(path) : default;
            if (existed) File.Copy(path, tmp, true);   // keeps the file mode
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write)) fs.Write(bytes, 0, bytes.Length);
            if (existed)
            {
                File.SetLastWriteTimeUtc(tmp, modified);
                File.Replace(tmp, path, null);
            }
#if SEQDSL_RUNTIME
            else File.Move(tmp, path, true);   // another process may have written the same bytes meanwhile
#else
            else File.Move(tmp, path);
#endif
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    public static string? FindSystemLibrary(string soname)
    {
        var dirs = new System.Collections.Generic.List<string>();
        string? ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
        if (!string.IsNullOrEmpty(ld)) dirs.AddRange(ld!.Split(':'));
        dirs.AddRange(new[] {
            "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
            "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
            "/lib64", "/usr/lib64", "/lib", "/usr/lib" });
        foreach (var d in dirs)
        {
            if (d.Length == 0) continue;
            string p = Path.Combine(d, soname);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    // ---- minimal ELF64 little-endian reader -------------------------------------------

    static ushort U16(byte[] b, long o) => (ushort)(b[o] | (b[o + 1] << 8));
    static uint U32(byte[] b, long o) => (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24));
    static long U64(byte[] b, long o) => (long)((ulong)U32(b, o) | ((ulong)U32(b, o + 4) << 32));

    static string CStr(byte[] b, long o)
    {
        if (o < 0 || o >= b.Length) throw new InvalidDataException($"string offset {o} outside the file");
        long e = o;
        while (e < b.Length && b[e] != 0) e++;
        return Encoding.ASCII.GetString(b, (int)o, (int)(e - o));
    }

    struct Section { public uint Type; public long Offset; public long Size; public uint Link; public uint Info; }

    static Section[] Sections(byte[] b)
    {
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (b[4] != 2 || b[5] != 1)
            throw new InvalidDataException("not a 64-bit little-endian ELF file");
        long shoff = U64(b, 0x28);
        int shentsize = U16(b, 0x3A), shnum = U16(b, 0x3C);
        if (shentsize != 64 || shoff <= 0 || shoff + (long)shnum * 64 > b.Length)
            throw new InvalidDataException("section header table out of range");
        var s = new Section[shnum];
        for (int i = 0; i < shnum; i++)
        {
            long h = shoff + i * 64L;
            s[i] = new Section { Type = U32(b, h + 4), Offset = U64(b, h + 0x18), Size = U64(b, h + 0x20),
                                 Link = U32(b, h + 0x28), Info = U32(b, h + 0x2C) };
        }
        return s;
    }

    /// <summary>File offset of vna_flags of the Vernaux naming <paramref name="version"/> under
    /// the Verneed of <paramref name="file"/>, or -1 when there is none.</summary>
    public static long FindVernauxFlags(byte[] b, string file, string version)
    {
        var secs = Sections(b);
        bool sawVerneed = false;
        foreach (var s in secs)
        {
            if (s.Type != ShtGnuVerneed) continue;
            sawVerneed = true;
            long strtab = secs[s.Link].Offset;
            long vn = s.Offset;
            for (uint i = 0; i < s.Info; i++)
            {
                ushort cnt = U16(b, vn + 2);
                string need = CStr(b, strtab + U32(b, vn + 4));
                long aux = vn + U32(b, vn + 8);
                for (int j = 0; j < cnt; j++)
                {
                    string name = CStr(b, strtab + U32(b, aux + 8));
                    if (need == file && name == version) return aux + 4;
                    uint next = U32(b, aux + 12);
                    if (next == 0) break;
                    aux += next;
                }
                uint vnNext = U32(b, vn + 12);
                if (vnNext == 0) break;
                vn += vnNext;
            }
        }
        if (!sawVerneed) throw new InvalidDataException("no .gnu.version_r section");
        return -1;
    }

    public static bool DefinesVersion(byte[] b, string version)
    {
        foreach (var s in Sections(b))
        {
            if (s.Type != ShtGnuVerdef) continue;
            long strtab = Sections(b)[s.Link].Offset;
            long vd = s.Offset;
            for (uint i = 0; i < s.Info; i++)
            {
                long aux = vd + U32(b, vd + 12);
                if (CStr(b, strtab + U32(b, aux)) == version) return true;
                uint next = U32(b, vd + 16);
                if (next == 0) break;
                vd += next;
            }
        }
        return false;
    }
}
