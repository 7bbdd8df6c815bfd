package io.bitrelay.runtime.placement;

import io.bitrelay.runtime.model.opt.OptConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits a model's decoder layers into contiguous pipeline stages, one per device, in proportion to each
 * device's free memory: the first stage also carries the embeddings, the last the final LayerNorm and the
 * (tied) LM head, and every stage keeps {@code reserveFraction} of its memory free for KV cache and
 * activations. Devices beyond the number of layers get no stage.
 */
public final class LayerPlacement {
    private LayerPlacement() {
    }

    /**
     * @param bytesPerParameter 4 for FP32 weights, 2 for FP16, ~1 for INT8 (scales are noise)
     * @param reserveFraction   share of each device's memory kept for KV cache and scratch, e.g. 0.1
     * @throws IllegalArgumentException when the model does not fit, saying by how much
     */
    public static List<StagePlan> plan(OptConfig config, List<Long> capacityBytes, double bytesPerParameter,
                                       double reserveFraction) {
        if (capacityBytes.isEmpty()) {
            throw new IllegalArgumentException("no devices to place " + config.numLayers() + " layers on");
        }
        int stages = Math.min(capacityBytes.size(), config.numLayers());
        long layerBytes = (long) Math.ceil(config.layerParameters() * bytesPerParameter);
        long embeddingBytes = (long) Math.ceil(((long) config.vocabSize() * config.wordEmbedProjDim()
                + (long) (config.maxPositions() + OptConfig.POSITION_OFFSET) * config.hiddenSize()
                + (config.hasProjections() ? (long) config.hiddenSize() * config.wordEmbedProjDim() : 0)) * bytesPerParameter);
        long headBytes = (long) Math.ceil(((long) config.vocabSize() * config.wordEmbedProjDim()
                + 2L * config.hiddenSize()
                + (config.hasProjections() ? (long) config.hiddenSize() * config.wordEmbedProjDim() : 0)) * bytesPerParameter);

        long[] usable = new long[stages];
        long totalUsable = 0;
        for (int i = 0; i < stages; i++) {
            usable[i] = (long) (capacityBytes.get(i) * (1 - reserveFraction));
            totalUsable += usable[i];
        }
        long totalWeights = layerBytes * config.numLayers() + embeddingBytes + headBytes
                - (stages == 1 ? (long) config.vocabSize() * config.wordEmbedProjDim() : 0); // one stage shares the tied table
        if (totalWeights > totalUsable) {
            throw new IllegalArgumentException(String.format(
                    "the model needs %.2f GB of weights but %d device(s) offer %.2f GB after the %.0f%% reserve",
                    totalWeights / 1e9, stages, totalUsable / 1e9, reserveFraction * 100));
        }

        // Each stage's share of the layers follows its share of the usable memory, after the fixed extras.
        List<StagePlan> plans = new ArrayList<>();
        int nextLayer = 0;
        double cumulativeTarget = 0;
        double layersTotal = config.numLayers();
        double extrasInLayers = (double) (embeddingBytes + headBytes) / layerBytes;
        for (int i = 0; i < stages; i++) {
            double share = (double) usable[i] / totalUsable;
            double extras = (i == 0 ? (double) embeddingBytes / layerBytes : 0) + (i == stages - 1 ? (double) headBytes / layerBytes : 0);
            cumulativeTarget += share * (layersTotal + extrasInLayers) - extras;
            int remainingStages = stages - i - 1;
            int end = (int) Math.round(cumulativeTarget);
            end = Math.max(end, nextLayer + 1);                        // every stage gets a layer
            end = Math.min(end, config.numLayers() - remainingStages); // and leaves one for each later stage
            if (i == stages - 1) {
                end = config.numLayers();
            }
            long weights = (end - nextLayer) * layerBytes + (i == 0 ? embeddingBytes : 0) + (i == stages - 1 ? headBytes : 0);
            plans.add(new StagePlan(i, nextLayer, end, weights, capacityBytes.get(i)));
            nextLayer = end;
        }
        for (StagePlan plan : plans) {
            if (plan.weightBytes() > usable[plan.device()]) {
                throw new IllegalArgumentException(String.format(
                        "stage on device %d needs %.2f GB for layers [%d, %d) but has %.2f GB after the reserve",
                        plan.device(), plan.weightBytes() / 1e9, plan.firstLayer(), plan.endLayer(), usable[plan.device()] / 1e9));
            }
        }
        return plans;
    }
}
