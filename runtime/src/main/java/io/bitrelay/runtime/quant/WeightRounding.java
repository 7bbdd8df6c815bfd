package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationSite;
import io.bitrelay.runtime.model.opt.Linear;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Map;

/** How a low-bit recipe turns a (transformed) FP32 linear into packed codes: to nearest, or by GPTQ. */
sealed interface WeightRounding {
    WeightRounding NEAREST = new Nearest();

    /**
     * @param gather input channel each column reads (RPTQ's gathered consumers), or null
     */
    PackedWeights round(Linear fp32, int layer, ActivationSite site, int[] gather, LowBitScheme scheme, Arena arena);

    /**
     * The mean calibration input of the linear {@link #round} was last called for (shifted and permuted as it reads
     * it), for {@link BiasCorrection}; null when this rounding has no calibration inputs.
     */
    double[] lastInputMean();

    record Nearest() implements WeightRounding {
        @Override
        public PackedWeights round(Linear fp32, int layer, ActivationSite site, int[] gather, LowBitScheme scheme, Arena arena) {
            return PackedWeights.quantize(fp32, scheme.weightBits(), scheme.groupSize(), scheme.asymmetricWeights(), arena);
        }

        @Override
        public double[] lastInputMean() {
            return null;
        }
    }

    /**
     * GPTQ against the inputs each linear really reads: the site's moments shifted by the channel centres when
     * the recipe shifts ({@code shiftedFrom}: the unshifted statistics the centres come from; null otherwise) and
     * permuted as the reorder permuted the linear's columns. q/k/v share one input, so its factor is kept for
     * the next call.
     */
    final class GptqRounding implements WeightRounding {
        private final Hessians hessians;
        private final CalibrationStats shiftedFrom;
        private final Map<CalibrationStats.Key, ClusterPlan> reorders;
        private CalibrationStats.Key lastKey;
        private int[] lastPermutation;
        private Gptq.Factor lastFactor;
        private double[] lastMean;

        GptqRounding(Hessians hessians, CalibrationStats shiftedFrom, Map<CalibrationStats.Key, ClusterPlan> reorders) {
            this.hessians = hessians;
            this.shiftedFrom = shiftedFrom;
            this.reorders = reorders == null ? Map.of() : reorders;
        }

        @Override
        public PackedWeights round(Linear fp32, int layer, ActivationSite site, int[] gather, LowBitScheme scheme, Arena arena) {
            CalibrationStats.Key key = new CalibrationStats.Key(layer, site);
            int[] permutation = gather;
            if (permutation == null && site == ActivationSite.FC2_INPUT && reorders.containsKey(key)) {
                permutation = reorders.get(key).permutation(); // fc1's rows and fc2's columns permuted in the weights
            }
            if (!key.equals(lastKey) || !Arrays.equals(permutation, lastPermutation)) {
                float[] centre = shiftedFrom != null && (site == ActivationSite.QKV_INPUT || site == ActivationSite.FC1_INPUT)
                        ? ChannelShift.centres(shiftedFrom.get(layer, site)) : null;
                Hessians.Moments moments = hessians.get(layer, site);
                double[] hessian = moments.forLinear(centre, permutation);
                lastMean = moments.meanForLinear(centre, permutation);
                lastFactor = Gptq.factor(hessian, fp32.inFeatures(), Gptq.DEFAULT_DAMPING, Gptq.ACT_ORDER);
                lastKey = key;
                lastPermutation = permutation;
            }
            return Gptq.quantize(fp32, lastFactor, scheme.weightBits(), scheme.groupSize(), scheme.asymmetricWeights(), arena);
        }

        @Override
        public double[] lastInputMean() {
            return lastMean;
        }
    }
}
