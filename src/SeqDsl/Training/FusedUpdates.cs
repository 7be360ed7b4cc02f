using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SeqDsl.Engine.Simd;
using TorchSharp;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>
/// Optimizer updates in one pass over a parameter's floats: each loop reads θ, g and the slots once and writes θ and
/// the slots once, where libtorch's optimizers run one full pass per operation (mul_, add_, addcmul_, sqrt, div,
/// add_, addcdiv_), with temporaries. AVX2/FMA over 8 floats (plain loops where the CPU lacks them, and for the
/// tail); a large parameter is split in chunks of at least <see cref="MinChunk"/> floats over the threads libtorch
/// may use (<c>torch.get_num_threads()</c>).
/// <para>
/// The float32 arithmetic follows libtorch's CPU kernels operation by operation (checked element by element against
/// libtorch 2.10 on AVX2): a scalar is rounded to float32 before it enters an operation; <c>add_(x, alpha)</c> is one
/// fused multiply-add, x·α + self (ATen's vectorised ufunc add); <c>addcmul_(a, b, value)</c> is one too,
/// (value·a)·b + self (its pointwise kernel, contracted by the compiler); <c>addcdiv_(a, b, value)</c> is
/// self + (value·a)/b; division stays a division. So the slots (m, v, the square averages) come out bit for bit
/// libtorch's. One difference remains: libtorch's vectorised sqrt is not the IEEE square root (one ulp off in about
/// 15% of the elements measured), while these loops take the correctly rounded one, so an update differs from the
/// tensor code's by about an ulp in some elements.
/// </para>
/// <para>The environment variable <c>SEQDSL_FUSED_OPTIMIZER=0</c> turns the fused loops off (the optimizers then run
/// their tensor code), for comparisons.</para>
/// </summary>
internal static unsafe class FusedUpdates
{
    /// <summary>The smallest chunk a thread takes (floats): below twice this a parameter is updated by one thread.</summary>
    public const long MinChunk = Chunked.MinChunk;

    /// <summary>Whether the optimizers may take the fused loops (false when SEQDSL_FUSED_OPTIMIZER=0).</summary>
    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("SEQDSL_FUSED_OPTIMIZER") != "0";

    /// <summary>Whether <paramref name="t"/> can be read as plain float32 memory: a dense CPU, float32, contiguous tensor of
    /// <paramref name="numel"/> elements, not empty and at most 2³¹ bytes (the size TorchSharp's byte span takes).</summary>
    public static bool Plain(Tensor? t, long numel) =>
        t is not null && !t.is_sparse && t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float32 && t.is_contiguous()
        && t.numel() == numel && numel > 0 && numel <= int.MaxValue / sizeof(float);

    /// <summary>The first float of a tensor that <see cref="Plain"/> accepts.</summary>
    public static float* Ptr(Tensor t) => SimdRecurrence.Ptr(t);

    /// <summary>
    /// libtorch's Adam (amsgrad off, no weight decay, not maximizing) over n floats:
    /// m ← m·β₁ + g·(1 − β₁) (one FMA); v ← v·β₂ + ((1 − β₂)·g)·g (one FMA); d ← √v / √(1 − β₂ᵗ) + ε;
    /// θ ← θ + (−lr/(1 − β₁ᵗ)·m) / d.
    /// </summary>
    public static void TorchAdam(float* p, float* g, float* m, float* v, long n, double beta1, double beta2, double eps,
        double lr, long step)
    {
        var bc1 = 1 - Math.Pow(beta1, step);
        var bc2 = 1 - Math.Pow(beta2, step);
        var k = new AdamConstants((float)beta1, (float)(1 - beta1), (float)beta2, (float)(1 - beta2),
            (float)Math.Sqrt(bc2), (float)eps, (float)-(lr / bc1), KerasRate: 0, Decay: 0);
        nint pp = (nint)p, pg = (nint)g, pm = (nint)m, pv = (nint)v;
        var avx = SimdMath.UseAvx2;
        Chunked.Run(n, 1, (s, e) => AdamRange(false, avx, (float*)pp, (float*)pg, (float*)pm, (float*)pv, s, e, k));
    }

