using System.Runtime.CompilerServices;

// Types that moved to SeqDsl.Core so that the ONNX runtime shares them: programs compiled against an earlier SeqDsl.dll
// still find them here.
[assembly: TypeForwardedTo(typeof(SeqDsl.Workflows.Prediction))]
[assembly: TypeForwardedTo(typeof(SeqDsl.Generation.DecodeOptions))]
