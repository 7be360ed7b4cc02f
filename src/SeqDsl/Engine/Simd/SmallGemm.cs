using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SeqDsl.Engine.Simd;

/// <summary>
/// C = C0 + A·B for the small products of one recurrent step (a block of batch rows times a weight matrix that
/// stays in the L1/L2 cache): A is m×k with row stride lda, B is k×n row-major with row stride ldb, C0 (or zero
/// when null; a row stride of 0 repeats one row, e.g. a bias) and C are m×n; and C += Aᵀ·B, the weight gradient of a
/// few backward steps (<see cref="AccumulateAtB(int, int, int, float*, long, float*, long, float*, long)"/>).
/// Register tiles of 2 vectors wide (AVX2: 6 rows × 16, 4 × 16 for a block's last few rows where the strip is whole;
/// AVX-512: 12 × 32, then 8 × 32 or 6 × 32 for the rows left (<see cref="Rows512"/>), and a whole 16-column strip left
/// 12 × 16 on one 512-bit vector, its last rows on the AVX2 tiles: <see cref="Strip16"/>), B broadcast-free, A
/// broadcast per element; a last strip of at most 8 columns on a 12 × 8 tile (8 × 8 for the last rows; in Aᵀ·B up to 4
/// columns down C's rows instead), wider edges with masked lanes (unpacked A·B: one vector, then scalars). No
/// allocation.
/// </summary>
internal static unsafe class SmallGemm
{
    /// <summary>Panel width of a packed B: 16 columns (two AVX2 vectors), K rows each, contiguous.</summary>
    public const int Panel = 16;

    /// <summary>Floats a packed copy of a k×n B takes (n rounded up to whole panels).</summary>
    public static long PackedSize(int k, int n) => (long)k * ((n + Panel - 1) / Panel * Panel);

    /// <summary>
    /// Copies B (k×n, row stride ldb) into panels of 16 columns, each k rows of 16 contiguous floats (the last panel
    /// zero-padded). A register tile then streams its panel linearly: unpacked, a tile's 16 columns of a B row are
    /// 64 bytes a whole row apart, and when that stride is a multiple of 512 bytes its k rows crowd into 8 of the L1
    /// cache's 64 sets and evict each other (a 64×128 B ran at 27 GFLOP/s unpacked on AMD EPYC, AVX2).
    /// </summary>
    public static void Pack(int k, int n, float* b, long ldb, float* packed)
    {
        var panels = (n + Panel - 1) / Panel;
        for (var q = 0; q < panels; q++)
        {
            var cols = Math.Min(Panel, n - q * Panel);
            float* dst = packed + (long)q * k * Panel;
            for (var p = 0; p < k; p++)
            {
                float* src = b + p * ldb + q * Panel;
                for (var j = 0; j < cols; j++) dst[p * Panel + j] = src[j];
                for (var j = cols; j < Panel; j++) dst[p * Panel + j] = 0;
            }
        }
    }

    /// <summary>Whether the path in force reads packed copies (the AVX2 and AVX-512 paths do; the scalar one reads B as
    /// it is).</summary>
    public static bool UsesPacked => SimdMath.Width is SimdWidth.Avx2 or SimdWidth.Avx512 && Avx2.IsSupported && Fma.IsSupported;

