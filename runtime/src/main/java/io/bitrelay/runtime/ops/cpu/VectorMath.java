package io.bitrelay.runtime.ops.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/** Small vectorised primitives over FP32 rows in off-heap memory; offsets are in elements. */
public final class VectorMath {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** Butterfly shuffles {@code i -> i ^ stride} for strides L/2, L/4, ..., 1. */
    private static final List<VectorShuffle<Float>> FOLDS = folds();

    private VectorMath() {
    }

    private static List<VectorShuffle<Float>> folds() {
        List<VectorShuffle<Float>> folds = new ArrayList<>();
        for (int stride = SPECIES.length() / 2; stride > 0; stride /= 2) {
            int s = stride;
            folds.add(VectorShuffle.fromOp(SPECIES, i -> i ^ s));
        }
        return List.copyOf(folds);
    }

    /**
     * The sum of a vector's lanes in one fixed (butterfly) order. {@code reduceLanes(ADD)} may reorder the
     * additions and does once C2 compiles the caller, so a model's output would depend on JIT warm-up: the
     * same prompt gave logits an ulp apart before and after compilation, and a near-tie token could flip.
     * Lanewise adds and shuffles are exact in every tier, so this result is the same wherever it runs.
     */
    public static float sumLanes(FloatVector v) {
        if (v.species() != SPECIES) {
            throw new IllegalArgumentException("sumLanes takes the preferred species, got " + v.species());
        }
        for (VectorShuffle<Float> fold : FOLDS) {
            v = v.add(v.rearrange(fold));
        }
        return v.lane(0);
    }

    public static float dot(MemorySegment a, long aOffset, MemorySegment b, long bOffset, int n) {
        FloatVector acc = FloatVector.zero(SPECIES);
        int i = 0;
        int bound = SPECIES.loopBound(n);
        for (; i < bound; i += SPECIES.length()) {
            FloatVector x = FloatVector.fromMemorySegment(SPECIES, a, (aOffset + i) * Float.BYTES, ORDER);
            FloatVector y = FloatVector.fromMemorySegment(SPECIES, b, (bOffset + i) * Float.BYTES, ORDER);
            acc = x.fma(y, acc);
        }
        float sum = sumLanes(acc);
        for (; i < n; i++) {
            sum += a.getAtIndex(F32, aOffset + i) * b.getAtIndex(F32, bOffset + i);
        }
        return sum;
    }

    /** y[yOffset..+n] += alpha * x[xOffset..+n] */
    public static void axpy(float alpha, MemorySegment x, long xOffset, MemorySegment y, long yOffset, int n) {
        FloatVector a = FloatVector.broadcast(SPECIES, alpha);
        int i = 0;
        int bound = SPECIES.loopBound(n);
        for (; i < bound; i += SPECIES.length()) {
            FloatVector xv = FloatVector.fromMemorySegment(SPECIES, x, (xOffset + i) * Float.BYTES, ORDER);
            FloatVector yv = FloatVector.fromMemorySegment(SPECIES, y, (yOffset + i) * Float.BYTES, ORDER);
            xv.fma(a, yv).intoMemorySegment(y, (yOffset + i) * Float.BYTES, ORDER);
        }
        for (; i < n; i++) {
            y.setAtIndex(F32, yOffset + i, y.getAtIndex(F32, yOffset + i) + alpha * x.getAtIndex(F32, xOffset + i));
        }
    }

    /** y[i] += x[i] over n elements starting at element 0 of both. */
    public static void addInPlace(MemorySegment y, MemorySegment x, long n) {
        long i = 0;
        long bound = n - (n % SPECIES.length());
        for (; i < bound; i += SPECIES.length()) {
            FloatVector xv = FloatVector.fromMemorySegment(SPECIES, x, i * Float.BYTES, ORDER);
            FloatVector yv = FloatVector.fromMemorySegment(SPECIES, y, i * Float.BYTES, ORDER);
            yv.add(xv).intoMemorySegment(y, i * Float.BYTES, ORDER);
        }
        for (; i < n; i++) {
            y.setAtIndex(F32, i, y.getAtIndex(F32, i) + x.getAtIndex(F32, i));
        }
    }

    public static void reluInPlace(MemorySegment x, long n) {
        long i = 0;
        long bound = n - (n % SPECIES.length());
        for (; i < bound; i += SPECIES.length()) {
            FloatVector.fromMemorySegment(SPECIES, x, i * Float.BYTES, ORDER)
                    .max(0f).intoMemorySegment(x, i * Float.BYTES, ORDER);
        }
        for (; i < n; i++) {
            x.setAtIndex(F32, i, Math.max(0f, x.getAtIndex(F32, i)));
        }
    }

    /**
     * LayerNorm over each of {@code rows} rows of width {@code n}: biased variance and eps inside the
     * square root, as torch.nn.LayerNorm computes it. Two passes (mean, then centred variance) keep it
     * as accurate as torch's own reduction for the large-mean channels of outlier models.
     */
    public static void layerNorm(MemorySegment in, MemorySegment out, int rows, int n,
                                 MemorySegment gain, MemorySegment bias, float eps) {
        float[] g = toFloats(gain, n);
        float[] b = toFloats(bias, n);
        CpuParallelism.forEach(rows, row -> layerNormRow(in, out, (long) row * n, n, g, b, eps));
    }

    /**
     * One row through heap arrays: bulk copies in and out, plain array arithmetic between. Element by element
     * segment accesses go through the JDK's shared accessor code; in a GPU worker's JVM that code ran
     * un-inlined (JFR: 55 % of a calibrating worker's samples in AbstractMemorySegmentImpl.isAlignedForElement,
     * LayerNorm the hottest method of ours) and recipe calibration through GPU workers timed out.
     */
    private static void layerNormRow(MemorySegment in, MemorySegment out, long offset, int n,
                                     float[] gain, float[] bias, float eps) {
        float[] x = new float[n];
        MemorySegment.copy(in, F32, offset * Float.BYTES, x, 0, n);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += x[i];
        }
        float mean = (float) (sum / n);
        double squares = 0;
        for (int i = 0; i < n; i++) {
            float centred = x[i] - mean;
            squares += centred * centred;
        }
        float inverseStd = (float) (1.0 / Math.sqrt(squares / n + eps));
        for (int i = 0; i < n; i++) {
            float normalised = (x[i] - mean) * inverseStd;
            x[i] = normalised * gain[i] + bias[i];
        }
        MemorySegment.copy(x, 0, out, F32, offset * Float.BYTES, n);
    }

    /** x[i] *= factor over n elements starting at element 0. */
    public static void scaleInPlace(MemorySegment x, long n, float factor) {
        long i = 0;
        long bound = n - (n % SPECIES.length());
        for (; i < bound; i += SPECIES.length()) {
            FloatVector.fromMemorySegment(SPECIES, x, i * Float.BYTES, ORDER)
                    .mul(factor).intoMemorySegment(x, i * Float.BYTES, ORDER);
        }
        for (; i < n; i++) {
            x.setAtIndex(F32, i, x.getAtIndex(F32, i) * factor);
        }
    }

    /** The first {@code n} FP32 values of a segment as an array (one bulk copy). */
    private static float[] toFloats(MemorySegment segment, int n) {
        float[] values = new float[n];
        MemorySegment.copy(segment, F32, 0, values, 0, n);
        return values;
    }
}