    /// <summary>
    /// Keras's Adam (ApplyAdam) as <see cref="KerasOptimizer"/>'s tensor code computes it, over n floats: with
    /// <paramref name="decay"/> (AdamW's λ·lr, else 0) first θ ← θ − θ·λlr; then m and v as in <see cref="TorchAdam"/>,
    /// and θ ← θ − (m·rate) / (√v + ε) with rate = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ).
    /// </summary>
    public static void KerasAdam(float* p, float* g, float* m, float* v, long n, double beta1, double beta2, double eps,
        double rate, double decay)
    {
        var k = new AdamConstants((float)beta1, (float)(1 - beta1), (float)beta2, (float)(1 - beta2), 0, (float)eps, 0,
            (float)rate, (float)decay);
        nint pp = (nint)p, pg = (nint)g, pm = (nint)m, pv = (nint)v;
        var avx = SimdMath.UseAvx2;
        Chunked.Run(n, 1, (s, e) => AdamRange(true, avx, (float*)pp, (float*)pg, (float*)pm, (float*)pv, s, e, k));
    }

    /// <summary>
    /// libtorch's RMSprop (no momentum, not centered, no weight decay, not maximizing) over n floats:
    /// s ← s·α + ((1 − α)·g)·g (one FMA); θ ← θ + (−lr·g) / (√s + ε).
    /// </summary>
    public static void TorchRmsProp(float* p, float* g, float* s, long n, double alpha, double eps, double lr)
    {
        var k = new RmsConstants((float)alpha, (float)(1 - alpha), (float)eps, (float)-lr);
        nint pp = (nint)p, pg = (nint)g, ps = (nint)s;
        var avx = SimdMath.UseAvx2;
        Chunked.Run(n, 1, (a, b) => RmsRange(false, avx, (float*)pp, (float*)pg, (float*)ps, a, b, k));
    }

    /// <summary>
    /// Keras's RMSprop (ApplyRMSProp) as <see cref="KerasOptimizer"/>'s tensor code computes it:
    /// ms ← ms·ρ + (g·g)·(1 − ρ); θ ← θ − (g·lr) / √(ms + ε); over <paramref name="rows"/> rows of
    /// <paramref name="rowSize"/> floats. With <paramref name="sparse"/>, a row whose gradient is zero everywhere is
    /// left alone, its ms included (the sparse kernel's rows outside the batch).
    /// </summary>
    public static void KerasRmsProp(float* p, float* g, float* ms, long rows, long rowSize, bool sparse, double rho,
        double eps, double lr)
    {
        var k = new RmsConstants((float)rho, (float)(1 - rho), (float)eps, (float)lr);
        nint pp = (nint)p, pg = (nint)g, ps = (nint)ms;
        var avx = SimdMath.UseAvx2;
        if (!sparse)
        {
            Chunked.Run(rows * rowSize, 1, (a, b) => RmsRange(true, avx, (float*)pp, (float*)pg, (float*)ps, a, b, k));
            return;
        }
        Chunked.Run(rows, rowSize, (r0, r1) =>
        {
            for (var r = r0; r < r1; r++)
            {
                long a = r * rowSize, b = a + rowSize;
                if (AnyNonZero(avx, (float*)pg, a, b)) RmsRange(true, avx, (float*)pp, (float*)pg, (float*)ps, a, b, k);
            }
        });
    }

    /// <summary>The float32 constants of an Adam update.</summary>
    private readonly record struct AdamConstants(float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
        float SqrtBc2, float Eps, float NegStep, float KerasRate, float Decay);

    /// <summary>The float32 constants of an RMSprop update: ρ (α), 1 − ρ, ε and the rate (−lr for libtorch's, lr for
    /// Keras's).</summary>
    private readonly record struct RmsConstants(float Rho, float OneMinusRho, float Eps, float Rate);

