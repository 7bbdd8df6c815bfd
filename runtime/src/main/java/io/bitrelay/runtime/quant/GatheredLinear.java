package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.Linear;
import io.bitrelay.runtime.model.opt.LinearLayer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * An FP32 linear that reads its input through a permutation: position {@code k} of the input it multiplies
 * is channel {@code gather[k]} of the input it is given, and {@code linear}'s columns are in position
 * order. It is the FP32 form of out_proj after {@link ReorderFusion} (the reordered model that must equal
 * the original); a quantizing layer folds the gather into its quantizer instead ({@link LowBitLinear}).
 *
 * @param gather (inFeatures) input channel at each position, a permutation
 * @param linear the layer with its input columns in position order
 */
public record GatheredLinear(int[] gather, Linear linear) implements LinearLayer {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ThreadLocal<MemorySegment[]> SCRATCH = ThreadLocal.withInitial(() -> new MemorySegment[] {
            MemorySegment.NULL});

    public GatheredLinear {
        if (gather.length != linear.inFeatures()) {
            throw new IllegalArgumentException("gather has " + gather.length + " entries for " + linear.inFeatures()
                    + " inputs");
        }
        gather = gather.clone();
    }

    @Override
    public void apply(MemorySegment in, int rows, MemorySegment out) {
        int k = gather.length;
        long bytes = (long) rows * k * Float.BYTES;
        MemorySegment[] holder = SCRATCH.get();
        if (holder[0].byteSize() < bytes) {
            holder[0] = Arena.ofAuto().allocate(bytes, 64);
        }
        MemorySegment gathered = holder[0];
        for (int i = 0; i < rows; i++) {
            long base = (long) i * k;
            for (int p = 0; p < k; p++) {
                gathered.setAtIndex(F32, base + p, in.getAtIndex(F32, base + gather[p]));
            }
        }
        linear.apply(gathered, rows, out);
    }

    @Override
    public int inFeatures() {
        return linear.inFeatures();
    }

    @Override
    public int outFeatures() {
        return linear.outFeatures();
    }
}
