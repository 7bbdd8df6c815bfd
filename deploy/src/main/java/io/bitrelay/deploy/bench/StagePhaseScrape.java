package io.bitrelay.deploy.bench;

import io.bitrelay.actors.worker.StepPhase;

import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The stages' step counters read from the gateway's /metrics text: {@code bitrelay_stage_steps{stage}} and
 * {@code bitrelay_stage_step_seconds{stage,phase}} (the Prometheus client writes counters with a {@code _total}
 * suffix; both spellings are read), and the coordinator's share of time to first token ({@code bitrelay_first_tokens},
 * {@code bitrelay_first_token_seconds{part}}) and the gateway's ({@code bitrelay_gateway_time_to_first_token_seconds}'s
 * sum and count). Only those families are parsed, line by line: the exposition format's
 * other features (histograms, escapes in label values, timestamps) either do not occur in them or are skipped.
 *
 * @param stages per stage label ("stage0", …), in pipeline order
 */
public record StagePhaseScrape(Map<String, Counters> stages, FirstTokens firstTokens) {
    private static final Pattern SAMPLE = Pattern.compile("^(bitrelay_stage_steps|bitrelay_stage_step_seconds)(?:_total)?\\{([^}]*)}\\s+(\\S+)");
    private static final Pattern FIRST_TOKENS = Pattern.compile("^bitrelay_first_tokens(?:_total)?\\s+(\\S+)");
    private static final Pattern FIRST_TOKEN_SECONDS =
            Pattern.compile("^bitrelay_first_token_seconds(?:_total)?\\{part=\"(\\w+)\"}\\s+(\\S+)");
    private static final Pattern GATEWAY_FIRST_TOKEN =
            Pattern.compile("^bitrelay_gateway_time_to_first_token_seconds_(sum|count)\\s+(\\S+)");

    /**
     * The coordinator's share of time to first token ({@code bitrelay_first_token*}): requests and seconds summed;
     * and the gateway's own time to first token (its histogram's sum and count: arrival → first token at the gateway).
     */
    public record FirstTokens(double requests, double waitingSeconds, double firstStepSeconds, double gatewayRequests,
                              double gatewaySeconds) {
        /** Mean milliseconds per request between {@code earlier} and this scrape (NaN without requests). */
        public FirstTokenSplit since(FirstTokens earlier) {
            double requestsThen = requests - earlier.requests;
            return new FirstTokenSplit(Math.round(requestsThen),
                    (waitingSeconds - earlier.waitingSeconds) * 1e3 / requestsThen,
                    (firstStepSeconds - earlier.firstStepSeconds) * 1e3 / requestsThen,
                    (gatewaySeconds - earlier.gatewaySeconds) * 1e3 / (gatewayRequests - earlier.gatewayRequests));
        }
    }

    /**
     * Per request of a load run, in ms: queued until it joined a batch, joined until its first token came back to the
     * coordinator, and arrival at the gateway until its first token came back there.
     */
    public record FirstTokenSplit(long requests, double waitingMs, double firstStepMs, double gatewayMs) {
    }
    private static final Pattern LABEL = Pattern.compile("(\\w+)=\"([^\"]*)\"");

    /** One stage's counters: steps and seconds per phase label. */
    public record Counters(double steps, Map<String, Double> phaseSeconds) {
        Counters minus(Counters earlier) {
            Map<String, Double> seconds = new LinkedHashMap<>();
            phaseSeconds.forEach((phase, s) -> seconds.put(phase, s - earlier.phaseSeconds.getOrDefault(phase, 0.0)));
            return new Counters(steps - earlier.steps, seconds);
        }
    }

