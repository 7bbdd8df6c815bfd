package io.bitrelay.tests;

import io.bitrelay.deploy.verify.GoldenComparison;
import io.bitrelay.runtime.synthetic.SyntheticCheckpointWriter;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our FP32 CPU forward pass against Hugging Face transformers' OPTForCausalLM: goldens computed by
 * tests/python/make_goldens.py on the same synthetic checkpoints (rewritten here bit for bit).
 */
class HuggingFaceGoldenTest {
    private static final double LOGIT_TOLERANCE = 1e-3;

    @TempDir
    Path temp;

    @TestFactory
    @Timeout(300)
    Stream<DynamicTest> shouldMatchTransformersLogitsAndGreedyTokens() {
        return GoldenCheckpoints.all().stream().map(spec -> DynamicTest.dynamicTest(spec.name(), () -> {
            Path checkpoint = SyntheticCheckpointWriter.write(temp.resolve(spec.name()), spec.config(), spec.options());
            assertEquals(resource(spec.name() + ".sha256").trim(), weightsDigest(checkpoint),
                    "the synthetic writer no longer writes the checkpoint the golden was computed on; "
                            + "regenerate with tests/python/regenerate-goldens.sh");

            GoldenComparison.Result result = GoldenComparison.compare(checkpoint, goldenPath(spec.name()));
            System.out.println(result.summary());
            assertTrue(result.problems().isEmpty(), result.summary());
            assertTrue(result.maxPromptLogitDiff() <= LOGIT_TOLERANCE, result.summary());
            assertTrue(result.maxDecodeLogitDiff() <= LOGIT_TOLERANCE, result.summary());
            assertEquals(0, result.greedyMismatches(), result.summary());
            assertTrue(result.greedyTokens() >= 48 && result.comparedLogits() >= 15, "golden file is too small to say much");
        }));
    }

    private static String weightsDigest(Path checkpoint) throws IOException, NoSuchAlgorithmException {
        MessageDigest digest = MessageDigest.getInstance("SHA-256");
        List<Path> shards;
        try (Stream<Path> files = Files.list(checkpoint)) {
            shards = files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        }
        for (Path shard : shards) {
            try (InputStream in = new DigestInputStream(Files.newInputStream(shard), digest)) {
                in.transferTo(java.io.OutputStream.nullOutputStream());
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static Path goldenPath(String name) throws URISyntaxException {
        return Path.of(HuggingFaceGoldenTest.class.getResource("/goldens/" + name + ".json").toURI());
    }

    private static String resource(String name) throws IOException {
        try (InputStream in = HuggingFaceGoldenTest.class.getResourceAsStream("/goldens/" + name)) {
            if (in == null) {
                throw new IOException("missing test resource goldens/" + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
