namespace SeqDsl.Spec;

/// <summary>The check every file SeqDsl reads goes through first, so that a folder given where a file is expected is
/// named as a folder rather than reported missing.</summary>
internal static class InputFiles
{
    /// <summary>Refuses <paramref name="path"/> unless it is an existing file: "<paramref name="what"/> not found: PATH",
    /// or for a folder "<paramref name="what"/> PATH is a folder, not a file" (a data error, exit 2).</summary>
    public static void Require(string path, string what)
    {
        if (File.Exists(path)) return;
        throw new SeqDslException(ErrorKind.Data, Directory.Exists(path)
            ? $"{what} {path} is a folder, not a file; give the file's path."
            : $"{what} not found: {path}");
    }
}
