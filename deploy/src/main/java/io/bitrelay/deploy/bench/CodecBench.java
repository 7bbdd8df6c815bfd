package io.bitrelay.deploy.bench;

import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.quant.ClusterPlan;
import io.bitrelay.runtime.synthetic.SyntheticActivations;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.RptqLinkCodec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Encode and decode throughput of every link codec on the same LLM-like activations (a few 50× outlier
 * channels, some shifted by +10; see {@link SyntheticActivations}), in GB/s of FP32 activations processed,
 * with each codec's whole-frame bytes against FP16 and its error, so speed, size and accuracy are read
 * side by side. The RPTQ plan is calibrated on separate rows of the same distribution. Each codec's output
 * is decoded and its error measured before anything is timed.
 */
@Command(name = "codecs", mixinStandardHelpOptions = true,
        description = "Encode/decode GB/s of the link codecs (fp16, int8, int4, int3), wire bytes vs fp16 and error.")
public final class CodecBench implements Runnable {
    private static final int CALIBRATION_ROWS = 256;
    private static final int PREFILL_TOKENS = 128;

    @Option(names = "--rows", split = ",", defaultValue = "1,16,512",
            description = "Rows (tokens) per frame (default: ${DEFAULT-VALUE}); up to 64 rows are a decode step of"
                    + " that many sequences, more are prefills of " + PREFILL_TOKENS + " tokens each.")
    List<Integer> rowCounts;

    @Option(names = "--widths", split = ",", defaultValue = "768,12288", description = "Hidden widths (default: ${DEFAULT-VALUE}).")
    List<Integer> widths;

    @Option(names = "--codecs", split = ",", defaultValue = "fp16,int8,int4,int3",
            description = "Codecs by name (default: ${DEFAULT-VALUE}); int4 and int3 are RPTQ.")
    List<String> codecNames;

    @Option(names = "--clusters", defaultValue = "" + ChannelClustering.DEFAULT_CLUSTERS,
            description = "RPTQ clusters, k of the k-means over channel ranges (default: ${DEFAULT-VALUE}).")
    int clusters;

    @Option(names = "--ranges", defaultValue = "DYNAMIC",
            description = "RPTQ scales: DYNAMIC per token and cluster, or STATIC from calibration (default: ${DEFAULT-VALUE}).")
    RptqLinkCodec.Ranges ranges;

    @Option(names = "--repeats", defaultValue = "7", description = "Timed repeats; the median is reported (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--warmup-millis", defaultValue = "3000",
            description = "Before any table row, each codec encodes and decodes every shape for this long in all, so"
                    + " C2 has compiled the Vector API paths, orders of magnitude slower until then (default: ${DEFAULT-VALUE}).")
    long warmupMillis;

    @Option(names = "--repeat-millis", defaultValue = "40",
            description = "Each repeat runs the codec back to back for at least this long (default: ${DEFAULT-VALUE}).")
    long repeatMillis;

    @Override
    public void run() {
        if (repeats < 1 || repeatMillis < 1 || warmupMillis < 0) {
            throw new IllegalArgumentException("--repeats and --repeat-millis must be >= 1, --warmup-millis >= 0");
        }
        warmUp();
        System.out.printf("link codecs: %d RPTQ clusters, %s ranges; median of %d repeats of >= %d ms; 1 thread%n",
                clusters, ranges, repeats, repeatMillis);
        System.out.println("| width | rows | codec | encode GB/s | decode GB/s | frame bytes | fp16 / codec | rel. RMSE |");
        System.out.println("|---:|---:|---|---:|---:|---:|---:|---:|");
        for (int width : widths) {
            ClusterPlan plan = plan(width);
            List<LinkCodec> codecs = new ArrayList<>();
            for (String name : codecNames) {
                codecs.add(LinkCodecs.forId(CodecId.fromName(name), plan, ranges));
            }
            LinkCodec fp16 = LinkCodecs.forName("fp16");
            for (int rows : rowCounts) {
                try (Arena arena = Arena.ofConfined()) {
                    float[] values = SyntheticActivations.llmLike(rows, width, 2);
                    MemorySegment activations = activations(arena, rows, width, 2);
                    MemorySegment out = arena.allocate(activations.byteSize(), 64);
                    int layoutBytes = layoutBytes(rows);
                    long fp16Bytes = LinkFrame.frameBytes(fp16, layoutBytes, rows, width);
                    for (LinkCodec codec : codecs) {
                        MemorySegment params = params(arena, codec, rows, width);
                        MemorySegment payload = arena.allocate(codec.payloadBytes(rows, width), 64);
                        codec.encode(activations, rows, width, params, payload);
                        codec.decode(params, payload, rows, width, out);
                        double relativeRmse = relativeRmse(values, out);
                        if (!(relativeRmse < 1)) {
                            throw new IllegalStateException(codec.id() + " decodes " + rows + " × " + width
                                    + " with relative RMSE " + relativeRmse + ": not timing a broken codec");
                        }
                        double encodeSeconds = medianSeconds(() -> codec.encode(activations, rows, width, params, payload));
                        double decodeSeconds = medianSeconds(() -> codec.decode(params, payload, rows, width, out));
                        double gigabytes = activations.byteSize() / 1e9;
                        long frameBytes = LinkFrame.frameBytes(codec, layoutBytes, rows, width);
                        System.out.printf("| %d | %d | %s | %.2f | %.2f | %d | %.3f | %.4f |%n", width, rows,
                                codec.id().shortName(), gigabytes / encodeSeconds, gigabytes / decodeSeconds,
                                frameBytes, (double) fp16Bytes / frameBytes, relativeRmse);
                    }
                }
            }
        }
    }

