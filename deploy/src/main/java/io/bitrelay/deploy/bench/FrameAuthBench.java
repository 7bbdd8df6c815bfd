package io.bitrelay.deploy.bench;

import io.bitrelay.runtime.quant.ChannelClustering;
import io.bitrelay.runtime.synthetic.SyntheticActivations;
import io.bitrelay.runtime.wire.BatchLayout;
import io.bitrelay.runtime.wire.CodecId;
import io.bitrelay.runtime.wire.FrameSeal;
import io.bitrelay.runtime.wire.LinkCodec;
import io.bitrelay.runtime.wire.LinkCodecs;
import io.bitrelay.runtime.wire.LinkFrame;
import io.bitrelay.runtime.wire.LinkFrameKeys;
import io.bitrelay.runtime.wire.LinkFrameReader;
import io.bitrelay.runtime.wire.LinkFrameWriter;
import io.bitrelay.runtime.wire.LinkProtection;
import io.bitrelay.runtime.wire.RptqLinkCodec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * What sealing link frames costs a link's frame rate: both ends' CPU work per frame (encode + CRC on the sender,
 * CRC + decode on the receiver) without a seal and with each seal — HMAC-SHA256 (the tag links carried before, as
 * the baseline), ChaCha20-Poly1305 (authenticate-links) and AES-256-GCM (encrypt-links): seal on one end, open on the
 * other. Variants alternate within each repeat, so load from other processes on the machine hits them alike; medians.
 * Timed in the thread's CPU time ({@link CallTiming#cpuSecondsPerCall}): on a shared machine the wall clock also counts
 * the time spent waiting for a core, which swamped the seals' cost.
 * The goal is an overhead of at most 5 % of the frame rate.
 */
@Command(name = "frame-auth", mixinStandardHelpOptions = true,
        description = "Frames/s of a link (both ends' CPU work) without a seal and with HMAC-SHA256 (before), "
                + "ChaCha20-Poly1305 (authenticate-links) and AES-256-GCM (encrypt-links) seals.")
