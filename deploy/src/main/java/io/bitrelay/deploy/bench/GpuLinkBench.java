package io.bitrelay.deploy.bench;

import io.bitrelay.runtime.cuda.CudaContext;
import io.bitrelay.runtime.cuda.CudaEvent;
import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaProbe;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.CudaUnavailableException;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.PinnedHostBuffer;
import io.bitrelay.runtime.cuda.kernels.LinkCodecKernels;
import io.bitrelay.runtime.cuda.link.DeviceClusterPlan;
import io.bitrelay.runtime.cuda.link.GpuLinkCodec;
import io.bitrelay.runtime.cuda.link.GpuLinkDecoder;
import io.bitrelay.runtime.cuda.link.GpuLinkEncoder;
import io.bitrelay.runtime.generate.SamplingParams;
import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.synthetic.SyntheticActivations;
import io.bitrelay.runtime.tensor.DType;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * What a GPU worker's link costs end to end: hidden rows on the device → link frame in pinned host memory
 * (encode kernel + one D2H copy of params and payload, then header, layout and CRC32C in Java), and a received
 * frame → hidden rows on the device (CRC check in Java, one H2D copy, decode kernel), per codec, next to a plain
 * FP16 copy of the same rows across PCIe. Each codec's GPU frame is first checked byte for byte against the CPU
 * codec's frame for the same rows; then GPU time is taken by CUDA events (median), and the whole frame on the
 * host clock (median), Java's share included.
 */
@Command(name = "gpu-links", mixinStandardHelpOptions = true,
        description = "Link codecs on the GPU: encode+D2H and H2D+decode µs and GB/s, wire bytes per token, vs an FP16 copy.")
public final class GpuLinkBench implements Callable<Integer> {
    private static final int CALIBRATION_ROWS = 256;
    private static final int PREFILL_TOKENS = 128;

    @Option(names = "--width", defaultValue = "12288", description = "Hidden width (default: ${DEFAULT-VALUE}, OPT-175B).")
    int width;

    @Option(names = "--rows", split = ",", defaultValue = "1,16,128,512,2048",
            description = "Rows (tokens) per frame (default: ${DEFAULT-VALUE}); up to 64 a decode step, more prefills of "
                    + PREFILL_TOKENS + " tokens.")
    List<Integer> rowCounts;

    @Option(names = "--codecs", split = ",", defaultValue = "fp16,int8,int4,int3",
            description = "Codecs (default: ${DEFAULT-VALUE}); int4 and int3 are RPTQ with dynamic ranges.")
    List<String> codecNames;

    @Option(names = "--input", defaultValue = "F16", description = "Hidden rows on the device: F16 or F32 (default: ${DEFAULT-VALUE}).")
    DType inputType;

    @Option(names = "--clusters", defaultValue = "" + ChannelClustering.DEFAULT_CLUSTERS,
            description = "RPTQ clusters (default: ${DEFAULT-VALUE}).")
    int clusters;

    @Option(names = "--runs", defaultValue = "50", description = "Timed runs per cell, median reported (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--device", defaultValue = "0", description = "CUDA device ordinal (default: ${DEFAULT-VALUE}).")
    int device;

    private record Cell(String codec, int rows, long frameBytes, double encodeMicros, double sendMicros,
                        double decodeMicros, double receiveMicros, double d2hMicros, double h2dMicros) {
    }

