package io.bitrelay.runtime.eval;

/**
 * How far a model's next-token distributions are from a reference model's on the same tokens, accumulated
 * row by row (a row = the logits at one position).
 */
public final class OutputError {
    private double squaredError;
    private double squaredReference;
    private double maxAbsError;
    private double klSum;
    private long top1Agreements;
    private long rows;

    /** Adds one position: {@code reference} and {@code candidate} are the two models' logits there. */
    public void add(float[] reference, float[] candidate) {
        if (reference.length != candidate.length) {
            throw new IllegalArgumentException("logit rows differ in width: " + reference.length + " vs " + candidate.length);
        }
        int refTop = 0;
        int candTop = 0;
        for (int i = 0; i < reference.length; i++) {
            double d = (double) candidate[i] - reference[i];
            squaredError += d * d;
            squaredReference += (double) reference[i] * reference[i];
            maxAbsError = Math.max(maxAbsError, Math.abs(d));
            if (reference[i] > reference[refTop]) {
                refTop = i;
            }
            if (candidate[i] > candidate[candTop]) {
                candTop = i;
            }
        }
        klSum += klDivergence(reference, candidate);
        top1Agreements += refTop == candTop ? 1 : 0;
        rows++;
    }

    /** KL(p_ref ‖ p_cand) in nats, from logits, with the usual max subtraction for stability. */
    static double klDivergence(float[] reference, float[] candidate) {
        double refLogZ = logSumExp(reference);
        double candLogZ = logSumExp(candidate);
        double kl = 0;
        for (int i = 0; i < reference.length; i++) {
            double logP = reference[i] - refLogZ;
            double logQ = candidate[i] - candLogZ;
            kl += Math.exp(logP) * (logP - logQ);
        }
        return Math.max(kl, 0);
    }

    private static double logSumExp(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : logits) {
            sum += Math.exp(v - max);
        }
        return max + Math.log(sum);
    }

    /** ‖candidate − reference‖₂ / ‖reference‖₂ over every logit added. */
    public double relativeError() {
        return squaredReference == 0 ? 0 : Math.sqrt(squaredError / squaredReference);
    }

    public double maxAbsError() {
        return maxAbsError;
    }

    /** Mean KL(p_ref ‖ p_cand) per position, nats. */
    public double meanKl() {
        return rows == 0 ? 0 : klSum / rows;
    }

    /** Fraction of positions where both models' most likely next token is the same. */
    public double top1Agreement() {
        return rows == 0 ? 1 : (double) top1Agreements / rows;
    }

    public long rows() {
        return rows;
    }
}
