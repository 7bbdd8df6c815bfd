package io.bitrelay.deploy.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * The Hugging Face transformers peer: deploy/bench/peer_generate.py on the same checkpoint and prompt token ids,
 * with python3 from the PATH. Skipped, with the reason, where torch or transformers do not import.
 */
final class TransformersPeer {
    /** @param tokensPerSecond by concurrency; empty when skipped, then {@code note} says why */
    record Result(Map<Integer, Double> tokensPerSecond, String note, JsonNode raw) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private TransformersPeer() {
    }

    static Result run(Path checkpoint, List<int[]> prompts, List<Integer> concurrency, int maxTokens, boolean cuda) {
        Path promptFile = null;
        Path out = null;
        try {
            String missing = importFailure();
            if (missing != null) {
                return new Result(Map.of(), "peer skipped: python3 -c 'import torch, transformers' failed: " + missing, null);
            }
            promptFile = Files.createTempFile("bitrelay-peer-prompts-", ".json");
            out = Files.createTempFile("bitrelay-peer-", ".json");
            JSON.writeValue(promptFile.toFile(), prompts);
            List<String> command = List.of("python3", BenchScripts.find("peer_generate.py").toString(),
                    "--model", checkpoint.toString(), "--prompts", promptFile.toString(),
                    "--concurrency", String.join(",", concurrency.stream().map(String::valueOf).toList()),
                    "--max-tokens", Integer.toString(maxTokens), "--device", cuda ? "cuda" : "cpu", "--out", out.toString());
            Process process = new ProcessBuilder(command).inheritIO().start();
            int exit = process.waitFor();
            if (exit != 0 || Files.size(out) == 0) {
                return new Result(Map.of(), "peer failed: " + String.join(" ", command) + " exited with " + exit, null);
            }
            JsonNode raw = JSON.readTree(out.toFile());
            Map<Integer, Double> rates = new TreeMap<>();
            for (JsonNode row : raw.path("results")) {
                rates.put(row.path("concurrency").asInt(), row.path("tokensPerSecond").asDouble());
            }
            return new Result(rates, null, raw);
        } catch (IOException e) {
            return new Result(Map.of(), "peer failed: " + e.getMessage(), null);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(Map.of(), "peer interrupted", null);
        } finally {
            BenchScripts.deleteQuietly(promptFile);
            BenchScripts.deleteQuietly(out);
        }
    }

    /** Null when torch and transformers import, else the last line python printed. */
    private static String importFailure() throws IOException, InterruptedException {
        Process probe;
        try {
            probe = new ProcessBuilder("python3", "-c", "import torch, transformers").redirectErrorStream(true).start();
        } catch (IOException e) {
            return "no python3 (" + e.getMessage() + ")";
        }
        String output = new String(probe.getInputStream().readAllBytes()).strip();
        if (!probe.waitFor(120, TimeUnit.SECONDS)) {
            probe.destroyForcibly();
            return "the import took over 2 minutes";
        }
        if (probe.exitValue() == 0) {
            return null;
        }
        String[] lines = output.split("\n");
        return lines[lines.length - 1];
    }
}
