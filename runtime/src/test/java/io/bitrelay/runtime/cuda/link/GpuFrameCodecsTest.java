package io.bitrelay.runtime.cuda.link;

import io.bitrelay.runtime.cuda.kernels.LinkCodecKernels;
import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.synthetic.SyntheticActivations;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.RptqLinkCodec;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which frames a GPU stage codes on the device and which stay with the Java codecs (no GPU needed). */
class GpuFrameCodecsTest {
    private static final int WIDTH = 256;

    @Test
    void shouldRunFp16Int8AndDynamicRptqOnTheDevice() {
        ClusterPlan plan = new ChannelClustering(8).plan(SyntheticActivations.llmLike(256, WIDTH, 3), 256, WIDTH);
        assertTrue(GpuFrameCodecs.runsOnDevice(LinkCodecs.forId(CodecId.FP16), WIDTH));
        assertTrue(GpuFrameCodecs.runsOnDevice(LinkCodecs.forId(CodecId.INT8), WIDTH));
        assertTrue(GpuFrameCodecs.runsOnDevice(LinkCodecs.forId(CodecId.INT4_RPTQ, plan), WIDTH));
        assertTrue(GpuFrameCodecs.runsOnDevice(LinkCodecs.forId(CodecId.INT3_RPTQ, plan, RptqLinkCodec.Ranges.DYNAMIC), WIDTH));
    }

    @Test
    void shouldLeaveStaticRangesAndOverwideRowsToTheHost() {
        ClusterPlan plan = new ChannelClustering(8).plan(SyntheticActivations.llmLike(256, WIDTH, 3), 256, WIDTH);
        assertFalse(GpuFrameCodecs.runsOnDevice(LinkCodecs.forId(CodecId.INT4_RPTQ, plan, RptqLinkCodec.Ranges.STATIC), WIDTH));
        assertFalse(GpuFrameCodecs.runsOnDevice(LinkCodecs.forId(CodecId.INT3_RPTQ, plan, RptqLinkCodec.Ranges.STATIC), WIDTH));
        assertFalse(GpuFrameCodecs.runsOnDevice(LinkCodecs.forId(CodecId.INT4_RPTQ, plan), LinkCodecKernels.MAX_RPTQ_WIDTH + 1));
    }
}
