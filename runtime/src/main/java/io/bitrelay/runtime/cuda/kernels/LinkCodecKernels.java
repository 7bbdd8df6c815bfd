package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaDevice;
import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.KernelLaunch;
import io.bitrelay.runtime.tensor.DType;
import jcuda.CudaException;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.JCudaDriver;

import java.util.HashMap;
import java.util.Map;

/**
 * The link codecs on the GPU ({@code link_codecs.cu}): params and payload byte-identical to
 * {@link io.bitrelay.runtime.wire.Int8TokenCodec}, {@link io.bitrelay.runtime.wire.RptqLinkCodec} (dynamic ranges)
 * and {@link io.bitrelay.runtime.wire.Fp16Codec} fed the same values as FP32 (FP16 input: its values widened).
 * All pointers are device addresses of row-major, contiguous buffers; work is queued on {@code stream}.
 *
 * <p>Encoders OR 1 into the int at {@code status} (0: no status) when a row holds NaN or ±Inf, which the Java
 * codecs refuse; the bytes of that row are then unspecified and the caller must refuse the frame.
 *
 * <p>Block sizes follow the notes at the top of the .cu file: one block per row, 256 threads, or 1024 when the
 * frame has fewer rows than twice the multiprocessors (so a few rows still draw bandwidth), raised so the fast
 * paths can hold a row in registers and capped where more threads would only idle.
 */
public final class LinkCodecKernels {
    /** The kernels index perm / inversePerm as u16. */
    public static final int MAX_RPTQ_WIDTH = 65_536;
    /** Shared memory a block gets without opting in (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES). */
    static final int DEFAULT_SHARED_BYTES = 48 * 1024;
    /** Plan positions a warp takes at a time in the RPTQ kernels. */
    static final int RPTQ_CHUNK_POSITIONS = 256;
    private static final int MAX_THREADS = 1024;
    private static final int BASE_THREADS = 256;
    private static final int ELEMENT_BLOCKS = 1024;

    private final int multiprocessors;
    private final KernelLaunch int8EncodeF16;
    private final KernelLaunch int8EncodeF32;
    private final KernelLaunch int8DecodeF16;
    private final KernelLaunch int8DecodeF32;
    private final CUfunction[][] rptqEncode = new CUfunction[2][2]; // [bits == 3 ? 1 : 0][F32 ? 1 : 0]
    private final CUfunction[][] rptqDecode = new CUfunction[2][2];
    private final KernelLaunch[][] rptqEncodeLaunch = new KernelLaunch[2][2];
    private final KernelLaunch[][] rptqDecodeLaunch = new KernelLaunch[2][2];
    /** FP16 encodes that gather each chunk twice instead of holding it: faster on frames of many rows. */
    private final CUfunction[] rptqEncodeRegather = new CUfunction[2];
    private final KernelLaunch[] rptqEncodeRegatherLaunch = new KernelLaunch[2];
    private final KernelLaunch fp16EncodeF32;
    private final KernelLaunch fp16DecodeF32;
    /** Dynamic shared memory each function has been allowed so far (only those raised past the default). */
    private final Map<CUfunction, Integer> sharedAllowed = new HashMap<>();

    public LinkCodecKernels(CudaKernels kernels, CudaDevice device) {
        this.multiprocessors = device.multiprocessors();
        this.int8EncodeF16 = kernels.launcher("int8_token_encode_f16", 5);
        this.int8EncodeF32 = kernels.launcher("int8_token_encode_f32", 5);
        this.int8DecodeF16 = kernels.launcher("int8_token_decode_f16", 4);
        this.int8DecodeF32 = kernels.launcher("int8_token_decode_f32", 4);
        for (int bits : new int[] {4, 3}) {
            for (DType type : new DType[] {DType.F16, DType.F32}) {
                String suffix = type == DType.F32 ? "_f32" : "_f16";
                String encode = "rptq" + bits + "_encode" + suffix;
                String decode = "rptq" + bits + "_decode" + suffix;
                rptqEncode[bitsIndex(bits)][typeIndex(type)] = kernels.function(encode);
                rptqDecode[bitsIndex(bits)][typeIndex(type)] = kernels.function(decode);
                rptqEncodeLaunch[bitsIndex(bits)][typeIndex(type)] = kernels.launcher(encode, 9);
                rptqDecodeLaunch[bitsIndex(bits)][typeIndex(type)] = kernels.launcher(decode, 7);
            }
            String regather = "rptq" + bits + "_encode_f16_regather";
            rptqEncodeRegather[bitsIndex(bits)] = kernels.function(regather);
            rptqEncodeRegatherLaunch[bitsIndex(bits)] = kernels.launcher(regather, 9);
        }
        this.fp16EncodeF32 = kernels.launcher("fp16_link_encode_f32", 3);
        this.fp16DecodeF32 = kernels.launcher("fp16_link_decode_f32", 3);
    }

