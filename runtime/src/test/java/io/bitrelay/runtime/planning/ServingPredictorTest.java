package io.bitrelay.runtime.planning;

import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptPresets;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.BatchLayout;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ServingPredictorTest {
    private static final OptConfig OPT_175B = OptPresets.get("opt-175b");
    private static final Workload WORKLOAD = new Workload(64, 512, 0);

    private static ClusterShape cluster(int nodes, int gpus, String interRate) {
        return new ClusterShape(nodes, gpus, DeviceProfile.H200, Bandwidth.parse("50GB/s"), Bandwidth.parse(interRate), 30e-6);
    }

    @Test
    void fp16Opt175bDoesNotFitTwoH200sButW8a8Does() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ServingPredictor.place(OPT_175B, cluster(1, 2, "100gbit"), WeightFormat.FP16));
        assertTrue(e.getMessage().contains("does not fit") || e.getMessage().contains("needs"), e.getMessage());
        assertEquals(2, ServingPredictor.place(OPT_175B, cluster(1, 2, "100gbit"), WeightFormat.W8A8).size());
    }

    @Test
    void aMemoryBoundStageTakesItsWeightsOverTheBandwidth() {
        ServingPrediction p = ServingPredictor.predict(OPT_175B, cluster(1, 2, "100gbit"), WeightFormat.W8A8,
                LinkCodecs.forName("fp16"), new Workload(2, 0, 0), new Efficiency(1.0, 1.0, 0));
        double firstStageBytes = p.stages().getFirst().layers() * (double) OPT_175B.layerParameters();
        assertEquals(firstStageBytes / DeviceProfile.H200.memoryBytesPerSecond(), p.stageSeconds()[0], 1e-9);
    }

    @Test
    void aSlowLinkBoundsThroughputAtItsRateOverTheFrameSize() {
        ClusterShape slow = cluster(2, 1, "1mbit");
        ServingPrediction p = ServingPredictor.predict(OPT_175B, slow, WeightFormat.W8A8, LinkCodecs.forName("fp16"),
                WORKLOAD, Efficiency.DEFAULT);
        long frame = LinkFrame.frameBytes(LinkCodecs.forName("fp16"), 32 * BatchLayout.ENTRY_BYTES, 32, OPT_175B.hiddenSize());
        assertEquals(frame, p.links().getFirst().frameBytes());
        assertEquals(32 / (frame / 125_000.0), p.tokensPerSecond(), 1e-6);
        assertEquals("link 0→1", p.bottleneck());
        assertEquals(1.0, p.links().getFirst().utilisation(), 1e-9);

        ServingPrediction int8 = ServingPredictor.predict(OPT_175B, slow, WeightFormat.W8A8, LinkCodecs.forName("int8"),
                WORKLOAD, Efficiency.DEFAULT);
        double ratio = int8.tokensPerSecond() / p.tokensPerSecond();
        assertTrue(ratio > 1.95 && ratio < 2.05, "INT8 links carry about twice the tokens of FP16 on a bound link: " + ratio);
    }

    @Test
    void bandwidthParsesBitsAndBytes() {
        assertEquals(50_000, Bandwidth.parse("400kbit"), 1e-9);
        assertEquals(12.5e9, Bandwidth.parse("100gbit"), 1e-3);
        assertEquals(25e9, Bandwidth.parse("25GB/s"), 1e-3);
        assertEquals(50e9, Bandwidth.parse("50gbps"), 1e-3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Bandwidth.parse("fast"));
        assertTrue(e.getMessage().contains("'fast'"));
    }
}
