/**
 * The link between pipeline stages: the {@link io.bitrelay.runtime.wire.LinkFrame} format (written by
 * {@link io.bitrelay.runtime.wire.LinkFrameWriter}, validated and read by
 * {@link io.bitrelay.runtime.wire.LinkFrameReader}), the {@link io.bitrelay.runtime.wire.LinkCodec}s that
 * quantize activations into it (FP16, per-token INT8, and RPTQ INT4/INT3 built from a calibration
 * {@link io.bitrelay.runtime.quant.ClusterPlan}: {@link io.bitrelay.runtime.wire.RptqLinkCodec}),
 * the {@link io.bitrelay.runtime.wire.BatchLayout} of sequences it carries,
 * and per-link {@link io.bitrelay.runtime.wire.LinkStats}.
 */
package io.bitrelay.runtime.wire;
