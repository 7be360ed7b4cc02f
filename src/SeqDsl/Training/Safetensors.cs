using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using SeqDsl.Spec;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>A tensor as a weights file holds it: its name, its element type as the file names it, its shape, and its
/// values on the CPU (null when the element type is one SeqDsl does not read).</summary>
internal sealed record FileTensor(string Name, string DType, long[] Shape, Tensor? Value);

/// <summary>
/// The safetensors format, read and written without a package: an 8-byte little-endian header length, a UTF-8 JSON
/// header <c>{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}</c> padded with
/// spaces to a multiple of 8 bytes, then the tensors' row-major little-endian bytes, offsets counted from the end of
/// the header.
/// </summary>
internal static class Safetensors
{
    /// <summary>The element types read and written: libtorch's type, the format's name, bytes per element.</summary>
    private static readonly (ScalarType Type, string Name, int Size)[] Types =
    [
        (ScalarType.Float32, "F32", 4), (ScalarType.Float64, "F64", 8), (ScalarType.Float16, "F16", 2),
        (ScalarType.BFloat16, "BF16", 2), (ScalarType.Int64, "I64", 8), (ScalarType.Int32, "I32", 4),
        (ScalarType.Int16, "I16", 2), (ScalarType.Int8, "I8", 1), (ScalarType.Byte, "U8", 1), (ScalarType.Bool, "BOOL", 1),
    ];

    /// <summary>The largest header read (the format's own readers refuse more than 100 MB).</summary>
    private const long MaxHeader = 100_000_000;

    /// <summary>The format's name of an element type.</summary>
    public static string Name(ScalarType type) =>
        Types.FirstOrDefault(t => t.Type == type).Name ?? throw new NotSupportedException($"safetensors has no {type} tensors");

    /// <summary>Serialises named tensors (in the order given) with string metadata.</summary>
    public static byte[] Write(IEnumerable<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors files are little-endian; this machine is not");
        using var scope = NewDisposeScope();
        var data = new List<byte[]>();
        var header = new MemoryStream();
        long offset = 0;
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (name, value) in tensors)
            {
                if (name == "__metadata__" || !names.Add(name)) throw new ArgumentException($"tensor name '{name}' is reserved or given twice", nameof(tensors));
                var bytes = value.detach().cpu().contiguous().bytes.ToArray();
                json.WriteStartObject(name);
                json.WriteString("dtype", Name(value.dtype));
                json.WriteStartArray("shape");
                foreach (var d in value.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                data.Add(bytes);
                offset += bytes.Length;
            }
            json.WriteEndObject();
        }
        var padded = (header.Length + 7) / 8 * 8; // the data starts 8-byte aligned
        var result = new byte[8 + padded + offset];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)padded);
        header.ToArray().CopyTo(result, 8);
        result.AsSpan(8 + (int)header.Length, (int)(padded - header.Length)).Fill((byte)' ');
        var at = 8 + padded;
        foreach (var bytes in data)
        {
            bytes.CopyTo(result, at);
            at += bytes.Length;
        }
        return result;
    }

    /// <summary>Whether the bytes begin as a safetensors file does (a plausible header length, then a JSON object).</summary>
    public static bool Looks(byte[] bytes) =>
        bytes.Length >= 10 && BinaryPrimitives.ReadUInt64LittleEndian(bytes) is var n && n >= 2 && n <= (ulong)(bytes.Length - 8)
        && bytes[8] == (byte)'{';

    /// <summary>Reads every tensor and the metadata; the tensors are made in the caller's dispose scope.</summary>
    /// <exception cref="SeqDslException">The bytes are not a well-formed safetensors file; the message names <paramref name="path"/>.</exception>
    public static (List<FileTensor> Tensors, Dictionary<string, string> Metadata) Read(byte[] bytes, string path)
    {
        SeqDslException Bad(string why) => new(ErrorKind.Data, $"{path} is not a valid safetensors file: {why}.");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors files are little-endian; this machine is not");
        if (bytes.Length < 8) throw Bad($"it has {bytes.Length} bytes, fewer than the 8 of its header length");
        var n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (n > MaxHeader || n > (ulong)(bytes.Length - 8)) throw Bad($"its header length {n} exceeds the file ({bytes.Length} bytes) or 100 MB");
        var dataStart = 8 + (long)n;
        var dataLength = bytes.Length - dataStart;
        var tensors = new List<FileTensor>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        }
        catch (JsonException e)
        {
            throw Bad($"its header is not JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad("its header is not a JSON object");
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(entry.Name)) throw Bad($"'{entry.Name}' is in its header twice");
                if (entry.Name == "__metadata__")
                {
                    if (entry.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ is not an object");
                    foreach (var m in entry.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw Bad($"metadata '{m.Name}' is not a string");
                    continue;
                }
                var t = entry.Value;
                if (t.ValueKind != JsonValueKind.Object
                    || !t.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String
                    || !t.TryGetProperty("shape", out var shapeJson) || shapeJson.ValueKind != JsonValueKind.Array
                    || !t.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
                    throw Bad($"tensor '{entry.Name}' lacks dtype, shape or data_offsets");
                var shape = new long[shapeJson.GetArrayLength()];
                var i = 0;
                foreach (var d in shapeJson.EnumerateArray())
                    shape[i++] = d.TryGetInt64(out var v) && v >= 0 ? v : throw Bad($"tensor '{entry.Name}' has a shape that is not a list of sizes");
                if (!offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin || end > dataLength)
                    throw Bad($"tensor '{entry.Name}' has data offsets outside the file's {dataLength} data bytes");
                var name = dtype.GetString()!;
                var type = Types.FirstOrDefault(x => x.Name == name);
                long count = 1;
                foreach (var d in shape) count = checked(count * d);
                if (type.Name is null)
                {
                    tensors.Add(new FileTensor(entry.Name, name, shape, null)); // the loader names it with its type
                    continue;
                }
                if (end - begin != count * type.Size)
                    throw Bad($"tensor '{entry.Name}' ({name} [{string.Join(", ", shape)}]) needs {count * type.Size} bytes, its offsets give {end - begin}");
                var value = empty(shape, type.Type);
                if (count > 0) value.bytes = bytes.AsSpan((int)(dataStart + begin), (int)(end - begin));
                tensors.Add(new FileTensor(entry.Name, name, shape, value));
            }
        }
        return (tensors, metadata);
    }
}
