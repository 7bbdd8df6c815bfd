package io.bitrelay.actors.worker;

import io.bitrelay.runtime.cuda.CudaProbe;
import io.bitrelay.runtime.cuda.CudaSettings;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.model.opt.LayerRange;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptModel;
import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.synthetic.SyntheticActivations;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import io.bitrelay.runtime.synthetic.SyntheticOptions;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * A two-stage pipeline on one GPU, each step taken twice over the same stages: once the way a GPU worker with
 * device link codecs runs it (rows stay on the device between the frame decoded there, the layers and the
 * frame encoded there), once through host FP32 rows and the Java codecs. The frames' params and payload and the
 * last stage's rows must be identical, for every codec, over a prefill and decode steps, and after an RPTQ plan
 * is replaced. Skipped, with the probe's reason printed, where no GPU is usable.
 */
@Timeout(300)
class GpuLayersLinkTest {
    /** 4 layers of width 256, head dim 64: two stages of two. */
    private static final OptConfig CONFIG = new OptConfig(300, 256, 4, 4, 1024, 256, 256, true, false, true, 2, 2, 1, "float32");
    private static final int MAX_BATCH_TOKENS = 128;
    private static final int[] PROMPT_LENGTHS = {23, 1, 40};
    private static final int DECODE_STEPS = 3;

    @TempDir
    Path temp;

    @Test
    void shouldCodeFramesOnTheDeviceAsTheHostCodecsDo() {
        CudaProbe probe = CudaProbe.get();
        if (!probe.available()) {
            System.out.println("[GPU test skipped] " + probe.reason());
            Assumptions.assumeTrue(false, probe.reason());
        }
        Path checkpoint = SyntheticCheckpointWriter.write(temp.resolve("model"), CONFIG, SyntheticOptions.defaults());
        int width = CONFIG.hiddenSize();
        List<LinkCodec> codecs = List.of(LinkCodecs.forId(CodecId.FP16), LinkCodecs.forId(CodecId.INT8),
                LinkCodecs.forId(CodecId.INT4_RPTQ, plan(width, 1)), LinkCodecs.forId(CodecId.INT3_RPTQ, plan(width, 1)),
                LinkCodecs.forId(CodecId.INT4_RPTQ, plan(width, 2)));
        try (OptModel first = OptModel.load(checkpoint, new LayerRange(0, 2, 4));
             OptModel second = OptModel.load(checkpoint, new LayerRange(2, 4, 4));
             GpuLayers upstream = GpuLayers.open(0, CudaSettings.defaults(), first, MAX_BATCH_TOKENS);
             GpuLayers downstream = GpuLayers.open(0, CudaSettings.defaults(), second, MAX_BATCH_TOKENS)) {
            int sequenceBase = 0;
            for (LinkCodec codec : codecs) {
                runSteps(first, upstream, downstream, codec, sequenceBase);
                sequenceBase += 2 * PROMPT_LENGTHS.length;
            }
        }
    }

    /** Device-path sequences are {@code base + i}, host-path ones {@code base + n + i}: both continue their caches. */
    private static void runSteps(OptModel first, GpuLayers upstream, GpuLayers downstream, LinkCodec codec, int base) {
        int n = PROMPT_LENGTHS.length;
        int width = first.config().hiddenSize();
        int[] lengths = PROMPT_LENGTHS.clone();
        int[] starts = new int[n];
        for (int step = 0; step <= DECODE_STEPS; step++) {
            List<int[]> tokens = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                int[] chunk = new int[lengths[i]];
                for (int t = 0; t < chunk.length; t++) {
                    chunk[t] = 4 + (i * 37 + (starts[i] + t) * 11) % 290;
                }
                tokens.add(chunk);
            }
            BatchLayout device = layout(base, lengths, starts);
            BatchLayout host = layout(base + n, lengths, starts);
            int rows = device.tokens();
            String where = codec.id() + " step " + step;
            try (Arena arena = Arena.ofShared()) {
                MemorySegment embedded = first.embed(tokens, starts, arena);
                long frameBytes = LinkFrame.frameBytes(codec, device.encodedBytes(), rows, width);

                upstream.load(embedded, rows);
                upstream.runOnDevice(device.entries());
                byte[] deviceFrame = upstream.encodeFrame(codec, device, frameBytes, w -> w.batchId(7).stages(0, 1),
                        new LinkFrameWriter()).toArray(ValueLayout.JAVA_BYTE);

                MemorySegment hostRows = arena.allocate(embedded.byteSize(), 64);
                hostRows.copyFrom(embedded);
                upstream.run(host.entries(), false, hostRows);
                MemorySegment hostFrame = arena.allocate(frameBytes, 64);
                long hostLength = new LinkFrameWriter().wrap(hostFrame).batchId(7).stages(0, 1)
                        .encode(codec, host, hostRows, rows, width);

                LinkFrameReader reader = new LinkFrameReader(codec);
                byte[] deviceSections = reader.wrap(MemorySegment.ofArray(deviceFrame)).sections().toArray(ValueLayout.JAVA_BYTE);
                byte[] hostSections = reader.wrap(hostFrame.asSlice(0, hostLength)).sections().toArray(ValueLayout.JAVA_BYTE);
                assertArrayEquals(hostSections, deviceSections, where + ": params and payload encoded on the GPU");

                MemorySegment deviceOut = arena.allocate((long) rows * width * Float.BYTES, 64);
                downstream.receive(reader.wrap(MemorySegment.ofArray(deviceFrame)));
                downstream.runOnDevice(device.entries());
                downstream.store(deviceOut, rows);

                MemorySegment hostOut = arena.allocate((long) rows * width * Float.BYTES, 64);
                reader.wrap(hostFrame.asSlice(0, hostLength)).decodeInto(hostOut);
                downstream.run(host.entries(), false, hostOut);
                assertArrayEquals(hostOut.toArray(ValueLayout.JAVA_FLOAT), deviceOut.toArray(ValueLayout.JAVA_FLOAT),
                        where + ": the last stage's rows after a frame decoded on the GPU");
            }
            for (int i = 0; i < n; i++) {
                starts[i] += lengths[i];
                lengths[i] = 1;
            }
        }
    }

    private static BatchLayout layout(int firstSequence, int[] lengths, int[] starts) {
        List<BatchLayout.Entry> entries = new ArrayList<>();
        for (int i = 0; i < lengths.length; i++) {
            entries.add(new BatchLayout.Entry(firstSequence + i, lengths[i], starts[i], SamplingParams.greedy()));
        }
        return new BatchLayout(entries);
    }

    private static ClusterPlan plan(int width, long seed) {
        int rows = 512;
        return new ChannelClustering(16).plan(SyntheticActivations.llmLike(rows, width, seed), rows, width);
    }
}
