package io.bitrelay.deploy.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.ops.cpu.CpuParallelism;
import io.bitrelay.runtime.ops.cpu.Fp32MatMul;
import io.bitrelay.runtime.ops.cpu.Int8MatMul;
import io.bitrelay.runtime.ops.cpu.ReferenceMatMul;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * Our Vector API GEMMs (FP32 and INT8 × INT8 → INT32) on OPT-1.3b shapes, next to OpenBLAS through numpy
 * timed in the same run on the same machine. Each kernel is checked against the reference first.
 *
 * <p>Per M the order is: our FP32, our INT8, then the numpy peer for that M (one short python process), so a
 * change in background load during the run hits both sides of a ratio alike. Warm-up is by time, not by
 * count: the Vector API kernels run boxed (orders of magnitude slower) until C2 has compiled them, which
 * takes a second or two and would otherwise land in the first timings.
 */
@Command(name = "gemm", mixinStandardHelpOptions = true,
        description = "FP32 and INT8 GEMM GFLOP/s (K=2048, N=8192 by default) vs OpenBLAS through numpy, same run.")
public final class GemmBench implements Callable<Integer> {
    @Option(names = "--m", split = ",", defaultValue = "1,16,256", description = "Rows (tokens) per GEMM (default: ${DEFAULT-VALUE}).")
    List<Integer> rows;

    @Option(names = "--k", defaultValue = "2048", description = "Inner dimension (default: ${DEFAULT-VALUE}, OPT-1.3b hidden).")
    int k;

    @Option(names = "--n", defaultValue = "8192", description = "Output features (default: ${DEFAULT-VALUE}, OPT-1.3b fc1).")
    int n;

    @Option(names = "--seconds", defaultValue = "2", description = "Timing per case (default: ${DEFAULT-VALUE}).")
    double seconds;

    @Option(names = "--warmup", defaultValue = "2",
            description = "Warm-up per case in seconds, until C2 has compiled the kernels (default: ${DEFAULT-VALUE}).")
    double warmup;

    @Option(names = "--no-peer", description = "Skip the numpy/OpenBLAS peer.")
    boolean noPeer;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    private record Row(int m, double fp32Gflops, double int8Gops, Double openBlasGflops) {
    }

    @Override
    public Integer call() throws Exception {
        validate();
        List<Row> results = new ArrayList<>();
        List<JsonNode> peers = new ArrayList<>();
        boolean peerOk = !noPeer && peerScript() != null;
        try (Arena arena = Arena.ofShared()) {
            SplittableRandom random = new SplittableRandom(1);
            int maxM = rows.stream().mapToInt(Integer::intValue).max().orElse(1);
            MemorySegment a = floats(arena, (long) maxM * k, random);
            MemorySegment w = floats(arena, (long) n * k, random);
            MemorySegment out = arena.allocate((long) maxM * n * Float.BYTES, 64);
            MemorySegment a8 = bytes(arena, (long) maxM * k, random);
            MemorySegment w8 = bytes(arena, (long) n * k, random);
            MemorySegment out32 = arena.allocate((long) maxM * n * Integer.BYTES, 64);
            for (int m : rows) {
                double fp32 = time(() -> Fp32MatMul.matmul(a, w, null, out, m, n, k));
                double int8 = time(() -> Int8MatMul.matmul(a8, w8, out32, m, n, k));
                JsonNode peer = peerOk ? runPeer(m) : null;
                if (peer != null) {
                    peers.add(peer);
                } else {
                    peerOk = false; // said why once; our figures still follow
                }
                double ops = 2.0 * m * k * n;
                results.add(new Row(m, ops / fp32 / 1e9, ops / int8 / 1e9, peerGflops(peer, m)));
            }
        }
        JsonNode peer = peers.isEmpty() ? null : peers.getFirst();
        print(results, peer);
        if (json != null) {
            writeJson(results, peers);
        }
        return 0;
    }

    /** Both kernels against the scalar reference on small odd shapes (each of their two paths) before any timing. */
    private static void validate() {
        int n = 37, k = 67;
        try (Arena arena = Arena.ofShared()) { // the kernels fan out over the CPU pool
            SplittableRandom random = new SplittableRandom(7);
            for (int m : new int[] {1, 5, 17}) {
                MemorySegment a = floats(arena, (long) m * k, random);
                MemorySegment w = floats(arena, (long) n * k, random);
                MemorySegment bias = floats(arena, n, random);
                MemorySegment fast = arena.allocate((long) m * n * Float.BYTES, 64);
                MemorySegment slow = arena.allocate((long) m * n * Float.BYTES, 64);
                Fp32MatMul.matmul(a, w, bias, fast, m, n, k);
                ReferenceMatMul.matmulF32(a, w, bias, slow, m, n, k);
                for (int i = 0; i < m * n; i++) {
                    float x = fast.getAtIndex(ValueLayout.JAVA_FLOAT, i);
                    float y = slow.getAtIndex(ValueLayout.JAVA_FLOAT, i);
                    if (Math.abs(x - y) > 1e-3f * (1 + Math.abs(y))) {
                        throw new IllegalStateException("FP32 kernel disagrees with the reference at m=" + m + ", " + i
                                + ": " + x + " vs " + y);
                    }
                }
                MemorySegment a8 = bytes(arena, (long) m * k, random);
                MemorySegment w8 = bytes(arena, (long) n * k, random);
                MemorySegment fast32 = arena.allocate((long) m * n * Integer.BYTES, 64);
                MemorySegment slow32 = arena.allocate((long) m * n * Integer.BYTES, 64);
                Int8MatMul.matmul(a8, w8, fast32, m, n, k);
                ReferenceMatMul.matmulI8(a8, w8, slow32, m, n, k);
                if (fast32.mismatch(slow32) >= 0) {
                    throw new IllegalStateException("INT8 kernel disagrees with the reference at m=" + m);
                }
            }
        }
    }

