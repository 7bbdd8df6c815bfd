package io.bitrelay.runtime.cuda.link;

import io.bitrelay.runtime.cuda.CudaContext;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.cuda.HostData;
import io.bitrelay.runtime.cuda.PinnedHostBuffer;
import io.bitrelay.runtime.cuda.kernels.LinkCodecKernels;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPU link frames against the CPU codecs: frames the GPU encodes (FP32 rows, and FP16 rows against the CPU fed
 * their widened values) are byte for byte the CPU's, and the GPU decode of a CPU frame is the CPU decode, bit for
 * bit into FP32 and rounded to nearest into FP16.
 */
@Timeout(300)
class GpuLinkCodecTest {
    private static final int[] ROWS = {1, 7, 512};
    private static final int MAX_ROWS = 512;
    private static final int CLUSTERS = 8;

    @ParameterizedTest(name = "{0} width {1}")
    @CsvSource({"fp16, 768", "fp16, 12288", "fp16, 1001", "int8, 768", "int8, 12288", "int8, 1001",
            "int4, 768", "int4, 12288", "int4, 1001", "int3, 768", "int3, 12288", "int3, 1001"})
    void shouldWriteCpuIdenticalFramesAndDecodeCpuFramesAsTheCpuDoes(String codecName, int width) {
        CudaContext context = GpuTestSupport.requireGpu();
        LinkCodecKernels kernels = new LinkCodecKernels(GpuTestSupport.kernels(), context.device());
        ClusterPlan plan = randomPlan(width, CLUSTERS, width);
        LinkCodec codec = LinkCodecs.forId(CodecId.fromName(codecName), plan);
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             DeviceClusterPlan devicePlan = DeviceClusterPlan.upload(plan)) {
            GpuLinkCodec gpuCodec = GpuLinkCodec.of(codec, kernels, devicePlan);
            long maxFrameBytes = LinkFrame.frameBytes(codec, layoutFor(MAX_ROWS).encodedBytes(), MAX_ROWS, width);
            try (GpuLinkEncoder encoder = new GpuLinkEncoder(gpuCodec, width, MAX_ROWS);
                 GpuLinkDecoder decoder = new GpuLinkDecoder(gpuCodec, width, MAX_ROWS);
                 PinnedHostBuffer target = PinnedHostBuffer.allocate(maxFrameBytes);
                 DeviceBuffer hidden = DeviceBuffer.allocate(4L * MAX_ROWS * width);
                 DeviceBuffer decoded = DeviceBuffer.allocate(4L * MAX_ROWS * width)) {
                for (int rows : ROWS) {
                    MemorySegment x = HostData.floats(arena, rows, width, 2f, new SplittableRandom(rows * 7919L + width));
                    x.asSlice(0, 4L * width).fill((byte) 0); // an all-zero row: scale 0 (INT8), zero clusters (RPTQ)
                    for (DType inputType : new DType[] {DType.F32, DType.F16}) {
                        String what = codecName + " " + inputType + " " + rows + " × " + width;
                        MemorySegment deviceInput = inputType == DType.F16 ? HostData.toHalf(arena, x) : x;
                        MemorySegment reference = inputType == DType.F16 ? HostData.fromHalf(arena, deviceInput) : x;
                        byte[] cpuFrame = cpuFrame(codec, reference, rows, width);

                        hidden.copyFromHost(deviceInput);
                        LinkFrameWriter writer = header(new LinkFrameWriter().wrap(target.segment()));
                        long length = encoder.writeFrame(writer, target, layoutFor(rows), hidden, 0, inputType, rows, stream);
                        assertEquals(cpuFrame.length, length, what);
                        assertArrayEquals(cpuFrame, target.segment().asSlice(0, length).toArray(ValueLayout.JAVA_BYTE),
                                what + ": GPU frame bytes");

                        LinkFrameReader reader = new LinkFrameReader(LinkCodecs.all(plan));
                        MemorySegment cpuDecoded = arena.allocate(4L * rows * width, 64);
                        reader.wrap(MemorySegment.ofArray(cpuFrame)).decodeInto(cpuDecoded);
                        DType outputType = inputType; // FP32 rows decode into FP32, FP16 rows into FP16
                        decoder.decodeAsync(reader, outputType, decoded, 0, stream);
                        stream.synchronize();
                        assertDecoded(arena, cpuDecoded, decoded, outputType, rows, width, what + ": decode of the CPU frame");

                        // the GPU frame, still in pinned memory: decoded straight from there, into the other type
                        DType otherType = outputType == DType.F32 ? DType.F16 : DType.F32;
                        reader.wrap(target.segment().asSlice(0, length));
                        decoder.decodeAsync(reader, target, otherType, decoded, 0, stream);
                        stream.synchronize();
                        assertDecoded(arena, cpuDecoded, decoded, otherType, rows, width, what + ": decode from pinned");
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"int8", "int4", "int3"})
    void shouldRefuseAFrameWhoseRowsHoldNaN(String codecName) {
        CudaContext context = GpuTestSupport.requireGpu();
        int width = 256;
        int rows = 3;
        LinkCodecKernels kernels = new LinkCodecKernels(GpuTestSupport.kernels(), context.device());
        ClusterPlan plan = randomPlan(width, 4, 3);
        LinkCodec codec = LinkCodecs.forId(CodecId.fromName(codecName), plan);
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create();
             DeviceClusterPlan devicePlan = DeviceClusterPlan.upload(plan);
             GpuLinkEncoder encoder = new GpuLinkEncoder(GpuLinkCodec.of(codec, kernels, devicePlan), width, rows);
             PinnedHostBuffer target = PinnedHostBuffer.allocate(LinkFrame.frameBytes(codec, 64, rows, width))) {
            MemorySegment x = HostData.floats(arena, rows, width, 1f, new SplittableRandom(5));
            x.setAtIndex(ValueLayout.JAVA_FLOAT, width + 17, Float.NaN);
            try (DeviceBuffer hidden = HostData.upload(x)) {
                LinkFrameWriter writer = header(new LinkFrameWriter().wrap(target.segment()));
                IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> encoder.writeFrame(
                        writer, target, layoutFor(rows), hidden, 0, DType.F32, rows, stream));
                assertTrue(refused.getMessage().contains("NaN"), refused.getMessage());
                assertThrows(IllegalStateException.class, writer::frame, "no frame after a refused encode");
                // the encoder is usable again: the same rows without the NaN encode
                x.setAtIndex(ValueLayout.JAVA_FLOAT, width + 17, 1f);
                hidden.copyFromHost(x);
                writer.wrap(target.segment());
                assertEquals(cpuFrame(codec, x, rows, width).length,
                        encoder.writeFrame(header(writer), target, layoutFor(rows), hidden, 0, DType.F32, rows, stream));
            }
        }
    }

