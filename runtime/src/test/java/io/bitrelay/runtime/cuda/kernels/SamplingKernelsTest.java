package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.cuda.CudaStream;
import io.bitrelay.runtime.cuda.DeviceBuffer;
import io.bitrelay.runtime.cuda.GpuTestSupport;
import io.bitrelay.runtime.cuda.HostData;
import io.bitrelay.runtime.generate.DeviceSamplingReference;
import io.bitrelay.runtime.generate.Sampler;
import io.bitrelay.runtime.generate.SamplingRows;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sampling kernel against its CPU port, token for token, over random FP16 rows of OPT's vocabulary (ties
 * included). Greedy must match exactly; sampled rows may differ only where float sums or logf put a decision
 * within rounding (DeviceSamplingReference says where), so one row in a set is tolerated.
 */
@Timeout(300)
class SamplingKernelsTest {
    private static final int VOCAB = 50_272;
    private static final int ROWS = 40;

    @ParameterizedTest(name = "T={0} topK={1} topP={2}")
    @CsvSource({"0, 0, 1", "1, 0, 1", "0.7, 50, 1", "1, 0, 0.9", "0.8, 40, 0.95", "1, 1, 1", "1, 0, 0.000001",
            "1.3, 20, 0.5"})
    void shouldPickTheReferenceToken(float temperature, int topK, float topP) {
        SamplingKernels kernels = new SamplingKernels(GpuTestSupport.kernels());
        SplittableRandom random = new SplittableRandom(41);
        float[][] rows = new float[ROWS][];
        SamplingRows params = new SamplingRows(ROWS);
        try (Arena arena = Arena.ofShared(); CudaStream stream = CudaStream.create()) {
            MemorySegment halves = arena.allocate((long) ROWS * VOCAB * Short.BYTES, 64);
            for (int r = 0; r < ROWS; r++) {
                rows[r] = new float[VOCAB];
                for (int v = 0; v < VOCAB; v++) {
                    // a head of tied large logits, then normal noise
                    double x = v < 64 ? 8 + Math.rint(random.nextGaussian()) * 0.25 : 3 * random.nextGaussian();
                    short h = Float.floatToFloat16((float) x);
                    halves.setAtIndex(ValueLayout.JAVA_SHORT, (long) r * VOCAB + v, h);
                    rows[r][v] = Float.float16ToFloat(h);
                }
                params.add(temperature, topK, topP, 1000 + r, 3L * r);
            }
            MemorySegment packed = arena.allocate((long) ROWS * SamplingKernels.PARAMS_BYTES, 64);
            SamplingKernels.pack(params, 0, ROWS, packed);
            try (DeviceBuffer logits = HostData.upload(halves); DeviceBuffer dParams = HostData.upload(packed);
                 DeviceBuffer tokens = DeviceBuffer.allocate((long) ROWS * Integer.BYTES);
                 DeviceBuffer logprobs = DeviceBuffer.allocate((long) ROWS * Float.BYTES)) {
                kernels.sample(logits.address(), ROWS, VOCAB, dParams.address(), tokens.address(), logprobs.address(), stream);
                stream.synchronize();
                int[] actual = HostData.download(arena, tokens, (long) ROWS * Integer.BYTES).toArray(ValueLayout.JAVA_INT);
                float[] actualLogprobs = HostData.toArray(HostData.download(arena, logprobs, (long) ROWS * Float.BYTES));
                int differing = 0;
                for (int r = 0; r < ROWS; r++) {
                    int expected = DeviceSamplingReference.sample(rows[r], params, r);
                    if (temperature == 0f) {
                        assertEquals(Sampler.argmax(rows[r]), actual[r], "greedy row " + r);
                    }
                    differing += expected == actual[r] ? 0 : 1;
                    assertEquals(DeviceSamplingReference.logprob(rows[r], actual[r]), actualLogprobs[r], 1e-3, "logprob of row " + r);
                }
                int allowed = temperature == 0f ? 0 : 1;
                int seen = differing;
                assertTrue(differing <= allowed, () -> seen + " of " + ROWS + " rows differ from the CPU port");
            }
        }
    }
}