    /// <summary>
    /// C = C0 + A·B with B given twice: as is (b, ldb) and packed (bp: the panel holding B's first column, rows
    /// offset as in b; panels panelStride floats apart). The AVX2 and AVX-512 paths take the packed copy (AVX-512:
    /// pairs of panels on 12-, 8- and 6-row × 32 tiles first); whole single panels go through <see cref="Strip16"/>; a
    /// last panel narrower than 16 columns (its packed copy is zero-padded) goes through a scratch tile — the 12 × 8 or
    /// 8 × 8 narrow one for up to 8 columns, the 6 × 16 one for 9–15 — and C0 is added after its sums.
    /// </summary>
    public static void Run(int m, int n, int k, float* a, long lda, float* b, long ldb, float* bp, long panelStride,
        float* c0, long ldc0, float* c, long ldc)
    {
        if (bp != null && UsesPacked)
            RunPacked(m, n, k, a, lda, bp, panelStride, c0, ldc0, c, ldc);
        else
            Run(m, n, k, a, lda, b, ldb, c0, ldc0, c, ldc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RunPacked(int m, int n, int k, float* a, long lda, float* bp, long panelStride, float* c0, long ldc0, float* c, long ldc)
    {
        var j = 0;
        if (SimdMath.Width == SimdWidth.Avx512)
            // two panels side by side per 512-bit tile; a last single panel and a narrower rest as on the AVX2 path
            for (; j + 2 * Panel <= n; j += 2 * Panel)
            {
                float* pq = bp + (j / Panel) * panelStride;
                Rows512(m, k, a, lda, 1, pq, pq + panelStride, Panel, c0 == null ? null : c0 + j, ldc0, c + j, ldc);
            }
        for (; j + Panel <= n; j += Panel)
            Strip16(m, k, a, lda, 1, bp + (j / Panel) * panelStride, Panel, c0 == null ? null : c0 + j, ldc0, c + j, ldc);
        if (j == n) return;
        // the last, narrower panel (H = 50 left two columns to scalar loops once, 6 % of E4's step)
        var cols = n - j;
        float* bq = bp + (j / Panel) * panelStride;
        if (cols <= 8)
        {
            // up to one vector of columns: twelve rows per narrow tile (H = 50's last two columns: a 16-wide tile
            // computes eight times the work it keeps), into a scratch tile and then C0 added as below — C0 may be C
            // itself, and both paths round alike
            var mask = MaskedStrip.Lanes(cols);
            var sums = stackalloc float[12 * 8];
            for (var i = 0; i < m;)
            {
                var rows = NarrowRows(m - i);
                // a packed panel is 16 floats wide: whole-vector loads stay inside it (lanes past cols — zero padding or
                // the next columns of B — are computed into the scratch and discarded)
                NarrowTile<WholeStrip>(rows, k, a + i * lda, lda, 1, bq, Panel, null, 0, sums, 8, default);
                for (var r = 0; r < rows; r++)
                {
                    float* dst = c + (i + r) * ldc + j;
                    var v = Avx.LoadVector256(sums + r * 8);
                    if (c0 != null) v = Avx.Add(Avx.MaskLoad(c0 + (i + r) * ldc0 + j, mask), v);
                    Avx.MaskStore(dst, mask, v);
                }
                i += rows;
            }
            return;
        }
        // 9–15 columns: full 6 × 16 tiles into a scratch tile (the padding columns compute zeros), then the real columns out
        var tile = stackalloc float[6 * Panel];
        for (var i = 0; i < m; i += 6)
        {
            var rows = Math.Min(6, m - i);
            Tile6x16(rows, k, a + i * lda, lda, bq, Panel, null, 0, tile, Panel);
            for (var r = 0; r < rows; r++)
            {
                float* dst = c + (i + r) * ldc + j;
                float* init = c0 == null ? null : c0 + (i + r) * ldc0 + j;
                for (var q = 0; q < cols; q++) dst[q] = (init == null ? 0f : init[q]) + tile[r * Panel + q];
            }
        }
    }

    /// <summary>All m rows of one 16-column strip on <see cref="Tile{S, R}"/>s (A, B, C0 and C addressed as there, row i
    /// of A at a + i·aRow): six rows per tile, four for the last few (<see cref="FourRows"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TileRows<S>(int m, int k, float* a, long aRow, long aK, float* b, long ldb, float* c0, long ldc0, float* c, long ldc,
        Vector256<float> m0, Vector256<float> m1) where S : struct, IStrip
    {
        for (var i = 0; i < m;)
        {
            float* ai = a + i * aRow, ci0 = c0 == null ? null : c0 + i * ldc0, ci = c + i * ldc;
            if (FourRows(m - i))
            {
                Tile<S, Rows4>(Math.Min(4, m - i), k, ai, aRow, aK, b, ldb, ci0, ldc0, ci, ldc, m0, m1);
                i += 4;
            }
            else
            {
                Tile<S, Rows6>(Math.Min(6, m - i), k, ai, aRow, aK, b, ldb, ci0, ldc0, ci, ldc, m0, m1);
                i += 6;
            }
        }
    }

    /// <summary>All m rows of one whole 16-column strip (addressed as in <see cref="TileRows{S}"/>): on the AVX-512 path
    /// twelve rows at a time on one 512-bit vector of columns (<see cref="Tile512x12{W}"/>: twelve FMAs of 16 lanes per
    /// load of B, where the AVX2 tile does twelve of 8 per two — H = 50's state-gradient product and E4's weight gradient
    /// have such a strip), the rows left on the AVX2 tiles; elsewhere all on them. The same FMA chains either way.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Strip16(int m, int k, float* a, long aRow, long aK, float* b, long ldb, float* c0, long ldc0, float* c, long ldc)
    {
        var i = 0;
        if (SimdMath.Width == SimdWidth.Avx512 && TallTiles)
            for (; i + 12 <= m; i += 12)
                Tile512x12<OneVector>(k, a + i * aRow, aRow, aK, b, b, ldb, c0 == null ? null : c0 + i * ldc0, ldc0, c + i * ldc, ldc);
        if (i < m)
            TileRows<WholeStrip>(m - i, k, a + i * aRow, aRow, aK, b, ldb, c0 == null ? null : c0 + i * ldc0, ldc0, c + i * ldc, ldc, default, default);
    }

    /// <summary>Whether the next register tile, with <paramref name="rest"/> rows left, is a four-row one: the rows then
    /// go in tiles that compute the fewest rows a tile repeats and discards — up to 4 rows in one four-row tile, 7 or 8 in
    /// two, else a six-row tile (8 rows as 6 + 2 computed 12 rows' FMAs; E4's 32-row batch left 8 rows per step, E7's
    /// 128 rows and the 32 rows of a SimpleRnn(32)'s weight gradient too).</summary>
    static bool FourRows(int rest) => rest <= 4 || rest == 7 || rest == 8;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int m, int n, int k, float* a, long lda, float* b, long ldb, float* c0, long ldc0, float* c, long ldc)
    {
        switch (SimdMath.Width)
        {
            case SimdWidth.Avx512 when Avx2.IsSupported && Fma.IsSupported:
                Run512(m, n, k, a, lda, b, ldb, c0, ldc0, c, ldc);
                break;
            case SimdWidth.Avx2 or SimdWidth.Avx512 when Avx2.IsSupported && Fma.IsSupported:
                Run256(m, n, k, a, lda, b, ldb, c0, ldc0, c, ldc, 0);
                break;
            default:
                Scalar(m, n, k, a, lda, b, ldb, c0, ldc0, c, ldc, 0);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Scalar(int m, int n, int k, float* a, long lda, float* b, long ldb, float* c0, long ldc0, float* c, long ldc, int j0)
    {
        for (var i = 0; i < m; i++)
            for (var j = j0; j < n; j++)
            {
                var s = c0 == null ? 0f : c0[i * ldc0 + j];
                for (var p = 0; p < k; p++) s += a[i * lda + p] * b[p * ldb + j];
                c[i * ldc + j] = s;
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Run256(int m, int n, int k, float* a, long lda, float* b, long ldb, float* c0, long ldc0, float* c, long ldc, int j0)
    {
        var j = j0;
        for (; j + 16 <= n; j += 16)
            Strip16(m, k, a, lda, 1, b + j, ldb, c0 == null ? null : c0 + j, ldc0, c + j, ldc);
        for (; j + 8 <= n; j += 8)
            for (var i = 0; i < m; i++)
                Row8(k, a + i * lda, b + j, ldb, c0 == null ? null : c0 + i * ldc0 + j, c + i * ldc + j);
        if (j < n) Scalar(m, n, k, a, lda, b, ldb, c0, ldc0, c, ldc, j);
    }

    /// <summary>C = C0 + A·B on one register tile (6 rows × 16 columns), whole vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Tile6x16(int rows, int k, float* a, long lda, float* b, long ldb, float* c0, long ldc0, float* c, long ldc) =>
        Tile<WholeStrip, Rows6>(rows, k, a, lda, 1, b, ldb, c0, ldc0, c, ldc, default, default);

    /// <summary>A register tile's height, a constant the JIT folds: each instantiation keeps only its rows' code.</summary>
    interface ITileRows
    {
        static abstract int Count { get; }
    }

    struct Rows6 : ITileRows
    {
        public static int Count => 6;
    }

    struct Rows4 : ITileRows
    {
        public static int Count => 4;
    }

    struct Rows12 : ITileRows
    {
        public static int Count => 12;
    }

    struct Rows8 : ITileRows
    {
        public static int Count => 8;
    }

    /// <summary>A 512-bit tile's width in vectors of 16 columns, folded by the JIT as the rows are.</summary>
    interface ITileWidth
    {
        static abstract int Count { get; }
    }

    struct OneVector : ITileWidth
    {
        public static int Count => 1;
    }

    struct TwoVectors : ITileWidth
    {
        public static int Count => 2;
    }

    /// <summary>
    /// The wide register tile both products share: C (mr ≤ R rows × 16 columns; R = 6, or 4 for a short remainder) = C0
    /// (zero when null) + Σ_p a_q,p · B row p, where a_q,p lies at a + q·aRow + p·aK — (lda, 1) for A·B, (1, lda) for
    /// Aᵀ·B — and B's row p at b + p·ldb. Fewer than R rows at the bottom edge repeat the last one (reads stay inside A
    /// and C0) and store only their own; the strip <typeparamref name="S"/> reads and writes whole vectors or masked
    /// lanes. Each element is the same FMA chain from C0 over p in order whatever the tile's height.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile<S, R>(int mr, int k, float* a, long aRow, long aK, float* b, long ldb, float* c0, long ldc0, float* c, long ldc,
        Vector256<float> m0, Vector256<float> m1) where S : struct, IStrip where R : struct, ITileRows
    {
        long q1 = Math.Min(1, mr - 1), q2 = Math.Min(2, mr - 1), q3 = Math.Min(3, mr - 1), q4 = Math.Min(4, mr - 1), q5 = Math.Min(5, mr - 1);
        var c00 = Init<S>(c0, 0, m0); var c01 = Init<S>(c0, 8, m1);
        var c10 = Init<S>(c0, q1 * ldc0, m0); var c11 = Init<S>(c0, q1 * ldc0 + 8, m1);
        var c20 = Init<S>(c0, q2 * ldc0, m0); var c21 = Init<S>(c0, q2 * ldc0 + 8, m1);
        var c30 = Init<S>(c0, q3 * ldc0, m0); var c31 = Init<S>(c0, q3 * ldc0 + 8, m1);
        Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default;
        if (R.Count == 6)
        {
            c40 = Init<S>(c0, q4 * ldc0, m0); c41 = Init<S>(c0, q4 * ldc0 + 8, m1);
            c50 = Init<S>(c0, q5 * ldc0, m0); c51 = Init<S>(c0, q5 * ldc0 + 8, m1);
        }
        float* a1 = a + q1 * aRow, a2 = a + q2 * aRow, a3 = a + q3 * aRow, a4 = a + q4 * aRow, a5 = a + q5 * aRow;
        float* bp = b;
        long o = 0;
        for (var p = 0; p < k; p++, o += aK, bp += ldb)
        {
            var b0 = S.Load(bp, m0);
            var b1 = S.Load(bp + 8, m1);
            var x = Avx.BroadcastScalarToVector256(a + o);
            c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Avx.BroadcastScalarToVector256(a1 + o);
            c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Avx.BroadcastScalarToVector256(a2 + o);
            c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Avx.BroadcastScalarToVector256(a3 + o);
            c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31);
            if (R.Count == 6)
            {
                x = Avx.BroadcastScalarToVector256(a4 + o);
                c40 = Fma.MultiplyAdd(x, b0, c40); c41 = Fma.MultiplyAdd(x, b1, c41);
                x = Avx.BroadcastScalarToVector256(a5 + o);
                c50 = Fma.MultiplyAdd(x, b0, c50); c51 = Fma.MultiplyAdd(x, b1, c51);
            }
        }
        S.Store(c, m0, c00); S.Store(c + 8, m1, c01);
        if (mr > 1) { S.Store(c + ldc, m0, c10); S.Store(c + ldc + 8, m1, c11); }
        if (mr > 2) { S.Store(c + 2 * ldc, m0, c20); S.Store(c + 2 * ldc + 8, m1, c21); }
        if (mr > 3) { S.Store(c + 3 * ldc, m0, c30); S.Store(c + 3 * ldc + 8, m1, c31); }
        if (R.Count == 6 && mr > 4) { S.Store(c + 4 * ldc, m0, c40); S.Store(c + 4 * ldc + 8, m1, c41); }
        if (R.Count == 6 && mr > 5) { S.Store(c + 5 * ldc, m0, c50); S.Store(c + 5 * ldc + 8, m1, c51); }
    }

    /// <summary>The rows the next narrow tile takes with <paramref name="rest"/> rows left: up to 8 rows in one eight-row
    /// tile, 13–16 in two, else twelve rows (as <see cref="FourRows"/>: the fewest rows computed and discarded).</summary>
    static int NarrowRows(int rest) => Math.Min(rest <= 8 || rest is >= 13 and <= 16 ? 8 : 12, rest);

    /// <summary><see cref="Narrow{S, R}"/> on an eight-row tile for up to 8 rows, else a twelve-row one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void NarrowTile<S>(int mr, int k, float* a, long aRow, long aK, float* b, long ldb, float* c0, long ldc0, float* c, long ldc,
        Vector256<float> mask) where S : struct, IStrip
    {
        if (mr <= 8) Narrow<S, Rows8>(mr, k, a, aRow, aK, b, ldb, c0, ldc0, c, ldc, mask);
        else Narrow<S, Rows12>(mr, k, a, aRow, aK, b, ldb, c0, ldc0, c, ldc, mask);
    }

    /// <summary>
    /// The narrow register tile for a last strip of at most 8 columns: C (mr ≤ R rows × 8 columns, or the mask's lanes;
    /// R = 12, or 8 for a short remainder) = C0 (zero when null) + Σ_p a_q,p · B row p, A addressed as in
    /// <see cref="Tile{S, R}"/>. Twelve accumulators of one vector keep the FMA units as busy as the wide tile's twelve
    /// of two (the 8-row tile has eight); rows beyond mr repeat the last one and are not stored.
    /// <typeparamref name="S"/> reads B and C0 and writes C: whole vectors (a packed panel, 16 floats wide, into a
    /// scratch tile), or only the mask's lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Narrow<S, R>(int mr, int k, float* a, long aRow, long aK, float* b, long ldb, float* c0, long ldc0, float* c, long ldc,
        Vector256<float> mask) where S : struct, IStrip where R : struct, ITileRows
    {
        var q = stackalloc long[12];
        for (var i = 0; i < 12; i++) q[i] = Math.Min(i, mr - 1);
        var c00 = Init<S>(c0, 0, mask); var c01 = Init<S>(c0, q[1] * ldc0, mask);
        var c02 = Init<S>(c0, q[2] * ldc0, mask); var c03 = Init<S>(c0, q[3] * ldc0, mask);
        var c04 = Init<S>(c0, q[4] * ldc0, mask); var c05 = Init<S>(c0, q[5] * ldc0, mask);
        var c06 = Init<S>(c0, q[6] * ldc0, mask); var c07 = Init<S>(c0, q[7] * ldc0, mask);
        Vector256<float> c08 = default, c09 = default, c10 = default, c11 = default;
        if (R.Count == 12)
        {
            c08 = Init<S>(c0, q[8] * ldc0, mask); c09 = Init<S>(c0, q[9] * ldc0, mask);
            c10 = Init<S>(c0, q[10] * ldc0, mask); c11 = Init<S>(c0, q[11] * ldc0, mask);
        }
        float* a1 = a + q[1] * aRow, a2 = a + q[2] * aRow, a3 = a + q[3] * aRow, a4 = a + q[4] * aRow, a5 = a + q[5] * aRow,
            a6 = a + q[6] * aRow, a7 = a + q[7] * aRow, a8 = a + q[8] * aRow, a9 = a + q[9] * aRow, a10 = a + q[10] * aRow,
            a11 = a + q[11] * aRow;
        float* bp = b;
        long o = 0;
        for (var p = 0; p < k; p++, o += aK, bp += ldb)
        {
            var bv = S.Load(bp, mask);
            c00 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a + o), bv, c00);
            c01 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a1 + o), bv, c01);
            c02 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a2 + o), bv, c02);
            c03 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a3 + o), bv, c03);
            c04 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a4 + o), bv, c04);
            c05 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a5 + o), bv, c05);
            c06 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a6 + o), bv, c06);
            c07 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a7 + o), bv, c07);
            if (R.Count == 12)
            {
                c08 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a8 + o), bv, c08);
                c09 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a9 + o), bv, c09);
                c10 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a10 + o), bv, c10);
                c11 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a11 + o), bv, c11);
            }
        }
        S.Store(c, mask, c00);
        if (mr > 1) S.Store(c + ldc, mask, c01);
        if (mr > 2) S.Store(c + 2 * ldc, mask, c02);
        if (mr > 3) S.Store(c + 3 * ldc, mask, c03);
        if (mr > 4) S.Store(c + 4 * ldc, mask, c04);
        if (mr > 5) S.Store(c + 5 * ldc, mask, c05);
        if (mr > 6) S.Store(c + 6 * ldc, mask, c06);
        if (mr > 7) S.Store(c + 7 * ldc, mask, c07);
        if (R.Count == 12 && mr > 8) S.Store(c + 8 * ldc, mask, c08);
        if (R.Count == 12 && mr > 9) S.Store(c + 9 * ldc, mask, c09);
        if (R.Count == 12 && mr > 10) S.Store(c + 10 * ldc, mask, c10);
        if (R.Count == 12 && mr > 11) S.Store(c + 11 * ldc, mask, c11);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Init<S>(float* c0, long offset, Vector256<float> mask) where S : struct, IStrip =>
        c0 == null ? Vector256<float>.Zero : S.Load(c0 + offset, mask);

    /// <summary>One row, one vector (8 columns) wide: the column tail of a B whose width is not whole 16-column strips.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Row8(int k, float* a, float* b, long ldb, float* c0, float* c)
    {
        var s0 = Init<WholeStrip>(c0, 0, default);
        for (var p = 0; p < k; p++)
            s0 = Fma.MultiplyAdd(Avx.BroadcastScalarToVector256(a + p), Avx.LoadVector256(b + p * ldb), s0);
        Avx.Store(c, s0);
    }

    // ---- C += Aᵀ·B: a weight gradient accumulated over a group of steps' rows ----

    /// <summary>
    /// C += Aᵀ·B summed over <paramref name="rows"/> rows: A is rows×m (row stride lda), B rows×n (row stride ldb),
    /// C m×n (row stride ldc) — Σ_r a_rᵀ b_r, the weight gradient of a few steps' batch rows (the pre-activation
    /// gradient's rows against the [h | x] rows, <see cref="RecurrentKernels.GroupSteps"/>), added while both are still
    /// in the cache. Register tiles of 6 C rows × 16 columns, each summing its rows in order (no packing: a row of A gives
    /// six broadcasts, a row of B two vectors); a last strip of up to 4 columns goes down C's rows
    /// (<see cref="AtBColumns"/>), one of 5–8 takes the 12 × 8 narrow tile, one of 9–15 the wide tile with masked loads
    /// and stores — every element one FMA chain from C over the rows in order, whichever path. On the AVX-512 path 32
    /// columns at a time go on 12-, 8- and 6-row × 32 tiles first (<see cref="Rows512"/>: the same chains) and whole
    /// 16-column strips on <see cref="Strip16"/>, the narrower rest on the AVX2 code; plain loops without AVX2.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AccumulateAtB(int rows, int m, int n, float* a, long lda, float* b, long ldb, float* c, long ldc)
    {
        if (rows <= 0 || m <= 0 || n <= 0) return;
        if (SimdMath.Width == SimdWidth.Scalar || !Avx2.IsSupported || !Fma.IsSupported)
        {
            for (var r = 0; r < rows; r++)
                for (var i = 0; i < m; i++)
                {
                    var x = a[r * lda + i];
                    for (var j = 0; j < n; j++) c[i * ldc + j] += x * b[r * ldb + j];
                }
            return;
        }
        var q = 0;
        if (SimdMath.Width == SimdWidth.Avx512)
            for (; q + 2 * Panel <= n; q += 2 * Panel)
                Rows512(m, rows, a, 1, lda, b + q, b + q + Panel, ldb, c + q, ldc, c + q, ldc);
        for (; q + Panel <= n; q += Panel)
            Strip16(m, rows, a, 1, lda, b + q, ldb, c + q, ldc, c + q, ldc);
        if (q == n) return;
        if (n - q <= 4)
        {
            AtBColumns(rows, m, n - q, a, lda, b + q, ldb, c + q, ldc);
            return;
        }
        if (n - q <= 8)
        {
            var mask = MaskedStrip.Lanes(n - q);
            for (var i = 0; i < m;)
            {
                var tileRows = NarrowRows(m - i);
                float* ci = c + i * ldc + q;
                NarrowTile<MaskedStrip>(tileRows, rows, a + i, 1, lda, b + q, ldb, ci, ldc, ci, ldc, mask);
                i += tileRows;
            }
            return;
        }
        TileRows<MaskedStrip>(m, rows, a, 1, lda, b + q, ldb, c + q, ldc, c + q, ldc, MaskedStrip.Lanes(n - q), MaskedStrip.Lanes(n - q - 8));
    }

    /// <summary>
    /// C's first <paramref name="cols"/> columns (a last strip of up to 4) += Aᵀ·B, vectorised over C's rows instead of
    /// its columns: 8 consecutive C rows are 8 consecutive floats of an A row, so a column of C takes one FMA per 8 rows
    /// and A row, where the narrow tile takes one per row whatever the strip's width (E4's [h | x] has 82 columns: a
    /// strip of 2 cost as much as 8). Blocks of 48 C rows × 2 columns (12 accumulators, read from and written back to C's
    /// column once per call), then single vectors (masked lanes past m). Each element the same FMA chain over the rows in
    /// order as the tiles'.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void AtBColumns(int rows, int m, int cols, float* a, long lda, float* b, long ldb, float* c, long ldc)
    {
        for (var j = 0; j < cols; j += 2)
        {
            var k = Math.Min(j + 1, cols - 1);                                // an odd last column: computed twice, stored once
            var i = 0;
            for (; i + 48 <= m; i += 48) Columns48(rows, a + i, lda, b + j, b + k, ldb, c + i * ldc + j, c + i * ldc + k, ldc);
            for (; i < m; i += 8) Columns8(rows, Math.Min(8, m - i), a + i, lda, b + j, b + k, ldb, c + i * ldc + j, c + i * ldc + k, ldc);
        }
    }

    /// <summary>48 rows of C's columns j and k (pointers cj, ck): 6 vectors each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Columns48(int rows, float* a, long lda, float* bj, float* bk, long ldb, float* cj, float* ck, long ldc)
    {
        var x0 = Gather(cj, ldc, 8); var x1 = Gather(cj + 8 * ldc, ldc, 8); var x2 = Gather(cj + 16 * ldc, ldc, 8);
        var x3 = Gather(cj + 24 * ldc, ldc, 8); var x4 = Gather(cj + 32 * ldc, ldc, 8); var x5 = Gather(cj + 40 * ldc, ldc, 8);
        var y0 = Gather(ck, ldc, 8); var y1 = Gather(ck + 8 * ldc, ldc, 8); var y2 = Gather(ck + 16 * ldc, ldc, 8);
        var y3 = Gather(ck + 24 * ldc, ldc, 8); var y4 = Gather(ck + 32 * ldc, ldc, 8); var y5 = Gather(ck + 40 * ldc, ldc, 8);
        for (var r = 0; r < rows; r++, a += lda, bj += ldb, bk += ldb)
        {
            var u = Avx.BroadcastScalarToVector256(bj);
            var w = Avx.BroadcastScalarToVector256(bk);
            var v = Avx.LoadVector256(a); x0 = Fma.MultiplyAdd(v, u, x0); y0 = Fma.MultiplyAdd(v, w, y0);
            v = Avx.LoadVector256(a + 8); x1 = Fma.MultiplyAdd(v, u, x1); y1 = Fma.MultiplyAdd(v, w, y1);
            v = Avx.LoadVector256(a + 16); x2 = Fma.MultiplyAdd(v, u, x2); y2 = Fma.MultiplyAdd(v, w, y2);
            v = Avx.LoadVector256(a + 24); x3 = Fma.MultiplyAdd(v, u, x3); y3 = Fma.MultiplyAdd(v, w, y3);
            v = Avx.LoadVector256(a + 32); x4 = Fma.MultiplyAdd(v, u, x4); y4 = Fma.MultiplyAdd(v, w, y4);
            v = Avx.LoadVector256(a + 40); x5 = Fma.MultiplyAdd(v, u, x5); y5 = Fma.MultiplyAdd(v, w, y5);
        }
        Scatter(cj, ldc, 8, x0); Scatter(cj + 8 * ldc, ldc, 8, x1); Scatter(cj + 16 * ldc, ldc, 8, x2);
        Scatter(cj + 24 * ldc, ldc, 8, x3); Scatter(cj + 32 * ldc, ldc, 8, x4); Scatter(cj + 40 * ldc, ldc, 8, x5);
        // column k after column j: when they are one column (an odd last one), k's sums are j's, stored again
        Scatter(ck, ldc, 8, y0); Scatter(ck + 8 * ldc, ldc, 8, y1); Scatter(ck + 16 * ldc, ldc, 8, y2);
        Scatter(ck + 24 * ldc, ldc, 8, y3); Scatter(ck + 32 * ldc, ldc, 8, y4); Scatter(ck + 40 * ldc, ldc, 8, y5);
    }

    /// <summary>Up to 8 rows (<paramref name="lanes"/>) of C's columns j and k: one vector each, A's lanes past them
    /// not read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Columns8(int rows, int lanes, float* a, long lda, float* bj, float* bk, long ldb, float* cj, float* ck, long ldc)
    {
        var mask = MaskedStrip.Lanes(lanes);
        var x = Gather(cj, ldc, lanes);
        var y = Gather(ck, ldc, lanes);
        for (var r = 0; r < rows; r++, a += lda, bj += ldb, bk += ldb)
        {
            var v = Avx.MaskLoad(a, mask);
            x = Fma.MultiplyAdd(v, Avx.BroadcastScalarToVector256(bj), x);
            y = Fma.MultiplyAdd(v, Avx.BroadcastScalarToVector256(bk), y);
        }
        Scatter(cj, ldc, lanes, x);
        Scatter(ck, ldc, lanes, y);
    }

    /// <summary>p[0], p[ld], … p[(n − 1)·ld] as a vector's first n lanes (the rest 0).</summary>
    static Vector256<float> Gather(float* p, long ld, int n)
    {
        var t = stackalloc float[8];
        for (var l = 0; l < 8; l++) t[l] = l < n ? p[l * ld] : 0f;
        return Avx.LoadVector256(t);
    }

    /// <summary>The vector's first n lanes to p[0], p[ld], … p[(n − 1)·ld].</summary>
    static void Scatter(float* p, long ld, int n, Vector256<float> v)
    {
        var t = stackalloc float[8];
        Avx.Store(t, v);
        for (var l = 0; l < n; l++) p[l * ld] = t[l];
    }

    // ---- AVX-512: 12, 8 or 6 rows × 32 columns per tile, on two packed panels or on B as it is, and 12 rows × 16 for a
    // whole 16-column strip (Strip16); the rest of the columns on the AVX2 code. Each element is the same FMA chain from
    // C0 over p in order as on the AVX2 tiles, so both paths give the same floats ----

    /// <summary>All m rows of one 32-column strip on 512-bit tiles (A, B, C0 and C addressed as in <see cref="Tile512{R}"/>,
    /// row i of A at a + i·aRow): twelve rows per tile (<see cref="Tile512x12{W}"/>), eight for 16 rows left or 7–8 (E4's
    /// 32-row batch: 12 + 12 + 8; two threads' 16 rows: 8 + 8, not 12 + 4 computed as 12 + 6), six otherwise (9–11:
    /// two six-row tiles, as many rows computed as one twelve-row tile would).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Rows512(int m, int k, float* a, long aRow, long aK, float* b0, float* b1, long bStep, float* c0, long ldc0, float* c, long ldc)
    {
        for (var i = 0; i < m;)
        {
            float* ai = a + i * aRow, ci0 = c0 == null ? null : c0 + i * ldc0, ci = c + i * ldc;
            var rest = m - i;
            if (TallTiles && rest >= 12 && rest != 16)
            {
                Tile512x12<TwoVectors>(k, ai, aRow, aK, b0, b1, bStep, ci0, ldc0, ci, ldc);
                i += 12;
            }
            else if (TallTiles && rest is 7 or 8 or 16)
            {
                Tile512<Rows8>(Math.Min(8, rest), k, ai, aRow, aK, b0, b1, bStep, ci0, ldc0, ci, ldc);
                i += 8;
            }
            else
            {
                Tile512<Rows6>(Math.Min(6, rest), k, ai, aRow, aK, b0, b1, bStep, ci0, ldc0, ci, ldc);
                i += 6;
            }
        }
    }

    /// <summary>On the AVX-512 path, twelve- and eight-row tiles where <see cref="Rows512"/> picks them and whole 16-column
    /// strips on 512 bits (<see cref="Strip16"/>) — the default — or six-row tiles only and those strips on the AVX2
    /// tiles: a benchmark's A/B (`bench phases --tiles-ab`), process-wide. The same floats either way.</summary>
    internal static bool TallTiles { get; set; } = true;

    /// <summary>
    /// C[0..12) × 32 columns (W = 2) = C0 + A·B (or Aᵀ·B) on twenty-four 512-bit sums, A and B addressed as in
    /// <see cref="Tile512{R}"/>: per element of k, two B vectors and twelve broadcasts feed 24 FMAs, where the six-row tile
    /// spends 2 + 6 loads and the loop's own instructions on 12 — at four instructions a cycle that tile's loop is
    /// front-end bound, this one's waits only on the FMA units. With W = 1, 16 columns (one vector of B at b0; b1
    /// unused) on twelve sums: a whole 16-column strip (<see cref="Strip16"/>). The twelve rows are reached from four
    /// pointers (rows 0, 3, 6, 9) plus one or two row strides, so that the loop needs no more registers than x64 has.
    /// Each element is the same FMA chain from C0 over p in order as on the six-row tile: the same floats.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile512x12<W>(int k, float* a, long aRow, long aK, float* b0, float* b1, long bStep, float* c0, long ldc0, float* c, long ldc)
        where W : struct, ITileWidth
    {
        var c00 = Init512(c0, 0); var c01 = W.Count == 2 ? Init512(c0, 16) : default;
        var c10 = Init512(c0, ldc0); var c11 = W.Count == 2 ? Init512(c0, ldc0 + 16) : default;
        var c20 = Init512(c0, 2 * ldc0); var c21 = W.Count == 2 ? Init512(c0, 2 * ldc0 + 16) : default;
        var c30 = Init512(c0, 3 * ldc0); var c31 = W.Count == 2 ? Init512(c0, 3 * ldc0 + 16) : default;
        var c40 = Init512(c0, 4 * ldc0); var c41 = W.Count == 2 ? Init512(c0, 4 * ldc0 + 16) : default;
        var c50 = Init512(c0, 5 * ldc0); var c51 = W.Count == 2 ? Init512(c0, 5 * ldc0 + 16) : default;
        var c60 = Init512(c0, 6 * ldc0); var c61 = W.Count == 2 ? Init512(c0, 6 * ldc0 + 16) : default;
        var c70 = Init512(c0, 7 * ldc0); var c71 = W.Count == 2 ? Init512(c0, 7 * ldc0 + 16) : default;
        var c80 = Init512(c0, 8 * ldc0); var c81 = W.Count == 2 ? Init512(c0, 8 * ldc0 + 16) : default;
        var c90 = Init512(c0, 9 * ldc0); var c91 = W.Count == 2 ? Init512(c0, 9 * ldc0 + 16) : default;
        var ca0 = Init512(c0, 10 * ldc0); var ca1 = W.Count == 2 ? Init512(c0, 10 * ldc0 + 16) : default;
        var cb0 = Init512(c0, 11 * ldc0); var cb1 = W.Count == 2 ? Init512(c0, 11 * ldc0 + 16) : default;
        long r1 = aRow, r2 = 2 * aRow, d = b1 - b0;
        float* p0 = a, p3 = a + 3 * aRow, p6 = a + 6 * aRow, p9 = a + 9 * aRow, end = a + k * aK;
        // (no counter: p0 runs to its end; B's second half at a fixed distance from the first: two registers fewer)
        for (; p0 < end; p0 += aK, p3 += aK, p6 += aK, p9 += aK, b0 += bStep)
        {
            var v0 = Vector512.Load(b0);
            var v1 = W.Count == 2 ? Vector512.Load(b0 + d) : default;
            var x = Vector512.Create(*p0);
            c00 = Vector512.FusedMultiplyAdd(x, v0, c00);
            if (W.Count == 2) c01 = Vector512.FusedMultiplyAdd(x, v1, c01);
            x = Vector512.Create(p0[r1]);
            c10 = Vector512.FusedMultiplyAdd(x, v0, c10);
            if (W.Count == 2) c11 = Vector512.FusedMultiplyAdd(x, v1, c11);
            x = Vector512.Create(p0[r2]);
            c20 = Vector512.FusedMultiplyAdd(x, v0, c20);
            if (W.Count == 2) c21 = Vector512.FusedMultiplyAdd(x, v1, c21);
            x = Vector512.Create(*p3);
            c30 = Vector512.FusedMultiplyAdd(x, v0, c30);
            if (W.Count == 2) c31 = Vector512.FusedMultiplyAdd(x, v1, c31);
            x = Vector512.Create(p3[r1]);
            c40 = Vector512.FusedMultiplyAdd(x, v0, c40);
            if (W.Count == 2) c41 = Vector512.FusedMultiplyAdd(x, v1, c41);
            x = Vector512.Create(p3[r2]);
            c50 = Vector512.FusedMultiplyAdd(x, v0, c50);
            if (W.Count == 2) c51 = Vector512.FusedMultiplyAdd(x, v1, c51);
            x = Vector512.Create(*p6);
            c60 = Vector512.FusedMultiplyAdd(x, v0, c60);
            if (W.Count == 2) c61 = Vector512.FusedMultiplyAdd(x, v1, c61);
            x = Vector512.Create(p6[r1]);
            c70 = Vector512.FusedMultiplyAdd(x, v0, c70);
            if (W.Count == 2) c71 = Vector512.FusedMultiplyAdd(x, v1, c71);
            x = Vector512.Create(p6[r2]);
            c80 = Vector512.FusedMultiplyAdd(x, v0, c80);
            if (W.Count == 2) c81 = Vector512.FusedMultiplyAdd(x, v1, c81);
            x = Vector512.Create(*p9);
            c90 = Vector512.FusedMultiplyAdd(x, v0, c90);
            if (W.Count == 2) c91 = Vector512.FusedMultiplyAdd(x, v1, c91);
            x = Vector512.Create(p9[r1]);
            ca0 = Vector512.FusedMultiplyAdd(x, v0, ca0);
            if (W.Count == 2) ca1 = Vector512.FusedMultiplyAdd(x, v1, ca1);
            x = Vector512.Create(p9[r2]);
            cb0 = Vector512.FusedMultiplyAdd(x, v0, cb0);
            if (W.Count == 2) cb1 = Vector512.FusedMultiplyAdd(x, v1, cb1);
        }
        c00.Store(c); if (W.Count == 2) c01.Store(c + 16);
        c10.Store(c + ldc); if (W.Count == 2) c11.Store(c + ldc + 16);
        c20.Store(c + 2 * ldc); if (W.Count == 2) c21.Store(c + 2 * ldc + 16);
        c30.Store(c + 3 * ldc); if (W.Count == 2) c31.Store(c + 3 * ldc + 16);
        c40.Store(c + 4 * ldc); if (W.Count == 2) c41.Store(c + 4 * ldc + 16);
        c50.Store(c + 5 * ldc); if (W.Count == 2) c51.Store(c + 5 * ldc + 16);
        c60.Store(c + 6 * ldc); if (W.Count == 2) c61.Store(c + 6 * ldc + 16);
        c70.Store(c + 7 * ldc); if (W.Count == 2) c71.Store(c + 7 * ldc + 16);
        c80.Store(c + 8 * ldc); if (W.Count == 2) c81.Store(c + 8 * ldc + 16);
        c90.Store(c + 9 * ldc); if (W.Count == 2) c91.Store(c + 9 * ldc + 16);
        ca0.Store(c + 10 * ldc); if (W.Count == 2) ca1.Store(c + 10 * ldc + 16);
        cb0.Store(c + 11 * ldc); if (W.Count == 2) cb1.Store(c + 11 * ldc + 16);
    }

    /// <summary>C[0..mr) × 32 columns = C0 + A·B (or Aᵀ·B) on 2·R 512-bit sums (R = 6, or 8 for a remainder of 7, 8 or
    /// 16 rows: <see cref="Rows512"/>): A's element (i, p) at a + i·aRow + p·aK; B's row p as two 16-float halves at
    /// b0 + p·bStep and b1 + p·bStep — a pair of adjacent packed panels (b1 = b0 + the panel stride, bStep 16) or 32
    /// columns of B as it is (b1 = b0 + 16, bStep its row stride). Fewer than R rows at the bottom edge repeat the last
    /// one (reads stay inside A and C0) and store only their own.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile512<R>(int mr, int k, float* a, long aRow, long aK, float* b0, float* b1, long bStep, float* c0, long ldc0, float* c, long ldc)
        where R : struct, ITileRows
    {
        long q1 = Math.Min(1, mr - 1), q2 = Math.Min(2, mr - 1), q3 = Math.Min(3, mr - 1), q4 = Math.Min(4, mr - 1), q5 = Math.Min(5, mr - 1),
            q6 = Math.Min(6, mr - 1), q7 = Math.Min(7, mr - 1);
        var c00 = Init512(c0, 0); var c01 = Init512(c0, 16);
        var c10 = Init512(c0, q1 * ldc0); var c11 = Init512(c0, q1 * ldc0 + 16);
        var c20 = Init512(c0, q2 * ldc0); var c21 = Init512(c0, q2 * ldc0 + 16);
        var c30 = Init512(c0, q3 * ldc0); var c31 = Init512(c0, q3 * ldc0 + 16);
        var c40 = Init512(c0, q4 * ldc0); var c41 = Init512(c0, q4 * ldc0 + 16);
        var c50 = Init512(c0, q5 * ldc0); var c51 = Init512(c0, q5 * ldc0 + 16);
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        if (R.Count == 8)
        {
            c60 = Init512(c0, q6 * ldc0); c61 = Init512(c0, q6 * ldc0 + 16);
            c70 = Init512(c0, q7 * ldc0); c71 = Init512(c0, q7 * ldc0 + 16);
        }
        float* a1 = a + q1 * aRow, a2 = a + q2 * aRow, a3 = a + q3 * aRow, a4 = a + q4 * aRow, a5 = a + q5 * aRow,
            a6 = a + q6 * aRow, a7 = a + q7 * aRow;
        // the loop's registers: A's offset and its end, B's pointer and the distance to its second half (x64 has 16 and
        // eight row pointers are live; a counter and a second B pointer made the JIT reload a row pointer every step)
        long d = b1 - b0, end = k * aK;
        for (long o = 0; o < end; o += aK, b0 += bStep)
        {
            var v0 = Vector512.Load(b0);
            var v1 = Vector512.Load(b0 + d);
            var x = Vector512.Create(a[o]);
            c00 = Vector512.FusedMultiplyAdd(x, v0, c00); c01 = Vector512.FusedMultiplyAdd(x, v1, c01);
            x = Vector512.Create(a1[o]);
            c10 = Vector512.FusedMultiplyAdd(x, v0, c10); c11 = Vector512.FusedMultiplyAdd(x, v1, c11);
            x = Vector512.Create(a2[o]);
            c20 = Vector512.FusedMultiplyAdd(x, v0, c20); c21 = Vector512.FusedMultiplyAdd(x, v1, c21);
            x = Vector512.Create(a3[o]);
            c30 = Vector512.FusedMultiplyAdd(x, v0, c30); c31 = Vector512.FusedMultiplyAdd(x, v1, c31);
            x = Vector512.Create(a4[o]);
            c40 = Vector512.FusedMultiplyAdd(x, v0, c40); c41 = Vector512.FusedMultiplyAdd(x, v1, c41);
            x = Vector512.Create(a5[o]);
            c50 = Vector512.FusedMultiplyAdd(x, v0, c50); c51 = Vector512.FusedMultiplyAdd(x, v1, c51);
            if (R.Count == 8)
            {
                x = Vector512.Create(a6[o]);
                c60 = Vector512.FusedMultiplyAdd(x, v0, c60); c61 = Vector512.FusedMultiplyAdd(x, v1, c61);
                x = Vector512.Create(a7[o]);
                c70 = Vector512.FusedMultiplyAdd(x, v0, c70); c71 = Vector512.FusedMultiplyAdd(x, v1, c71);
            }
        }
        c00.Store(c); c01.Store(c + 16);
        if (mr > 1) { c10.Store(c + ldc); c11.Store(c + ldc + 16); }
        if (mr > 2) { c20.Store(c + 2 * ldc); c21.Store(c + 2 * ldc + 16); }
        if (mr > 3) { c30.Store(c + 3 * ldc); c31.Store(c + 3 * ldc + 16); }
        if (mr > 4) { c40.Store(c + 4 * ldc); c41.Store(c + 4 * ldc + 16); }
        if (mr > 5) { c50.Store(c + 5 * ldc); c51.Store(c + 5 * ldc + 16); }
        if (R.Count == 8 && mr > 6) { c60.Store(c + 6 * ldc); c61.Store(c + 6 * ldc + 16); }
        if (R.Count == 8 && mr > 7) { c70.Store(c + 7 * ldc); c71.Store(c + 7 * ldc + 16); }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Run512(int m, int n, int k, float* a, long lda, float* b, long ldb, float* c0, long ldc0, float* c, long ldc)
    {
        var j = 0;
        for (; j + 32 <= n; j += 32)
            Rows512(m, k, a, lda, 1, b + j, b + j + 16, ldb, c0 == null ? null : c0 + j, ldc0, c + j, ldc);
        if (j < n) Run256(m, n, k, a, lda, b, ldb, c0, ldc0, c, ldc, j);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Init512(float* c0, long offset) => c0 == null ? Vector512<float>.Zero : Vector512.Load(c0 + offset);

}
