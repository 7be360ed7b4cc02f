using Google.Protobuf;
using Onnx;

namespace SeqDsl.Export;

/// <summary>Builds an ONNX graph with OnnxSharp's protobuf types: nodes with generated output names, initializers
/// from float arrays (raw little-endian data), constants, and typed inputs and outputs with symbolic dimensions.</summary>
internal sealed class GraphBuilder
{
    private readonly GraphProto _graph = new();
    private int _count;

    /// <summary>Nodes added so far (a counter for unique names).</summary>
    public int Count => _count;

    public void Input(string name, TensorProto.Types.DataType type, object[] dims) => _graph.Input.Add(Value(name, type, dims));

    public void Output(string name, TensorProto.Types.DataType type, object[] dims) => _graph.Output.Add(Value(name, type, dims));

    private static ValueInfoProto Value(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s }
                : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, System.Globalization.CultureInfo.InvariantCulture) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    /// <summary>A float32 initializer (a weight).</summary>
    public string Initializer(string name, float[] values, long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw data is little-endian.");
        t.RawData = ByteString.CopyFrom(bytes);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>An int64 constant initializer (shapes, axes, indices).</summary>
    public string Constant(string name, long[] values, long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.AddRange(dims);
        t.Int64Data.AddRange(values);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>A float32 constant initializer.</summary>
    public string Constant(string name, float[] values, long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        t.FloatData.AddRange(values);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>A node with one output; returns the output's name (<paramref name="name"/> or a generated one).</summary>
    public string Node(string op, IEnumerable<string> inputs, IEnumerable<(string, object)>? attributes = null, string? name = null) =>
        NodeOutputs(op, inputs, 1, attributes, name)[0];

    /// <summary>A node with <paramref name="outputs"/> outputs; returns their names.</summary>
    public string[] NodeOutputs(string op, IEnumerable<string> inputs, int outputs, IEnumerable<(string, object)>? attributes = null, string? name = null)
    {
        var id = _count++;
        var nodeName = name ?? $"{op}_{id}";
        var node = new NodeProto { OpType = op, Name = nodeName };
        node.Input.AddRange(inputs);
        var names = Enumerable.Range(0, outputs).Select(k => outputs == 1 && name is not null ? name : $"{nodeName}_out{k}").ToArray();
        node.Output.AddRange(names);
        foreach (var (key, value) in attributes ?? [])
            node.Attribute.Add(Attribute(key, value));
        _graph.Node.Add(node);
        return names;
    }

    public string Unsqueeze(string x, long axis) => Node("Unsqueeze", [x, Constant($"axes_{_count}", [axis], [1])]);

    public string Squeeze(string x, long axis) => Node("Squeeze", [x, Constant($"axes_{_count}", [axis], [1])]);

    /// <summary>Index <paramref name="index"/> along <paramref name="axis"/> (the axis removed).</summary>
    public string Gather(string x, long index, long axis) => Node("Gather", [x, Constant($"index_{_count}", [index], [])], [("axis", axis)]);

    private static AttributeProto Attribute(string name, object value)
    {
        var a = new AttributeProto { Name = name };
        switch (value)
        {
            case long l:
                a.Type = AttributeProto.Types.AttributeType.Int;
                a.I = l;
                break;
            case float f:
                a.Type = AttributeProto.Types.AttributeType.Float;
                a.F = f;
                break;
            case string s:
                a.Type = AttributeProto.Types.AttributeType.String;
                a.S = ByteString.CopyFromUtf8(s);
                break;
            case long[] ls:
                a.Type = AttributeProto.Types.AttributeType.Ints;
                a.Ints.AddRange(ls);
                break;
            case float[] fs:
                a.Type = AttributeProto.Types.AttributeType.Floats;
                a.Floats.AddRange(fs);
                break;
            case string[] ss:
                a.Type = AttributeProto.Types.AttributeType.Strings;
                a.Strings.AddRange(ss.Select(ByteString.CopyFromUtf8));
                break;
            default:
                throw new ArgumentException($"Unsupported attribute type {value.GetType()}.", nameof(value));
        }
        return a;
    }

    public GraphProto Build(string name)
    {
        _graph.Name = name;
        return _graph;
    }
}
