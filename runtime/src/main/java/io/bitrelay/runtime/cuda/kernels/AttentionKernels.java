package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;

/**
 * Causal self-attention over per-sequence FP16 or INT8 KV caches ({@code attention.cu}, {@link KvCacheFormat}):
 * append the step's keys and values, then the split-K decode kernel (+ combine) for sequences with one new token,
 * or the tensor-core prefill kernel for chunks. Sequences are described by an array of {@link #DESCRIPTOR_BYTES}-byte
 * {@code AttentionSeq} records in device memory (layout in attention.cu; written by the caller). Queries must
 * arrive scaled by 1/sqrt(headDim). Device addresses; work queued on {@code stream}.
 */
public final class AttentionKernels {
    /** sizeof(AttentionSeq): k (u64), v (u64), rowStart, newTokens, pastLen, capacity (i32 each; INT8 caches read it). */
    public static final int DESCRIPTOR_BYTES = 32;
    public static final int DESCRIPTOR_K_OFFSET = 0;
    public static final int DESCRIPTOR_V_OFFSET = 8;
    public static final int DESCRIPTOR_ROW_START_OFFSET = 16;
    public static final int DESCRIPTOR_NEW_TOKENS_OFFSET = 20;
    public static final int DESCRIPTOR_PAST_LENGTH_OFFSET = 24;
    public static final int DESCRIPTOR_CAPACITY_OFFSET = 28;

    private static final int APPEND_THREADS = 128;
    private static final int DECODE_THREADS = 128;
    private static final int PREFILL_THREADS = 128;
    private static final int PREFILL_QUERY_TILE = 64;
    /**
     * The decode kernel keeps a split's scores in shared memory: at most this many keys per split (16 KiB of scores
     * beside the INT8 kernel's 16 KiB of static shared memory stays under the 48 KiB a block gets unasked).
     */
    public static final int MAX_KEYS_PER_SPLIT = 4096;
    /** The smallest context bucket, and the fewest keys a split takes before a sequence is split further. */
    private static final int MIN_CONTEXT_BUCKET = 128;
    /** Decode blocks wanted per multiprocessor before a sequence is split (what the harness measured best). */
    private static final int DECODE_BLOCKS_PER_SM = 4;

    /** How one decode launch splits the keys: {@code maxSplits} blocks of {@code keysPerSplit} keys per (sequence, head). */
    public record DecodeSplit(int keysPerSplit, int maxSplits) {
    }

    /** One cache format's kernels. */
    private record Launchers(KernelLaunch append, KernelLaunch decode64, KernelLaunch decode128, KernelLaunch prefill64,
                             KernelLaunch prefill128) {
        static Launchers load(CudaKernels kernels, String suffix, int appendArguments) {
            return new Launchers(kernels.launcher("kv_cache_append" + suffix, appendArguments),
                    kernels.launcher("attention_decode" + suffix + "_hd64", 9),
                    kernels.launcher("attention_decode" + suffix + "_hd128", 9),
                    kernels.launcher("attention_prefill" + suffix + "_hd64", 6),
                    kernels.launcher("attention_prefill" + suffix + "_hd128", 6));
        }

        KernelLaunch decode(int headDim) {
            return headDim == 64 ? decode64 : decode128;
        }

        KernelLaunch prefill(int headDim) {
            return headDim == 64 ? prefill64 : prefill128;
        }
    }

    private final Launchers fp16;
    private final Launchers int8;
    private final KernelLaunch combine;

    public AttentionKernels(CudaKernels kernels) {
        this.fp16 = Launchers.load(kernels, "", 7);
        this.int8 = Launchers.load(kernels, "_int8", 8);
        this.combine = kernels.launcher("attention_decode_combine", 7);
    }

    private Launchers of(KvCacheFormat format) {
        return format == KvCacheFormat.INT8 ? int8 : fp16;
    }

    /** Head dimensions the kernels are compiled for. */
    public static boolean supportsHeadDim(int headDim) {
        return headDim == 64 || headDim == 128;
    }

    /**
     * Splits so that a decode launch has about {@value #DECODE_BLOCKS_PER_SM} blocks per multiprocessor, for the
     * context bucket B = {@link #decodeContextBucket}(maxContext) rather than maxContext itself:
     * splits = clamp(ceil(4·SMs / (seqs·heads)), 1, ceil(B / 128)), keys per split = ceil(B / splits) rounded up to 64
     * and capped at {@link #MAX_KEYS_PER_SPLIT}, maxSplits = ceil(B / keys per split). The split is a function of the
     * bucket, so as contexts grow it changes a few times per doubling, not every 64 tokens: each change is a new
     * launch configuration, which a decode CUDA graph must be captured for. What the bucket costs the kernel
     * (attention.cu): a block loops over min(keysPerSplit, context − first) keys and a split past a sequence's context
     * returns at once, so only the scores' smem (keysPerSplit × 4 bytes, at most 8 KiB up to B = 2048: no occupancy
     * lost, the kernels are register-bound) and, when split, how many splits hold keys (at worst 3/5 of the unbucketed
     * choice's, just past a bucket boundary) change.
     * Then seqs × maxSplits ≤ seqs + 4·SMs / heads + 1 while the cap is not reached and
     * seqs × ceil(maxContext / MAX_KEYS_PER_SPLIT) once it is (B never crosses the next multiple of the cap):
     * {@link #decodeWorkspaceSplits} bounds both.
     */
    public static DecodeSplit decodeSplit(int numSeqs, int heads, int maxContext, int multiprocessors) {
        int bucket = decodeContextBucket(maxContext);
        int wanted = ceilDiv(DECODE_BLOCKS_PER_SM * multiprocessors, numSeqs * heads);
        int splits = Math.max(1, Math.min(wanted, ceilDiv(bucket, MIN_CONTEXT_BUCKET)));
        int keysPerSplit = Math.min(MAX_KEYS_PER_SPLIT, ceilDiv(ceilDiv(bucket, splits), 64) * 64);
        return new DecodeSplit(keysPerSplit, ceilDiv(bucket, keysPerSplit));
    }

