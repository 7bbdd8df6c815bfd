package io.bitrelay.deploy.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the GPU kernels alone would allow: {@code bench gpu-layers}' decode steps (CUDA graphs on) for the served
 * shape at each batch size, run in this JVM once the cluster has given the GPU back. It times every decoder layer
 * of the model as one stack on one GPU, without embedding, LM head, sampling or links, so it bounds what a
 * pipeline of the same layers on that GPU can reach.
 */
final class KernelBound {
    /** One batch size's decode step; {@code tokensPerSecond} = batch / step time. */
    record Step(int batch, double msPerStep, double tokensPerSecond) {
    }

    /** @param steps by batch size; empty when it did not run, then {@code note} says why */
    record Result(Map<Integer, Step> steps, String note, JsonNode raw) {
        static Result skipped(String why) {
            return new Result(Map.of(), why, null);
        }
    }

    private KernelBound() {
    }

    /** gpu-layers knows fp16 and w8a8 stacks: a cluster recipe maps to the one its GPU stages run. */
    static String gpuRecipe(String clusterRecipe) {
        if (clusterRecipe == null || clusterRecipe.equals("fp32") || clusterRecipe.equals("fp16")) {
            return "fp16";
        }
        if (clusterRecipe.startsWith("w8a8")) {
            return "w8a8";
        }
        throw new IllegalArgumentException("--kernel-bound has no gpu-layers recipe for " + clusterRecipe);
    }

    static Result measure(String preset, int layers, String clusterRecipe, List<Integer> batches, int context, int device) {
        Path json = null;
        try {
            json = Files.createTempFile("bitrelay-kernel-bound-", ".json");
            List<String> args = new ArrayList<>(List.of("--preset", preset, "--layers", Integer.toString(layers),
                    "--recipes", gpuRecipe(clusterRecipe), "--batches", join(batches), "--context", Integer.toString(context),
                    "--prefill", "1", "--graphs", "on", "--device", Integer.toString(device), "--json", json.toString()));
            int exit = new CommandLine(new GpuLayersBench()).execute(args.toArray(String[]::new));
            if (exit != 0 || Files.size(json) == 0) {
                return Result.skipped("bench gpu-layers " + String.join(" ", args) + " exited with " + exit);
            }
            JsonNode raw = new ObjectMapper().readTree(json.toFile());
            Map<Integer, Step> steps = new LinkedHashMap<>();
            for (JsonNode row : raw.path("results")) {
                if (row.path("phase").asText().equals("decode")) {
                    int batch = row.path("batch").asInt();
                    steps.put(batch, new Step(batch, row.path("msPerStep").asDouble(), row.path("tokensPerSecond").asDouble()));
                }
            }
            return new Result(steps, null, raw);
        } catch (IOException | RuntimeException e) {
            return Result.skipped("bench gpu-layers failed: " + e.getMessage());
        } finally {
            BenchScripts.deleteQuietly(json);
        }
    }

    private static String join(List<Integer> values) {
        return String.join(",", values.stream().map(String::valueOf).toList());
    }
}