    @Override
    public Integer call() {
        if (runs < 1 || rowCounts.stream().anyMatch(r -> r < 1) || (inputType != DType.F16 && inputType != DType.F32)) {
            throw new IllegalArgumentException("--runs and --rows must be >= 1, --input F16 or F32");
        }
        CudaProbe probe = CudaProbe.get();
        if (!probe.available()) {
            System.out.println("bench gpu-links: " + probe.reason());
            return 2;
        }
        int maxRows = rowCounts.stream().mapToInt(Integer::intValue).max().orElseThrow();
        ClusterPlan plan = new ChannelClustering(clusters).plan(
                SyntheticActivations.llmLike(CALIBRATION_ROWS, width, 1), CALIBRATION_ROWS, width);
        float[] values = SyntheticActivations.llmLike(maxRows, width, 2);
        List<Cell> cells = new ArrayList<>();
        try (CudaContext context = CudaContext.open(device); CudaStream stream = CudaStream.create();
             CudaKernels kernels = CudaKernels.load(); Arena arena = Arena.ofShared();
             DeviceClusterPlan devicePlan = DeviceClusterPlan.upload(plan)) {
            System.out.println("GPU: " + context.device().describe());
            LinkCodecKernels linkKernels = new LinkCodecKernels(kernels, context.device());
            MemorySegment hostRows = hostRows(arena, values, maxRows);       // what the device holds, as inputType
            MemorySegment reference = widened(arena, hostRows, maxRows);       // its values as FP32, for the CPU codecs
            long rowBytes = (long) width * inputType.byteSize();
            try (DeviceBuffer hidden = DeviceBuffer.allocate(rowBytes * maxRows);
                 DeviceBuffer decoded = DeviceBuffer.allocate(rowBytes * maxRows);
                 PinnedHostBuffer copyTarget = PinnedHostBuffer.allocate(rowBytes * maxRows);
                 CudaEvent start = CudaEvent.create(); CudaEvent end = CudaEvent.create()) {
                hidden.copyFromHost(hostRows);
                for (String name : codecNames) {
                    LinkCodec codec = LinkCodecs.forId(CodecId.fromName(name), plan);
                    GpuLinkCodec gpuCodec = GpuLinkCodec.of(codec, linkKernels, devicePlan);
                    long maxFrame = LinkFrame.frameBytes(codec, layout(maxRows).encodedBytes(), maxRows, width);
                    try (GpuLinkEncoder encoder = new GpuLinkEncoder(gpuCodec, width, maxRows);
                         GpuLinkDecoder decoder = new GpuLinkDecoder(gpuCodec, width, maxRows);
                         PinnedHostBuffer frameBuffer = PinnedHostBuffer.allocate(maxFrame)) {
                        for (int rows : rowCounts) {
                            Cell cell = measure(codec, rows, encoder, decoder, frameBuffer, hidden, decoded, copyTarget,
                                    reference, start, end, stream);
                            cells.add(cell);
                            System.out.printf("  %-4s rows %-5d encode+D2H %8.1f us  H2D+decode %8.1f us  fp16 D2H %8.1f us%n",
                                    name, rows, cell.encodeMicros, cell.decodeMicros, cell.d2hMicros);
                        }
                    }
                }
            }
            printTable(context.device().name(), cells);
        } catch (CudaUnavailableException e) {
            System.out.println("bench gpu-links: " + e.getMessage());
            return 2;
        }
        return 0;
    }

    private Cell measure(LinkCodec codec, int rows, GpuLinkEncoder encoder, GpuLinkDecoder decoder,
                         PinnedHostBuffer frameBuffer, DeviceBuffer hidden, DeviceBuffer decoded, PinnedHostBuffer copyTarget,
                         MemorySegment reference, CudaEvent start, CudaEvent end, CudaStream stream) {
        BatchLayout layout = layout(rows);
        LinkFrameWriter writer = new LinkFrameWriter();
        long frameBytes = encoder.writeFrame(header(writer.wrap(frameBuffer.segment())), frameBuffer, layout, hidden, 0,
                inputType, rows, stream);
        byte[] cpuFrame = cpuFrame(codec, layout, reference, rows);
        if (!Arrays.equals(cpuFrame, frameBuffer.segment().asSlice(0, frameBytes).toArray(ValueLayout.JAVA_BYTE))) {
            throw new IllegalStateException(codec.id() + " GPU frame of " + rows + " rows differs from the CPU codec's:"
                    + " not timing a broken encoder");
        }
        long sectionsOffset = writer.sectionsOffset();
        double encodeMicros = medianEventMicros(start, end, stream, () -> {
            encoder.encodeAsync(hidden, 0, inputType, rows, frameBuffer, sectionsOffset, stream);
        }, encoder::awaitEncoded);
        double sendMicros = medianWallMicros(() -> encoder.writeFrame(header(writer.wrap(frameBuffer.segment())),
                frameBuffer, layout, hidden, 0, inputType, rows, stream));

        LinkFrameReader reader = new LinkFrameReader(codec);
        MemorySegment frame = frameBuffer.segment().asSlice(0, frameBytes);
        reader.wrap(frame);
        double decodeMicros = medianEventMicros(start, end, stream,
                () -> decoder.decodeAsync(reader, frameBuffer, inputType, decoded, 0, stream), () -> { });
        double receiveMicros = medianWallMicros(() -> {
            decoder.decodeAsync(reader.wrap(frame), frameBuffer, inputType, decoded, 0, stream);
            stream.synchronize();
        });
        long copyBytes = (long) rows * width * 2; // the FP16 rows a GPU stage would otherwise ship
        double d2hMicros = medianEventMicros(start, end, stream,
                () -> hidden.copyToHostAsync(copyTarget, 0, 0, copyBytes, stream), () -> { });
        double h2dMicros = medianEventMicros(start, end, stream,
                () -> decoded.copyFromHostAsync(copyTarget, 0, 0, copyBytes, stream), () -> { });
        return new Cell(codec.id().shortName(), rows, frameBytes, encodeMicros, sendMicros, decodeMicros, receiveMicros,
                d2hMicros, h2dMicros);
    }

