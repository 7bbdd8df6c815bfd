package io.bitrelay.deploy.bench;

import java.util.List;

/**
 * A weight matrix of OPT-175B (hidden 12288, FFN 49152): {@code Y[M,N] = X[M,K] · W[N,K]^T}.
 *
 * @param k input features, {@code n} output features
 */
record GpuGemmShape(String name, int k, int n) {
    static final List<GpuGemmShape> OPT_175B = List.of(
            new GpuGemmShape("qkv", 12288, 36864),
            new GpuGemmShape("out", 12288, 12288),
            new GpuGemmShape("fc1", 12288, 49152),
            new GpuGemmShape("fc2", 49152, 12288));

    static GpuGemmShape named(String name) {
        return OPT_175B.stream().filter(s -> s.name.equals(name)).findFirst().orElseThrow(() ->
                new IllegalArgumentException("unknown shape '" + name + "' (qkv, out, fc1, fc2, or KxN like 4096x11008)"));
    }

    /** "qkv", or a custom "KxN". */
    static GpuGemmShape parse(String text) {
        if (text.matches("\\d+x\\d+")) {
            String[] parts = text.split("x");
            return new GpuGemmShape(text, Integer.parseInt(parts[0]), Integer.parseInt(parts[1]));
        }
        return named(text);
    }
}
