package io.bitrelay.runtime.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitrelay.runtime.checkpoint.CheckpointException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Iterator;

/**
 * How many bytes of text one token can cover at most, read from a tokenizer.json. It is knowable for byte-level
 * BPE without a normalizer (GPT-2's and so OPT's): the pre-tokenizer maps every byte of the text to one character,
 * BPE merges characters into vocabulary entries, so a token covers exactly as many bytes as its entry has
 * characters; an added token (such as {@code </s>}) matched in the text covers its own UTF-8 bytes. A normalizer
 * could shrink the text before that, so with one (or any other model) there is no bound.
 */
final class TokenSpan {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TokenSpan() {
    }

    /** The longest span in bytes, or 0 when the tokenizer gives no bound. */
    static int maxBytesPerToken(Path tokenizerJson) {
        JsonNode root;
        try {
            root = JSON.readTree(tokenizerJson.toFile());
        } catch (IOException e) {
            throw new CheckpointException(tokenizerJson + ": cannot read: " + e.getMessage(), e);
        }
        JsonNode normalizer = root.path("normalizer");
        JsonNode model = root.path("model");
        if (!(normalizer.isMissingNode() || normalizer.isNull())
                || !"ByteLevel".equals(root.path("pre_tokenizer").path("type").asText())
                || !"BPE".equals(model.path("type").asText()) || !model.path("vocab").isObject()) {
            return 0;
        }
        int longest = 0;
        for (Iterator<String> entries = model.path("vocab").fieldNames(); entries.hasNext(); ) {
            String entry = entries.next();
            longest = Math.max(longest, entry.codePointCount(0, entry.length()));
        }
        for (JsonNode added : root.path("added_tokens")) {
            longest = Math.max(longest, added.path("content").asText().getBytes(StandardCharsets.UTF_8).length);
        }
        return longest;
    }
}