    /**
     * Every codec on every shape, encoding and decoding, {@code warmupMillis} per codec in all: C2 then compiles
     * code whose profile has seen every shape, rather than deoptimizing (and running interpreted, boxing every
     * vector) at the first shape it had not seen, inside a timed repeat.
     */
    private void warmUp() {
        long perShapeNanos = warmupMillis * 1_000_000 / ((long) widths.size() * rowCounts.size());
        for (int width : widths) {
            ClusterPlan plan = plan(width);
            for (int rows : rowCounts) {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment activations = activations(arena, rows, width, 3);
                    MemorySegment out = arena.allocate(activations.byteSize(), 64);
                    for (String name : codecNames) {
                        LinkCodec codec = LinkCodecs.forId(CodecId.fromName(name), plan, ranges);
                        MemorySegment params = params(arena, codec, rows, width);
                        MemorySegment payload = arena.allocate(codec.payloadBytes(rows, width), 64);
                        long until = System.nanoTime() + perShapeNanos;
                        do {
                            codec.encode(activations, rows, width, params, payload);
                            codec.decode(params, payload, rows, width, out);
                        } while (System.nanoTime() < until);
                    }
                }
            }
        }
    }

    private ClusterPlan plan(int width) {
        return new ChannelClustering(clusters).plan(
                SyntheticActivations.llmLike(CALIBRATION_ROWS, width, 1), CALIBRATION_ROWS, width);
    }

    private static MemorySegment activations(Arena arena, int rows, int width, long seed) {
        float[] values = SyntheticActivations.llmLike(rows, width, seed);
        MemorySegment activations = arena.allocate((long) rows * width * Float.BYTES, 64);
        MemorySegment.copy(values, 0, activations, ValueLayout.JAVA_FLOAT, 0, values.length);
        return activations;
    }

    private static MemorySegment params(Arena arena, LinkCodec codec, int rows, int width) {
        int bytes = codec.paramsBytes(rows, width);
        return arena.allocate(Math.max(1, bytes), 64).asSlice(0, bytes);
    }

    /** A decode step of {@code rows} sequences, or prefills of {@value #PREFILL_TOKENS} tokens with sampling blocks. */
    private static int layoutBytes(int rows) {
        if (rows <= 64) {
            return rows * BatchLayout.ENTRY_BYTES;
        }
        int sequences = Math.ceilDiv(rows, PREFILL_TOKENS);
        return sequences * (BatchLayout.ENTRY_BYTES + BatchLayout.SAMPLING_BYTES);
    }

    /** Seconds per call: the median over repeats of (elapsed / calls), each repeat at least repeatMillis long. */
    private double medianSeconds(Runnable call) {
        long warmUpUntil = System.nanoTime() + 4 * repeatMillis * 1_000_000;
        while (System.nanoTime() < warmUpUntil) {
            call.run();
        }
        double[] perCall = new double[repeats];
        for (int r = 0; r < repeats; r++) {
            perCall[r] = CallTiming.secondsPerCall(call, repeatMillis);
        }
        return CallTiming.median(perCall);
    }

    /** RMS of the error over RMS of the values. */
    private static double relativeRmse(float[] values, MemorySegment decoded) {
        double error = 0;
        double signal = 0;
        for (int i = 0; i < values.length; i++) {
            double d = values[i] - decoded.getAtIndex(ValueLayout.JAVA_FLOAT, i);
            error += d * d;
            signal += (double) values[i] * values[i];
        }
        return Math.sqrt(error / signal);
    }
}
