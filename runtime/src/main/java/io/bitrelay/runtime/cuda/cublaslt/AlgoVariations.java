package io.bitrelay.runtime.cuda.cublaslt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * The neighbours of one cuBLASLt algorithm: copies of its cublasLtMatmulAlgo_t with one configuration attribute
 * changed (tile, stages, split-K with each reduction scheme the kernel offers, CTA swizzling, custom option,
 * cluster shape) to what the kernel's capabilities list. The heuristics answer only a handful of configurations per
 * query, and at small M (128 rows over 96 output tiles of 128 × 128 on a 132-SM part) the one that fills the
 * GPU is often not among them. Whether a neighbour is valid for a plan is cuBLASLt's call ({@link GemmPlan#check}).
 */
final class AlgoVariations {
    // cublasLtMatmulAlgoConfigAttributes_t and cublasLtMatmulAlgoCapAttributes_t (cublasLt.h).
    private static final int CONFIG_TILE_ID = 1;
    private static final int CONFIG_SPLITK_NUM = 2;
    private static final int CONFIG_REDUCTION_SCHEME = 3;
    private static final int CONFIG_CTA_SWIZZLING = 4;
    private static final int CONFIG_CUSTOM_OPTION = 5;
    private static final int CONFIG_STAGES_ID = 6;
    private static final int CONFIG_CLUSTER_SHAPE_ID = 8;
    private static final int CAP_SPLITK_SUPPORT = 0;
    private static final int CAP_REDUCTION_SCHEME_MASK = 1;
    private static final int CAP_CTA_SWIZZLING_SUPPORT = 2;
    private static final int CAP_TILE_IDS = 6;
    private static final int CAP_CUSTOM_OPTION_MAX = 7;
    private static final int CAP_STAGES_IDS = 13;
    /** Split counts tried: enough K-slices to fill the SMs at small M without a reduction per K-block. */
    private static final int[] SPLITS = {1, 2, 3, 4, 6, 8, 12, 16};
    /** Reduction schemes, one bit each in the capability mask: in place, in the compute type, in the output type. */
    private static final int[] REDUCTION_SCHEMES = {1, 2, 4};
    /**
     * cublasLtClusterShape_t has no capability list; its ids run from AUTO (0) through the 1×15×1 shape, fewer than
     * 64 in CUDA 12/13, and cuBLASLt refuses the ones a kernel cannot launch.
     */
    private static final int CLUSTER_SHAPE_IDS = 64;
    private static final int MAX_LISTED = 256;

    private AlgoVariations() {
    }

    /** Every one-attribute change of {@code base} its kernel lists, in new off-heap algos (auto arena). */
    static List<MemorySegment> of(CublasLtLibrary library, MemorySegment base) {
        List<MemorySegment> variants = new ArrayList<>();
        for (int tile : capList(library, base, CAP_TILE_IDS)) {
            variants.add(with(library, base, CONFIG_TILE_ID, tile, 4));
        }
        for (int stages : capList(library, base, CAP_STAGES_IDS)) {
            variants.add(with(library, base, CONFIG_STAGES_ID, stages, 4));
        }
        if (capInt(library, base, CAP_SPLITK_SUPPORT) != 0) {
            int schemes = capInt(library, base, CAP_REDUCTION_SCHEME_MASK);
            for (int splits : SPLITS) {
                if (splits == 1) {
                    variants.add(withSplit(library, base, 1, 0));
                    continue;
                }
                for (int scheme : REDUCTION_SCHEMES) {
                    if ((schemes & scheme) != 0) {
                        variants.add(withSplit(library, base, splits, scheme));
                    }
                }
            }
        }
        int swizzleMax = capInt(library, base, CAP_CTA_SWIZZLING_SUPPORT);
        for (int swizzle = 0; swizzle <= swizzleMax; swizzle++) {
            variants.add(with(library, base, CONFIG_CTA_SWIZZLING, swizzle, 4));
        }
        int customMax = Math.min(capInt(library, base, CAP_CUSTOM_OPTION_MAX), 7);
        for (int custom = 0; custom <= customMax; custom++) {
            variants.add(with(library, base, CONFIG_CUSTOM_OPTION, custom, 4));
        }
        for (int cluster = 0; cluster < CLUSTER_SHAPE_IDS; cluster++) {
            variants.add(with(library, base, CONFIG_CLUSTER_SHAPE_ID, cluster, 2));
        }
        variants.removeIf(v -> v == null || v.mismatch(base) == -1);
        return variants;
    }

    private static MemorySegment withSplit(CublasLtLibrary library, MemorySegment base, int splits, int scheme) {
        MemorySegment split = with(library, base, CONFIG_SPLITK_NUM, splits, 4);
        return split == null ? null : with(library, split, CONFIG_REDUCTION_SCHEME, scheme, 4);
    }

    /** A copy of {@code algo} with {@code attribute} set to {@code value} ({@code bytes} wide), or null when refused. */
    private static MemorySegment with(CublasLtLibrary library, MemorySegment algo, int attribute, int value, int bytes) {
        MemorySegment copy = Arena.ofAuto().allocate(CublasLtLibrary.ALGO_BYTES, 8);
        copy.copyFrom(algo);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(4);
            if (bytes == 2) {
                buffer.set(ValueLayout.JAVA_SHORT, 0, (short) value);
            } else {
                buffer.set(ValueLayout.JAVA_INT, 0, value);
            }
            int status = (int) library.algoConfigSetAttribute.invokeExact(copy, attribute, buffer, (long) bytes);
            return status == 0 ? copy : null;
        } catch (Throwable e) {
            return null;
        }
    }

    private static int capInt(CublasLtLibrary library, MemorySegment algo, int attribute) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(ValueLayout.JAVA_INT);
            MemorySegment written = arena.allocate(ValueLayout.JAVA_LONG);
            int status = (int) library.algoCapGetAttribute.invokeExact(algo, attribute, value, 4L, written);
            return status == 0 ? value.get(ValueLayout.JAVA_INT, 0) : 0;
        } catch (Throwable e) {
            return 0;
        }
    }

    /** A capability that is an array of uint32 ids (tiles, stages); empty when the kernel lists none. */
    private static int[] capList(CublasLtLibrary library, MemorySegment algo, int attribute) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment written = arena.allocate(ValueLayout.JAVA_LONG);
            int status = (int) library.algoCapGetAttribute.invokeExact(algo, attribute, MemorySegment.NULL, 0L, written);
            long count = Math.min(written.get(ValueLayout.JAVA_LONG, 0) / 4, MAX_LISTED);
            if (status != 0 || count <= 0) {
                return new int[0];
            }
            MemorySegment values = arena.allocate(4 * count, 4);
            status = (int) library.algoCapGetAttribute.invokeExact(algo, attribute, values, 4 * count, written);
            return status == 0 ? values.toArray(ValueLayout.JAVA_INT) : new int[0];
        } catch (Throwable e) {
            return new int[0];
        }
    }
}
