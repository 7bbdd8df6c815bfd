package io.bitrelay.actors.pipeline;

import io.bitrelay.runtime.wire.FrameSeal;
import io.bitrelay.runtime.wire.LinkFrameKeys;
import io.bitrelay.runtime.wire.LinkProtection;

import java.util.Arrays;

/**
 * The key that seals one pipeline's link frames, and how (docs/security.md): authenticated, or authenticated and
 * encrypted. The coordinator draws a new one each time it places a pipeline and hands it to every stage in its
 * {@link StageAssignment}, over the cluster's (TLS) control plane; frames of a pipeline placed before, or of anyone
 * without the key, are refused. Never printed.
 */
public record LinkKey(byte[] bytes, LinkProtection protection) {

    public LinkKey {
        if (bytes == null || bytes.length != LinkFrameKeys.PIPELINE_KEY_BYTES) {
            throw new IllegalArgumentException("a link key has " + LinkFrameKeys.PIPELINE_KEY_BYTES + " bytes");
        }
        if (protection == null || protection == LinkProtection.NONE) {
            throw new IllegalArgumentException("a link key authenticates or encrypts, got " + protection
                    + " (unprotected links carry no key)");
        }
        bytes = bytes.clone();
    }

    public static LinkKey random(LinkProtection protection) {
        return new LinkKey(LinkFrameKeys.newPipelineKey(), protection);
    }

    /**
     * A fresh seal for the link from {@code sourceStage} to {@code targetStage}: one per thread, and on the sending side
     * one per link (it numbers the frames it seals).
     */
    public FrameSeal seal(int sourceStage, int targetStage) {
        return protection.newSeal(bytes, sourceStage, targetStage);
    }

    @Override
    public byte[] bytes() {
        return bytes.clone();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof LinkKey key && Arrays.equals(bytes, key.bytes) && protection == key.protection;
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(bytes) + protection.hashCode();
    }

    @Override
    public String toString() {
        return "LinkKey[" + bytes.length + " bytes, " + protection + "]";
    }
}