    /** GPU time between two events around {@code work}, median of runs after a few warm-ups. */
    private double medianEventMicros(CudaEvent start, CudaEvent end, CudaStream stream, Runnable work, Runnable after) {
        double[] micros = new double[runs];
        for (int i = -3; i < runs; i++) {
            start.record(stream);
            work.run();
            end.record(stream);
            float millis = CudaEvent.elapsedMillis(start, end);
            after.run();
            if (i >= 0) {
                micros[i] = millis * 1000.0;
            }
        }
        Arrays.sort(micros);
        return micros[runs / 2];
    }

    /** Host wall-clock per call (the call waits for its GPU work), median of runs after a few warm-ups. */
    private double medianWallMicros(Runnable work) {
        double[] micros = new double[runs];
        for (int i = -3; i < runs; i++) {
            long begin = System.nanoTime();
            work.run();
            long elapsed = System.nanoTime() - begin;
            if (i >= 0) {
                micros[i] = elapsed / 1000.0;
            }
        }
        Arrays.sort(micros);
        return micros[runs / 2];
    }

    private void printTable(String gpu, List<Cell> cells) {
        System.out.println();
        System.out.printf("GPU link codecs on %s: width %d, %s rows on the device, %d RPTQ clusters; median of %d;"
                + " GB/s = FP16 hidden bytes (rows × width × 2) per second%n", gpu, width, inputType, clusters, runs);
        System.out.println("| codec | rows | wire B/token | encode+D2H µs | GB/s | send frame µs | H2D+decode µs | GB/s"
                + " | receive frame µs | FP16 D2H µs | GB/s | FP16 H2D µs |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (Cell c : cells) {
            double fp16Bytes = 2.0 * c.rows * width;
            System.out.printf("| %s | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |%n", c.codec,
                    c.rows, (double) c.frameBytes / c.rows, c.encodeMicros, fp16Bytes / c.encodeMicros / 1e3,
                    c.sendMicros, c.decodeMicros, fp16Bytes / c.decodeMicros / 1e3, c.receiveMicros, c.d2hMicros,
                    fp16Bytes / c.d2hMicros / 1e3, c.h2dMicros);
        }
    }

    private MemorySegment hostRows(Arena arena, float[] values, int rows) {
        long count = (long) rows * width;
        MemorySegment host = arena.allocate(count * inputType.byteSize(), 64);
        for (long i = 0; i < count; i++) {
            if (inputType == DType.F16) {
                host.setAtIndex(ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(values[(int) i]));
            } else {
                host.setAtIndex(ValueLayout.JAVA_FLOAT, i, values[(int) i]);
            }
        }
        return host;
    }

    private MemorySegment widened(Arena arena, MemorySegment hostRows, int rows) {
        long count = (long) rows * width;
        MemorySegment floats = arena.allocate(count * Float.BYTES, 64);
        for (long i = 0; i < count; i++) {
            floats.setAtIndex(ValueLayout.JAVA_FLOAT, i, inputType == DType.F16
                    ? Float.float16ToFloat(hostRows.getAtIndex(ValueLayout.JAVA_SHORT, i))
                    : hostRows.getAtIndex(ValueLayout.JAVA_FLOAT, i));
        }
        return floats;
    }

    private byte[] cpuFrame(LinkCodec codec, BatchLayout layout, MemorySegment reference, int rows) {
        MemorySegment buffer = MemorySegment.ofArray(new byte[Math.toIntExact(
                LinkFrame.frameBytes(codec, layout.encodedBytes(), rows, width))]);
        LinkFrameWriter writer = header(new LinkFrameWriter().wrap(buffer));
        writer.encode(codec, layout, reference, rows, width);
        return writer.frame().toArray(ValueLayout.JAVA_BYTE);
    }

    private static LinkFrameWriter header(LinkFrameWriter writer) {
        return writer.batchId(1).step(1).stages(0, 1);
    }

    /** A decode step of {@code rows} sequences, or prefills of {@value #PREFILL_TOKENS} tokens with sampling blocks. */
    private static BatchLayout layout(int rows) {
        List<BatchLayout.Entry> entries = new ArrayList<>();
        if (rows <= 64) {
            for (int s = 0; s < rows; s++) {
                entries.add(BatchLayout.Entry.of(s, 1, 100 + s));
            }
        } else {
            for (int s = 0, left = rows; left > 0; s++, left -= PREFILL_TOKENS) {
                entries.add(BatchLayout.Entry.firstChunk(s, Math.min(PREFILL_TOKENS, left), 0, SamplingParams.greedy()));
            }
        }
        return new BatchLayout(entries);
    }
}
