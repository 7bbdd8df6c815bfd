package io.bitrelay.runtime.placement;

import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptPresets;
import org.junit.jupiter.api.Test;

import java.util.Collections;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LayerPlacementTest {
    private static final long GB = 1_000_000_000L;

    private static void assertContiguousCover(List<StagePlan> plans, int layers) {
        int next = 0;
        for (StagePlan plan : plans) {
            assertEquals(next, plan.firstLayer());
            assertTrue(plan.layers() >= 1);
            next = plan.endLayer();
        }
        assertEquals(layers, next);
    }

    @Test
    void shouldSplitOpt175bW8A8EvenlyOverSixteenEqualGpus() {
        OptConfig config = OptPresets.get("175b");
        List<StagePlan> plans = LayerPlacement.plan(config, Collections.nCopies(16, 80 * GB), 1.0, 0.1);
        assertEquals(16, plans.size());
        assertContiguousCover(plans, 96);
        for (StagePlan plan : plans) {
            assertTrue(plan.layers() >= 5 && plan.layers() <= 7, "stage " + plan.device() + " got " + plan.layers());
        }
    }

    @Test
    void shouldGiveMoreLayersToLargerDevices() {
        OptConfig config = OptPresets.get("1.3b");
        List<StagePlan> plans = LayerPlacement.plan(config, List.of(2 * GB, 6 * GB), 4.0, 0.1);
        assertContiguousCover(plans, 24);
        assertTrue(plans.get(1).layers() > 2 * plans.get(0).layers(), plans.toString());
    }

    @Test
    void shouldUseNoMoreStagesThanLayers() {
        OptConfig config = OptPresets.get("tiny");
        List<StagePlan> plans = LayerPlacement.plan(config, Collections.nCopies(5, GB), 4.0, 0.1);
        assertEquals(config.numLayers(), plans.size());
        assertContiguousCover(plans, config.numLayers());
    }

    @Test
    void shouldSayByHowMuchTheModelDoesNotFit() {
        OptConfig config = OptPresets.get("175b");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LayerPlacement.plan(config, List.of(143 * GB), 2.0, 0.1));
        assertTrue(e.getMessage().contains("needs") && e.getMessage().contains("GB"), e.getMessage());
    }
}
