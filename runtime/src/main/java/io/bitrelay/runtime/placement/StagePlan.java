package io.bitrelay.runtime.placement;

/**
 * One stage of a placement.
 *
 * @param device         index into the capacities the plan was made for
 * @param firstLayer     first decoder layer
 * @param endLayer       one past the last layer
 * @param weightBytes    weights the stage holds (its layers, plus embeddings on the first, head on the last)
 * @param capacityBytes  what the device offered
 */
public record StagePlan(int device, int firstLayer, int endLayer, long weightBytes, long capacityBytes) {
    public int layers() {
        return endLayer - firstLayer;
    }
}
