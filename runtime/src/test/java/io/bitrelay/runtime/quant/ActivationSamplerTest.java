package io.bitrelay.runtime.quant;

import io.bitrelay.runtime.model.opt.ActivationSite;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ActivationSamplerTest {

    /** Fewer rows than the bound: all of them, in the order seen; sites that are no linear's input: nothing. */
    @Test
    void shouldKeepEveryRowBelowTheBound() {
        ActivationSampler sampler = new ActivationSampler(10);
        sampler.observe(2, ActivationSite.FC1_INPUT, rows(0, 3, 2), 3, 2);
        sampler.observe(2, ActivationSite.FC1_INPUT, rows(3, 2, 2), 2, 2);
        sampler.observe(2, ActivationSite.KEYS, rows(0, 3, 2), 3, 2);
        ActivationSampler.Sample sample = sampler.sample(2, ActivationSite.FC1_INPUT);
        assertEquals(5, sample.count());
        for (int i = 0; i < 5; i++) {
            assertEquals(i, sample.get(i, 0));
            assertEquals(i + 0.5f, sample.get(i, 1));
        }
        assertNull(sampler.sample(2, ActivationSite.KEYS));
        assertNull(sampler.sample(3, ActivationSite.FC1_INPUT));
    }

    /**
     * More rows than the bound: exactly the bound is kept, distinct rows drawn from the whole stream (not only its
     * start), and the same stream gives the same sample.
     */
    @Test
    void shouldDrawAUniformRepeatableSampleOverTheBound() {
        int total = 10_000;
        ActivationSampler a = new ActivationSampler(500);
        ActivationSampler b = new ActivationSampler(500);
        for (int start = 0; start < total; start += 100) {
            a.observe(0, ActivationSite.QKV_INPUT, rows(start, 100, 1), 100, 1);
            b.observe(0, ActivationSite.QKV_INPUT, rows(start, 100, 1), 100, 1);
        }
        ActivationSampler.Sample sample = a.sample(0, ActivationSite.QKV_INPUT);
        assertEquals(500, sample.count());
        assertArrayEquals(sample.rows(), b.sample(0, ActivationSite.QKV_INPUT).rows());
        Set<Float> distinct = new HashSet<>();
        int secondHalf = 0;
        for (int i = 0; i < sample.count(); i++) {
            distinct.add(sample.get(i, 0));
            secondHalf += sample.get(i, 0) >= total / 2 ? 1 : 0;
        }
        assertEquals(500, distinct.size());
        assertTrue(secondHalf > 200 && secondHalf < 300, secondHalf + " of 500 rows from the second half of the stream");
    }

    @Test
    void shouldRefuseABadBoundOrAChangingWidth() {
        assertThrows(IllegalArgumentException.class, () -> new ActivationSampler(0));
        ActivationSampler sampler = new ActivationSampler(4);
        sampler.observe(0, ActivationSite.FC2_INPUT, rows(0, 1, 3), 1, 3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> sampler.observe(0, ActivationSite.FC2_INPUT, rows(0, 1, 2), 1, 2));
        assertTrue(e.getMessage().contains("width 2"), e.getMessage());
    }

    /** {@code count} rows of {@code width}: row r holds r + 0.5·channel, r counted from {@code first}. */
    private static MemorySegment rows(int first, int count, int width) {
        float[] values = new float[count * width];
        for (int i = 0; i < count; i++) {
            for (int j = 0; j < width; j++) {
                values[i * width + j] = first + i + 0.5f * j;
            }
        }
        return MemorySegment.ofArray(values);
    }
}
