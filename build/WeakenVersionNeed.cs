#nullable enable
// MSBuild task (compiled by RoslynCodeTaskFactory, see Directory.Build.targets).
//
// Why: TorchSharp 0.107.0's libLibTorchSharp.so lists a need for GLIBCXX_3.4.32 (GCC 13's
// libstdc++) in .gnu.version_r, only because of a symbol reference without relocations
// (std::ios_base_library_init). Debian 12 ships GCC 12's libstdc++ (up to GLIBCXX_3.4.30),
// so the dynamic loader refuses the library. Setting VER_FLG_WEAK on that one Vernaux entry
// turns the hard requirement into a tolerated one; the library then loads and runs.
//
// What: for each given ELF file, when the system libstdc++ does not define the version,
// set the weak flag on the matching Vernaux entry. Idempotent. The file is patched through a
// temporary copy that replaces it, so a hard link into the NuGet cache is never written to.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class WeakenVersionNeed : Task
{
    const uint ShtGnuVerdef = 0x6ffffffd;
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    /// <summary>ELF shared objects to patch.</summary>
    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();
    /// <summary>The version node to make weak, e.g. GLIBCXX_3.4.32.</summary>
    [Required] public string VersionName { get; set; } = "";
    /// <summary>Soname of the library that defines it, e.g. libstdc++.so.6.</summary>
    [Required] public string Library { get; set; } = "";

    public override bool Execute()
    {
        string? system = FindSystemLibrary(Library);
        if (system != null)
        {
            byte[] sys = File.ReadAllBytes(system);
            if (DefinesVersion(sys, VersionName))
            {
                Log.LogMessage(MessageImportance.Low,
                    $"{system} defines {VersionName}; no patch needed.");
                return true;
            }
        }
        foreach (var item in Files)
        {
            string path = item.ItemSpec;
            try
            {
                PatchFile(path);
            }
            catch (InvalidDataException e)
            {
                Log.LogError($"SeqDsl: cannot patch {path}: {e.Message}. The layout of the TorchSharp "
                    + "native library changed; update build/WeakenVersionNeed.cs.");
            }
        }
        return !Log.HasLoggedErrors;
    }

    void PatchFile(string path)
    {
        byte[] elf = File.ReadAllBytes(path);
        long flagsOffset = FindVernauxFlags(elf, Library, VersionName);
        if (flagsOffset < 0)
        {
            Log.LogMessage(MessageImportance.Normal,
                $"SeqDsl: {Path.GetFileName(path)} does not need {VersionName} from {Library}; left as is.");
            return;
        }
        ushort flags = U16(elf, flagsOffset);
        if ((flags & VerFlgWeak) != 0)
        {
            Log.LogMessage(MessageImportance.Low, $"SeqDsl: {path} already patched.");
            return;
        }
        string tmp = path + ".seqdsl-tmp";
        File.Copy(path, tmp, true);   // keeps the file mode; breaks any hard link
        using (var fs = new FileStream(tmp, FileMode.Open, FileAccess.Write))
        {
            fs.Position = flagsOffset;
            ushort patched = (ushort)(flags | VerFlgWeak);
            fs.WriteByte((byte)(patched & 0xff));
            fs.WriteByte((byte)(patched >> 8));
        }
        File.Replace(tmp, path, null);
        Log.LogMessage(MessageImportance.High,
            $"SeqDsl: marked the {VersionName} need of {path} weak (system libstdc++ lacks it).");
    }

    static string? FindSystemLibrary(string soname)
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
    static long FindVernauxFlags(byte[] b, string file, string version)
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

    static bool DefinesVersion(byte[] b, string version)
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