    /** Median seconds of one call over about {@code seconds}, after {@code warmup} seconds (and 3 calls) of warm-up. */
    private double time(Runnable kernel) {
        long warm = System.nanoTime() + (long) (warmup * 1e9);
        for (int i = 0; i < 3 || System.nanoTime() < warm; i++) {
            kernel.run();
        }
        List<Long> timings = new ArrayList<>();
        long deadline = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < deadline || timings.size() < 5) {
            long start = System.nanoTime();
            kernel.run();
            timings.add(System.nanoTime() - start);
        }
        timings.sort(Long::compare);
        return timings.get(timings.size() / 2) / 1e9;
    }

    /** deploy/bench/numpy_gemm.py from the repository root (where deploy/bin/bitrelay runs us), else null. */
    private static Path peerScript() {
        Path script = Path.of("deploy/bench/numpy_gemm.py");
        if (!Files.isRegularFile(script)) {
            System.err.println("bench gemm: " + script.toAbsolutePath() + " not found (run from the repository root); "
                    + "no OpenBLAS peer, our figures only");
            return null;
        }
        return script;
    }

    /** numpy's figure for one M, or null (with the reason on stderr) when python3 or numpy is missing. */
    private JsonNode runPeer(int m) {
        ProcessBuilder builder = new ProcessBuilder("python3", peerScript().toString(), "--k", String.valueOf(k),
                "--n", String.valueOf(n), "--m", String.valueOf(m), "--seconds", String.valueOf(seconds),
                "--warmup", String.valueOf(Math.min(warmup, 1.0)));
        Map<String, String> environment = builder.environment();
        // OpenBLAS with its own core detection and cache sizes, not a machine-wide override.
        environment.remove("OPENBLAS_CORETYPE");
        environment.remove("OPENBLAS_L2_SIZE");
        environment.put("OPENBLAS_NUM_THREADS", String.valueOf(CpuParallelism.threads()));
        builder.redirectErrorStream(true);
        try {
            Process process = builder.start();
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!process.waitFor(10, TimeUnit.MINUTES) || process.exitValue() != 0) {
                System.err.println("bench gemm: the numpy peer failed (python3 with numpy needed), our figures only: "
                        + output.strip());
                return null;
            }
            String last = output.strip().lines().reduce((x, y) -> y).orElse("{}");
            return new ObjectMapper().readTree(last);
        } catch (IOException e) {
            System.err.println("bench gemm: cannot run python3 for the numpy peer, our figures only: " + e.getMessage());
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    private static Double peerGflops(JsonNode peer, int m) {
        if (peer == null) {
            return null;
        }
        for (JsonNode result : peer.path("results")) {
            if (result.path("m").asInt() == m) {
                return result.path("gflops").asDouble();
            }
        }
        return null;
    }

    private void print(List<Row> results, JsonNode peer) {
        String peerText = peer != null ? "; peer: numpy " + peer.path("numpy").asText() + " (" + peer.path("blas").asText() + ")"
                : noPeer ? "" : "; no OpenBLAS peer (python3 with numpy unavailable, see above)";
        System.out.printf("GEMM C[M,%d] = A[M,%d] · W[%d,%d]ᵀ on %d thread(s), %s%s%n", n, k, n, k,
                CpuParallelism.threads(), jdk.incubator.vector.FloatVector.SPECIES_PREFERRED, peerText);
        System.out.println("| M | ours FP32 GFLOP/s | OpenBLAS FP32 GFLOP/s | ours / OpenBLAS | ours INT8 GOP/s | INT8 / our FP32 |");
        System.out.println("|---:|---:|---:|---:|---:|---:|");
        for (Row row : results) {
            String blas = row.openBlasGflops() == null ? "–" : String.format("%.1f", row.openBlasGflops());
            String ratio = row.openBlasGflops() == null ? "–" : String.format("%.2f", row.fp32Gflops() / row.openBlasGflops());
            System.out.printf("| %d | %.1f | %s | %s | %.1f | %.2f× |%n", row.m(), row.fp32Gflops(), blas, ratio,
                    row.int8Gops(), row.int8Gops() / row.fp32Gflops());
        }
    }

    private void writeJson(List<Row> results, List<JsonNode> peers) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode().put("k", k).put("n", n).put("threads", CpuParallelism.threads())
                .put("seconds", seconds).put("warmup", warmup)
                .put("vectorSpecies", jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.toString());
        ArrayNode array = root.putArray("results");
        for (Row row : results) {
            ObjectNode node = array.addObject().put("m", row.m()).put("fp32Gflops", row.fp32Gflops()).put("int8Gops", row.int8Gops());
            if (row.openBlasGflops() != null) {
                node.put("openBlasGflops", row.openBlasGflops());
            }
        }
        if (!peers.isEmpty()) {
            root.set("peer", mapper.valueToTree(peers));
        }
        Files.writeString(json, mapper.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n");
    }

    private static MemorySegment floats(Arena arena, long count, SplittableRandom random) {
        MemorySegment segment = arena.allocate(count * Float.BYTES, 64);
        for (long i = 0; i < count; i++) {
            segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
        }
        return segment;
    }

    /** Symmetric INT8 values in [-127, 127], as quantization produces them. */
    private static MemorySegment bytes(Arena arena, long count, SplittableRandom random) {
        MemorySegment segment = arena.allocate(count, 64);
        for (long i = 0; i < count; i++) {
            segment.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt(-127, 128));
        }
        return segment;
    }
}