    /**
     * @param x       (rows, width) of {@code inputType} (F32 or F16)
     * @param params  (rows) u16 out: FP16 scale bits
     * @param payload (rows, width) int8 out
     * @param status  an int the kernel ORs 1 into for a non-finite row, or 0
     */
    public void int8Encode(DType inputType, long x, int rows, int width, long params, long payload, long status,
                           CudaStream stream) {
        RowKernels.checkFloat(inputType, "int8 link encode input");
        RowKernels.checkShape(rows, width);
        int heldPerThread = inputType == DType.F16 ? 64 : 32; // kHeldOctets × 8
        int threads = rowThreads(rows, Math.ceilDiv(width, heldPerThread), Math.ceilDiv(width, 8));
        (inputType == DType.F32 ? int8EncodeF32 : int8EncodeF16).address(0, x).integer(1, width).address(2, params)
                .address(3, payload).address(4, status).launch(rows, 1, threads, 0, stream);
    }

    /**
     * @param params  (rows) u16: FP16 scale bits
     * @param payload (rows, width) int8
     * @param out     (rows, width) of {@code outputType} (F32: bit-identical to the Java decode; F16: rounded)
     */
    public void int8Decode(DType outputType, long params, long payload, int rows, int width, long out, CudaStream stream) {
        RowKernels.checkFloat(outputType, "int8 link decode output");
        RowKernels.checkShape(rows, width);
        int threads = rowThreads(rows, 0, Math.ceilDiv(width, 8));
        (outputType == DType.F32 ? int8DecodeF32 : int8DecodeF16).address(0, params).address(1, payload).integer(2, width)
                .address(3, out).launch(rows, 1, threads, 0, stream);
    }

    /**
     * @param bits        4 or 3
     * @param x           (rows, width) of {@code inputType} (F32 or F16)
     * @param perm        (width) u16: the channel at each plan position
     * @param clusterEnds (clusters) i32: exclusive end position of each cluster, ascending, the last = width
     * @param params      4 + rows × clusters × 4 bytes out, 4-byte aligned
     * @param payload     rows × ceil(bits × width / 8) bytes out (16-byte aligned stores fastest)
     * @param status      an int the kernel ORs 1 into for a non-finite row, or 0
     */
    public void rptqEncode(int bits, DType inputType, long x, int rows, int width, long perm, long clusterEnds,
                           int clusters, int fingerprint, long params, long payload, long status, CudaStream stream) {
        RowKernels.checkFloat(inputType, "rptq link encode input");
        checkRptq(bits, rows, width, clusters);
        requireAligned(params, 4, "rptq params");
        // frames of many rows run on 256-thread blocks, where gathering twice in fewer registers beats holding
        boolean regather = inputType == DType.F16 && manyRows(rows);
        CUfunction kernel = regather ? rptqEncodeRegather[bitsIndex(bits)] : rptqEncode[bitsIndex(bits)][typeIndex(inputType)];
        int shared = allowShared(kernel, rptqEncodeSharedBytes(width, clusters, inputType.byteSize()), "rptq encode", width,
                clusters);
        int chunks = Math.ceilDiv(width, RPTQ_CHUNK_POSITIONS);
        // a holding kernel wants warps enough to hold the row's chunks (kHeldChunks a warp); a regathering one does not
        int atLeast = regather ? 32 : 32 * Math.ceilDiv(chunks, inputType == DType.F16 ? 6 : 3);
        int threads = rowThreads(rows, atLeast, 32 * chunks);
        KernelLaunch launch = regather ? rptqEncodeRegatherLaunch[bitsIndex(bits)]
                : rptqEncodeLaunch[bitsIndex(bits)][typeIndex(inputType)];
        launch.address(0, x).integer(1, width).address(2, perm)
                .address(3, clusterEnds).integer(4, clusters).integer(5, fingerprint).address(6, params).address(7, payload)
                .address(8, status).launch(rows, 1, threads, shared, stream);
    }

    /**
     * @param params      as {@link #rptqEncode} wrote them (the plan fingerprint checked by the caller)
     * @param inversePerm (width) u16: the plan position of each channel
     * @param out         (rows, width) of {@code outputType}, back in channel order
     */
    public void rptqDecode(int bits, DType outputType, long params, long payload, int rows, int width, long inversePerm,
                           long clusterEnds, int clusters, long out, CudaStream stream) {
        RowKernels.checkFloat(outputType, "rptq link decode output");
        checkRptq(bits, rows, width, clusters);
        requireAligned(params, 4, "rptq params");
        CUfunction kernel = rptqDecode[bitsIndex(bits)][typeIndex(outputType)];
        int shared = allowShared(kernel, rptqDecodeSharedBytes(width, clusters, outputType.byteSize()), "rptq decode", width,
                clusters);
        int chunks = Math.ceilDiv(width, RPTQ_CHUNK_POSITIONS);
        int threads = rowThreads(rows, 32 * Math.ceilDiv(chunks, 6), 32 * chunks);
        rptqDecodeLaunch[bitsIndex(bits)][typeIndex(outputType)].address(0, params).address(1, payload).integer(2, width)
                .address(3, inversePerm).address(4, clusterEnds).integer(5, clusters).address(6, out)
                .launch(rows, 1, threads, shared, stream);
    }

