namespace SeqDsl.Training;

/// <summary>File-system steps that make a rename-based commit durable and its clean-up harmless.</summary>
public static class Durable
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open(string path, int flags);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);

    /// <summary>Flushes a directory's entries (the names created or renamed in it) to disk, on Linux; elsewhere nothing.
    /// Best effort: a file system that cannot sync a directory is not an error.</summary>
    public static void SyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            var fd = Open(path, 0); // O_RDONLY: a directory opens read-only
            if (fd < 0) return;
            Fsync(fd);
            Close(fd);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    /// <summary>Creates a new file, writes it and flushes it to disk (a commit by rename comes after).</summary>
    public static void WriteFile(string path, Action<Stream> write)
    {
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        write(fs);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Replaces a file in one rename: written and flushed beside it first, then the directory synced, so a
    /// reader sees the old file or the whole new one, never a part.</summary>
    public static void ReplaceFile(string path, byte[] bytes)
    {
        var full = Path.GetFullPath(path);
        var temp = full + $".{Guid.NewGuid():N}.tmp";
        try
        {
            WriteFile(temp, s => s.Write(bytes));
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        SyncDirectory(Path.GetDirectoryName(full)!);
    }

    /// <summary>Replaces a text file (UTF-8) in one rename, as <see cref="ReplaceFile"/>.</summary>
    public static void ReplaceText(string path, string text) => ReplaceFile(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>SHA-256 of a file, lower-case hex.</summary>
    public static string Sha256(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(fs));
    }

    /// <summary>Deletes a folder after a commit: what is left (a file held open elsewhere) is removed by the next clean-up,
    /// and never fails the save that already succeeded.</summary>
    public static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Removes a folder so that a kill during the removal never leaves a half-deleted folder under its name:
    /// renamed aside first (one atomic step), then deleted.</summary>
    public static void RemoveAtomically(string path)
    {
        if (!Directory.Exists(path)) return;
        var parent = Path.GetDirectoryName(Path.GetFullPath(Path.TrimEndingDirectorySeparator(path)))!;
        var aside = Path.Combine(parent, $".{Path.GetFileName(Path.TrimEndingDirectorySeparator(path))}.deleting-{Guid.NewGuid():N}");
        Directory.Move(path, aside);
        TryDelete(aside);
    }
}
