package io.bitrelay.actors.serialization;

/**
 * Marker for every message that may cross JVMs. Pekko binds it to {@link KryoSerializer}; each
 * implementing class must also be listed in {@link ProtocolRegistry}, so nothing travels unregistered.
 */
public interface ClusterMessage {
}
