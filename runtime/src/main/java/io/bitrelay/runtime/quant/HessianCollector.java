package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationObserver;
import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.ops.cpu.Fp32MatMul;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * An {@link ActivationObserver} that accumulates, at the four linear inputs of every layer, the moments GPTQ
 * needs ({@link Hessians}). Each step's rows are transposed and multiplied with themselves by the FP32 GEMM
 * in blocks of {@value #BLOCK_ROWS} rows (float sums that short stay accurate), and the blocks are added up in
 * double. Sums are order-independent up to rounding, so sequences may come in any order or batching.
 */
public final class HessianCollector implements ActivationObserver {
    /** The sites whose rows a linear layer multiplies. */
    public static final Set<ActivationSite> LINEAR_INPUTS = EnumSet.of(ActivationSite.QKV_INPUT,
            ActivationSite.OUT_PROJ_INPUT, ActivationSite.FC1_INPUT, ActivationSite.FC2_INPUT);
    private static final int BLOCK_ROWS = 256;

    private final Map<CalibrationStats.Key, Accumulator> accumulators = new TreeMap<>();
    private final long budgetBytes;
    private long heldBytes;

    /** With half the JVM's heap as the budget for the moments. */
    public HessianCollector() {
        this(Runtime.getRuntime().maxMemory() / 2);
    }

    /**
     * @param budgetBytes the most the moments may take (8 bytes per entry, width² entries per site); a site that
     *                    would pass it is refused with the sizes, before anything of it is allocated
     */
    public HessianCollector(long budgetBytes) {
        this.budgetBytes = budgetBytes;
    }

    private static final class Accumulator {
        final int width;
        final double[] xtx;
        final double[] sums;
        long rows;

        Accumulator(int width) {
            this.width = width;
            this.xtx = new double[width * width];
            this.sums = new double[width];
        }

        void add(MemorySegment x, int rowCount) {
            try (Arena arena = Arena.ofShared()) {
                int block = Math.min(BLOCK_ROWS, rowCount);
                MemorySegment transposed = arena.allocate((long) width * block * Float.BYTES, 64);
                MemorySegment product = arena.allocate((long) width * width * Float.BYTES, 64);
                for (int from = 0; from < rowCount; from += block) {
                    int n = Math.min(block, rowCount - from);
                    for (int r = 0; r < n; r++) {
                        long row = (long) (from + r) * width;
                        for (int c = 0; c < width; c++) {
                            float v = x.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, row + c);
                            transposed.setAtIndex(ValueLayout.JAVA_FLOAT, (long) c * n + r, v);
                            sums[c] += v;
                        }
                    }
                    // (width, n) · (width, n)ᵀ: every pair of channels' dot product over the block's rows
                    Fp32MatMul.matmul(transposed, transposed, null, product, width, width, n);
                    for (int i = 0; i < xtx.length; i++) {
                        xtx[i] += product.getAtIndex(ValueLayout.JAVA_FLOAT, i);
                    }
                }
            }
            rows += rowCount;
        }
    }

    @Override
    public synchronized void observe(int layer, ActivationSite site, MemorySegment rows, int rowCount, int width) {
        if (!LINEAR_INPUTS.contains(site) || rowCount == 0) {
            return;
        }
        CalibrationStats.Key key = new CalibrationStats.Key(layer, site);
        Accumulator accumulator = accumulators.get(key);
        if (accumulator == null) {
            long bytes = ((long) width * width + width) * Double.BYTES;
            if (heldBytes + bytes > budgetBytes) {
                throw new IllegalStateException(String.format("GPTQ moments of layer %d %s (width %d) need %.1f MiB more, "
                        + "%.1f MiB in all, over the budget of %.1f MiB: calibrate fewer layers per process (more stages) "
                        + "or give the JVM more heap", layer, site.key(), width, bytes / 1048576.0,
                        (heldBytes + bytes) / 1048576.0, budgetBytes / 1048576.0));
            }
            accumulator = new Accumulator(width);
            accumulators.put(key, accumulator);
            heldBytes += bytes;
        }
        if (accumulator.width != width) {
            throw new IllegalArgumentException("layer " + layer + " " + site.key() + ": width " + width
                    + " after " + accumulator.width + " before");
        }
        accumulator.add(rows, rowCount);
    }

    /** What has been collected so far (copies). */
    public synchronized Hessians hessians() {
        Map<CalibrationStats.Key, Hessians.Moments> entries = new TreeMap<>();
        accumulators.forEach((key, a) -> entries.put(key,
                new Hessians.Moments(a.width, a.xtx.clone(), a.sums.clone(), a.rows)));
        return new Hessians(entries);
    }
}
