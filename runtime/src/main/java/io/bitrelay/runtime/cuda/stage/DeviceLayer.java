package io.bitrelay.runtime.cuda.stage;

/** One decoder layer's weights on the device and the forward pass that uses them (one class per recipe). */
sealed interface DeviceLayer extends AutoCloseable permits Fp16Layer, W8A8Layer {

    /** Queues the layer on the stage's stream: buffers.hidden (step.rows(), h) is transformed in place. */
    void forward(StageCompute compute, StageBuffers buffers, AttentionStep step, int localLayer);

    /** Device bytes of the weights. */
    long deviceBytes();

    @Override
    void close();
}
