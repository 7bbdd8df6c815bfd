package io.bitrelay.deploy.bench;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StagePhaseScrapeTest {
    /** As the gateway's registry writes it: counters get _total, other families around them, labels in any order. */
    private static String metrics(double steps0, double steps1, double layers1) {
        return """
                # HELP bitrelay_stage_steps_total Micro-batches a stage computed
                # TYPE bitrelay_stage_steps_total counter
                bitrelay_stage_steps_total{stage="stage1"} %s
                bitrelay_stage_steps_total{stage="stage0"} %s
                # HELP bitrelay_stage_step_seconds_total Host wall-clock time of a stage's steps by phase
                # TYPE bitrelay_stage_step_seconds_total counter
                bitrelay_stage_step_seconds_total{phase="queue",stage="stage1"} 0.5
                bitrelay_stage_step_seconds_total{phase="layers",stage="stage1"} %s
                bitrelay_stage_step_seconds_total{phase="head",stage="stage1"} 1.0E-1
                bitrelay_stage_step_seconds_total{phase="layers",stage="stage0"} 2.0
                bitrelay_link_tokens_total{codec="int8",from="stage0",to="stage1"} 999.0
                bitrelay_stage_rejected_frames_total{stage="stage0"} 0.0
                """.formatted(steps1, steps0, layers1);
    }

    @Test
    void shouldReadStepsAndEveryPhaseInPipelineOrder() {
        StagePhaseScrape scrape = StagePhaseScrape.parse(metrics(10, 20, 3.0));
        assertEquals(List.of("stage0", "stage1"), List.copyOf(scrape.stages().keySet()));
        StagePhaseScrape.Counters last = scrape.stages().get("stage1");
        assertEquals(20, last.steps());
        assertEquals(List.of("queue", "input", "layers", "head", "sample", "output"), List.copyOf(last.phaseSeconds().keySet()));
        assertEquals(Map.of("queue", 0.5, "input", 0.0, "layers", 3.0, "head", 0.1, "sample", 0.0, "output", 0.0),
                last.phaseSeconds());
    }

    @Test
    void shouldTurnTwoScrapesIntoMillisecondsPerStepAndTheIdleGap() {
        StagePhaseScrape before = StagePhaseScrape.parse(metrics(10, 20, 3.0));
        StagePhaseScrape after = StagePhaseScrape.parse(metrics(10, 120, 4.0)
                .replace("{phase=\"queue\",stage=\"stage1\"} 0.5", "{phase=\"queue\",stage=\"stage1\"} 3.5"));
        List<StagePhaseScrape.StageTime> stages = after.since(before, 2.0);
        assertEquals(2, stages.size());
        StagePhaseScrape.StageTime last = stages.get(1);
        assertEquals("stage1", last.stage());
        assertEquals(100, last.steps());
        assertEquals(50.0, last.stepsPerSecond(), 1e-9);
        assertEquals(10.0, last.msPerStep().get("layers"), 1e-9); // 1 s over 100 steps
        assertEquals(30.0, last.msPerStep().get("queue"), 1e-9); // waiting behind other steps: more than the wall time
        assertEquals(20.0 - 10.0, last.gapMs(), 1e-9); // 2 s / 100 steps of wall time, 10 ms of it busy (queue is not)
        assertTrue(Double.isNaN(stages.get(0).msPerStep().get("layers")), "no steps: no time per step");
    }

    @Test
    void shouldTurnTheCoordinatorsFirstTokenCountersIntoMeansPerRequest() {
        String template = metrics(10, 20, 3.0) + """
                # TYPE bitrelay_first_tokens_total counter
                bitrelay_first_tokens_total %s
                # TYPE bitrelay_first_token_seconds_total counter
                bitrelay_first_token_seconds_total{part="waiting"} %s
                bitrelay_first_token_seconds_total{part="first_step"} %s
                # TYPE bitrelay_gateway_time_to_first_token_seconds histogram
                bitrelay_gateway_time_to_first_token_seconds_bucket{le="0.005"} 1
                bitrelay_gateway_time_to_first_token_seconds_count %s
                bitrelay_gateway_time_to_first_token_seconds_sum %s
                """;
        StagePhaseScrape before = StagePhaseScrape.parse(template.formatted(4.0, 0.5, 1.0, 4.0, 2.0));
        StagePhaseScrape after = StagePhaseScrape.parse(template.formatted(14.0, 0.7, 1.5, 14.0, 2.9));
        assertEquals(new StagePhaseScrape.FirstTokens(14, 0.7, 1.5, 14, 2.9), after.firstTokens());
        StagePhaseScrape.FirstTokenSplit split = after.firstTokens().since(before.firstTokens());
        assertEquals(10, split.requests());
        assertEquals(20.0, split.waitingMs(), 1e-9); // 0.2 s over 10 requests
        assertEquals(50.0, split.firstStepMs(), 1e-9);
        assertEquals(90.0, split.gatewayMs(), 1e-9); // the gateway's 0.9 s over its 10 first tokens
        assertEquals(new StagePhaseScrape.FirstTokens(0, 0, 0, 0, 0), StagePhaseScrape.parse(metrics(1, 1, 1)).firstTokens(),
                "a gateway without the counters reads as none");
    }

    @Test
    void shouldIgnoreAStageTheEarlierScrapeDidNotHave() {
        StagePhaseScrape before = StagePhaseScrape.parse("bitrelay_stage_steps{stage=\"stage0\"} 1\n");
        assertEquals(List.of("stage0"), after().since(before, 1).stream().map(StagePhaseScrape.StageTime::stage).toList());
        assertTrue(StagePhaseScrape.parse("").stages().isEmpty());
    }

    private static StagePhaseScrape after() {
        return StagePhaseScrape.parse(metrics(3, 4, 1));
    }
}
