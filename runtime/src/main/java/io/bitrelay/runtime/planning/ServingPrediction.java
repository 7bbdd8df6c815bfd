package io.bitrelay.runtime.planning;

import io.bitrelay.runtime.placement.StagePlan;

import java.util.List;

/**
 * The predicted steady-state decode of one placement with one link codec.
 *
 * @param stages           the placement
 * @param stageNodes       node of each stage
 * @param stageSeconds     time of each stage for one micro-batch
 * @param links            each stage-to-stage link
 * @param microBatches     micro-batches circulating
 * @param tokensPerBatch   sequences (= tokens, at decode) per micro-batch
 * @param roundTripSeconds one micro-batch through every stage and link and its tokens back
 * @param tokensPerSecond  generated tokens per second, all sequences together
 * @param secondsPerToken  time between two tokens of one sequence
 * @param bottleneck       what bounds the throughput: "stage N", "link N→M" or "round trip"
 * @param kvTokensFit      KV-cache tokens (all sequences together) the tightest stage can hold
 */
public record ServingPrediction(List<StagePlan> stages, int[] stageNodes, double[] stageSeconds, List<LinkLoad> links,
                                int microBatches, int tokensPerBatch, double roundTripSeconds, double tokensPerSecond,
                                double secondsPerToken, String bottleneck, long kvTokensFit) {

    /**
     * @param frameBytes        bytes of one micro-batch's frame on this link (header and CRC included)
     * @param bytesPerToken     frame bytes per token
     * @param seconds           latency plus transfer of one frame
     * @param bytesPerSecond    the link's bandwidth
     * @param utilisation       share of the bandwidth used at the predicted throughput
     * @param crossesNodes      whether the link leaves the node
     */
    public record LinkLoad(int from, int to, long frameBytes, double bytesPerToken, double seconds,
                           double bytesPerSecond, double utilisation, boolean crossesNodes) {
    }
}