    /**
     * The context a decode split is chosen for: the next of 128, 192, 256, 384, 512, ... (powers of two and 1.5 times
     * them, all multiples of 64) at or above {@code maxContext}, but never past the next multiple of
     * {@link #MAX_KEYS_PER_SPLIT}: a capped split then needs no more splits than maxContext does, which keeps
     * {@link #decodeWorkspaceSplits} valid, and beyond the cap the split changes once per 4096 keys.
     * Steps of 1.5 and 4/3 rather than 2 halve the worst case of what a bucket costs (smem per block, active splits
     * below the target) for twice the keys: 9 buckets for contexts 1..2048.
     */
    static int decodeContextBucket(int maxContext) {
        if (maxContext <= MIN_CONTEXT_BUCKET) {
            return MIN_CONTEXT_BUCKET;
        }
        long power = Long.highestOneBit(maxContext - 1L) << 1; // the power of two at or above maxContext
        long bucket = maxContext <= power / 4 * 3 ? power / 4 * 3 : power;
        long capped = ((long) maxContext + MAX_KEYS_PER_SPLIT - 1) / MAX_KEYS_PER_SPLIT * MAX_KEYS_PER_SPLIT;
        return (int) Math.min(bucket, capped);
    }

    /**
     * (sequence, split) pairs a decode workspace must hold for {@code numSeqs} sequences of at most
     * {@code maxContext} keys (see {@link #decodeSplit}).
     */
    public static long decodeWorkspaceSplits(int numSeqs, int heads, int maxContext, int multiprocessors) {
        long uncapped = numSeqs + ceilDiv(DECODE_BLOCKS_PER_SM * multiprocessors, heads) + 1L;
        return Math.max(uncapped, (long) numSeqs * ceilDiv(maxContext, MAX_KEYS_PER_SPLIT));
    }

    /**
     * Writes each sequence's new key and value rows into its cache at rows pastLen ... pastLen + newTokens − 1
     * (copied, or quantized per (token, head) for INT8).
     *
     * @param kNew (rows, ldNew) FP16; vNew likewise
     */
    public void append(KvCacheFormat format, long seqs, int numSeqs, long kNew, long vNew, int ldNew, int rows, int hidden,
                       int headDim, int cacheStride, CudaStream stream) {
        checkHidden(hidden, ldNew, cacheStride);
        checkHeadDim(headDim);
        KernelLaunch append = of(format).append().address(0, seqs).integer(1, numSeqs).address(2, kNew).address(3, vNew)
                .integer(4, ldNew).integer(5, hidden).integer(6, cacheStride);
        if (format == KvCacheFormat.INT8) {
            append.integer(7, headDim);
        }
        append.launch(rows, 1, APPEND_THREADS, 0, stream);
    }

    /**
     * Attention of one new query per sequence over its whole cache (append first). {@code partialO} holds
     * (numSeqs, heads, maxSplits, headDim) FP32 and {@code partialMl} (numSeqs, heads, maxSplits, 2) FP32.
     */
    public void decode(KvCacheFormat format, long seqs, int numSeqs, int heads, int headDim, long q, int ldq, int cacheStride,
                       DecodeSplit split, long partialO, long partialMl, long out, int ldo, CudaStream stream) {
        checkHeadDim(headDim);
        if (format == KvCacheFormat.INT8 && cacheStride % 16 != 0) {
            throw new IllegalArgumentException("INT8-cache decode reads 16 codes at a time: cacheStride must be a multiple of 16, got "
                    + cacheStride);
        }
        of(format).decode(headDim).address(0, seqs).address(1, q).integer(2, ldq).integer(3, cacheStride)
                .integer(4, split.keysPerSplit()).address(5, partialO).address(6, partialMl).address(7, out).integer(8, ldo)
                .launch(split.maxSplits(), heads, numSeqs, DECODE_THREADS, split.keysPerSplit() * Float.BYTES, stream);
        if (split.maxSplits() > 1) {
            combine.address(0, seqs).integer(1, split.keysPerSplit()).integer(2, split.maxSplits()).address(3, partialO)
                    .address(4, partialMl).address(5, out).integer(6, ldo).launch(heads, numSeqs, headDim, 0, stream);
        }
    }

    /** Causal attention of every new row of each sequence over its past and new keys (append first). */
    public void prefill(KvCacheFormat format, long seqs, int numSeqs, int maxNewTokens, int heads, int headDim, long q,
                        int ldq, int cacheStride, long out, int ldo, CudaStream stream) {
        checkHeadDim(headDim);
        of(format).prefill(headDim).address(0, seqs).address(1, q).integer(2, ldq).integer(3, cacheStride)
                .address(4, out).integer(5, ldo)
                .launch(ceilDiv(maxNewTokens, PREFILL_QUERY_TILE), heads, numSeqs, PREFILL_THREADS, 0, stream);
    }

    private static void checkHeadDim(int headDim) {
        if (!supportsHeadDim(headDim)) {
            throw new IllegalArgumentException("attention kernels take head dim 64 or 128, got " + headDim);
        }
    }

    private static void checkHidden(int hidden, int ldNew, int cacheStride) {
        if (hidden % 8 != 0 || ldNew % 8 != 0 || cacheStride % 8 != 0) {
            throw new IllegalArgumentException("attention needs hidden, ldNew and cacheStride multiples of 8 (16-byte rows), got "
                    + hidden + ", " + ldNew + ", " + cacheStride);
        }
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
