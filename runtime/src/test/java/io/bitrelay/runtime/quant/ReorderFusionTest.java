package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.eval.Progress;
import io.bitrelay.runtime.model.opt.OptConfig;
import io.bitrelay.runtime.model.opt.OptWeights;
import io.bitrelay.runtime.model.opt.OptModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The RPTQ reorder fused into the weights computes the same function as the original model. */
@Timeout(60)
class ReorderFusionTest {
    @TempDir
    static Path temp;
    static Path checkpoint;

    @BeforeAll
    static void writeModel() {
        checkpoint = QuantTestModels.writeTinyWithOutliers(temp.resolve("tiny-outliers"));
    }

    @Test
    void shouldKeepTheModelOutputWhenEveryLinearInputIsReordered() {
        try (OptModel model = OptModel.load(checkpoint)) {
            CalibrationStats stats = Calibration.run(model, QuantTestModels.randomTokens(256, 31), 8, 32, "random",
                    Progress.NONE);
            QuantPlan plan = QuantPlanner.plan(QuantRecipe.W4A4_RPTQ, stats, 0.5f, 4);
            assertEquals(4 * model.config().numLayers(), plan.reorders().size(), "one plan per linear input per layer");
            for (ClusterPlan cluster : plan.reorders().values()) {
                assertTrue(cluster.clusters() > 1, cluster.toString());
                boolean moved = false;
                int[] permutation = cluster.permutation();
                for (int p = 0; p < permutation.length; p++) {
                    moved |= permutation[p] != p;
                }
                assertTrue(moved, "the plan really reorders: " + cluster);
            }
            List<int[]> evaluation = List.of(QuantTestModels.randomTokens(40, 32), QuantTestModels.randomTokens(33, 33));
            float[][] reference = QuantTestModels.logits(model, evaluation);
            Arena arena = Arena.ofShared();
            try (OptModel reordered = model.derive(ReorderFusion.apply(model.weights(), plan.reorders(), arena), arena)) {
                assertInstanceOf(GatheredLinear.class, reordered.weights().layers()[0].outProj());
                double maxDiff = QuantTestModels.maxAbsDifference(reference, QuantTestModels.logits(reordered, evaluation));
                assertTrue(maxDiff < 1e-4, "max |Δlogit| " + maxDiff);
            }
        }
    }

    @Test
    void shouldRefusePostLayerNormModels() {
        try (OptModel model = OptModel.load(checkpoint)) {
            OptConfig c = model.config();
            OptConfig postLn = new OptConfig(c.vocabSize(), c.hiddenSize(), c.numLayers(), c.numHeads(), c.ffnDim(),
                    c.maxPositions(), c.wordEmbedProjDim(), false, c.removeFinalLayerNorm(), c.enableBias(),
                    c.bosTokenId(), c.eosTokenId(), c.padTokenId(), c.storageDtype());
            OptWeights w = model.weights();
            OptWeights postLnWeights = new OptWeights(postLn, w.range(), w.tokenEmbeddings(), w.positionEmbeddings(),
                    w.projectIn(), w.finalLayerNorm(), w.projectOut(), w.layers());
            try (Arena arena = Arena.ofConfined()) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> ReorderFusion.apply(postLnWeights, Map.of(), arena));
                assertTrue(e.getMessage().contains("post-LN"), e.getMessage());
            }
        }
    }
}
