package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;
import jcuda.driver.CUfunction;

/**
 * Causal self-attention over per-sequence FP16 KV caches ({@code attention.cu}): append the step's keys and
 * values, then the split-K decode kernel (+ combine) for sequences with one new token, or the tensor-core
 * prefill kernel for chunks. Sequences are described by an array of {@link #DESCRIPTOR_BYTES}-byte
 * {@code AttentionSeq} records in device memory (layout in attention.cu; written by the caller). Queries must
 * arrive scaled by 1/sqrt(headDim). Device addresses; work queued on {@code stream}.
 */
public final class AttentionKernels {
    /** sizeof(AttentionSeq): k (u64), v (u64), rowStart, newTokens, pastLen, reserved (i32 each). */
    public static final int DESCRIPTOR_BYTES = 32;
    public static final int DESCRIPTOR_K_OFFSET = 0;
    public static final int DESCRIPTOR_V_OFFSET = 8;
    public static final int DESCRIPTOR_ROW_START_OFFSET = 16;
    public static final int DESCRIPTOR_NEW_TOKENS_OFFSET = 20;
    public static final int DESCRIPTOR_PAST_LENGTH_OFFSET = 24;
    public static final int DESCRIPTOR_RESERVED_OFFSET = 28;

    private static final int APPEND_THREADS = 128;
    private static final int DECODE_THREADS = 128;
    private static final int PREFILL_THREADS = 128;
    private static final int PREFILL_QUERY_TILE = 64;
    /** The decode kernel keeps a split's scores in shared memory: at most this many keys per split. */
    public static final int MAX_KEYS_PER_SPLIT = 8192;
    /** Decode blocks wanted per multiprocessor before a sequence is split (what the harness measured best). */
    private static final int DECODE_BLOCKS_PER_SM = 4;

    /** How one decode launch splits the keys: {@code maxSplits} blocks of {@code keysPerSplit} keys per (sequence, head). */
    public record DecodeSplit(int keysPerSplit, int maxSplits) {
    }

    private final CUfunction append;
    private final CUfunction decode64;
    private final CUfunction decode128;
    private final CUfunction combine;
    private final CUfunction prefill64;
    private final CUfunction prefill128;

    public AttentionKernels(CudaKernels kernels) {
        this.append = kernels.function("kv_cache_append");
        this.decode64 = kernels.function("attention_decode_hd64");
        this.decode128 = kernels.function("attention_decode_hd128");
        this.combine = kernels.function("attention_decode_combine");
        this.prefill64 = kernels.function("attention_prefill_hd64");
        this.prefill128 = kernels.function("attention_prefill_hd128");
    }

    /** Head dimensions the kernels are compiled for. */
    public static boolean supportsHeadDim(int headDim) {
        return headDim == 64 || headDim == 128;
    }

    /**
     * Splits so that a decode launch has about {@value #DECODE_BLOCKS_PER_SM} blocks per multiprocessor:
     * splits = clamp(ceil(4·SMs / (seqs·heads)), 1, ceil(maxContext / 128)), keys rounded up to 64.
     * Then seqs × maxSplits ≤ seqs + 4·SMs / heads + 1, which bounds the combine workspace.
     */
    public static DecodeSplit decodeSplit(int numSeqs, int heads, int maxContext, int multiprocessors) {
        int wanted = ceilDiv(DECODE_BLOCKS_PER_SM * multiprocessors, numSeqs * heads);
        int splits = Math.max(1, Math.min(wanted, ceilDiv(maxContext, 128)));
        int keysPerSplit = Math.min(MAX_KEYS_PER_SPLIT, ceilDiv(ceilDiv(maxContext, splits), 64) * 64);
        return new DecodeSplit(keysPerSplit, ceilDiv(maxContext, keysPerSplit));
    }

    /** (sequence, split) pairs a decode workspace must hold for {@code numSeqs} sequences (see {@link #decodeSplit}). */
    public static int decodeWorkspaceSplits(int numSeqs, int heads, int multiprocessors) {
        return numSeqs + ceilDiv(DECODE_BLOCKS_PER_SM * multiprocessors, heads) + 1;
    }

    /**
     * Copies each sequence's new key and value rows into its cache at rows pastLen ... pastLen + newTokens − 1.
     *
     * @param kNew (rows, ldNew) FP16; vNew likewise
     */
    public void append(long seqs, int numSeqs, long kNew, long vNew, int ldNew, int rows, int hidden, int cacheStride,
                       CudaStream stream) {
        checkHidden(hidden, ldNew, cacheStride);
        KernelLaunch.launch(append, rows, 1, APPEND_THREADS, 0, stream, seqs, numSeqs, kNew, vNew, ldNew, hidden, cacheStride);
    }

    /**
     * Attention of one new query per sequence over its whole cache (append first). {@code partialO} holds
     * (numSeqs, heads, maxSplits, headDim) FP32 and {@code partialMl} (numSeqs, heads, maxSplits, 2) FP32.
     */
    public void decode(long seqs, int numSeqs, int heads, int headDim, long q, int ldq, int cacheStride, DecodeSplit split,
                       long partialO, long partialMl, long out, int ldo, CudaStream stream) {
        checkHeadDim(headDim);
        KernelLaunch.launch(headDim == 64 ? decode64 : decode128, split.maxSplits(), heads, numSeqs, DECODE_THREADS,
                split.keysPerSplit() * Float.BYTES, stream, seqs, q, ldq, cacheStride, split.keysPerSplit(), partialO,
                partialMl, out, ldo);
        if (split.maxSplits() > 1) {
            KernelLaunch.launch(combine, heads, numSeqs, headDim, 0, stream, seqs, split.keysPerSplit(), split.maxSplits(),
                    partialO, partialMl, out, ldo);
        }
    }

    /** Causal attention of every new row of each sequence over its past and new keys (append first). */
    public void prefill(long seqs, int numSeqs, int maxNewTokens, int heads, int headDim, long q, int ldq, int cacheStride,
                        long out, int ldo, CudaStream stream) {
        checkHeadDim(headDim);
        KernelLaunch.launch(headDim == 64 ? prefill64 : prefill128, ceilDiv(maxNewTokens, PREFILL_QUERY_TILE), heads, numSeqs,
                PREFILL_THREADS, 0, stream, seqs, q, ldq, cacheStride, out, ldo);
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
