using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SeqDsl.Engine.Simd;

/// <summary>Which instruction set the SIMD recurrent kernel runs on.</summary>
public enum SimdWidth
{
    /// <summary>Plain C# loops (no AVX2/FMA).</summary>
    Scalar,
    /// <summary>AVX2 with FMA: 8 floats per instruction.</summary>
    Avx2,
    /// <summary>AVX-512F: 16 floats per instruction (AVX2 for a product's last columns).</summary>
    Avx512,
}

/// <summary>
/// Vectorised exp, sigmoid and tanh for the gate functions, written once for 8 lanes (AVX2/FMA) and 16 (AVX-512F). exp:
/// range reduction by ln 2 (split in two parts), a degree-6 Taylor polynomial on |r| ≤ ln 2 / 2, the power of two built
/// in the exponent bits;
/// within 3 float32 ulps of the exact value; sigmoid = 1/(1 + e^−x) within 4 (its reciprocal starts from the CPU's
/// 12-bit estimate, which differs between CPU makers). tanh: x times a rational function of x²,
/// one division, no exp: within 6 ulps in less than half the time of tanh through exp, which also needs a second
/// formula near 0 (`bench simd`: 7.2 → 3.0 ns per 8 floats; AMD EPYC, AVX2). The test "the gate functions against
/// float64" holds all three to these bounds; the test "the gate functions on 16 lanes" holds the 16-lane ones to the same
/// (exp and tanh: the same operations, the same floats as on 8 lanes; sigmoid's reciprocal starts from AVX-512's 14-bit
/// estimate).
/// </summary>
internal static class SimdMath
{
    /// <summary>The widest path this CPU runs natively.</summary>
    public static SimdWidth Detected =>
        Avx512F.IsSupported && Avx2.IsSupported && Fma.IsSupported ? SimdWidth.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? SimdWidth.Avx2
        : SimdWidth.Scalar;

    private static readonly AsyncLocal<SimdWidth?> Override = new();

    /// <summary>The path the kernels take by default: the widest this CPU runs (<see cref="Detected"/>), or a narrower
    /// one SEQDSL_SIMD names (avx2, scalar). On an AVX-512 CPU the 512-bit products on two packed panels give the same
    /// floats as the AVX2 ones and were faster in whole training steps: one thread E7 LSTM 81.8 → 58.9 ms, GRU 56.2 →
    /// 42.7, SimpleRnn 17.5 → 14.2, E4 35.9 → 31.0; two threads 42.1 → 35.7, 33.1 → 28.7, 17.7 → 14.3, 28.7 → 24.2
    /// (Intel Xeon @ 2.00GHz, avx512f; `bench phases --width-ab`, docs/BENCHMARKS.md).</summary>
    public static SimdWidth Default { get; } =
        Environment.GetEnvironmentVariable("SEQDSL_SIMD") is string s && Enum.TryParse<SimdWidth>(s, true, out var w) && w <= Detected
            ? w
            : Detected;

    /// <summary>The path the kernels take in this execution context (a test may narrow it, or ask for AVX-512 in
    /// software, without touching other threads' work): <see cref="Default"/> unless set.</summary>
    public static SimdWidth Width
    {
        // the AsyncLocal is read only once some context has set it (tests): the kernels ask in their inner loops
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _overridden ? Override.Value ?? Default : Default;
        set
        {
            _overridden = true;
            Override.Value = value;
        }
    }

    private static volatile bool _overridden;

