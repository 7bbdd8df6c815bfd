package io.bitrelay.actors.gateway;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;

@Timeout(10)
class IncrementalDetokenizerTest {
    /** A byte-level decoder: token id i is byte i, and bytes decode as lossy UTF-8 (what OPT's tokenizer does). */
    private static final Function<int[], String> BYTES = ids -> {
        byte[] bytes = new byte[ids.length];
        for (int i = 0; i < ids.length; i++) {
            bytes[i] = (byte) ids[i];
        }
        return new String(bytes, StandardCharsets.UTF_8);
    };

    private static int[] utf8(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            ids[i] = bytes[i] & 0xFF;
        }
        return ids;
    }

    @Test
    void shouldHoldBackAMultiByteCharacterUntilItIsComplete() {
        IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(BYTES);
        int[] euro = utf8("€"); // E2 82 AC
        assertEquals("", detokenizer.push(euro[0]));
        assertEquals("", detokenizer.push(euro[1]));
        assertEquals("€", detokenizer.push(euro[2]));
        assertEquals("!", detokenizer.push('!'));
        assertEquals("", detokenizer.flush());
    }

    @Test
    void shouldEmitPlainTextTokenByToken() {
        IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(BYTES);
        List<String> deltas = new ArrayList<>();
        for (int id : utf8("hi there")) {
            deltas.add(detokenizer.push(id));
        }
        assertEquals(List.of("h", "i", " ", "t", "h", "e", "r", "e"), deltas);
    }

    @Test
    void shouldFlushACharacterThatNeverCompletedAsReplacementCharacter() {
        IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(BYTES);
        assertEquals("a", detokenizer.push('a'));
        assertEquals("", detokenizer.push(0xE2));
        assertEquals("\uFFFD", detokenizer.flush());
    }

    @Test
    void shouldHoldBackOnlyTheLastReplacementCharacter() {
        IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(BYTES);
        assertEquals("", detokenizer.push(0x80)); // a stray continuation byte: invalid, but as the tail it is held
        assertEquals("\uFFFD", detokenizer.push(0xFF)); // the 0x80 is final now; 0xFF is the held tail
        assertEquals("\uFFFD", detokenizer.push(0xE2)); // 0xFF is final; 0xE2 may still start a character
        int[] euro = utf8("€");
        assertEquals("", detokenizer.push(euro[1]));
        assertEquals("€", detokenizer.push(euro[2]));
        assertEquals("", detokenizer.flush());
    }

    @Test
    void shouldConcatenateDeltasToTheFullDecodeOfAnyByteSequence() {
        SplittableRandom random = new SplittableRandom(42);
        String mixed = "naïve ☃ wörld 😀 ok";
        for (int round = 0; round < 200; round++) {
            int[] ids = round % 2 == 0 ? utf8(mixed) : random.ints(random.nextInt(1, 40), 0, 256).toArray();
            IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(BYTES);
            StringBuilder streamed = new StringBuilder();
            for (int id : ids) {
                streamed.append(detokenizer.push(id));
            }
            streamed.append(detokenizer.flush());
            assertEquals(BYTES.apply(ids), streamed.toString(), "round " + round);
        }
    }

    @Test
    void shouldDecodeOnlyTheIdsSinceTheLastWholeCharacter() {
        int[] longest = {0};
        IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(ids -> {
            longest[0] = Math.max(longest[0], ids.length);
            return BYTES.apply(ids);
        });
        StringBuilder streamed = new StringBuilder();
        String text = "a long stream of plain text, then € and 😀, then plain again ".repeat(20);
        for (int id : utf8(text)) {
            streamed.append(detokenizer.push(id));
        }
        assertEquals(text, streamed.toString());
        assertEquals(4, longest[0], "the longest window is a 4-byte character, whatever the stream's length");
    }

    @Test
    void shouldStreamWhatTheCheckpointsTokenizerDecodesWhole(@org.junit.jupiter.api.io.TempDir java.nio.file.Path temp) {
        try (io.bitrelay.runtime.tokenizer.OptTokenizer tokenizer = io.bitrelay.runtime.tokenizer.OptTokenizer.load(
                io.bitrelay.runtime.TestModels.writeTiny(temp.resolve("tiny")))) {
            SplittableRandom random = new SplittableRandom(7);
            int vocabulary = io.bitrelay.runtime.TestModels.tinyConfig().vocabSize();
            for (int round = 0; round < 100; round++) {
                int[] ids = random.ints(random.nextInt(1, 60), 0, vocabulary).toArray();
                IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(tokenizer::decode);
                StringBuilder streamed = new StringBuilder();
                for (int id : ids) {
                    streamed.append(detokenizer.push(id));
                }
                streamed.append(detokenizer.flush());
                assertEquals(tokenizer.decode(ids), streamed.toString(), "round " + round);
            }
        }
    }
}

