package io.bitrelay.actors.worker;

import io.bitrelay.actors.pipeline.StageAssignment;
import io.bitrelay.actors.pipeline.StageQuantization;
import io.bitrelay.runtime.checkpoint.HfCheckpoint;
import io.bitrelay.runtime.cuda.kernels.KvCacheFormat;
import io.bitrelay.runtime.cuda.stage.GpuStage;
import io.bitrelay.runtime.cuda.stage.StageRecipe;
import io.bitrelay.runtime.model.opt.KvPrecision;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.quant.QuantRecipe;
import io.bitrelay.runtime.quant.store.QuantStoreException;
import io.bitrelay.runtime.quant.store.StageFile;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;

/**
 * Builds what a stage serves from its assignment: the host models (loaded from the checkpoint, the quantized stage
 * restored from the store when there is one) and the backend that runs its layers, on the CPU or on the worker's GPU
 * (uploaded from the host models, or streamed layer by layer). Whatever it made is freed again when a later part fails.
 */
final class StageLoader {
    private static final Logger LOG = LoggerFactory.getLogger(StageLoader.class);

    private StageLoader() {
    }

    /**
     * A loaded stage; {@link #close()} frees it (the backend first: it was built from the models).
     *
     * @param streamed       the layers were streamed to the GPU: the host holds none
     * @param restored       a quantized stage was restored from the store (not calibrated here)
     * @param restoreProblem why the store's stage could not be restored, or null
     */
    record Loaded(StageModels models, StageBackend backend, boolean streamed, boolean restored, String restoreProblem)
            implements AutoCloseable {
        @Override
        public void close() {
            backend.close();
            models.close();
        }
    }

    static Loaded load(StageAssignment assignment, WorkerSettings settings) {
        LayerRange range = new LayerRange(assignment.firstLayer(), assignment.endLayer(), assignment.totalLayers());
        if (settings.cudaDevice() >= 0 && settings.streamLayers()) {
            return loadStreaming(assignment, settings, range);
        }
        OptModel loaded = OptModel.load(Path.of(assignment.checkpointDir()), range);
        OptModel base;
        try {
            base = loaded.withKvPrecision(KvPrecision.parse(assignment.kvCache()));
        } catch (RuntimeException e) {
            loaded.close();
            throw e;
        }
        OptModel model = base;
        GpuLayers gpu = null;
        String restoreProblem = null;
        StageQuantization quantization = assignment.quantization();
        try {
            if (quantization != null && quantization.restoreFile() != null) {
                try {
                    model = StageFile.load(Path.of(quantization.restoreFile()), base, identity(assignment), quantization.restoreCrc32c());
                    LOG.info("stage {}: restored {} layers [{}, {}) from {}", assignment.stageIndex(), quantization.recipe(),
                            assignment.firstLayer(), assignment.endLayer(), quantization.restoreFile());
                } catch (QuantStoreException e) {
                    restoreProblem = e.getMessage();
                    LOG.warn("stage {}: cannot restore the quantized stage: {}", assignment.stageIndex(), restoreProblem);
                }
            }
            gpu = settings.cudaDevice() < 0 ? null : openGpu(assignment, settings, model);
            StageModels models = new StageModels(loaded, base, model);
            StageBackend backend = gpu == null ? new CpuStageBackend(models, assignment)
                    : new GpuStageBackend(gpu, models, settings.deviceLinkCodecs(), settings.deviceLmHead(), settings.deviceSampling(),
                            settings.stepsAhead());
            return new Loaded(models, backend, false, models.quantized(), restoreProblem);
        } catch (RuntimeException e) {
            if (gpu != null) {
                gpu.close();
            }
            if (model != base) {
                model.close();
            }
            loaded.close();
            throw e;
        }
    }

