package io.bitrelay.runtime.model.opt;

import io.bitrelay.runtime.ops.cpu.VectorMath;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * One OPT decoder layer, as OPTDecoderLayer computes it:
 * <pre>
 *   pre-LN (all OPT but 350m):  h += out_proj(attn(LN1(h)));  h += fc2(relu(fc1(LN2(h))))
 *   post-LN (opt-350m):         h = LN1(h + out_proj(attn(h))); h = LN2(h + fc2(relu(fc1(h))))
 * </pre>
 */
final class DecoderLayer {
    private DecoderLayer() {
    }

    /**
     * Transforms {@code hidden} (rows, hidden) in place and writes this layer's keys/values into each chunk's cache.
     *
     * @param layer      global layer index (what the observer is told)
     * @param localLayer index within the stage (what the caches are indexed by)
     * @param observer   sees the activations at each {@link ActivationSite}, or null
     */
    static void forward(OptConfig config, LayerWeights w, int layer, int localLayer, List<SequenceChunk> chunks,
                        MemorySegment hidden, int rows, StepBuffers buffers, ActivationObserver observer) {
        int width = config.hiddenSize();
        boolean preNorm = config.doLayerNormBefore();

        MemorySegment attentionInput = hidden;
        if (preNorm) {
            w.selfAttnLayerNorm().apply(hidden, buffers.normed, rows);
            attentionInput = buffers.normed;
        }
        observe(observer, layer, ActivationSite.QKV_INPUT, attentionInput, rows, width);
        w.qProj().apply(attentionInput, rows, buffers.q);
        w.kProj().apply(attentionInput, rows, buffers.k);
        w.vProj().apply(attentionInput, rows, buffers.v);
        observe(observer, layer, ActivationSite.KEYS, buffers.k, rows, width);
        observe(observer, layer, ActivationSite.VALUES, buffers.v, rows, width);
        VectorMath.scaleInPlace(buffers.q, (long) rows * width, (float) (1.0 / Math.sqrt(config.headDim())));
        int rowBase = 0;
        for (SequenceChunk chunk : chunks) {
            Attention.store(chunk, localLayer, buffers.k, buffers.v, rowBase, width);
            rowBase += chunk.length();
        }
        Attention.forward(chunks, localLayer, buffers.q, buffers.attention, config.numHeads(), config.headDim());
        observe(observer, layer, ActivationSite.OUT_PROJ_INPUT, buffers.attention, rows, width);
        w.outProj().apply(buffers.attention, rows, buffers.projected);
        VectorMath.addInPlace(hidden, buffers.projected, (long) rows * width);
        if (!preNorm) {
            w.selfAttnLayerNorm().apply(hidden, hidden, rows);
        }

        MemorySegment ffnInput = hidden;
        if (preNorm) {
            w.finalLayerNorm().apply(hidden, buffers.normed, rows);
            ffnInput = buffers.normed;
        }
        observe(observer, layer, ActivationSite.FC1_INPUT, ffnInput, rows, width);
        w.fc1().apply(ffnInput, rows, buffers.ffn);
        VectorMath.reluInPlace(buffers.ffn, (long) rows * config.ffnDim());
        observe(observer, layer, ActivationSite.FC2_INPUT, buffers.ffn, rows, config.ffnDim());
        w.fc2().apply(buffers.ffn, rows, buffers.projected);
        VectorMath.addInPlace(hidden, buffers.projected, (long) rows * width);
        if (!preNorm) {
            w.finalLayerNorm().apply(hidden, hidden, rows);
        }
    }

    static void observe(ActivationObserver observer, int layer, ActivationSite site, MemorySegment x, int rows, int width) {
        if (observer != null) {
            observer.observe(layer, site, x, rows, width);
        }
    }
}
