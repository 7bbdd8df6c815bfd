package io.bitrelay.runtime.quant;

import java.util.Map;

/**
 * Makes a {@link QuantPlan} from calibration statistics alone (no weights needed), so it can run on the
 * coordinator, which holds the statistics of every stage but the weights of none.
 */
public final class QuantPlanner {
    private QuantPlanner() {
    }

    public static QuantPlan plan(QuantRecipe recipe, CalibrationStats stats, float alpha) {
        return new QuantPlan(recipe, alpha, stats, Map.of());
    }
}
