package io.bitrelay.deploy.bench;

import org.junit.jupiter.api.Test;

import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LatencyStatsTest {
    @Test
    void shouldInterpolateBetweenClosestRanksAsNumpyDoes() {
        // numpy.percentile(range(1, 101), [50, 99]) == [50.5, 99.01]; the order of the input does not matter.
        double[] values = IntStream.rangeClosed(1, 100).map(i -> 101 - i).asDoubleStream().toArray();
        LatencyStats stats = LatencyStats.of(values);
        assertEquals(100, stats.count());
        assertEquals(50.5, stats.mean(), 1e-12);
        assertEquals(50.5, stats.p50(), 1e-12);
        assertEquals(99.01, stats.p99(), 1e-9);
        assertEquals(100.0, values[0], "the caller's array is left as it was");
    }

    @Test
    void shouldReportSmallSamplesWithinTheirRange() {
        LatencyStats one = LatencyStats.of(new double[]{7});
        assertEquals(7, one.p50());
        assertEquals(7, one.p99());
        LatencyStats two = LatencyStats.of(new double[]{10, 20});
        assertEquals(15, two.p50(), 1e-12);
        assertEquals(19.9, two.p99(), 1e-9);
    }

    @Test
    void shouldReportNothingForNoValues() {
        LatencyStats none = LatencyStats.of(new double[0]);
        assertEquals(0, none.count());
        assertTrue(Double.isNaN(none.p50()) && Double.isNaN(none.p99()) && Double.isNaN(none.mean()));
        assertThrows(IllegalArgumentException.class, () -> LatencyStats.percentile(new double[]{1}, 101));
    }
}