    @Test
    void shouldRefuseShapesTheEncoderWasNotBuiltFor() {
        CudaContext context = GpuTestSupport.requireGpu();
        LinkCodecKernels kernels = new LinkCodecKernels(GpuTestSupport.kernels(), context.device());
        LinkCodec int8 = LinkCodecs.forName("int8");
        try (CudaStream stream = CudaStream.create();
             GpuLinkEncoder encoder = new GpuLinkEncoder(GpuLinkCodec.of(int8, kernels), 64, 4);
             DeviceBuffer hidden = DeviceBuffer.allocate(4L * 8 * 64);
             PinnedHostBuffer target = PinnedHostBuffer.allocate(1 << 16)) {
            IllegalArgumentException tooMany = assertThrows(IllegalArgumentException.class,
                    () -> encoder.encodeAsync(hidden, 0, DType.F32, 5, target, 0, stream));
            assertTrue(tooMany.getMessage().contains("takes 1..4"), tooMany.getMessage());
            IllegalArgumentException pastEnd = assertThrows(IllegalArgumentException.class,
                    () -> encoder.encodeAsync(hidden, 4L * 7 * 64, DType.F32, 4, target, 0, stream));
            assertTrue(pastEnd.getMessage().contains("the device buffer has"), pastEnd.getMessage());
            IllegalArgumentException bf16 = assertThrows(IllegalArgumentException.class,
                    () -> encoder.encodeAsync(hidden, 0, DType.BF16, 1, target, 0, stream));
            assertTrue(bf16.getMessage().contains("F32 or F16"), bf16.getMessage());
        }
    }

    private static void assertDecoded(Arena arena, MemorySegment cpuDecoded, DeviceBuffer decoded, DType type, int rows,
                                      int width, String what) {
        long count = (long) rows * width;
        if (type == DType.F32) {
            MemorySegment gpu = HostData.download(arena, decoded, 4 * count);
            assertArrayEquals(cpuDecoded.asSlice(0, 4 * count).toArray(ValueLayout.JAVA_INT), gpu.toArray(ValueLayout.JAVA_INT),
                    what + " (FP32 bits)");
        } else {
            MemorySegment gpu = HostData.download(arena, decoded, 2 * count);
            short[] expected = new short[(int) count];
            for (int i = 0; i < count; i++) {
                expected[i] = Float.floatToFloat16(cpuDecoded.getAtIndex(ValueLayout.JAVA_FLOAT, i));
            }
            assertArrayEquals(expected, gpu.toArray(ValueLayout.JAVA_SHORT), what + " (FP16 bits)");
        }
    }

    private static byte[] cpuFrame(LinkCodec codec, MemorySegment activations, int rows, int width) {
        BatchLayout layout = layoutFor(rows);
        MemorySegment buffer = MemorySegment.ofArray(new byte[(int) LinkFrame.frameBytes(codec, layout.encodedBytes(), rows,
                width)]);
        LinkFrameWriter writer = header(new LinkFrameWriter().wrap(buffer));
        writer.encode(codec, layout, activations, rows, width);
        return writer.frame().toArray(ValueLayout.JAVA_BYTE);
    }

    private static LinkFrameWriter header(LinkFrameWriter writer) {
        return writer.batchId(123_456_789L).step(17).stages(2, 3);
    }

    private static BatchLayout layoutFor(int rows) {
        return rows == 1 ? BatchLayout.of(BatchLayout.Entry.of(9, 1, 300))
                : BatchLayout.of(BatchLayout.Entry.of(1, rows - 2, 0), BatchLayout.Entry.of(2, 2, 40));
    }

    /** A shuffled channel order cut into {@code clusters} uneven clusters (ranges unused: dynamic codecs). */
    static ClusterPlan randomPlan(int width, int clusters, long seed) {
        Random random = new Random(seed);
        int[] permutation = new int[width];
        for (int i = 0; i < width; i++) {
            permutation[i] = i;
        }
        for (int i = width - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = permutation[i];
            permutation[i] = permutation[j];
            permutation[j] = t;
        }
        int[] ends = new int[clusters];
        for (int c = 0; c < clusters; c++) {
            ends[c] = Math.max((int) ((long) width * (c + 1) * (c + 1) / ((long) clusters * clusters)),
                    c == 0 ? 1 : ends[c - 1] + 1); // small clusters first, as outlier clusters are
        }
        ends[clusters - 1] = width;
        float[] min = new float[clusters];
        float[] max = new float[clusters];
        java.util.Arrays.fill(min, -1f);
        java.util.Arrays.fill(max, 1f);
        return new ClusterPlan(permutation, ends, min, max);
    }
}