    public static StagePhaseScrape parse(String metricsText) {
        Map<String, Double> steps = new HashMap<>();
        Map<String, Map<String, Double>> seconds = new HashMap<>();
        double firstTokens = 0;
        Map<String, Double> firstTokenSeconds = new HashMap<>();
        Map<String, Double> gatewayFirstToken = new HashMap<>();
        for (String line : metricsText.split("\n")) {
            Matcher requests = FIRST_TOKENS.matcher(line);
            if (requests.find()) {
                firstTokens = Double.parseDouble(requests.group(1));
                continue;
            }
            Matcher gateway = GATEWAY_FIRST_TOKEN.matcher(line);
            if (gateway.find()) {
                gatewayFirstToken.put(gateway.group(1), Double.parseDouble(gateway.group(2)));
                continue;
            }
            Matcher part = FIRST_TOKEN_SECONDS.matcher(line);
            if (part.find()) {
                firstTokenSeconds.put(part.group(1), Double.parseDouble(part.group(2)));
                continue;
            }
            Matcher sample = SAMPLE.matcher(line);
            if (!sample.find()) {
                continue;
            }
            Map<String, String> labels = new HashMap<>();
            Matcher label = LABEL.matcher(sample.group(2));
            while (label.find()) {
                labels.put(label.group(1), label.group(2));
            }
            String stage = labels.get("stage");
            double value = Double.parseDouble(sample.group(3));
            if (stage == null) {
                continue;
            }
            if (sample.group(1).equals("bitrelay_stage_steps")) {
                steps.put(stage, value);
            } else if (labels.containsKey("phase")) {
                seconds.computeIfAbsent(stage, s -> new HashMap<>()).put(labels.get("phase"), value);
            }
        }
        Map<String, Counters> stages = new LinkedHashMap<>();
        steps.keySet().stream().sorted(Comparator.comparingInt(StagePhaseScrape::stageIndex)).forEach(stage -> {
            Map<String, Double> phases = new LinkedHashMap<>();
            // In step order, whatever order the registry wrote them in; a phase the stage did not report reads 0.
            for (StepPhase phase : StepPhase.values()) {
                phases.put(phase.label(), seconds.getOrDefault(stage, Map.of()).getOrDefault(phase.label(), 0.0));
            }
            stages.put(stage, new Counters(steps.get(stage), phases));
        });
        return new StagePhaseScrape(stages, new FirstTokens(firstTokens, firstTokenSeconds.getOrDefault("waiting", 0.0),
                firstTokenSeconds.getOrDefault("first_step", 0.0), gatewayFirstToken.getOrDefault("count", 0.0),
                gatewayFirstToken.getOrDefault("sum", 0.0)));
    }

    /**
     * What each stage did between {@code earlier} and this scrape, over {@code wallSeconds} of load. A stage
     * missing from either scrape (it had not reported yet) is left out.
     */
    public List<StageTime> since(StagePhaseScrape earlier, double wallSeconds) {
        return stages.entrySet().stream()
                .filter(e -> earlier.stages.containsKey(e.getKey()))
                .map(e -> StageTime.of(e.getKey(), e.getValue().minus(earlier.stages.get(e.getKey())), wallSeconds))
                .toList();
    }

    /** "stage3" → 3; labels of another form sort first. */
    private static int stageIndex(String stage) {
        try {
            return Integer.parseInt(stage.replaceFirst("^stage", ""));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * One stage over a load run.
     *
     * @param msPerStep each phase's milliseconds per step (Δseconds / Δsteps)
     * @param gapMs     wall time per step minus the phases the stage's compute thread is busy in (all but queue): how
     *                  long the stage sat idle, waiting for work from upstream or the coordinator. Queue time is left
     *                  out because it overlaps the previous step's work when micro-batches pile up, so counting it would
     *                  spend the same wall time twice. On the last stage the gap is the control loop's share.
     */
    public record StageTime(String stage, long steps, double stepsPerSecond, Map<String, Double> msPerStep, double gapMs) {
        static StageTime of(String stage, Counters delta, double wallSeconds) {
            long steps = Math.round(delta.steps());
            Map<String, Double> perStep = new LinkedHashMap<>();
            delta.phaseSeconds().forEach((phase, s) -> perStep.put(phase, steps == 0 ? Double.NaN : s * 1e3 / steps));
            double busy = perStep.entrySet().stream().filter(e -> !e.getKey().equals(StepPhase.QUEUE.label()))
                    .mapToDouble(Map.Entry::getValue).sum();
            double wallPerStep = steps == 0 ? Double.NaN : wallSeconds * 1e3 / steps;
            return new StageTime(stage, steps, steps / wallSeconds, perStep, wallPerStep - busy);
        }
    }
}
