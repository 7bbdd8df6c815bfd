package io.bitrelay.actors.dataplane;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(value = 5, unit = TimeUnit.SECONDS)
class LinkChannelsTest {

    private final LinkChannels channels = new LinkChannels(LinkChannels.Settings.defaults());

    @Test
    void shouldUseIpcBetweenStagesOnOneHost() {
        Link link = channels.link(1, "gpu-node-1", 2, "GPU-NODE-1");
        assertEquals(new Link(1, 2, "aeron:ipc", 1001), link);
        assertTrue(link.isIpc());
        assertEquals("stage 1 → 2 on aeron:ipc stream 1001", link.describe());
    }

    @Test
    void shouldUseUdpToTheDestinationPortAcrossHosts() {
        Link link = channels.link(3, "node-a", 4, "10.0.0.7");
        assertEquals(new Link(3, 4, "aeron:udp?endpoint=10.0.0.7:40104|mtu=1408", 1003), link);
    }

    @Test
    void shouldApplyConfiguredMtusAndBracketIpv6() {
        LinkChannels jumbo = new LinkChannels(LinkChannels.Settings.defaults().withUdpMtuBytes(8960)
                .withIpcMtuBytes(65_504).withStreamIdBase(2000));
        assertEquals("aeron:udp?endpoint=[fe80::1]:5000|mtu=8960", jumbo.link(0, "a", 1, "fe80::1", 5000).channel());
        assertEquals(new Link(5, 6, "aeron:ipc?mtu=65504", 2005), jumbo.link(5, "a", 6, "a"));
    }

    @Test
    void shouldNameTheKeyOfAnInvalidSetting() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LinkChannels.Settings.defaults().withUdpMtuBytes(1500));
        assertTrue(e.getMessage().startsWith("udp-mtu must be a multiple of 32"), e.getMessage());
    }
}