public final class FrameAuthBench implements Runnable {
    private static final int PREFILL_TOKENS = 128;
    private static final com.sun.management.ThreadMXBean ALLOCATION =
            (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();

    /** The seals compared, each against the unsealed link. */
    enum Sealing {
        HMAC("HMAC-SHA256 (before)"),
        AUTHENTICATED("ChaCha20-Poly1305 (authenticate-links)"),
        ENCRYPTED("AES-256-GCM (encrypt-links)");

        final String label;

        Sealing(String label) {
            this.label = label;
        }

        /** A fresh seal of this kind for one end of the link from stage 0 to stage 1. */
        FrameSeal newSeal(byte[] pipelineKey) {
            return switch (this) {
                case HMAC -> new HmacSha256Seal(pipelineKey);
                case AUTHENTICATED -> LinkProtection.AUTHENTICATED.newSeal(pipelineKey, 0, 1);
                case ENCRYPTED -> LinkProtection.ENCRYPTED.newSeal(pipelineKey, 0, 1);
            };
        }
    }

    @Option(names = "--rows", split = ",", defaultValue = "1,16,512", description = "Rows per frame (default: ${DEFAULT-VALUE}).")
    List<Integer> rowCounts;

    @Option(names = "--widths", split = ",", defaultValue = "768,12288", description = "Hidden widths (default: ${DEFAULT-VALUE}).")
    List<Integer> widths;

    @Option(names = "--codecs", split = ",", defaultValue = "fp16,int8,int4,int3", description = "Codecs (default: ${DEFAULT-VALUE}).")
    List<String> codecNames;

    @Option(names = "--seals", split = ",", defaultValue = "hmac,authenticated,encrypted",
            description = "Seals compared with the unsealed link: hmac, authenticated, encrypted (default: ${DEFAULT-VALUE}).")
    List<String> sealNames;

    @Option(names = "--repeats", defaultValue = "9", description = "Repeats of each variant; medians (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--repeat-millis", defaultValue = "60", description = "Length of one repeat (default: ${DEFAULT-VALUE}).")
    long repeatMillis;

    @Option(names = "--warmup-millis", defaultValue = "4000",
            description = "Before the table, every shape and codec runs each variant for this long in all, so C2 has "
                    + "compiled the paths every shape takes (default: ${DEFAULT-VALUE}).")
    long warmupMillis;

    @Override
    public void run() {
        List<Sealing> sealings = sealNames.stream().map(FrameAuthBench::sealing).toList();
        byte[] key = LinkFrameKeys.newPipelineKey();
        long shapes = (long) widths.size() * rowCounts.size() * codecNames.size();
        forEachLink(key, sealings, links -> {
            long until = System.nanoTime() + warmupMillis * 1_000_000 / shapes;
            while (System.nanoTime() < until) {
                for (Link link : links) {
                    link.frame();
                }
            }
        });
        System.out.printf("link frames, both ends on 1 thread; frames per CPU second of that thread (time waiting for a "
                + "core not counted); variants alternating, median of %d × %d CPU ms; overhead = 1 - sealed/plain; "
                + "alloc = bytes allocated per frame, both ends%n", repeats, repeatMillis);
        StringBuilder head = new StringBuilder("| width | rows | codec | frame bytes (unsealed) | plain frames/s | alloc B |");
        StringBuilder rule = new StringBuilder("|---:|---:|---|---:|---:|---:|");
        for (Sealing sealing : sealings) {
            head.append(' ').append(sealing.label).append(" frames/s | overhead | alloc B |");
            rule.append("---:|---:|---:|");
        }
        System.out.println(head);
        System.out.println(rule);
        forEachLink(key, sealings, links -> {
            double[][] seconds = new double[links.size()][repeats];
            long[] allocated = new long[links.size()];
            long[] frames = new long[links.size()];
            for (Link link : links) { // one untimed repeat each: this shape's paths compiled before its first timed one
                CallTiming.cpuSecondsPerCall(link::frame, repeatMillis);
            }
            for (int r = 0; r < repeats; r++) {
                for (int v = 0; v < links.size(); v++) {
                    Link link = links.get(v);
                    long before = ALLOCATION.getCurrentThreadAllocatedBytes();
                    long calls = link.calls;
                    seconds[v][r] = CallTiming.cpuSecondsPerCall(link::frame, repeatMillis);
                    allocated[v] += ALLOCATION.getCurrentThreadAllocatedBytes() - before;
                    frames[v] += link.calls - calls;
                }
            }
            Link plain = links.getFirst();
            double plainRate = 1 / CallTiming.median(seconds[0]);
            StringBuilder row = new StringBuilder(String.format("| %d | %d | %s | %d | %.0f | %d |", plain.width, plain.rows,
                    plain.codec.id().shortName(), plain.length, plainRate, allocated[0] / frames[0]));
            for (int v = 1; v < links.size(); v++) {
                double rate = 1 / CallTiming.median(seconds[v]);
                row.append(String.format(" %.0f | %.1f %% | %d |", rate, 100 * (1 - rate / plainRate), allocated[v] / frames[v]));
            }
            System.out.println(row);
        });
    }

    private static Sealing sealing(String name) {
        try {
            return Sealing.valueOf(name.trim().toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown seal '" + name + "' (hmac, authenticated or encrypted)");
        }
    }

    /** Every (width, rows, codec) as the unsealed link followed by one link per seal, each validated once before use. */
    private void forEachLink(byte[] key, List<Sealing> sealings, Consumer<List<Link>> action) {
        for (int width : widths) {
            var plan = new ChannelClustering(ChannelClustering.DEFAULT_CLUSTERS)
                    .plan(SyntheticActivations.llmLike(256, width, 1), 256, width);
            for (int rows : rowCounts) {
                for (String name : codecNames) {
                    LinkCodec codec = LinkCodecs.forId(CodecId.fromName(name), plan, RptqLinkCodec.Ranges.DYNAMIC);
                    try (Arena arena = Arena.ofConfined()) {
                        LinkCodec[] readable = LinkCodecs.all(plan, RptqLinkCodec.Ranges.DYNAMIC);
                        List<Link> links = new ArrayList<>();
                        links.add(new Link(arena, codec, readable, rows, width, null, null));
                        for (Sealing sealing : sealings) {
                            links.add(new Link(arena, codec, readable, rows, width, sealing.newSeal(key), sealing.newSeal(key)));
                        }
                        for (Link link : links) {
                            link.frame(); // validates both ways before timing
                        }
                        action.accept(links);
                    }
                }
            }
        }
    }

    /** One link's two ends: the sender encodes and seals, the receiver validates, opens and decodes. */
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
        long calls;

        Link(Arena arena, LinkCodec codec, LinkCodec[] readable, int rows, int width, FrameSeal sending, FrameSeal receiving) {
            this.codec = codec;
            this.rows = rows;
            this.width = width;
            this.layout = layout(rows);
            float[] values = SyntheticActivations.llmLike(rows, width, 2);
            this.activations = arena.allocate((long) rows * width * Float.BYTES, 64);
            MemorySegment.copy(values, 0, activations, ValueLayout.JAVA_FLOAT, 0, values.length);
            this.decoded = arena.allocate(activations.byteSize(), 64);
            LinkFrameReader fresh = new LinkFrameReader(readable);
            if (sending != null) {
                writer.sealWith(sending);
                fresh.requireSeal(receiving);
            }
            this.reader = fresh;
            this.buffer = arena.allocate(LinkFrame.frameBytes(codec, layout.encodedBytes(), rows, width)
                    + writer.sealBytes(), 64);
        }

        void frame() {
            length = writer.wrap(buffer).batchId(7).step(1).stages(0, 1).encode(codec, layout, activations, rows, width);
            reader.wrap(buffer.asSlice(0, length)).decodeInto(decoded);
            calls++;
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
