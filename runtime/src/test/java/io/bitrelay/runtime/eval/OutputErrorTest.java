package io.bitrelay.runtime.eval;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class OutputErrorTest {

    @Test
    void identicalLogitsHaveNoError() {
        OutputError error = new OutputError();
        error.add(new float[]{1f, 2f, -3f}, new float[]{1f, 2f, -3f});
        assertEquals(0, error.relativeError(), 0);
        assertEquals(0, error.maxAbsError(), 0);
        assertEquals(0, error.meanKl(), 1e-12);
        assertEquals(1, error.top1Agreement(), 0);
    }

    @Test
    void shiftedLogitsGiveTheSameDistribution() {
        OutputError error = new OutputError();
        error.add(new float[]{1f, 2f, -3f}, new float[]{6f, 7f, 2f});
        assertEquals(0, error.meanKl(), 1e-9);
        assertEquals(5, error.maxAbsError(), 1e-6);
        assertEquals(1, error.top1Agreement(), 0);
    }

    @Test
    void measuresKlTopOneAndRelativeErrorAsDefined() {
        OutputError error = new OutputError();
        // p = softmax(0, ln 3) = (1/4, 3/4); q = (3/4, 1/4): KL = 1/4 ln(1/3) + 3/4 ln 3 = ln 3 / 2
        float ln3 = (float) Math.log(3);
        error.add(new float[]{0f, ln3}, new float[]{ln3, 0f});
        error.add(new float[]{3f, 4f}, new float[]{3f, 4f});
        assertEquals(Math.log(3) / 4, error.meanKl(), 1e-6);
        assertEquals(0.5, error.top1Agreement(), 0);
        double squaredDiff = 2 * ln3 * ln3;
        double squaredRef = ln3 * ln3 + 9 + 16;
        assertEquals(Math.sqrt(squaredDiff / squaredRef), error.relativeError(), 1e-6);
        assertEquals(2, error.rows());
    }
}
