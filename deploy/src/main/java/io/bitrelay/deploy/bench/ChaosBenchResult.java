package io.bitrelay.deploy.bench;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.deploy.JsonFiles;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code bench chaos} measured: one row per kill, and what it could not measure because it is not built.
 *
 * @param settings the command's settings, as written to the JSON
 * @param handOver the coordinator's node killed after the workers' rounds, or null when not run
 * @param notBuilt recovery paths the issue asks for that do not exist yet, each with why no number is given
 * @param stoppedEarly why the run stopped before its last kill, or null
 */
record ChaosBenchResult(Map<String, Object> settings, List<Kill> kills, HandOver handOver, List<String> notBuilt,
                        String stoppedEarly) {
    /** The rate a run counts as back to steady at, as a share of the steady rate before the kill. */
    static final double STEADY_SHARE = 0.9;
    /** The window that rate is taken over: short enough to date the return, long enough to span a few steps. */
    static final int STEADY_SPAN_SECONDS = 2;

    /**
     * One SIGKILL of the worker at a stage position, times from the kill.
     *
     * @param detectionMs      until the coordinator stopped serving (it noticed the loss), −1 if it never did
     * @param recoveryMs       until it served again over the rebuilt pipeline (the replay path), −1 if it never did
     * @param firstTokenMs     until the first token after it served again (a replay's or a new request's), −1 if none
     * @param steadyAgainMs    until the end of the first {@link #STEADY_SPAN_SECONDS} s window after it served again
     *                         with at least {@link #STEADY_SHARE} of the steady rate, −1 if none within --rejoin-timeout
     * @param steadyRate       tokens/s in the window of the same length before the kill
     * @param windowRate       tokens/s in the window after the kill
     * @param replayed         sequences the coordinator sent back to be replayed
     * @param lost             requests that failed from the steady window's start to the next kill's
     * @param failureReasons   their distinct reasons
     */
    record Kill(StagePosition position, int stage, String victim, String replacement, double windowSeconds,
                long detectionMs, long recoveryMs, long firstTokenMs, long steadyAgainMs, double steadyRate, double windowRate, long replayed,
                int lost, List<String> failureReasons) {
        /** The share of the steady rate the window lost, in percent (negative if the window was faster). */
        double dipPercent() {
            return steadyRate == 0 ? Double.NaN : 100 * (1 - windowRate / steadyRate);
        }
    }

    /**
     * A SIGKILL of the JVM holding the coordinator singleton (a coordinator + gateway node); the load runs on the other
     * coordinator + gateway node's gateway. Times from the kill.
     *
     * @param handOverMs    until a coordinator of a new incarnation answered (the singleton moved), −1 if none did
     * @param recoveryMs    until it served (it gathered the workers and placed a pipeline), −1 if it never did
     * @param firstTokenMs  until the first token after it served (a resumed request's or a new one's), −1 if none
     * @param steadyAgainMs as {@link Kill#steadyAgainMs()}
     * @param resumed       requests the surviving gateway resumed on the new coordinator
     * @param lost          requests that failed from the steady window's start to the end of the run
     */
    record HandOver(String victim, String tookOver, double windowSeconds, long handOverMs, long recoveryMs, long firstTokenMs,
                    long steadyAgainMs, double steadyRate, double windowRate, long resumed, int lost,
                    List<String> failureReasons) {
        double dipPercent() {
            return steadyRate == 0 ? Double.NaN : 100 * (1 - windowRate / steadyRate);
        }
    }

    void print(PrintStream out) {
        out.println(String.format(Locale.ROOT, "SIGKILL of the worker at each stage position under steady load; times from the "
                + "kill; tok/s over %.0f s before the kill (steady) and %.0f s after it (window)", window(), window()));
        out.println(String.format("%-7s %5s %-9s %-9s %10s %10s %9s %10s %10s %10s %6s %9s %5s", "stage", "index", "killed",
                "took over", "detect ms", "recover ms", "1st tok", "steady ms", "steady t/s", "window t/s", "dip", "replayed", "lost"));
        for (Kill kill : kills) {
            out.println(String.format(Locale.ROOT, "%-7s %5d %-9s %-9s %10s %10s %9s %10s %10.1f %10.1f %5.0f%% %9d %5d",
                    kill.position().label(), kill.stage(), kill.victim(), kill.replacement(), ms(kill.detectionMs()),
                    ms(kill.recoveryMs()), ms(kill.firstTokenMs()), ms(kill.steadyAgainMs()), kill.steadyRate(), kill.windowRate(),
                    kill.dipPercent(), kill.replayed(), kill.lost()));
        }
        for (Kill kill : kills) {
            for (String reason : kill.failureReasons()) {
                out.println(kill.position().label() + " stage: failed request: " + reason);
            }
        }
        out.println("recovery: replay (prompt + tokens so far recomputed by the rebuilt pipeline); detect: the coordinator "
                + "stopped serving; recover: it served again; 1st tok: the first token after that; steady: the end of the first "
                + STEADY_SPAN_SECONDS + " s window after that at " + Math.round(STEADY_SHARE * 100) + "% of the steady rate");
        if (handOver != null) {
            out.println();
            out.println("SIGKILL of the coordinator singleton's node (coordinator + gateway) under steady load on the other"
                    + " coordinator + gateway node; times from the kill");
            out.println(String.format("%-13s %-15s %11s %10s %9s %10s %10s %10s %6s %8s %5s", "killed", "took over",
                    "handover ms", "serving ms", "1st tok", "steady ms", "steady t/s", "window t/s", "dip", "resumed", "lost"));
            out.println(String.format(Locale.ROOT, "%-13s %-15s %11s %10s %9s %10s %10.1f %10.1f %5.0f%% %8d %5d",
                    handOver.victim(), handOver.tookOver(), ms(handOver.handOverMs()), ms(handOver.recoveryMs()),
                    ms(handOver.firstTokenMs()), ms(handOver.steadyAgainMs()), handOver.steadyRate(), handOver.windowRate(),
                    handOver.dipPercent(), handOver.resumed(), handOver.lost()));
            for (String reason : handOver.failureReasons()) {
                out.println("hand-over: failed request: " + reason);
            }
            out.println("handover: a coordinator of a new incarnation answered (detection + down-coordinator-after + removal"
                    + " + Pekko's down-removal-margin); serving: it gathered the workers and their stages reloaded; the gateway"
                    + " resumed its requests from their tokens so far");
        }
        for (String missing : notBuilt) {
            out.println("not measured: " + missing);
        }
        if (stoppedEarly != null) {
            out.println("stopped early " + stoppedEarly);
        }
    }

    private double window() {
        return kills.isEmpty() ? 0 : kills.getFirst().windowSeconds();
    }

    void writeJson(Path file) {
        ObjectNode root = JsonFiles.mapper().createObjectNode();
        root.set("settings", JsonFiles.mapper().valueToTree(settings));
        ArrayNode rows = root.putArray("kills");
        for (Kill kill : kills) {
            ObjectNode row = rows.addObject();
            row.put("position", kill.position().label());
            row.put("stage", kill.stage());
            row.put("killed", kill.victim());
            row.put("tookOver", kill.replacement());
            row.put("recoveryPath", "replay");
            row.put("detectionMs", kill.detectionMs());
            row.put("recoveryMs", kill.recoveryMs());
            row.put("firstTokenMs", kill.firstTokenMs());
            row.put("steadyAgainMs", kill.steadyAgainMs());
            row.put("windowSeconds", kill.windowSeconds());
            row.put("steadyTokensPerSecond", kill.steadyRate());
            row.put("windowTokensPerSecond", kill.windowRate());
            row.put("dipPercent", kill.dipPercent());
            row.put("replayedSequences", kill.replayed());
            row.put("requestsLost", kill.lost());
            row.set("failureReasons", JsonFiles.mapper().valueToTree(kill.failureReasons()));
        }
        if (handOver != null) {
            ObjectNode row = root.putObject("handOver");
            row.put("killed", handOver.victim());
            row.put("tookOver", handOver.tookOver());
            row.put("handOverMs", handOver.handOverMs());
            row.put("servingMs", handOver.recoveryMs());
            row.put("firstTokenMs", handOver.firstTokenMs());
            row.put("steadyAgainMs", handOver.steadyAgainMs());
            row.put("windowSeconds", handOver.windowSeconds());
            row.put("steadyTokensPerSecond", handOver.steadyRate());
            row.put("windowTokensPerSecond", handOver.windowRate());
            row.put("dipPercent", handOver.dipPercent());
            row.put("resumedRequests", handOver.resumed());
            row.put("requestsLost", handOver.lost());
            row.set("failureReasons", JsonFiles.mapper().valueToTree(handOver.failureReasons()));
        }
        root.set("notMeasured", JsonFiles.mapper().valueToTree(notBuilt));
        if (stoppedEarly != null) {
            root.put("stoppedEarly", stoppedEarly);
        }
        JsonFiles.write(file, root);
    }

    private static String ms(long millis) {
        return millis < 0 ? "-" : Long.toString(millis);
    }
}
