package io.bitrelay.runtime.cuda.stage;

import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaSettings;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.cublaslt.CublasLt;
import io.bitrelay.runtime.cuda.cublaslt.CublasLtLibrary;
import io.bitrelay.runtime.cuda.cublaslt.CublasLtLocator;
import io.bitrelay.runtime.cuda.cublaslt.GemmAutotuner;
import io.bitrelay.runtime.cuda.cublaslt.GemmPrecision;
import io.bitrelay.runtime.cuda.cublaslt.GemmTuningCache;
import io.bitrelay.runtime.cuda.kernels.AttentionKernels;
import io.bitrelay.runtime.cuda.kernels.DequantizeKernel;
import io.bitrelay.runtime.cuda.kernels.LayerNormKernels;
import io.bitrelay.runtime.cuda.kernels.QuantizeKernels;
import io.bitrelay.runtime.cuda.kernels.RandomFillKernels;
import io.bitrelay.runtime.cuda.kernels.EmbeddingKernels;
import io.bitrelay.runtime.cuda.kernels.SamplingKernels;
import io.bitrelay.runtime.cuda.kernels.StageEpilogueKernels;
import io.bitrelay.runtime.cuda.kernels.W8A8EpilogueKernels;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * What a stage computes with, created in its context: the stage's one stream, the kernels module with every
 * launcher, cuBLASLt with its workspace and the auto-tuner (plans cached per precision and (M, N, K)).
 *
 * <p>GEMM row counts are bucketed ({@link #gemmRows}) so that decode steps of varying batch sizes reuse a
 * handful of tuned plans instead of tuning every new M on the serving path; the extra rows read whatever
 * the (zeroed, preallocated) activation buffers hold and their outputs are never used.
 */
final class StageCompute implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(StageCompute.class.getName());
    /** Tuning effort per new GEMM shape: a stage tunes at start-up or on the first step of a new bucket. */
    private static final int TUNING_CANDIDATES = 8;
    private static final int TUNING_RUNS = 5;

    final CudaStream stream;
    final CudaKernels kernels;
    final LayerNormKernels layerNorm;
    final QuantizeKernels quantize;
    final DequantizeKernel dequantize;
    final StageEpilogueKernels epilogues;
    final W8A8EpilogueKernels w8a8;
    final AttentionKernels attention;
    final RandomFillKernels randomFill;
    final SamplingKernels sampling;
    final EmbeddingKernels embedding;
    private final CublasLt lt;
    private final DeviceBuffer workspace;
    private final GemmAutotuner tuner;
    private final int maxRows;
    private final Path tuningCache;
    private final int adopted;

    /**
     * @param deviceName the GPU's name, which keys the tuning-cache file ({@link CudaSettings#gemmTuningCache})
     */
    StageCompute(int maxRows, CudaSettings settings, String deviceName) {
        this.maxRows = maxRows;
        CudaStream createdStream = CudaStream.create();
        CudaKernels loaded = null;
        CublasLt createdLt = null;
        DeviceBuffer createdWorkspace = null;
        try {
            loaded = CudaKernels.load();
            createdLt = CublasLt.create(CublasLtLibrary.load(CublasLtLocator.locate(settings.cublasLtPath())));
            createdWorkspace = DeviceBuffer.allocate(Math.max(1, settings.gemmWorkspaceBytes()));
        } catch (RuntimeException e) {
            if (createdLt != null) {
                createdLt.close();
            }
            if (loaded != null) {
                loaded.close();
            }
            createdStream.close();
            throw e;
        }
        this.stream = createdStream;
        this.kernels = loaded;
        this.lt = createdLt;
        this.workspace = createdWorkspace;
        this.tuner = new GemmAutotuner(lt, workspace, stream, TUNING_CANDIDATES, TUNING_RUNS, settings.gemmSearch());
        this.tuningCache = settings.gemmTuningCache().isBlank() ? null : GemmTuningCache.file(
                Path.of(settings.gemmTuningCache()), deviceName, lt.library().version(), settings.gemmSearch());
        this.adopted = adoptTuningCache();
        this.layerNorm = new LayerNormKernels(kernels);
        this.quantize = new QuantizeKernels(kernels);
        this.dequantize = new DequantizeKernel(kernels);
        this.epilogues = new StageEpilogueKernels(kernels);
        this.w8a8 = new W8A8EpilogueKernels(kernels);
        this.attention = new AttentionKernels(kernels);
        this.randomFill = new RandomFillKernels(kernels);
        this.sampling = new SamplingKernels(kernels);
        this.embedding = new EmbeddingKernels(kernels);
    }

    /**
     * The M a GEMM over {@code rows} rows runs with: the next power of two up to 64 (decode batches), then the
     * next multiple of 128, never past the stage's preallocated rows.
     */
    int gemmRows(int rows) {
        int bucket = rows <= 1 ? 1 : rows <= 64 ? Integer.highestOneBit(rows - 1) << 1 : (rows + 127) / 128 * 128;
        return Math.min(bucket, maxRows);
    }

    /** y (rows, n) = x (rows, k) · w (n, k)ᵀ with the tuned plan for the bucketed row count. */
    void gemm(GemmPrecision precision, int rows, int n, int k, long x, long w, long y) {
        tuner.run(precision, gemmRows(rows), n, k, x, w, y);
    }

    /** Takes the tuning cache's choices when there is one; an unreadable file is reported and tuned over, not fatal. */
    private int adoptTuningCache() {
        if (tuningCache == null || !Files.isRegularFile(tuningCache)) {
            return 0;
        }
        try {
            int taken = tuner.adopt(GemmTuningCache.read(tuningCache));
            LOG.fine(() -> "GEMM tuning cache " + tuningCache + ": " + taken + " choices reused");
            return taken;
        } catch (IOException e) {
            LOG.log(Level.WARNING, "GEMM tuning cache not used, the GEMMs are tuned again and the file rewritten: "
                    + e.getMessage());
            return 0;
        }
    }

    /**
     * Every M {@link #gemmRows} gives for 1 ... {@code rows} rows, smallest first: the decode powers of two, then
     * the multiples of 128 that prompt chunks and mixed steps use.
     */
    int[] gemmBuckets(int rows) {
        java.util.TreeSet<Integer> buckets = new java.util.TreeSet<>();
        for (int r = 1; r <= Math.min(rows, maxRows); r++) {
            buckets.add(gemmRows(r));
        }
        return buckets.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Writes this stage's choices back when it tuned something the file did not have. */
    void saveTuningCache() {
        if (tuningCache == null) {
            return;
        }
        List<GemmTuningCache.Entry> entries = tuner.entries();
        if (entries.size() <= adopted) {
            return;
        }
        try {
            GemmTuningCache.write(tuningCache, entries);
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "GEMM tuning cache " + tuningCache + " not written: " + e.getMessage());
        }
    }

    @Override
    public void close() {
        saveTuningCache();
        tuner.close();
        workspace.close();
        lt.close();
        kernels.close();
        stream.close();
    }
}
