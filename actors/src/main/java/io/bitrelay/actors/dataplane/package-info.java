/**
 * The data plane: activation frames between consecutive pipeline stages over Aeron.
 *
 * <ul>
 *   <li>{@link io.bitrelay.actors.dataplane.MediaDriverHost}: the host's media driver (embedded, or a shared
 *       process for several JVMs) and this JVM's Aeron client.</li>
 *   <li>{@link io.bitrelay.actors.dataplane.LinkChannels} → {@link io.bitrelay.actors.dataplane.Link}: IPC on
 *       one host, UDP across hosts, one stream per link.</li>
 *   <li>{@link io.bitrelay.actors.dataplane.LinkPublisher}: frame → chunks ({@link
 *       io.bitrelay.actors.dataplane.ChunkHeader}) → Aeron, every offer result handled, waits bounded.</li>
 *   <li>{@link io.bitrelay.actors.dataplane.LinkSubscriber}: an agent that reassembles chunks off-heap and
 *       hands whole frames to a {@link io.bitrelay.actors.dataplane.FrameHandler}; inconsistent frames go to
 *       the {@link io.bitrelay.actors.dataplane.DroppedFrameListener}, never half to the handler.</li>
 * </ul>
 *
 * Frames are opaque here: their format and CRC belong to runtime/wire.
 */
package io.bitrelay.actors.dataplane;