    internal static bool UseAvx2
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Width != SimdWidth.Scalar && Avx2.IsSupported && Fma.IsSupported;
    }

    // ln 2 split so that n·Ln2Hi is exact for |n| < 2^9
    const float Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f, Log2E = 1.44269504088896341f;

    /// <summary>1.5·2^23: a float of this size has no bits below 1, so adding it rounds to an integer.</summary>
    const float RoundingBias = 12582912f;

    /// <summary>e^x, within 3 ulps (see the summary).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Exp<V, L>(V x) where V : struct where L : struct, ILanes<V>
    {
        // the vector second: vmaxps/vminps return their second operand when either is NaN, so NaN stays NaN
        x = L.Min(L.Create(88.3f), L.Max(L.Create(-87.3f), x));
        // n = x·log2 e rounded to the nearest integer (ties to even) by adding 1.5·2^23 — a float that large has no
        // bits below 1 — and taking it off again, exact while |x·log2 e| < 2^22; m's low bits hold n, from which 2^n is
        // built. The same n as a rounding instruction gives, without the rounding and conversion ones (`bench simd`,
        // sigmoid on 16 lanes: 9.69 → 7.99 ns per 8 floats, medians of five alternating runs of each build; Intel Xeon
        // @ 2.00GHz, avx512f)
        var m = L.Add(L.Multiply(x, L.Create(Log2E)), L.Create(RoundingBias));
        var n = L.Subtract(m, L.Create(RoundingBias));
        var r = L.MultiplyAddNegated(n, L.Create(Ln2Hi), x);
        r = L.MultiplyAddNegated(n, L.Create(Ln2Lo), r);
        var p = L.Create(1f / 720);
        p = L.MultiplyAdd(p, r, L.Create(1f / 120));
        p = L.MultiplyAdd(p, r, L.Create(1f / 24));
        p = L.MultiplyAdd(p, r, L.Create(1f / 6));
        p = L.MultiplyAdd(p, r, L.Create(0.5f));
        p = L.MultiplyAdd(p, r, L.One);
        p = L.MultiplyAdd(p, r, L.One);
        return L.Multiply(p, L.PowerOfTwoOfBiased(m));
    }

    /// <summary>1/x from the CPU's estimate (12 bits on 8 lanes, 14 on 16) and one Newton step (about 1e-7 relative).
    /// Beyond 8e37 the 12-bit estimate is 0; the 14-bit one gives the subnormal, 0 only where subnormals are flushed
    /// (sigmoid below x ≈ −87.3: 0 on 8 lanes; on 16 lanes unflushed a subnormal, about 4.6e-39 below exp's clamp at
    /// −88.3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Reciprocal<V, L>(V x) where V : struct where L : struct, ILanes<V>
    {
        var r = L.ReciprocalEstimate(x);
        return L.MultiplyAdd(r, L.MultiplyAddNegated(x, r, L.One), r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Sigmoid<V, L>(V x) where V : struct where L : struct, ILanes<V> =>
        Reciprocal<V, L>(L.Add(L.One, Exp<V, L>(L.Subtract(L.Create(0f), x))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Tanh<V, L>(V x) where V : struct where L : struct, ILanes<V>
    {
        // x clamped to ±9 (the vector second, so NaN stays NaN), then x·P(x²)/Q(x²): a rational minimax fit of
        // tanh(x)/x on [0, 9] (relative error 2.1e-8 before rounding; bench/tanh-fit.py), P and Q of degree 4 in x²,
        // evaluated by Horner, one division; the result clamped to ±1 (rounding takes it 1 ulp above 1 for some x
        // beyond 8.18). tanh(9) is 1 − 3.05e-8, 0.99999994 in float32 (1 only beyond 9.011): every |x| ≥ 9 gives
        // ±0.99999994, 1 ulp from the exact value, and x just under 9 may give 1 — within the bound, not monotone there
        x = L.Min(L.Create(9f), L.Max(L.Create(-9f), x));
        var s = L.Multiply(x, x);
        var p = L.Create(1.33544065e-08f);
        p = L.MultiplyAdd(p, s, L.Create(2.06090153e-05f));
        p = L.MultiplyAdd(p, s, L.Create(0.0034955896f));
        p = L.MultiplyAdd(p, s, L.Create(0.133810282f));
        p = L.MultiplyAdd(p, s, L.One);
        var q = L.Create(7.77648779e-07f);
        q = L.MultiplyAdd(q, s, L.Create(0.000328563328f));
        q = L.MultiplyAdd(q, s, L.Create(0.0258769933f));
        q = L.MultiplyAdd(q, s, L.Create(0.467143446f));
        q = L.MultiplyAdd(q, s, L.One);
        var t = L.Divide(L.Multiply(x, p), q);
        return L.Min(L.One, L.Max(L.Create(-1f), t));
    }

    // the functions on 8 lanes (AVX2/FMA) and on 16 (AVX-512F): the same operations in the same order, so exp and tanh
    // give the same floats on both; sigmoid's reciprocal starts from AVX-512's 14-bit estimate on 16 lanes
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Exp(Vector256<float> x) => Exp<Vector256<float>, Lanes256>(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sigmoid(Vector256<float> x) => Sigmoid<Vector256<float>, Lanes256>(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Tanh(Vector256<float> x) => Tanh<Vector256<float>, Lanes256>(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Exp(Vector512<float> x) => Exp<Vector512<float>, Lanes512>(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sigmoid(Vector512<float> x) => Sigmoid<Vector512<float>, Lanes512>(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Tanh(Vector512<float> x) => Tanh<Vector512<float>, Lanes512>(x);

    /// <summary>Whether the per-unit passes (gate functions, state updates, their gradients) run on 16 lanes: on the
    /// AVX-512 path, unless <see cref="WideGates"/> is off.</summary>
    internal static bool Use512
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Width == SimdWidth.Avx512 && WideGates && Avx512F.IsSupported && Avx2.IsSupported && Fma.IsSupported;
    }

    /// <summary>On the AVX-512 path, the per-unit passes on 16 lanes (the default) or on 8 with the products still on
    /// 16: a benchmark's A/B (`bench phases --gates-ab`), process-wide.</summary>
    internal static bool WideGates { get; set; } = true;

    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    public static float Tanh(float x) => MathF.Tanh(x);
}

/// <summary>The arithmetic the kernels' per-unit passes (gate functions, state updates, their gradients) use at one
/// vector width: <see cref="Lanes256"/> (AVX2/FMA) or <see cref="Lanes512"/> (AVX-512F), so that each pass is written
/// once; the gate functions (SimdMath.Exp, Sigmoid, Tanh) too.</summary>
internal unsafe interface ILanes<V> where V : struct
{
    static abstract int Count { get; }
    static abstract V One { get; }
    static abstract V Add(V a, V b);
    static abstract V Subtract(V a, V b);
    static abstract V Multiply(V a, V b);
    /// <summary>a·b + c, one rounding.</summary>
    static abstract V MultiplyAdd(V a, V b, V c);
    /// <summary>c − a·b, one rounding.</summary>
    static abstract V MultiplyAddNegated(V a, V b, V c);
    static abstract V Divide(V a, V b);
    static abstract V Create(float x);
    /// <summary>The smaller of a and b, b when either is NaN (vminps).</summary>
    static abstract V Min(V a, V b);
    /// <summary>The larger of a and b, b when either is NaN (vmaxps).</summary>
    static abstract V Max(V a, V b);
    /// <summary>2^n for integral n in [−126, 127] from m = n + 1.5·2^23 (whose bits are 0x4B400000 + n), built in the
    /// exponent bits: (bits + 127) shifted left by 23 — 0x4B400000's low nine bits are zero, so it shifts out.</summary>
    static abstract V PowerOfTwoOfBiased(V m);
    /// <summary>The CPU's estimate of 1/x (12 bits on 8 lanes, 14 on 16).</summary>
    static abstract V ReciprocalEstimate(V x);
    /// <summary>d where y &gt; 0, else 0 (ReLU's gradient).</summary>
    static abstract V WherePositive(V y, V d);
    /// <summary>The first <paramref name="n"/> lanes (n ≤ 0: none, n ≥ Count: all).</summary>
    static abstract V FirstLanes(int n);
    /// <summary>The lanes the strip selects: all (<see cref="WholeStrip"/>), or those of <paramref name="mask"/> — the
    /// others neither read (no fault past a row's end; they read as 0) nor written.</summary>
    static abstract V Load<S>(float* p, V mask) where S : struct, IStrip;
    static abstract void Store<S>(float* p, V mask, V v) where S : struct, IStrip;
}

internal unsafe struct Lanes256 : ILanes<Vector256<float>>
{
    public static int Count => 8;
    public static Vector256<float> One => Vector256<float>.One;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => Avx.Add(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => Avx.Subtract(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => Avx.Multiply(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Fma.MultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MultiplyAddNegated(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Fma.MultiplyAddNegated(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Divide(Vector256<float> a, Vector256<float> b) => Avx.Divide(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Create(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Min(Vector256<float> a, Vector256<float> b) => Avx.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Avx.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> PowerOfTwoOfBiased(Vector256<float> m) =>
        Avx2.ShiftLeftLogical(Avx2.Add(m.AsInt32(), Vector256.Create(127)), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ReciprocalEstimate(Vector256<float> x) => Avx.Reciprocal(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> WherePositive(Vector256<float> y, Vector256<float> d) => Avx.And(d, Avx.CompareGreaterThan(y, Vector256<float>.Zero));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> FirstLanes(int n) => MaskedStrip.Lanes(n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load<S>(float* p, Vector256<float> mask) where S : struct, IStrip => S.Load(p, mask);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store<S>(float* p, Vector256<float> mask, Vector256<float> v) where S : struct, IStrip => S.Store(p, mask, v);
}

internal unsafe struct Lanes512 : ILanes<Vector512<float>>
{
    public static int Count => 16;
    public static Vector512<float> One => Vector512<float>.One;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => Avx512F.Add(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => Avx512F.Subtract(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => Avx512F.Multiply(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Avx512F.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MultiplyAddNegated(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Avx512F.FusedMultiplyAddNegated(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Divide(Vector512<float> a, Vector512<float> b) => Avx512F.Divide(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Create(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Min(Vector512<float> a, Vector512<float> b) => Avx512F.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Avx512F.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> PowerOfTwoOfBiased(Vector512<float> m) =>
        Avx512F.ShiftLeftLogical(Avx512F.Add(m.AsInt32(), Vector512.Create(127)), 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ReciprocalEstimate(Vector512<float> x) => Avx512F.Reciprocal14(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> WherePositive(Vector512<float> y, Vector512<float> d) => d & Avx512F.CompareGreaterThan(y, Vector512<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FirstLanes(int n) =>
        Avx512F.CompareGreaterThan(Vector512.Create(n), Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load<S>(float* p, Vector512<float> mask) where S : struct, IStrip =>
        S.Masked ? Avx512F.MaskLoad(p, mask, Vector512<float>.Zero) : Avx512F.LoadVector512(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<S>(float* p, Vector512<float> mask, Vector512<float> v) where S : struct, IStrip
    {
        if (S.Masked) Avx512F.MaskStore(p, mask, v);
        else Avx512F.Store(p, v);
    }
}

/// <summary>A gate function on a vector of any width the kernels run and on one float (the plain path).</summary>
internal interface IGateFunction
{
    static abstract V Of<V, L>(V x) where V : struct where L : struct, ILanes<V>;
    static abstract float Of(float x);
}

internal struct SigmoidFn : IGateFunction
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Of<V, L>(V x) where V : struct where L : struct, ILanes<V> => SimdMath.Sigmoid<V, L>(x);

    public static float Of(float x) => SimdMath.Sigmoid(x);
}

internal struct TanhFn : IGateFunction
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Of<V, L>(V x) where V : struct where L : struct, ILanes<V> => SimdMath.Tanh<V, L>(x);

    public static float Of(float x) => SimdMath.Tanh(x);
}

internal struct ReluFn : IGateFunction
{
    // NaN stays NaN: vmaxps returns its second operand when either is NaN, and MathF.Max propagates NaN
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Of<V, L>(V x) where V : struct where L : struct, ILanes<V> => L.Max(L.Create(0f), x);

    public static float Of(float x) => MathF.Max(x, 0f);
}

/// <summary>How a kernel reads and writes a vector: whole, or only the lanes a mask selects (a row's last, partial
/// vector, e.g. units 48–49 of 50, or a product's last strip narrower than 16 columns). Load and Store are the 8-lane
/// ones; <see cref="Lanes512"/> reads only <see cref="Masked"/>.</summary>
internal unsafe interface IStrip
{
    /// <summary>Whether only the mask's lanes are read and written.</summary>
    static abstract bool Masked { get; }
    static abstract Vector256<float> Load(float* p, Vector256<float> mask);
    static abstract void Store(float* p, Vector256<float> mask, Vector256<float> v);
}

internal unsafe struct WholeStrip : IStrip
{
    public static bool Masked => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* p, Vector256<float> mask) => Avx.LoadVector256(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* p, Vector256<float> mask, Vector256<float> v) => Avx.Store(p, v);
}

internal unsafe struct MaskedStrip : IStrip
{
    public static bool Masked => true;

    /// <summary>The first <paramref name="n"/> lanes (n ≤ 0: none, n ≥ 8: all).</summary>
    public static Vector256<float> Lanes(int n) =>
        Avx2.CompareGreaterThan(Vector256.Create(n), Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7)).AsSingle();

    // lanes outside the mask are neither read (no fault past the end of a row; they read as 0) nor written
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* p, Vector256<float> mask) => Avx.MaskLoad(p, mask);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* p, Vector256<float> mask, Vector256<float> v) => Avx.MaskStore(p, mask, v);
}
