package io.bitrelay.deploy.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.cuda.CudaContext;
import io.bitrelay.runtime.cuda.CudaKernels;
import io.bitrelay.runtime.cuda.CudaProbe;
import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.CudaUnavailableException;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.cublaslt.CublasLt;
import io.bitrelay.runtime.cuda.cublaslt.CublasLtLibrary;
import io.bitrelay.runtime.cuda.cublaslt.CublasLtLocator;
import io.bitrelay.runtime.cuda.cublaslt.GemmAutotuner;
import io.bitrelay.runtime.cuda.cublaslt.GemmPrecision;
import io.bitrelay.runtime.cuda.cublaslt.GemmSearch;
import io.bitrelay.runtime.cuda.kernels.RandomFillKernels;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * INT8 (IMMA, INT32 or INT8 out) vs FP16 GEMMs through cuBLASLt on OPT-175B's weight shapes, each precision
 * auto-tuned per shape and M (every heuristic candidate in both TN layouts timed), validated on sampled
 * elements before it is timed. The PyTorch peer (deploy/bench/torch_gemm.py) runs beside it through
 * deploy/bench/gpu-gemm.sh, which merges both into one JSON.
 */
@Command(name = "gpu-gemm", mixinStandardHelpOptions = true,
        description = "INT8 vs FP16 cuBLASLt GEMMs on OPT-175B shapes (auto-tuned), on one GPU.")