    private static void AdamRange(bool keras, bool avx, float* p, float* g, float* m, float* v, long s, long e, AdamConstants k)
    {
        var i = s;
        if (avx)
        {
            Vector256<float> b1 = Vector256.Create(k.Beta1), c1 = Vector256.Create(k.OneMinusBeta1),
                b2 = Vector256.Create(k.Beta2), c2 = Vector256.Create(k.OneMinusBeta2), eps = Vector256.Create(k.Eps),
                sq = Vector256.Create(k.SqrtBc2), step = Vector256.Create(k.NegStep), rate = Vector256.Create(k.KerasRate),
                decay = Vector256.Create(k.Decay);
            var decays = k.Decay != 0;
            for (; i + 8 <= e; i += 8)
            {
                var gi = Avx.LoadVector256(g + i);
                var mi = Fma.MultiplyAdd(gi, c1, Avx.Multiply(Avx.LoadVector256(m + i), b1));
                var vi = Fma.MultiplyAdd(Avx.Multiply(c2, gi), gi, Avx.Multiply(Avx.LoadVector256(v + i), b2));
                var pi = Avx.LoadVector256(p + i);
                if (keras)
                {
                    if (decays) pi = Avx.Subtract(pi, Avx.Multiply(pi, decay));
                    pi = Avx.Subtract(pi, Avx.Divide(Avx.Multiply(mi, rate), Avx.Add(Avx.Sqrt(vi), eps)));
                }
                else
                    pi = Avx.Add(pi, Avx.Divide(Avx.Multiply(step, mi), Avx.Add(Avx.Divide(Avx.Sqrt(vi), sq), eps)));
                Avx.Store(m + i, mi);
                Avx.Store(v + i, vi);
                Avx.Store(p + i, pi);
            }
        }
        for (; i < e; i++)
        {
            var gi = g[i];
            var mi = MathF.FusedMultiplyAdd(gi, k.OneMinusBeta1, m[i] * k.Beta1);
            var vi = MathF.FusedMultiplyAdd(k.OneMinusBeta2 * gi, gi, v[i] * k.Beta2);
            var pi = p[i];
            if (keras)
            {
                if (k.Decay != 0) pi -= pi * k.Decay;
                pi -= mi * k.KerasRate / (MathF.Sqrt(vi) + k.Eps);
            }
            else
                pi += k.NegStep * mi / (MathF.Sqrt(vi) / k.SqrtBc2 + k.Eps);
            m[i] = mi;
            v[i] = vi;
            p[i] = pi;
        }
    }

    private static void RmsRange(bool keras, bool avx, float* p, float* g, float* s, long a, long e, RmsConstants k)
    {
        var i = a;
        if (avx)
        {
            Vector256<float> rho = Vector256.Create(k.Rho), c = Vector256.Create(k.OneMinusRho),
                eps = Vector256.Create(k.Eps), rate = Vector256.Create(k.Rate);
            for (; i + 8 <= e; i += 8)
            {
                var gi = Avx.LoadVector256(g + i);
                var si = Avx.LoadVector256(s + i);
                var pi = Avx.LoadVector256(p + i);
                if (keras)
                {
                    si = Avx.Add(Avx.Multiply(si, rho), Avx.Multiply(Avx.Multiply(gi, gi), c));
                    pi = Avx.Subtract(pi, Avx.Divide(Avx.Multiply(gi, rate), Avx.Sqrt(Avx.Add(si, eps))));
                }
                else
                {
                    si = Fma.MultiplyAdd(Avx.Multiply(c, gi), gi, Avx.Multiply(si, rho));
                    pi = Avx.Add(pi, Avx.Divide(Avx.Multiply(rate, gi), Avx.Add(Avx.Sqrt(si), eps)));
                }
                Avx.Store(s + i, si);
                Avx.Store(p + i, pi);
            }
        }
        for (; i < e; i++)
        {
            var gi = g[i];
            if (keras)
            {
                var si = s[i] * k.Rho + gi * gi * k.OneMinusRho;
                s[i] = si;
                p[i] -= gi * k.Rate / MathF.Sqrt(si + k.Eps);
            }
            else
            {
                var si = MathF.FusedMultiplyAdd(k.OneMinusRho * gi, gi, s[i] * k.Rho);
                s[i] = si;
                p[i] += k.Rate * gi / (MathF.Sqrt(si) + k.Eps);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool AnyNonZero(bool avx, float* g, long a, long e)
    {
        var i = a;
        if (avx)
            for (; i + 8 <= e; i += 8)
                if (Avx.MoveMask(Avx.CompareNotEqual(Avx.LoadVector256(g + i), Vector256<float>.Zero)) != 0) return true;
        for (; i < e; i++)
            if (g[i] != 0) return true; // NaN counts, as ne(0) counts it
        return false;
    }
}
