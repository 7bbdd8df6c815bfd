package io.bitrelay.runtime.synthetic;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitrelay.runtime.model.opt.OptConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Generates a GPT-2-style byte-level BPE tokenizer.json sized to a synthetic model's vocabulary, laid out
 * as OPT's: {@code <s>}=0, {@code <pad>}=1, {@code </s>}=2, {@code <unk>}=3, and {@code </s>} prepended to
 * every prompt. Ids 4–259 are the 256 bytes (so any text encodes), then merges that build lower-case
 * words a letter at a time, up to the vocabulary size.
 */
final class ByteLevelTokenizerWriter {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> SPECIALS = List.of("<s>", "<pad>", "</s>", "<unk>");
    private static final String SPACE = String.valueOf((char) 0x120); // byte 0x20 in GPT-2's byte→char map

    private ByteLevelTokenizerWriter() {
    }

    static void write(Path directory, OptConfig config) throws IOException {
        int vocabSize = config.vocabSize();
        if (vocabSize < SPECIALS.size() + 256) {
            throw new IllegalArgumentException("a byte-level tokenizer needs a vocabulary of at least 260, config has " + vocabSize);
        }
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (String special : SPECIALS) {
            vocab.put(special, vocab.size());
        }
        for (char c : byteToChar()) {
            vocab.put(String.valueOf(c), vocab.size());
        }
        ArrayNode merges = JSON.createArrayNode();
        // Words grow a letter at a time, breadth first: " a".." z" and "aa".."zz", then each of those plus a
        // letter, and so on until the vocabulary is full. Every id then decodes to letters and spaces, so a
        // random model's output reads as (nonsense) text rather than placeholders.
        java.util.ArrayDeque<String> frontier = new java.util.ArrayDeque<>();
        frontier.add(SPACE);
        for (char c = 'a'; c <= 'z'; c++) {
            frontier.add(String.valueOf(c));
        }
        while (vocab.size() < vocabSize && !frontier.isEmpty()) {
            String left = frontier.poll();
            for (char c = 'a'; c <= 'z' && vocab.size() < vocabSize; c++) {
                String merged = left + c;
                if (!vocab.containsKey(merged)) {
                    vocab.put(merged, vocab.size());
                    merges.addArray().add(left).add(String.valueOf(c));
                    frontier.add(merged);
                }
            }
        }
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (String special : SPECIALS) {
            added.addObject().put("id", vocab.get(special)).put("content", special).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        root.set("pre_tokenizer", byteLevel(false));
        root.set("post_processor", bosTemplate(vocab.get("</s>")));
        root.set("decoder", byteLevel(true));
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.put("continuing_subword_prefix", "");
        model.put("end_of_word_suffix", "");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        ObjectNode vocabNode = model.putObject("vocab");
        vocab.forEach(vocabNode::put);
        model.set("merges", merges);
        Files.writeString(directory.resolve("tokenizer.json"), JSON.writeValueAsString(root));

        ObjectNode tokenizerConfig = JSON.createObjectNode();
        tokenizerConfig.put("tokenizer_class", "GPT2Tokenizer");
        tokenizerConfig.put("bos_token", "</s>").put("eos_token", "</s>").put("pad_token", "<pad>").put("unk_token", "<unk>");
        tokenizerConfig.put("add_bos_token", true);
        tokenizerConfig.put("model_max_length", config.maxPositions());
        Files.writeString(directory.resolve("tokenizer_config.json"),
                JSON.writerWithDefaultPrettyPrinter().writeValueAsString(tokenizerConfig) + "\n");
    }

    private static ObjectNode byteLevel(boolean prefixSpace) {
        ObjectNode node = JSON.createObjectNode();
        node.put("type", "ByteLevel").put("add_prefix_space", prefixSpace).put("trim_offsets", true).put("use_regex", true);
        return node;
    }

    private static ObjectNode bosTemplate(int bosId) {
        ObjectNode node = JSON.createObjectNode();
        node.put("type", "TemplateProcessing");
        ArrayNode single = node.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ArrayNode pair = node.putArray("pair");
        pair.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode special = node.putObject("special_tokens").putObject("</s>");
        special.put("id", "</s>");
        special.putArray("ids").add(bosId);
        special.putArray("tokens").add("</s>");
        return node;
    }

    /**
     * GPT-2's reversible byte→printable-char map: printable Latin-1 bytes stand for themselves, the
     * other 68 bytes take the chars from U+0100 upwards, so BPE never sees whitespace or control chars.
     */
    private static char[] byteToChar() {
        char[] map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char) b : (char) next++;
        }
        return map;
    }
}