    /**
     * A GPU worker with {@code host-weights = stream}: the layers go to the device one at a time — FP16 from the
     * checkpoint, or W8A8 rebuilt from the stage file the store saved, each on its FP32 layer read alone — and the
     * host keeps the stage's embeddings and head only. Such a stage cannot calibrate: a quantized recipe must be
     * restorable from the store, else the stage refuses to load and says so.
     */
    private static Loaded loadStreaming(StageAssignment assignment, WorkerSettings settings, LayerRange range) {
        int device = settings.cudaDevice();
        StageQuantization quantization = assignment.quantization();
        boolean quantized = quantization != null && !quantization.recipe().equals(QuantRecipe.FP32.name());
        String where = "stage " + assignment.stageIndex() + " on cuda:" + device + " streams its layers to the GPU "
                + "(bitrelay.worker.host-weights = stream)";
        if (quantized && quantization.restoreFile() == null) {
            throw new IllegalArgumentException(where + " and cannot calibrate " + quantization.recipe() + ": the quantization "
                    + "store has no saved stage for it; calibrate once with host-weights = keep (the store keeps the result), then stream");
        }
        KvPrecision kv = checkGpuKvCache(assignment, device);
        Path checkpoint = Path.of(assignment.checkpointDir());
        OptModel loadedHost = OptModel.loadWithoutLayers(checkpoint, range);
        OptModel host = loadedHost.withKvPrecision(kv);
        GpuLayers gpu = null;
        try (HfCheckpoint files = HfCheckpoint.open(checkpoint);
             StageFile.Reader saved = quantized ? StageFile.Reader.open(Path.of(quantization.restoreFile()), identity(assignment),
                     quantization.restoreCrc32c()) : null) {
            GpuStage.LayerSource fp32 = GpuStage.LayerSource.checkpoint(files, host.config(), range);
            GpuStage.LayerSource layers = saved == null ? fp32
                    : (local, arena) -> saved.restoreLayer(local, fp32.layer(local, arena), arena);
            gpu = GpuLayers.stream(device, settings.cuda(), host, quantized ? StageRecipe.W8A8 : StageRecipe.FP16, layers,
                    assignment.maxBatchTokens());
            LOG.info("stage {}: layers [{}, {}) streamed to {}{}", assignment.stageIndex(), assignment.firstLayer(),
                    assignment.endLayer(), gpu.describe(), quantized ? " (" + quantization.recipe() + " from " + quantization.restoreFile() + ")" : "");
            StageModels models = new StageModels(loadedHost, host, host);
            return new Loaded(models, new GpuStageBackend(gpu, models, settings.deviceLinkCodecs(), settings.deviceLmHead(),
                    settings.deviceSampling(), settings.stepsAhead()), true, quantized, null);
        } catch (RuntimeException e) {
            if (gpu != null) {
                gpu.close();
            }
            loadedHost.close();
            throw e instanceof QuantStoreException ? new IllegalArgumentException(where + ": " + e.getMessage(), e) : e;
        }
    }

    /** The KV precision a GPU stage serves: fp32 (an FP16 cache on the GPU) or int8; 4 and 3 bits are refused by name. */
    private static KvPrecision checkGpuKvCache(StageAssignment assignment, int device) {
        KvPrecision precision = KvPrecision.parse(assignment.kvCache());
        try {
            KvCacheFormat.of(precision);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("stage " + assignment.stageIndex() + " on cuda:" + device
                    + ": bitrelay.quantization.kv-cache = " + assignment.kvCache() + ": " + e.getMessage(), e);
        }
        return precision;
    }

    private static GpuLayers openGpu(StageAssignment assignment, WorkerSettings settings, OptModel model) {
        int device = settings.cudaDevice();
        checkGpuKvCache(assignment, device);
        GpuLayers gpu = GpuLayers.open(device, settings.cuda(), model, assignment.maxBatchTokens());
        LOG.info("stage {}: layers [{}, {}) run {}", assignment.stageIndex(), assignment.firstLayer(), assignment.endLayer(),
                gpu.describe());
        return gpu;
    }

    /** What this stage's file must have been made for: the recipe options it uses count, as the coordinator's store compares. */
    static StageFile.Identity identity(StageAssignment assignment) {
        StageQuantization q = assignment.quantization();
        return new StageFile.Identity(q.fingerprint(), q.recipe(), q.alpha(), q.options().effectiveFor(q.quantRecipe()),
                assignment.firstLayer(), assignment.endLayer());
    }
}