public final class GpuGemmBench implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--shapes", split = ",", defaultValue = "qkv,out,fc1,fc2",
            description = "Weight shapes: qkv, out, fc1, fc2 (OPT-175B) or KxN (default: ${DEFAULT-VALUE}).")
    List<String> shapes;

    @Option(names = "--m", split = ",", defaultValue = "1,16,128,512,2048",
            description = "Tokens per GEMM (default: ${DEFAULT-VALUE}).")
    List<Integer> rows;

    @Option(names = "--device", defaultValue = "0", description = "CUDA device ordinal (default: ${DEFAULT-VALUE}).")
    int device;

    @Option(names = "--candidates", defaultValue = "32",
            description = "Heuristic algorithms timed per layout while tuning (default: ${DEFAULT-VALUE}).")
    int candidates;

    @Option(names = "--tune-runs", defaultValue = "10", description = "Timed launches per candidate (default: ${DEFAULT-VALUE}).")
    int tuneRuns;

    @Option(names = "--runs", defaultValue = "50", description = "Timed launches of each winner, median reported (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--workspace-mib", defaultValue = "32", description = "cuBLASLt workspace (default: ${DEFAULT-VALUE}).")
    int workspaceMib;

    @Mixin
    GemmSearchOptions gemmSearchOptions;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    private record Measured(double micros, double firstHeuristicMicros, double bestHeuristicMicros, String algorithm,
                            int candidatesTimed) {
    }

    private record Row(GpuGemmShape shape, int m, Measured int8, Measured int8Out, Measured fp16) {
        double ops() {
            return 2.0 * m * shape.n() * shape.k();
        }
    }

    @Override
    public Integer call() throws IOException {
        CudaProbe probe = CudaProbe.get();
        if (!probe.available()) {
            System.out.println("bench gpu-gemm: " + probe.reason());
            return 2;
        }
        List<GpuGemmShape> gemmShapes = shapes.stream().map(GpuGemmShape::parse).toList();
        GemmSearch gemmSearch;
        try {
            gemmSearch = gemmSearchOptions.search();
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        int maxM = rows.stream().mapToInt(Integer::intValue).max().orElseThrow();
        List<Row> results = new ArrayList<>();
        try (CudaContext context = CudaContext.open(device); CudaStream stream = CudaStream.create();
             CudaKernels kernels = CudaKernels.load()) {
            CublasLtLibrary library = CublasLtLibrary.load(CublasLtLocator.locate(""));
            System.out.println("GPU: " + context.device().describe());
            System.out.println("cuBLASLt " + library.version() + " from " + library.location().describe()
                    + "; workspace " + workspaceMib + " MiB; " + candidates + " candidates x 2 layouts, search "
                    + gemmSearch.label() + ", median of " + runs);
            RandomFillKernels fill = new RandomFillKernels(kernels);
            try (CublasLt lt = CublasLt.create(library);
                 DeviceBuffer workspace = DeviceBuffer.allocate((long) workspaceMib << 20);
                 GemmAutotuner tuner = new GemmAutotuner(lt, workspace, stream, candidates, tuneRuns, gemmSearch)) {
                for (GpuGemmShape shape : gemmShapes) {
                    results.addAll(runShape(shape, maxM, fill, tuner, stream));
                }
            }
            printTable(results);
            if (json != null) {
                writeJson(context, library, gemmSearch, results);
            }
        } catch (CudaUnavailableException e) {
            System.out.println("bench gpu-gemm: " + e.getMessage());
            return 2;
        }
        return 0;
    }

    private List<Row> runShape(GpuGemmShape shape, int maxM, RandomFillKernels fill, GemmAutotuner tuner,
                               CudaStream stream) {
        int k = shape.k();
        int n = shape.n();
        List<Row> rowsOut = new ArrayList<>();
        try (DeviceBuffer w8 = DeviceBuffer.allocate((long) n * k); DeviceBuffer w16 = DeviceBuffer.allocate(2L * n * k);
             DeviceBuffer x8 = DeviceBuffer.allocate((long) maxM * k); DeviceBuffer x16 = DeviceBuffer.allocate(2L * maxM * k);
             DeviceBuffer y = DeviceBuffer.allocate(4L * maxM * n)) {
            fill.int8(w8.address(), (long) n * k, 1, stream);
            fill.int8(x8.address(), (long) maxM * k, 2, stream);
            fill.fp16(w16.address(), (long) n * k, 3, 1f, stream);
            fill.fp16(x16.address(), (long) maxM * k, 4, 1f, stream);
            stream.synchronize();
            warmUp(fill, w16, (long) n * k, stream);
            for (int m : rows) {
                Measured int8 = measure(tuner, stream, GemmPrecision.INT8_INT32, m, n, k, x8, w8, y);
                validateInt8(m, n, k, x8, w8, y);
                Measured int8Out = measure(tuner, stream, GemmPrecision.INT8_INT8, m, n, k, x8, w8, y);
                Measured fp16 = measure(tuner, stream, GemmPrecision.FP16, m, n, k, x16, w16, y);
                validateFp16(m, n, k, x16, w16, y);
                Row row = new Row(shape, m, int8, int8Out, fp16);
                rowsOut.add(row);
                System.out.printf("  %-4s M=%-5d int8 %9.1f us (heuristics' best %.1f)  int8->int8 %9.1f us  fp16 %9.1f us"
                                + " (heuristics' best %.1f)  ratio %.2fx%n", shape.name(), m, int8.micros,
                        int8.bestHeuristicMicros, int8Out.micros, fp16.micros, fp16.bestHeuristicMicros,
                        fp16.micros / int8.micros);
            }
        }
        return rowsOut;
    }

    /** Keeps the GPU busy for a while so that tuning does not start at idle clocks (345 MHz seen at rest on an H200). */
    private static void warmUp(RandomFillKernels fill, DeviceBuffer scratch, long halves, CudaStream stream) {
        long until = System.nanoTime() + 500_000_000L;
        while (System.nanoTime() < until) {
            fill.fp16(scratch.address(), halves, 3, 1f, stream); // rewrites the same values: the weights stay as they were
            stream.synchronize();
        }
    }

    private Measured measure(GemmAutotuner tuner, CudaStream stream, GemmPrecision precision, int m, int n, int k,
                             DeviceBuffer x, DeviceBuffer w, DeviceBuffer y) {
        GemmAutotuner.Choice choice = tuner.tune(precision, m, n, k, x.address(), w.address(), y.address());
        if (precision == GemmPrecision.INT8_INT8) {
            // Typical |acc| is sqrt(K)·127²/3: map about 3 standard deviations onto 127, as a static scale would.
            choice.plan().setAlpha((float) (1.0 / (127.0 * Math.sqrt(k))));
        }
        double micros = tuner.time(choice.plan(), choice.algorithm(), x.address(), w.address(), y.address(), 3, runs);
        stream.synchronize();
        return new Measured(micros, choice.firstHeuristicMicros(), choice.bestHeuristicMicros(), choice.describe(),
                choice.candidatesTimed());
    }

    /** Re-runs the tuned INT8 GEMM and checks sampled outputs against exact dot products on the host. */
    private void validateInt8(int m, int n, int k, DeviceBuffer x, DeviceBuffer w, DeviceBuffer y) {
        SplittableRandom random = new SplittableRandom(m + n);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment xRow = arena.allocate(k);
            MemorySegment wRow = arena.allocate(k);
            MemorySegment out = arena.allocate(4);
            for (int sample = 0; sample < 8; sample++) {
                int i = random.nextInt(m);
                int j = random.nextInt(n);
                x.copyToHost(xRow, (long) i * k);
                w.copyToHost(wRow, (long) j * k);
                y.copyToHost(out, 4L * ((long) i * n + j));
                long expected = 0;
                for (int p = 0; p < k; p++) {
                    expected += xRow.get(ValueLayout.JAVA_BYTE, p) * wRow.get(ValueLayout.JAVA_BYTE, p);
                }
                int actual = out.get(ValueLayout.JAVA_INT, 0);
                if (actual != expected) {
                    throw new IllegalStateException("INT8 GEMM wrong at M=" + m + " (" + i + ", " + j + "): " + actual
                            + " != " + expected);
                }
            }
        }
    }

    /** Sampled FP16 outputs against FP64 dot products of the same FP16 inputs (relative error of the samples). */
    private void validateFp16(int m, int n, int k, DeviceBuffer x, DeviceBuffer w, DeviceBuffer y) {
        SplittableRandom random = new SplittableRandom(m * 3L + n);
        double diff = 0;
        double norm = 0;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment xRow = arena.allocate(2L * k);
            MemorySegment wRow = arena.allocate(2L * k);
            MemorySegment out = arena.allocate(2);
            for (int sample = 0; sample < 8; sample++) {
                int i = random.nextInt(m);
                int j = random.nextInt(n);
                x.copyToHost(xRow, 2L * i * k);
                w.copyToHost(wRow, 2L * j * k);
                y.copyToHost(out, 2L * ((long) i * n + j));
                double expected = 0;
                for (int p = 0; p < k; p++) {
                    expected += (double) Float.float16ToFloat(xRow.getAtIndex(ValueLayout.JAVA_SHORT, p))
                            * Float.float16ToFloat(wRow.getAtIndex(ValueLayout.JAVA_SHORT, p));
                }
                double actual = Float.float16ToFloat(out.get(ValueLayout.JAVA_SHORT, 0));
                diff += (actual - expected) * (actual - expected);
                norm += expected * expected;
            }
        }
        double error = Math.sqrt(diff / norm);
        if (!(error < 5e-3)) {
            throw new IllegalStateException("FP16 GEMM wrong at M=" + m + ": relative error " + error);
        }
    }

    private void printTable(List<Row> results) {
        System.out.println();
        System.out.printf("%-4s %6s | %10s %8s | %10s | %10s %8s | %6s %6s | %-40s | %s%n", "gemm", "M", "int8 us", "TOPS",
                "i8->i8 us", "fp16 us", "TFLOP/s", "ratio", "i8out", "int8 algorithm (layout, heuristic #)", "fp16 algorithm");
        for (Row r : results) {
            System.out.printf("%-4s %6d | %10.1f %8.1f | %10.1f | %10.1f %8.1f | %5.2fx %5.2fx | %-40s | %s%n",
                    r.shape().name(), r.m(), r.int8().micros, r.ops() / r.int8().micros / 1e6, r.int8Out().micros,
                    r.fp16().micros, r.ops() / r.fp16().micros / 1e6, r.fp16().micros / r.int8().micros,
                    r.fp16().micros / r.int8Out().micros, r.int8().algorithm, r.fp16().algorithm);
        }
    }

    private void writeJson(CudaContext context, CublasLtLibrary library, GemmSearch gemmSearch, List<Row> results)
            throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("gpu", context.device().name());
        root.put("device", context.device().describe());
        root.put("cublasLtVersion", library.version());
        root.put("workspaceMib", workspaceMib);
        root.put("candidatesPerLayout", candidates);
        root.put("search", gemmSearch.label());
        root.put("runs", runs);
        ArrayNode array = root.putArray("results");
        for (Row r : results) {
            ObjectNode row = array.addObject();
            row.put("gemm", r.shape().name());
            row.put("k", r.shape().k());
            row.put("n", r.shape().n());
            row.put("m", r.m());
            put(row, "int8", r.int8(), r.ops());
            put(row, "int8Out8", r.int8Out(), r.ops());
            put(row, "fp16", r.fp16(), r.ops());
            row.put("ratioInt8VsFp16", r.fp16().micros / r.int8().micros);
            row.put("ratioInt8Out8VsFp16", r.fp16().micros / r.int8Out().micros);
        }
        mapper.writerWithDefaultPrettyPrinter().writeValue(json.toFile(), root);
    }

    private static void put(ObjectNode row, String name, Measured measured, double ops) {
        ObjectNode node = row.putObject(name);
        node.put("micros", measured.micros);
        node.put("tops", ops / measured.micros / 1e6);
        node.put("firstHeuristicMicros", measured.firstHeuristicMicros);
        node.put("bestHeuristicTuningMicros", measured.bestHeuristicMicros);
        node.put("candidatesTimed", measured.candidatesTimed);
        node.put("algorithm", measured.algorithm);
    }
}
