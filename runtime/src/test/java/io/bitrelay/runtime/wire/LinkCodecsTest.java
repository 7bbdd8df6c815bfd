package io.bitrelay.runtime.wire;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(10)
class LinkCodecsTest {

    @Test
    void shouldFindBuiltInCodecsByNameAndId() {
        assertEquals(CodecId.FP16, LinkCodecs.forName("fp16").id());
        assertEquals(CodecId.INT8, LinkCodecs.forName("int8").id());
        assertEquals(CodecId.INT8, LinkCodecs.forId(CodecId.INT8).id());
    }

    @Test
    void shouldKeepWireIdsStable() {
        assertEquals(1, CodecId.FP16.wireId());
        assertEquals(2, CodecId.INT8.wireId());
        assertEquals(3, CodecId.INT4_RPTQ.wireId());
        assertEquals(4, CodecId.INT3_RPTQ.wireId());
        assertEquals(CodecId.INT3_RPTQ, CodecId.fromWireId(4));
        assertNull(CodecId.fromWireId(0));
        assertNull(CodecId.fromWireId(200));
    }

    @Test
    void shouldSayReservedCodecsAreNotAvailableOnThisNode() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LinkCodecs.forName("int3-rptq"));
        assertTrue(e.getMessage().contains("int3-rptq (id 4) is not available on this node"), e.getMessage());
    }

    @Test
    void shouldListKnownNamesForAnUnknownName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LinkCodecs.forName("int7"));
        assertTrue(e.getMessage().contains("'int7'") && e.getMessage().contains("fp16"), e.getMessage());
    }
}
