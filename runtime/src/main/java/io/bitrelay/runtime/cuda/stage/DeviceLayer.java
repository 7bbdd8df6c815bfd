package io.bitrelay.runtime.cuda.stage;

/** One decoder layer's weights on the device and the forward pass that uses them (one class per recipe). */
sealed interface DeviceLayer extends AutoCloseable permits Fp16Layer, W8A8Layer {

    /**
     * Queues the layer on the stage's stream: buffers.hidden (step.rows(), h) is transformed in place.
     * {@code next} is the layer that runs after this one in the step (null for the stage's last): a layer may
     * finish by preparing next's input (W8A8: its quantized first LayerNorm).
     */
    void forward(StageCompute compute, StageBuffers buffers, AttentionStep step, int localLayer, DeviceLayer next);

    /** Device bytes of the weights. */
    long deviceBytes();

    @Override
    void close();
}
