/**
 * The link between pipeline stages: the {@link io.bitrelay.runtime.wire.LinkFrame} format (written by
 * {@link io.bitrelay.runtime.wire.LinkFrameWriter}, validated and read by
 * {@link io.bitrelay.runtime.wire.LinkFrameReader}), the {@link io.bitrelay.runtime.wire.LinkCodec}s that
 * quantize activations into it, the {@link io.bitrelay.runtime.wire.BatchLayout} of sequences it carries,
 * and per-link {@link io.bitrelay.runtime.wire.LinkStats}.
 */
package io.bitrelay.runtime.wire;
