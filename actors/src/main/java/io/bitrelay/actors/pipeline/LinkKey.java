package io.bitrelay.actors.pipeline;

import io.bitrelay.runtime.wire.FrameAuthenticator;

import java.util.Arrays;

/**
 * The key that tags one pipeline's link frames (docs/security.md). The coordinator draws a new one each time it
 * places a pipeline and hands it to every stage in its {@link StageAssignment}, over the cluster's (TLS) control
 * plane; frames of a pipeline placed before, or of anyone without the key, are refused. Never printed.
 */
public record LinkKey(byte[] bytes) {

    public LinkKey {
        if (bytes == null || bytes.length != FrameAuthenticator.KEY_BYTES) {
            throw new IllegalArgumentException("a link key has " + FrameAuthenticator.KEY_BYTES + " bytes");
        }
        bytes = bytes.clone();
    }

    public static LinkKey random() {
        return new LinkKey(FrameAuthenticator.newKey());
    }

    /** A fresh authenticator (one per thread: Mac is not thread-safe). */
    public FrameAuthenticator authenticator() {
        return new FrameAuthenticator(bytes);
    }

    @Override
    public byte[] bytes() {
        return bytes.clone();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof LinkKey key && Arrays.equals(bytes, key.bytes);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(bytes);
    }

    @Override
    public String toString() {
        return "LinkKey[" + bytes.length + " bytes]";
    }
}
