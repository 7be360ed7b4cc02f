#!/usr/bin/env python3
"""Fits the SIMD kernel's tanh (src/SeqDsl/Engine/Simd/SimdMath.cs): tanh(x) ~ x * P(x^2) / Q(x^2) on [0, C],
P of degree M and Q of degree N in x^2 (Q's constant 1), minimising the largest relative error.

Lawson's iteration on a linearised least-squares problem: each round solves
  min sum_i w_i * ((P(s_i) - f_i * Q(s_i)) / (f_i * Q_prev(s_i)))^2,   f_i = tanh(x_i) / x_i, s_i = x_i^2,
then multiplies each point's weight by its relative error, which drives the fit towards equal ripple. The best
round is checked on a dense grid. Needs python3-mpmath (Debian); no numpy.

  python3 bench/tanh-fit.py 4 4 9      # the kernel's fit: relative error 2.07e-8 before float32 rounding

Prints the largest relative error on a dense grid, with the fitted and with float32-rounded coefficients, then P and Q
as float32 literals (nine digits, exact), from the constant term up (the constant terms come out 1 to float32).
"""
import struct
import sys

import mpmath as mp

mp.mp.dps = 40
M, N, C = int(sys.argv[1]), int(sys.argv[2]), mp.mpf(sys.argv[3])
POINTS = 400

xs = sorted({C * (1 - mp.cos(mp.pi * (i + mp.mpf(1) / 2) / POINTS)) / 2 for i in range(POINTS)}
            | {C * i / POINTS for i in range(1, POINTS + 1)})
f = [mp.tanh(x) / x for x in xs]
s = [x * x for x in xs]


def horner(coefficients, t):
    r = mp.mpf(0)
    for a in reversed(coefficients):
        r = r * t + a
    return r


weights = [mp.mpf(1)] * len(xs)
q_prev = [mp.mpf(1)] * len(xs)
best = None
for _ in range(60):
    A = mp.matrix(len(xs), M + 1 + N)
    b = mp.matrix(len(xs), 1)
    for i in range(len(xs)):
        scale = mp.sqrt(weights[i]) / (f[i] * q_prev[i])
        for j in range(M + 1):
            A[i, j] = scale * s[i] ** j
        for j in range(1, N + 1):
            A[i, M + j] = -scale * f[i] * s[i] ** j
        b[i] = scale * f[i]
    solution, _ = mp.qr_solve(A, b)
    P = [solution[j] for j in range(M + 1)]
    Q = [mp.mpf(1)] + [solution[M + j] for j in range(1, N + 1)]
    errors = [horner(P, s[i]) / horner(Q, s[i]) / f[i] - 1 for i in range(len(xs))]
    worst = max(abs(e) for e in errors)
    if best is None or worst < best[0]:
        best = (worst, P, Q)
    q_prev = [horner(Q, t) for t in s]
    total = sum(w * abs(e) for w, e in zip(weights, errors))
    weights = [w * abs(e) / total * len(xs) + mp.mpf(10) ** -30 for w, e in zip(weights, errors)]

_, P, Q = best
dense = max(abs(x * horner(P, x * x) / horner(Q, x * x) / mp.tanh(x) - 1)
            for x in (C * k / 20000 for k in range(1, 20001)))
print(f"M {M}, N {N}, [0, {C}]: largest relative error {mp.nstr(dense, 3)} (float32's half ulp: 2^-24 = 5.96e-8)")


def single(v):
    return mp.mpf(struct.unpack('f', struct.pack('f', float(v)))[0])


# the same check with the coefficients rounded to float32, as the kernel holds them (the arithmetic still exact: what
# float32 evaluation adds on top is what the test "the gate functions against float64" measures)
P32, Q32 = [single(v) for v in P], [single(v) for v in Q]
rounded = max(abs(x * horner(P32, x * x) / horner(Q32, x * x) / mp.tanh(x) - 1)
              for x in (C * k / 20000 for k in range(1, 20001)))
print(f"with float32 coefficients: {mp.nstr(rounded, 3)}")


def literal(v):
    single = struct.unpack('f', struct.pack('f', float(v)))[0]
    text = '%.9g' % single
    assert struct.unpack('f', struct.pack('f', float(text)))[0] == single
    return text + 'f'


print("P:", ", ".join(literal(v) for v in P))
print("Q:", ", ".join(literal(v) for v in Q))
