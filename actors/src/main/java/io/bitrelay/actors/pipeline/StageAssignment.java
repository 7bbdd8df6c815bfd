package io.bitrelay.actors.pipeline;

import io.bitrelay.actors.dataplane.Link;
import io.bitrelay.actors.serialization.ClusterMessage;

/**
 * What the coordinator asks one worker to serve.
 *
 * @param firstLayer     first decoder layer of the stage
 * @param endLayer       one past its last layer
 * @param checkpointDir  the checkpoint directory as the worker's host sees it
 * @param linkCodec      codec of the outbound link ("fp16", "int8", …)
 * @param inbound        link from the previous stage, or null for the first stage
 * @param outbound       link to the next stage, or null for the last stage
 * @param quantization   the recipe the stage serves (built later from a plan, or restored from the store), or
 *                       null for FP32
 * @param kvCache        how the stage's KV caches store keys and values: fp32, int8, int4 or int3
 * @param maxBatchTokens rows a micro-batch carries at most (the scheduler's limit): a GPU stage preallocates
 *                       its step buffers for it
 * @param linkKey        the pipeline's link key and protection: every frame on the stage's links is sealed under it
 *                       (authenticated, or also encrypted); null when links are not protected
 *                       (bitrelay.security.authenticate-links = off)
 */
public record StageAssignment(int stageIndex, int stageCount, int firstLayer, int endLayer, int totalLayers,
                              String checkpointDir, String linkCodec, Link inbound, Link outbound,
                              StageQuantization quantization, String kvCache, int maxBatchTokens, LinkKey linkKey)
        implements ClusterMessage {
    /** The scheduler's default limit (bitrelay.coordinator.max-batch-tokens). */
    public static final int DEFAULT_MAX_BATCH_TOKENS = 2048;

    public StageAssignment {
        if (maxBatchTokens <= 0) {
            throw new IllegalArgumentException("maxBatchTokens must be positive, got " + maxBatchTokens);
        }
    }

    /** An assignment whose links carry no tag. */
    public StageAssignment(int stageIndex, int stageCount, int firstLayer, int endLayer, int totalLayers,
                           String checkpointDir, String linkCodec, Link inbound, Link outbound, StageQuantization quantization,
                           String kvCache, int maxBatchTokens) {
        this(stageIndex, stageCount, firstLayer, endLayer, totalLayers, checkpointDir, linkCodec, inbound, outbound,
                quantization, kvCache, maxBatchTokens, null);
    }

    /** An assignment with the default micro-batch limit. */
    public StageAssignment(int stageIndex, int stageCount, int firstLayer, int endLayer, int totalLayers,
                           String checkpointDir, String linkCodec, Link inbound, Link outbound, StageQuantization quantization,
                           String kvCache) {
        this(stageIndex, stageCount, firstLayer, endLayer, totalLayers, checkpointDir, linkCodec, inbound, outbound,
                quantization, kvCache, DEFAULT_MAX_BATCH_TOKENS);
    }

    /** An assignment with an FP32 KV cache. */
    public StageAssignment(int stageIndex, int stageCount, int firstLayer, int endLayer, int totalLayers,
                           String checkpointDir, String linkCodec, Link inbound, Link outbound, StageQuantization quantization) {
        this(stageIndex, stageCount, firstLayer, endLayer, totalLayers, checkpointDir, linkCodec, inbound, outbound,
                quantization, "fp32", DEFAULT_MAX_BATCH_TOKENS);
    }

    public boolean isFirst() {
        return stageIndex == 0;
    }

    public boolean isLast() {
        return stageIndex == stageCount - 1;
    }
}
