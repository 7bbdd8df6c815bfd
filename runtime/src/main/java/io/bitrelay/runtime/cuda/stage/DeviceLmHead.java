package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.CudaEvent;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.PinnedHostBuffer;
import io.bitrelay.runtime.cuda.cublaslt.GemmPrecision;
import io.bitrelay.runtime.cuda.kernels.SamplingKernels;
import io.bitrelay.runtime.generate.SamplingRows;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptWeights;
import io.bitrelay.runtime.tensor.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The last stage's final LayerNorm and tied LM head on the device, so a sampling step brings back one row of
 * logits per sequence instead of every row of the residual stream, and the (vocab × hidden) product runs on the
 * GPU (at OPT-175B 1.2 G multiply-adds per token, ~0.1 s on the host). FP16 embeddings and logits with FP32
 * accumulation, as transformers' OPT in FP16 computes them; rows are gathered straight from the FP32 residual
 * stream by the LayerNorm (one launch per run of consecutive rows).
 *
 * <p>{@link #sample} goes one step further for decoding: the tokens are chosen on the device too, so a step
 * brings back 4 bytes per row (8 with the log-probability) instead of a row of logits.
 */
final class DeviceLmHead implements AutoCloseable {
    /** Rows per GEMM: a decode step's sequences fit at once; more (rare) go in chunks. A bucket of StageCompute.gemmRows. */
    static final int MAX_ROWS = 256;
    /** Bytes per row of a sampling pass: its parameters, token and log-probability. */
    private static final int SAMPLING_ROW_BYTES = SamplingKernels.PARAMS_BYTES + Integer.BYTES + Float.BYTES;

    private final int vocab;
    private final int width;
    private final int rowsPerPass;
    private final DeviceTensors tensors;
    private final DeviceBuffer gain, bias;  // (h) FP32
    private final DeviceBuffer embeddings;  // (vocab, h) FP16
    private final DeviceBuffer normed;      // (rowsPerPass, h) FP16
    private final DeviceBuffer logits;      // (rowsPerPass, vocab) FP16
    private final PinnedHostBuffer host;    // (rowsPerPass, vocab) FP16
    // A sampling pass of n rows: n packed parameter rows, then n int32 tokens, then n FP32 log-probabilities;
    // the same layout on both sides, so one copy goes each way. Two halves, so a pass can be queued while the
    // previous one's tokens are still on their way (and read on the device by the next step's embeddings).
    private final DeviceBuffer samplingDevice;
    private final PinnedHostBuffer samplingHost;
    private final long samplingHalfBytes;
    /** Per half: the tokens of its last pass have reached {@link #samplingHost}. */
    private final CudaEvent[] sampledBack;

    private DeviceLmHead(int vocab, int width, int rowsPerPass, DeviceTensors tensors, DeviceBuffer gain, DeviceBuffer bias,
                         DeviceBuffer embeddings, DeviceBuffer normed, DeviceBuffer logits, PinnedHostBuffer host,
                         DeviceBuffer samplingDevice, PinnedHostBuffer samplingHost, CudaEvent[] sampledBack) {
        this.vocab = vocab;
        this.width = width;
        this.rowsPerPass = rowsPerPass;
        this.tensors = tensors;
        this.gain = gain;
        this.bias = bias;
        this.embeddings = embeddings;
        this.normed = normed;
        this.logits = logits;
        this.host = host;
        this.samplingDevice = samplingDevice;
        this.samplingHost = samplingHost;
        this.samplingHalfBytes = samplingHost.byteSize() / 2;
        this.sampledBack = sampledBack;
    }

    /** Whether the head of {@code weights} runs here: the stage owns it, with a final LayerNorm and no output projection. */
    static boolean supports(OptWeights weights) {
        return weights.range().ownsHead() && weights.tokenEmbeddings() != null && weights.finalLayerNorm() != null
                && weights.projectOut() == null;
    }

    /** Uploads the final LayerNorm and the embeddings (rounded to FP16) of a stage {@link #supports supported}. */
    static DeviceLmHead upload(OptConfig config, OptWeights weights, int maxBatchTokens) {
        if (!supports(weights)) {
            throw new IllegalArgumentException("stage " + weights.range() + " has no LM head the GPU can run");
        }
        int vocab = config.vocabSize();
        int width = config.hiddenSize();
        int rowsPerPass = Math.min(MAX_ROWS, maxBatchTokens);
        DeviceTensors tensors = new DeviceTensors();
        PinnedHostBuffer host = null;
        PinnedHostBuffer samplingHost = null;
        CudaEvent[] sampledBack = new CudaEvent[2];
        try {
            DeviceBuffer gain = tensors.floats(weights.finalLayerNorm().gain(), width);
            DeviceBuffer bias = tensors.floats(weights.finalLayerNorm().bias(), width);
            DeviceBuffer embeddings = tensors.allocate((long) vocab * width * Short.BYTES);
            DeviceTensors.uploadHalves(embeddings, 0, weights.tokenEmbeddings(), (long) vocab * width, 1f);
            DeviceBuffer normed = tensors.allocate((long) rowsPerPass * width * Short.BYTES);
            DeviceBuffer logits = tensors.allocate((long) rowsPerPass * vocab * Short.BYTES);
            host = PinnedHostBuffer.allocate((long) rowsPerPass * vocab * Short.BYTES);
            long samplingBytes = 2L * rowsPerPass * SAMPLING_ROW_BYTES;
            DeviceBuffer samplingDevice = tensors.allocate(samplingBytes);
            samplingHost = PinnedHostBuffer.allocate(samplingBytes);
            sampledBack[0] = CudaEvent.create();
            sampledBack[1] = CudaEvent.create();
            return new DeviceLmHead(vocab, width, rowsPerPass, tensors, gain, bias, embeddings, normed, logits, host,
                    samplingDevice, samplingHost, sampledBack);
        } catch (RuntimeException e) {
            for (CudaEvent event : sampledBack) {
                if (event != null) {
                    event.close();
                }
            }
            if (host != null) {
                host.close();
            }
            if (samplingHost != null) {
                samplingHost.close();
            }
            tensors.close();
            throw e;
        }
    }

    /**
     * The logits of {@code rows} (indices into {@code hidden}, the (maxBatchTokens, h) FP32 residual stream) after
     * the work queued on {@code c.stream}; waits for them.
     */
    float[][] logits(StageCompute c, DeviceBuffer hidden, int[] rows, int maxBatchTokens) {
        checkRows(rows, rows.length, maxBatchTokens);
        float[][] out = new float[rows.length][];
        short[] halves = new short[vocab];
        for (int from = 0; from < rows.length; from += rowsPerPass) {
            int count = Math.min(rowsPerPass, rows.length - from);
            queueLogits(c, hidden, rows, from, count);
            logits.copyToHostAsync(host, 0, 0, (long) count * vocab * Short.BYTES, c.stream);
            c.stream.synchronize();
            MemorySegment segment = host.segment();
            for (int r = 0; r < count; r++) {
                MemorySegment.copy(segment, ValueLayout.JAVA_SHORT, (long) r * vocab * Short.BYTES, halves, 0, vocab);
                float[] row = new float[vocab];
                for (int v = 0; v < vocab; v++) {
                    row[v] = Float.float16ToFloat(halves[v]);
                }
                out[from + r] = row;
            }
        }
        return out;
    }

    /**
     * The next token of each of the first {@code params.count()} entries of {@code rows}, sampled on the device as
     * {@code params} says, after the work queued on {@code c.stream}; waits for them. Allocates nothing.
     *
     * @param half        which half of the sampling buffers the passes use (one no queued pass still needs)
     * @param tokensOut   receives the tokens, one per row
     * @param logprobsOut receives each token's log-softmax under the raw logits, or null when not wanted
     */
    void sample(StageCompute c, DeviceBuffer hidden, int[] rows, int maxBatchTokens, SamplingRows params, int half,
                int[] tokensOut, float[] logprobsOut) {
        int n = params.count();
        if (n > rows.length) {
            throw new IllegalArgumentException(n + " sampling rows for " + rows.length + " stream rows");
        }
        if (tokensOut.length < n || (logprobsOut != null && logprobsOut.length < n)) {
            throw new IllegalArgumentException("outputs of " + tokensOut.length
                    + (logprobsOut == null ? "" : " / " + logprobsOut.length) + " entries for " + n + " rows");
        }
        checkRows(rows, n, maxBatchTokens);
        MemorySegment staged = samplingHost.segment();
        for (int from = 0; from < n; from += rowsPerPass) {
            int count = Math.min(rowsPerPass, n - from);
            Pass pass = queuePass(c, hidden, rows, from, count, params, half, logprobsOut != null);
            sampledBack[half].synchronize();
            MemorySegment.copy(staged, ValueLayout.JAVA_INT, pass.tokensOffset(), tokensOut, from, count);
            if (logprobsOut != null) {
                MemorySegment.copy(staged, ValueLayout.JAVA_FLOAT, pass.tokensOffset() + (long) count * Integer.BYTES,
                        logprobsOut, from, count);
            }
        }
    }

    /**
     * Queues the sampling of the first {@code params.count()} (at most {@link #rowsPerPass()}) entries of {@code rows}
     * in {@code half} of the sampling buffers and returns at once: the tokens stay on the device at
     * {@link #tokensAddress} (for the next step's embeddings) and reach the host for {@link #collect}.
     */
    Pass queueSample(StageCompute c, DeviceBuffer hidden, int[] rows, int maxBatchTokens, SamplingRows params, int half) {
        int n = params.count();
        if (n < 1 || n > rowsPerPass) {
            throw new IllegalArgumentException("a queued sampling pass takes 1.." + rowsPerPass + " rows, got " + n);
        }
        if (n > rows.length) {
            throw new IllegalArgumentException(n + " sampling rows for " + rows.length + " stream rows");
        }
        checkRows(rows, n, maxBatchTokens);
        return queuePass(c, hidden, rows, 0, n, params, half, false);
    }

    /** Where a queued pass's tokens are on the device: {@code pass.count()} int32, valid until its half is reused. */
    long tokensAddress(Pass pass) {
        return samplingDevice.address() + pass.tokensOffset();
    }

    /** Waits for {@code pass}'s tokens to reach the host and copies them to {@code tokensOut}. */
    void collect(Pass pass, int[] tokensOut) {
        sampledBack[pass.half()].synchronize();
        MemorySegment.copy(samplingHost.segment(), ValueLayout.JAVA_INT, pass.tokensOffset(), tokensOut, 0, pass.count());
    }

    /** A queued sampling pass: its half of the buffers, its rows, and where its tokens start in that half's layout. */
    record Pass(int half, int count, long tokensOffset) {
    }

    private Pass queuePass(StageCompute c, DeviceBuffer hidden, int[] rows, int from, int count, SamplingRows params,
                           int half, boolean logprobs) {
        if (half != 0 && half != 1) {
            throw new IllegalArgumentException("sampling half " + half);
        }
        long base = half * samplingHalfBytes;
        long paramsBytes = (long) count * SamplingKernels.PARAMS_BYTES;
        long tokens = base + paramsBytes;
        long logprobOffset = tokens + (long) count * Integer.BYTES;
        SamplingKernels.pack(params, from, count, samplingHost.segment().asSlice(base, samplingHalfBytes));
        samplingDevice.copyFromHostAsync(samplingHost, base, base, paramsBytes, c.stream);
        queueLogits(c, hidden, rows, from, count);
        c.sampling.sample(logits.address(), count, vocab, samplingDevice.address() + base, samplingDevice.address() + tokens,
                logprobs ? samplingDevice.address() + logprobOffset : 0, c.stream);
        long back = (long) count * (logprobs ? Integer.BYTES + Float.BYTES : Integer.BYTES);
        samplingDevice.copyToHostAsync(samplingHost, tokens, tokens, back, c.stream);
        sampledBack[half].record(c.stream);
        return new Pass(half, count, tokens);
    }

    /** The tied token embeddings, (vocab, h) FP16: the input embeddings of a stage that also owns them. */
    DeviceBuffer tokenEmbeddings() {
        return embeddings;
    }

    /** Queues the final LayerNorm and the LM-head GEMM of rows[from .. from + count - 1] into {@link #logits}. */
    private void queueLogits(StageCompute c, DeviceBuffer hidden, int[] rows, int from, int count) {
        for (int i = 0; i < count; ) {
            int start = rows[from + i];
            int run = 1;
            while (i + run < count && rows[from + i + run] == start + run) {
                run++;
            }
            c.layerNorm.layerNorm(DType.F16, hidden.address() + (long) start * width * Float.BYTES, gain.address(),
                    bias.address(), normed.address() + (long) i * width * Short.BYTES, run, width, OptConfig.LAYER_NORM_EPS,
                    c.stream);
            i += run;
        }
        c.gemm(GemmPrecision.FP16, count, vocab, width, normed.address(), embeddings.address(), logits.address());
    }

    /** Tunes the head's GEMM for {@code count} rows (at most a pass) on scratch, so sampling never waits for tuning. */
    void prepare(StageCompute c, int count) {
        c.gemm(GemmPrecision.FP16, Math.min(count, rowsPerPass), vocab, width, normed.address(), embeddings.address(),
                logits.address());
        c.stream.synchronize();
    }

    int rowsPerPass() {
        return rowsPerPass;
    }

    private static void checkRows(int[] rows, int count, int maxBatchTokens) {
        for (int i = 0; i < count; i++) {
            if (rows[i] < 0 || rows[i] >= maxBatchTokens) {
                throw new IllegalArgumentException("row " + rows[i] + " of a stage holding 0.." + (maxBatchTokens - 1));
            }
        }
    }

    long deviceBytes() {
        return tensors.bytes();
    }

    @Override
    public void close() {
        host.close();
        samplingHost.close();
        for (CudaEvent event : sampledBack) {
            event.close();
        }
        tensors.close();
    }
}
