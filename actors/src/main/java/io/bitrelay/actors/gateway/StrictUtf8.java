package io.bitrelay.actors.gateway;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * Refuses a request body that is not UTF-8 (RFC 8259 requires it of JSON), naming the byte offset, instead of
 * replacing the bad bytes with U+FFFD and generating from a prompt the client never sent. The body is decoded
 * through a small buffer that is thrown away: only the check is wanted here, the JSON parser reads the bytes.
 */
final class StrictUtf8 {
    private static final int SCRATCH_CHARS = 8192;

    private StrictUtf8() {
    }

    /** @throws InvalidRequestException at the first malformed or truncated sequence */
    static void check(ByteBuffer body) {
        ByteBuffer in = body.duplicate();
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        CharBuffer scratch = CharBuffer.allocate(SCRATCH_CHARS);
        int start = in.position();
        while (true) {
            CoderResult result = decoder.decode(in, scratch, true);
            if (result.isError()) {
                throw malformed(in, in.position() - start, result.length());
            }
            if (result.isUnderflow()) {
                result = decoder.flush(scratch.clear());
                if (result.isError()) {
                    throw malformed(in, in.position() - start, result.length());
                }
                return;
            }
            scratch.clear(); // overflow: the scratch buffer is full, keep going
        }
    }

    private static InvalidRequestException malformed(ByteBuffer in, int offset, int length) {
        byte[] bad = new byte[Math.min(length, in.remaining())];
        in.duplicate().get(bad);
        return new InvalidRequestException("The body of the request is not valid UTF-8: byte offset " + offset
                + " starts a malformed sequence (0x" + HexFormat.ofDelimiter(" 0x").withUpperCase().formatHex(bad) + ")", null);
    }
}
