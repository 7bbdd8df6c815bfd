package io.bitrelay.deploy.bench;

import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.synthetic.SyntheticActivations;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.FrameAuthenticator;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;
import io.bitrelay.runtime.wire.RptqLinkCodec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * What authenticating link frames costs a link's frame rate: both ends' CPU work per frame (encode + CRC on the
 * sender, CRC + decode on the receiver) with and without the HMAC-SHA256 tag (sign on one end, verify on the other).
 * Plain and tagged repeats alternate, so load from other processes on the machine hits both alike; medians.
 * The goal is an overhead of at most 5 % of the frame rate.
 */
@Command(name = "frame-auth", mixinStandardHelpOptions = true,
        description = "Frames/s of a link (both ends' CPU work) with and without HMAC-SHA256 frame tags.")
public final class FrameAuthBench implements Runnable {
    private static final int PREFILL_TOKENS = 128;

    @Option(names = "--rows", split = ",", defaultValue = "1,16,512", description = "Rows per frame (default: ${DEFAULT-VALUE}).")
    List<Integer> rowCounts;

    @Option(names = "--widths", split = ",", defaultValue = "768,12288", description = "Hidden widths (default: ${DEFAULT-VALUE}).")
    List<Integer> widths;

    @Option(names = "--codecs", split = ",", defaultValue = "fp16,int8,int4", description = "Codecs (default: ${DEFAULT-VALUE}).")
    List<String> codecNames;

    @Option(names = "--repeats", defaultValue = "9", description = "Repeats of each variant; medians (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--repeat-millis", defaultValue = "60", description = "Length of one repeat (default: ${DEFAULT-VALUE}).")
    long repeatMillis;

    @Option(names = "--warmup-millis", defaultValue = "4000",
            description = "Before the table, every shape and codec runs plain and tagged for this long in all, so C2 has "
                    + "compiled the paths every shape takes (default: ${DEFAULT-VALUE}).")
    long warmupMillis;

    @Override
    public void run() {
        byte[] key = FrameAuthenticator.newKey();
        forEachLink(key, (plain, tagged) -> {
            long until = System.nanoTime() + warmupMillis * 1_000_000 / ((long) widths.size() * rowCounts.size() * codecNames.size());
            while (System.nanoTime() < until) {
                plain.frame();
                tagged.frame();
            }
        });
        System.out.printf("link frames, both ends on 1 thread; plain vs HMAC-SHA256-tagged repeats alternating, median of %d × %d ms%n",
                repeats, repeatMillis);
        System.out.println("| width | rows | codec | frame bytes | plain frames/s | tagged frames/s | overhead | tag alone GB/s |");
        System.out.println("|---:|---:|---|---:|---:|---:|---:|---:|");
        forEachLink(key, (plain, tagged) -> {
            double[] plainSeconds = new double[repeats];
            double[] taggedSeconds = new double[repeats];
            for (int r = 0; r < repeats; r++) {
                plainSeconds[r] = CallTiming.secondsPerCall(plain::frame, repeatMillis);
                taggedSeconds[r] = CallTiming.secondsPerCall(tagged::frame, repeatMillis);
            }
            FrameAuthenticator authenticator = new FrameAuthenticator(key);
            long covered = tagged.length - FrameAuthenticator.TAG_BYTES;
            double tagSeconds = CallTiming.secondsPerCall(() -> authenticator.sign(tagged.buffer, covered), repeatMillis);
            double plainRate = 1 / CallTiming.median(plainSeconds);
            double taggedRate = 1 / CallTiming.median(taggedSeconds);
            System.out.printf("| %d | %d | %s | %d | %.0f | %.0f | %.1f %% | %.2f |%n", tagged.width, tagged.rows,
                    tagged.codec.id().shortName(), tagged.length, plainRate, taggedRate,
                    100 * (1 - taggedRate / plainRate), 2 * covered / tagSeconds / 1e9);
        });
        System.out.println("(tag alone: sign over the frame, counted twice as the receiver verifies the same bytes)");
    }

    /** Every (width, rows, codec) as a plain and a tagged link, each validated once before use. */
    private void forEachLink(byte[] key, java.util.function.BiConsumer<Link, Link> action) {
        for (int width : widths) {
            var plan = new ChannelClustering(ChannelClustering.DEFAULT_CLUSTERS)
                    .plan(SyntheticActivations.llmLike(256, width, 1), 256, width);
            for (int rows : rowCounts) {
                for (String name : codecNames) {
                    LinkCodec codec = LinkCodecs.forId(CodecId.fromName(name), plan, RptqLinkCodec.Ranges.DYNAMIC);
                    try (Arena arena = Arena.ofConfined()) {
                        LinkCodec[] readable = LinkCodecs.all(plan, RptqLinkCodec.Ranges.DYNAMIC);
                        Link plain = new Link(arena, codec, readable, rows, width, null);
                        Link tagged = new Link(arena, codec, readable, rows, width, key);
                        plain.frame(); // validates both ways before timing
                        tagged.frame();
                        action.accept(plain, tagged);
                    }
                }
            }
        }
    }

    /** One link's two ends: the sender encodes and seals, the receiver validates and decodes. */
    private static final class Link {
        final LinkCodec codec;
        final int rows;
        final int width;
        final BatchLayout layout;
        final MemorySegment activations;
        final MemorySegment decoded;
        final MemorySegment buffer;
        final LinkFrameWriter writer = new LinkFrameWriter();
        final LinkFrameReader reader;
        long length;

        Link(Arena arena, LinkCodec codec, LinkCodec[] readable, int rows, int width, byte[] key) {
            this.codec = codec;
            this.rows = rows;
            this.width = width;
            this.layout = layout(rows);
            float[] values = SyntheticActivations.llmLike(rows, width, 2);
            this.activations = arena.allocate((long) rows * width * Float.BYTES, 64);
            MemorySegment.copy(values, 0, activations, ValueLayout.JAVA_FLOAT, 0, values.length);
            this.decoded = arena.allocate(activations.byteSize(), 64);
            LinkFrameReader fresh = new LinkFrameReader(readable);
            if (key != null) {
                writer.authenticateWith(new FrameAuthenticator(key));
                fresh.requireTag(new FrameAuthenticator(key));
            }
            this.reader = fresh;
            this.buffer = arena.allocate(LinkFrame.frameBytes(codec, layout.encodedBytes(), rows, width)
                    + FrameAuthenticator.TAG_BYTES, 64);
        }

        void frame() {
            length = writer.wrap(buffer).batchId(7).step(1).stages(0, 1).encode(codec, layout, activations, rows, width);
            reader.wrap(buffer.asSlice(0, length)).decodeInto(decoded);
        }
    }

    private static BatchLayout layout(int rows) {
        List<BatchLayout.Entry> entries = new ArrayList<>();
        if (rows <= 64) {
            for (int i = 0; i < rows; i++) {
                entries.add(BatchLayout.Entry.of(i, 1, 100 + i));
            }
        } else {
            for (int start = 0, sequence = 0; start < rows; start += PREFILL_TOKENS, sequence++) {
                entries.add(BatchLayout.Entry.of(sequence, Math.min(PREFILL_TOKENS, rows - start), 0));
            }
        }
        return new BatchLayout(entries);
    }
}