    /** FP32 (count values) to FP16 bits, round to nearest even: the FP16 codec's payload for FP32 hidden states. */
    public void fp16Encode(long x, long count, long payload, CudaStream stream) {
        checkCount(count);
        fp16EncodeF32.address(0, x).address(1, count).address(2, payload)
                .launch(ELEMENT_BLOCKS, 1, RowKernels.ELEMENT_BLOCK_THREADS, 0, stream);
    }

    /** FP16 payload (count values) widened to FP32, exactly. */
    public void fp16Decode(long payload, long count, long out, CudaStream stream) {
        checkCount(count);
        fp16DecodeF32.address(0, payload).address(1, count).address(2, out)
                .launch(ELEMENT_BLOCKS, 1, RowKernels.ELEMENT_BLOCK_THREADS, 0, stream);
    }

    /** Dynamic shared memory of an RPTQ encode block: rptqEncodeSmemBytes in link_codecs.cu. */
    public static long rptqEncodeSharedBytes(int width, int clusters, int elementBytes) {
        return roundUp16((long) width * elementBytes) + (clusters + 1L) * 4 + clusters * 16L;
    }

    /** Dynamic shared memory of an RPTQ decode block (elementBytes of the output): rptqDecodeSmemBytes. */
    public static long rptqDecodeSharedBytes(int width, int clusters, int elementBytes) {
        return roundUp16((long) width * elementBytes) + (clusters + 1L) * 4 + clusters * 8L;
    }

    /**
     * Threads per row block: the base (256, or 1024 for frames of fewer rows than twice the multiprocessors), at
     * least {@code atLeast} (what a fast path needs), at most {@code useful} rounded up to a warp, and ≤ 1024.
     */
    private int rowThreads(int rows, int atLeast, int useful) {
        int base = manyRows(rows) ? BASE_THREADS : MAX_THREADS;
        int threads = Math.min(MAX_THREADS, Math.max(base, roundUpWarp(atLeast)));
        return Math.min(threads, Math.max(32, roundUpWarp(Math.min(useful, MAX_THREADS))));
    }

    /** Frames of at least twice the multiprocessors' rows: enough blocks to run on the base block size. */
    private boolean manyRows(int rows) {
        return rows >= 2 * multiprocessors;
    }

    /** Raises the function's dynamic shared memory limit once when a launch needs more than the default 48 KiB. */
    private synchronized int allowShared(CUfunction kernel, long bytes, String what, int width, int clusters) {
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + " of width " + width + " needs " + bytes + " bytes of shared memory");
        }
        int needed = (int) bytes;
        if (needed > DEFAULT_SHARED_BYTES && sharedAllowed.getOrDefault(kernel, DEFAULT_SHARED_BYTES) < needed) {
            try {
                JCudaDriver.cuFuncSetAttribute(kernel, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                        needed);
            } catch (CudaException e) {
                throw new IllegalArgumentException(what + " of width " + width + " with " + clusters + " clusters needs "
                        + needed + " bytes of shared memory per block, more than this GPU grants: " + e.getMessage(), e);
            }
            sharedAllowed.put(kernel, needed);
        }
        return needed;
    }

    private static void checkRptq(int bits, int rows, int width, int clusters) {
        if (bits != 4 && bits != 3) {
            throw new IllegalArgumentException("rptq link kernels take 4 or 3 bits, got " + bits);
        }
        RowKernels.checkShape(rows, width);
        if (width > MAX_RPTQ_WIDTH) {
            throw new IllegalArgumentException("rptq link kernels index channels as u16: width " + width + " exceeds "
                    + MAX_RPTQ_WIDTH);
        }
        if (clusters < 1 || clusters > width) {
            throw new IllegalArgumentException("rptq link kernels need 1 <= clusters <= width (" + width + "), got " + clusters);
        }
    }

    private static void checkCount(long count) {
        if (count <= 0) {
            throw new IllegalArgumentException("fp16 link conversion of " + count + " values");
        }
    }

    private static void requireAligned(long address, int bytes, String what) {
        if (address % bytes != 0) {
            throw new IllegalArgumentException(what + " at 0x" + Long.toHexString(address) + " must be " + bytes
                    + "-byte aligned");
        }
    }

    private static int bitsIndex(int bits) {
        return bits == 3 ? 1 : 0;
    }

    private static int typeIndex(DType type) {
        return type == DType.F32 ? 1 : 0;
    }

    private static int roundUpWarp(int threads) {
        return (threads + 31) / 32 * 32;
    }

    private static long roundUp16(long bytes) {
        return (bytes + 15) / 16 * 16;
    }
}
