package io.bitrelay.runtime.cuda.kernels;

import io.bitrelay.runtime.model.opt.KvPrecision;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KvCacheFormatTest {
    @Test
    void shouldServeFp32AsFp16AndInt8AsInt8AndRefuseFewerBits() {
        assertEquals(KvCacheFormat.FP16, KvCacheFormat.of(KvPrecision.FP32));
        assertEquals(KvCacheFormat.INT8, KvCacheFormat.of(KvPrecision.INT8));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KvCacheFormat.of(KvPrecision.INT4));
        assertTrue(e.getMessage().contains("int4") && e.getMessage().contains("CPU workers"), e.getMessage());
        assertEquals(KvCacheFormat.INT8, KvCacheFormat.parse("int8"));
        assertThrows(IllegalArgumentException.class, () -> KvCacheFormat.parse("int3"));
    }

    @Test
    void shouldSizeBlocksAsAttentionCuLaysThemOut() {
        // OPT-175B: hidden 12288, 96 heads, 2048 tokens.
        assertEquals(2048L * 12288 * 2, KvCacheFormat.FP16.blockBytes(2048, 12288, 96));
        assertEquals(2048L * 12288 + 2048L * 96 * 8, KvCacheFormat.INT8.blockBytes(2048, 12288, 96));
    }
}
