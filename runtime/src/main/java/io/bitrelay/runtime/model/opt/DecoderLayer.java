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

    /** Transforms {@code hidden} (rows, hidden) in place and writes this layer's keys/values into each chunk's cache. */
    static void forward(OptConfig config, LayerWeights w, int localLayer, List<SequenceChunk> chunks,
                        MemorySegment hidden, int rows, StepBuffers buffers) {
        int width = config.hiddenSize();
        boolean preNorm = config.doLayerNormBefore();

        MemorySegment attentionInput = hidden;
        if (preNorm) {
            w.selfAttnLayerNorm().apply(hidden, buffers.normed, rows);
            attentionInput = buffers.normed;
        }
        w.qProj().apply(attentionInput, rows, buffers.q);
        w.kProj().apply(attentionInput, rows, buffers.k);
        w.vProj().apply(attentionInput, rows, buffers.v);
        Attention.scale(buffers.q, (long) rows * width, (float) (1.0 / Math.sqrt(config.headDim())));
        int rowBase = 0;
        for (SequenceChunk chunk : chunks) {
            Attention.store(chunk, localLayer, buffers.k, buffers.v, rowBase, width);
            rowBase += chunk.length();
        }
        Attention.forward(chunks, localLayer, buffers.q, buffers.attention, config.numHeads(), config.headDim());
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
        w.fc1().apply(ffnInput, rows, buffers.ffn);
        VectorMath.reluInPlace(buffers.ffn, (long) rows * config.ffnDim());
        w.fc2().apply(buffers.ffn, rows, buffers.projected);
        VectorMath.addInPlace(hidden, buffers.projected, (long) rows * width);
        if (!preNorm) {
            w.finalLayerNorm().apply(hidden, hidden, rows);
        }
    }
}
