package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationSite;

import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Makes a {@link QuantPlan} from calibration statistics alone (no weights needed), so it can run on the
 * coordinator, which holds the statistics of every stage but the weights of none. For RPTQ recipes it
 * clusters, per layer, the channels of each linear's input by their calibrated (min, max)
 * ({@link ChannelClustering}, deterministic): the plans {@link RecipeApplier} fuses into the weights.
 */
public final class QuantPlanner {
    /**
     * Clusters per activation site when none is given. Measured on opt-pydoc-wt2-8L256-outliers (hidden 256,
     * FFN 1024), first 2 WikiText-2 test windows: W4A4 / W4A3 RPTQ perplexity 614 / 1.3e9 at 4 clusters,
     * 162 / 262 at 8, 153 / 187 at 16, 150 / 175 at 32 (W4A16: 144). See docs/quantization.md.
     */
    public static final int DEFAULT_CLUSTERS = 32;

    /** The linears' inputs: what RPTQ reorders and quantizes per cluster. */
    public static final Set<ActivationSite> REORDERED_SITES = EnumSet.of(ActivationSite.QKV_INPUT,
            ActivationSite.OUT_PROJ_INPUT, ActivationSite.FC1_INPUT, ActivationSite.FC2_INPUT);

    private QuantPlanner() {
    }

    public static QuantPlan plan(QuantRecipe recipe, CalibrationStats stats, float alpha) {
        return plan(recipe, stats, alpha, DEFAULT_CLUSTERS);
    }

    /** @param clusters most clusters per activation site (RPTQ recipes; ignored by the others) */
    public static QuantPlan plan(QuantRecipe recipe, CalibrationStats stats, float alpha, int clusters) {
        if (!recipe.reorders()) {
            return new QuantPlan(recipe, alpha, stats, Map.of());
        }
        ChannelClustering clustering = new ChannelClustering(clusters);
        Map<CalibrationStats.Key, ClusterPlan> reorders = new TreeMap<>();
        // a shifted recipe's layers see centred inputs: cluster those ranges, not the raw ones
        CalibrationStats ranges = recipe.shifting() ? ChannelShift.shiftedStats(stats) : stats;
        ranges.entries().forEach((key, channels) -> {
            if (REORDERED_SITES.contains(key.site())) {
                reorders.put(key, clustering.plan(channels.min(), channels.max()));
            }
        });
        return new QuantPlan(recipe, alpha, stats, reorders);
    }
}
